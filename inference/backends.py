"""What turns a batch of texts into verdicts: a Hub model through transformers, or VADER.

A verdict is an :class:`~models.news.ArticleSentiment`: a label among bullish / neutral / bearish, a score
in [-1, 1], and the model or backend that produced it. Two backends exist:

- :class:`TransformersBackend`: a ``text-classification`` pipeline over the model ``SENTIMENT_MODEL`` names
  (a Hub id, a local folder, or a preset name of :data:`~inference.presets.PRESETS`), its labels mapped by
  :func:`~inference.presets.label_map`.
- :class:`LexiconBackend`: VADER's compound score, whose lexicon ships in its package. It answers while the
  model loads, when it cannot be had, and for a batch the model failed on.

transformers and vaderSentiment are imported when a backend is built (or :meth:`TransformersBackend.prepare` is
called), not with this module, so importing it (and the server's modules that only name these types) stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from inference.presets import Label, label_map, resolve_model, verdict
from models.news import ArticleSentiment

#: Headlines and posts are short; longer texts are cut here (or at the model's own limit, if lower).
MAX_TOKENS = 256


class SentimentBackend(Protocol):
    """What scores texts. ``score_batch`` blocks: the runner calls it in its worker thread."""

    name: str  # what verdicts name as their model: a Hub id, a local path, or "vader"
    kind: Literal["transformers", "lexicon"]

    def score_batch(self, texts: Sequence[str]) -> list[ArticleSentiment]: ...


class TransformersBackend:
    kind: Literal["transformers", "lexicon"] = "transformers"

    def __init__(self, pipe: Any, name: str, labels: Mapping[str, Label]) -> None:
        self._pipe = pipe
        self.name = name
        self.labels = dict(labels)
        self._max_length = min(MAX_TOKENS, int(getattr(pipe.tokenizer, "model_max_length", MAX_TOKENS)))

    @staticmethod
    def can_load(model: str) -> bool:
        """False when ``model`` is a Hub id, the Hub is off (``HF_HUB_OFFLINE``) and no cache holds it."""
        from huggingface_hub import constants, try_to_load_from_cache

        model_id = resolve_model(model).model_id
        if os.path.isdir(model_id) or not constants.HF_HUB_OFFLINE:
            return True
        return isinstance(try_to_load_from_cache(model_id, "config.json"), str)

    @staticmethod
    def prepare() -> None:
        """Import transformers' pipelines now, in the calling thread (blocking: 3-8 s on two cores).

        The server calls it before it listens. Imported later by the loader thread, the same import held the
        interpreter's lock for seconds at a time (extension modules load under it): every client and ``/healthz``
        waited, just when a deploy's reconnect storm arrives."""
        import transformers.pipelines  # noqa: F401

    @classmethod
    def load(cls, model: str, *, token: str | None = None) -> TransformersBackend:
        """Load ``model`` (blocking: downloads it from the Hub unless cached). ``token`` opens gated models."""
        if not cls.can_load(model):
            raise OSError(f"{resolve_model(model).model_id} is not in the local cache and HF_HUB_OFFLINE is set")
        from transformers import pipeline

        preset = resolve_model(model)
        pipe = pipeline("text-classification", model=preset.model_id, token=token, device="cpu")
        labels = label_map(pipe.model.config.id2label, preset.model_id, preset.labels)
        return cls(pipe, preset.model_id, labels)

    def score_batch(self, texts: Sequence[str]) -> list[ArticleSentiment]:
        outputs = self._pipe(list(texts), batch_size=len(texts), top_k=None, truncation=True,
                             max_length=self._max_length)
        return [verdict({o["label"]: o["score"] for o in scores}, self.labels, self.name) for scores in outputs]


class LexiconBackend:
    """VADER (a lexicon tuned to social media). Weak on finance wording, but always there."""

    kind: Literal["transformers", "lexicon"] = "lexicon"
    name = "vader"
    #: VADER's documented thresholds on the compound score for positive / negative.
    THRESHOLD = 0.05

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()

    def score_batch(self, texts: Sequence[str]) -> list[ArticleSentiment]:
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> ArticleSentiment:
        compound = float(self._analyzer.polarity_scores(text)["compound"])
        label: Label = ("bullish" if compound >= self.THRESHOLD else
                        "bearish" if compound <= -self.THRESHOLD else "neutral")
        return ArticleSentiment(label=label, score=round(compound, 4), model=self.name)
