"""Sentiment inference: which model, how its labels read, what scores texts, and the runner serving it all.

- :mod:`inference.presets`: the ``SENTIMENT_MODEL`` presets and the label mapping (no torch).
- :mod:`inference.backends`: the transformers and VADER backends (each imports its library when built).
- :mod:`inference.runner`: :class:`~inference.runner.SentimentRunner`, loading, batching and caching.

Nothing is imported here, so ``import inference`` (or any one of its modules) never pulls torch in.
"""
