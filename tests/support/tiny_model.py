"""A tiny text-classification model built on the spot, so tests run the real transformers path offline.

:func:`build_tiny_model` saves a 2-layer BERT (hidden size 32) with a word-level tokenizer, both through
``save_pretrained``, into a folder that ``transformers.pipeline`` loads like any Hub model. Its classifier's
weights are zero and its bias favours one label, so the class probabilities are exactly ``softmax(bias)``
whatever the text: tests can check the label mapping and the score to the decimal.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")
WORDS = ("bitcoin", "ether", "price", "rises", "falls", "etf", "inflows", "outflows", "hack", "record", "high",
         "low", "market", "crypto", "the", "a", "of", "to", "as", "on")
#: The logit the favoured label gets (the others get 0): with 3 labels P(favoured) = e^2 / (e^2 + 2).
FAVOUR_LOGIT = 2.0


def build_tiny_model(path: Path, labels: Sequence[str] = ("negative", "neutral", "positive"),
                     favour: str | None = None) -> Path:
    """Save a tiny sequence classifier with ``id2label = labels`` (in order) to ``path`` and return it.

    ``favour`` names the label whose logit is :data:`FAVOUR_LOGIT`; with None every label is equally likely.
    """
    path.mkdir(parents=True, exist_ok=True)
    vocab = {token: i for i, token in enumerate((*SPECIAL, *WORDS))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", pad_token="[PAD]",
                                        cls_token="[CLS]", sep_token="[SEP]", model_max_length=64)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, pad_token_id=vocab["[PAD]"],
                        id2label=dict(enumerate(labels)), label2id={label: i for i, label in enumerate(labels)})
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        if favour is not None:
            model.classifier.bias[list(labels).index(favour)] = FAVOUR_LOGIT
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def expected_probabilities(labels: Sequence[str], favour: str | None) -> dict[str, float]:
    """The probabilities the model of :func:`build_tiny_model` gives every text."""
    logits = torch.tensor([FAVOUR_LOGIT if label == favour else 0.0 for label in labels])
    return dict(zip(labels, torch.softmax(logits, dim=0).tolist(), strict=True))
