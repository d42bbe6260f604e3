"""Which model ``SENTIMENT_MODEL`` means, and how its labels become bullish / neutral / bearish.

Pure data and arithmetic, no torch: the presets, the mapping of a model's own labels (``config.id2label``) to
ours, and the verdict a text's class probabilities give. A model's labels are mapped by name, or by its preset
for models that only say ``LABEL_0``...; a model whose labels cannot be mapped is refused rather than guessed.
The score is ``P(bullish) - P(bearish)`` over every class probability, so 2-class and 3-class models alike
give a graded score.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from models.news import ArticleSentiment

Label = Literal["bullish", "neutral", "bearish"]

#: Label names models use, lower-cased, and what they mean here.
NAMED_LABELS: dict[str, Label] = {
    "positive": "bullish", "pos": "bullish", "bullish": "bullish",
    "negative": "bearish", "neg": "bearish", "bearish": "bearish",
    "neutral": "neutral", "neu": "neutral",
}


@dataclass(frozen=True)
class Preset:
    model_id: str
    #: Only for models whose config names its classes ``LABEL_0``, ``LABEL_1``...: what each one means.
    labels: Mapping[str, Label] = field(default_factory=dict)


#: Names ``SENTIMENT_MODEL`` may also take. Label facts are from each model's card and config.json.
PRESETS: dict[str, Preset] = {
    # Financial news headlines. negative / neutral / positive; 0.98 accuracy on Financial PhraseBank
    # (all-agree split); Apache-2.0
    "finance-news": Preset("mrm8488/distilroberta-finetuned-financial-news-sentiment-analysis"),
    # Crypto social media posts. Bearish / Neutral / Bullish; fine-tuned on StockTwits crypto posts, max 128 tokens
    "crypto-social": Preset("ElKulako/cryptobert"),
    # Financial text. positive / negative / neutral; Financial PhraseBank
    "finbert": Preset("ProsusAI/finbert"),
    # Tweets. The card: "Labels: 0 -> Negative; 1 -> Neutral; 2 -> Positive"; the config only says LABEL_0..2.
    "twitter": Preset("cardiffnlp/twitter-roberta-base-sentiment",
                      {"LABEL_0": "bearish", "LABEL_1": "neutral", "LABEL_2": "bullish"}),
}


def resolve_model(name: str) -> Preset:
    """The model a ``SENTIMENT_MODEL`` value means: a preset by name or by Hub id, else that id or path."""
    if name in PRESETS:
        return PRESETS[name]
    return next((p for p in PRESETS.values() if p.model_id == name), Preset(name))


class UnmappedLabels(ValueError):
    """The model's classes cannot be told apart as bullish / neutral / bearish: it is not used."""


def label_map(id2label: Mapping[Any, str] | None, model: str,
              known: Mapping[str, Label] | None = None) -> dict[str, Label]:
    """Each of the model's labels mapped to bullish / neutral / bearish, or :class:`UnmappedLabels`."""
    if not id2label:
        raise UnmappedLabels(f"{model}: its config names no labels (id2label)")
    known = known or {}
    mapping: dict[str, Label] = {}
    unknown = []
    for label in id2label.values():
        meaning = known.get(label) or NAMED_LABELS.get(label.strip().lower())
        if meaning is None:
            unknown.append(label)
        else:
            mapping[label] = meaning
    if unknown:
        raise UnmappedLabels(f"{model}: labels {', '.join(map(repr, unknown))} have no known meaning "
                             f"(known: positive/negative/neutral, bullish/bearish, or a preset's LABEL_n)")
    if not {"bullish", "bearish"} <= set(mapping.values()):
        raise UnmappedLabels(f"{model}: labels {sorted(mapping)} do not include both a bullish and a bearish class")
    return mapping


def verdict(probabilities: Mapping[str, float], mapping: Mapping[str, Label], model: str) -> ArticleSentiment:
    """One text's verdict from its class probabilities: the likeliest of bullish / neutral / bearish (summed
    over the model's labels), and the score ``P(bullish) - P(bearish)``."""
    sums: dict[Label, float] = {"bearish": 0.0, "neutral": 0.0, "bullish": 0.0}
    for label, p in probabilities.items():
        sums[mapping[label]] += p
    score = max(-1.0, min(1.0, sums["bullish"] - sums["bearish"]))
    label = max(sums, key=lambda k: sums[k])
    return ArticleSentiment(label=label, score=round(score, 4), model=model)
