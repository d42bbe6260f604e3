"""Sentiment inference benchmark: texts/s and batch latency on CPU, for a model the server would load.

    python bench/sentiment.py                          # the configured SENTIMENT_MODEL (downloads it if needed)
    python bench/sentiment.py --model finbert          # a preset, a Hub id or a local folder
    python bench/sentiment.py --tiny                   # the tests' tiny local model (no download)
    python bench/sentiment.py --shape-of distilroberta # an UNTRAINED model of the default model's shape

It loads the model through the server's own path (``TransformersBackend.load``: the transformers pipeline and
the label mapping), bounds torch to ``--threads`` (TORCH_THREADS, 1 by default, as the server does), and scores
real headlines (the titles of the recorded RSS feeds in ``sources/replay``) in batches of ``--batch-size``
(SENTIMENT_BATCH_SIZE), after one warm-up batch. It prints which model ran, texts/s, mean milliseconds per
text and the p50 / p95 latency of a batch. The runner's cache is not involved: every text is inferred.

``--shape-of distilroberta`` builds distilroberta-base's architecture (6 layers, hidden 768, 12 heads, RoBERTa
vocabulary size) with random weights and a word-level tokenizer: its verdicts mean nothing, but its cost per
text is the default model's, give or take tokenisation (BPE splits a headline into a few more tokens than
words; the tokens per text are printed). Use it where the Hub cannot be reached.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def headlines() -> list[str]:
    import feedparser

    titles = []
    for feed in sorted(ROOT.glob("sources/replay/*/*.xml")):
        titles += [entry.title.strip() for entry in feedparser.parse(feed.read_bytes()).entries
                   if getattr(entry, "title", "").strip()]
    if not titles:
        raise SystemExit("no recorded RSS feed found under sources/replay: nothing to score")
    return titles


def shaped_like_distilroberta(path: Path) -> Path:
    """An untrained RoBERTa with distilroberta-base's dimensions, and a word-level tokenizer of the headlines."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaForSequenceClassification

    words = sorted({w for t in headlines() for w in t.lower().split()})
    vocab = {token: i for i, token in enumerate(("<s>", "<pad>", "</s>", "<unk>", *words))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(single="<s> $A </s>",
                                                        special_tokens=[("<s>", 0), ("</s>", 2)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                        pad_token="<pad>", model_max_length=512)
    config = RobertaConfig(vocab_size=50265, hidden_size=768, num_hidden_layers=6, num_attention_heads=12,
                           intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1,
                           id2label={0: "negative", 1: "neutral", 2: "positive"},
                           label2id={"negative": 0, "neutral": 1, "positive": 2})
    torch.manual_seed(0)
    RobertaForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a preset, Hub id or local folder (default: SENTIMENT_MODEL)")
    parser.add_argument("--tiny", action="store_true", help="the tests' tiny local model")
    parser.add_argument("--shape-of", choices=["distilroberta"], help="an untrained model of that shape")
    parser.add_argument("--texts", type=int, default=512, help="texts to score (default 512)")
    parser.add_argument("--batch-size", type=int, help="default: SENTIMENT_BATCH_SIZE")
    parser.add_argument("--threads", type=int, help="torch threads (default: TORCH_THREADS)")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    from config import Settings

    settings = Settings()
    batch_size = args.batch_size or settings.sentiment_batch_size
    threads = args.threads or settings.torch_threads

    import torch

    from inference.backends import TransformersBackend

    torch.set_num_threads(threads)
    scratch = tempfile.TemporaryDirectory()
    if args.tiny:
        from tests.support.tiny_model import build_tiny_model

        model, what = str(build_tiny_model(Path(scratch.name) / "tiny", favour="positive")), "the tests' tiny model"
    elif args.shape_of:
        model = str(shaped_like_distilroberta(Path(scratch.name) / "distilroberta-shaped"))
        what = "UNTRAINED, distilroberta-base's shape (cost only: its verdicts mean nothing)"
    else:
        model, what = args.model or settings.sentiment_model, "as configured"

    started = time.perf_counter()
    try:
        backend = TransformersBackend.load(model, token=settings.key("hf_token"))
    except (OSError, ValueError) as error:  # no network, a gated model without HF_TOKEN, unknown labels
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SystemExit(f"could not load {model!r}: {first}\n"
                         "Where the Hub cannot be reached: --tiny, or --shape-of distilroberta for its cost.") from None
    load_s = time.perf_counter() - started
    titles = headlines()
    texts = [titles[i % len(titles)] for i in range(args.texts)]
    tokenizer = backend._pipe.tokenizer
    tokens = statistics.mean(len(tokenizer(t)["input_ids"]) for t in titles)

    backend.score_batch(texts[:batch_size])  # warm-up: first calls allocate
    batches = [texts[i:i + batch_size] for i in range(0, len(texts), batch_size)]
    durations = []
    begin = time.perf_counter()
    for batch in batches:
        t0 = time.perf_counter()
        backend.score_batch(batch)
        durations.append((time.perf_counter() - t0) * 1000)
    total = time.perf_counter() - begin
    ordered = sorted(durations)
    p95 = ordered[math.ceil(0.95 * len(ordered)) - 1]

    print(f"model      {backend.name}  ({what})")
    print(f"labels     {backend.labels}")
    print(f"machine    {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{threads} torch thread(s)")
    print(f"workload   {len(texts)} headlines ({len(titles)} distinct, {tokens:.1f} tokens each on average), "
          f"batches of {batch_size}; model loaded in {load_s:.1f} s")
    print(f"throughput {len(texts) / total:,.1f} texts/s  ({len(texts) / total / threads:,.1f} per torch thread)")
    print(f"latency    {total * 1000 / len(texts):.2f} ms/text; batch p50 {statistics.median(durations):.1f} ms, "
          f"p95 {p95:.1f} ms")
    scratch.cleanup()


if __name__ == "__main__":
    main()
