"""The runner that serves sentiment verdicts for the server's lifetime: loading, batching, caching.

:class:`SentimentRunner` owns both backends (:mod:`inference.backends`) for the server's lifetime (an async
context manager). The model loads in a background thread (retried with backoff when the Hub cannot be
reached); inference runs in ONE worker thread, texts from every caller batched over a short window; verdicts
are cached by text hash; torch's threads are bounded so inference never starves the event loop. Every verdict
names what really answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

from config import Redactor
from inference.backends import LexiconBackend, SentimentBackend, TransformersBackend
from inference.presets import UnmappedLabels, resolve_model
from models.huggingface import InferenceStats, ModelState
from models.messages import iso
from models.news import ArticleSentiment

if TYPE_CHECKING:
    from types import TracebackType

    from config import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")


class InferenceObserver(Protocol):
    """Told of every batch scored (metrics): the backend that answered, how many texts, how long it took."""

    def inference(self, backend: str, texts: int, seconds: float) -> None: ...


@dataclass
class _Job:
    text: str
    key: bytes
    future: asyncio.Future[ArticleSentiment]


@dataclass
class _Figures:
    """Inference figures of one backend."""

    texts: int = 0
    batches: int = 0
    cache_hits: int = 0
    total_ms: float = 0.0
    batch_ms: deque[float] = field(default_factory=lambda: deque(maxlen=256))

    def view(self) -> InferenceStats:
        recent = sorted(self.batch_ms)
        return InferenceStats(
            texts_scored=self.texts, batches=self.batches, cache_hits=self.cache_hits,
            mean_latency_ms=round(self.total_ms / self.texts, 3) if self.texts else None,
            p95_batch_ms=round(recent[math.ceil(0.95 * len(recent)) - 1], 3) if recent else None)


def _text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _bound_torch_threads(threads: int) -> None:
    """torch uses every core by default; set in each thread that runs it, as OpenMP settings are per thread."""
    try:
        import torch
    except ImportError:  # the lexicon works without torch
        return
    torch.set_num_threads(threads)


def _in_daemon_thread(fn: Callable[[], T]) -> asyncio.Future[T]:
    """Run ``fn`` in a daemon thread: a model download stuck on the network must not hold up shutdown."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver(settle: Callable[[], None]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(lambda: None if future.done() else settle())

    def run() -> None:
        try:
            result = fn()
        except BaseException as exc:  # delivered to the awaiting task, which decides
            deliver(functools.partial(future.set_exception, exc))
        else:
            deliver(functools.partial(future.set_result, result))

    threading.Thread(target=run, name="sentiment-load", daemon=True).start()
    return future


class SentimentRunner:
    """Serves verdicts for the server's lifetime: ``async with SentimentRunner(settings) as runner``.

    ``loader`` builds the model backend (blocking, run in a thread); by default it loads ``SENTIMENT_MODEL``
    with ``HF_TOKEN``. After a failed load it is retried after each of ``retry_delays`` seconds in turn
    (then every last one); a model whose labels cannot be mapped is not retried.
    """

    def __init__(self, settings: Settings, *, loader: Callable[[], SentimentBackend] | None = None,
                 retry_delays: Sequence[float] = (60, 300, 900, 3600), cache_size: int = 4096) -> None:
        self.settings = settings
        self.model_id = resolve_model(settings.sentiment_model).model_id
        self._token = settings.key("hf_token")
        self._redact = Redactor([self._token])  # a failed load's error text may quote the token
        self._loader = loader or self._load_configured
        self._retry_delays = tuple(retry_delays)
        self._cache_size = cache_size
        self._lexicon: SentimentBackend = LexiconBackend()
        self._model: SentimentBackend | None = None
        self._state: Literal["loading", "ready", "failed"] = "loading"
        self._error: str | None = None
        self._loaded_at: float | None = None
        self._cache: OrderedDict[tuple[str, bytes], ArticleSentiment] = OrderedDict()
        self._pending: dict[bytes, asyncio.Future[ArticleSentiment]] = {}
        self._figures: dict[str, _Figures] = {}
        self._queue: asyncio.Queue[_Job] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.loaded = asyncio.Event()  # set when the first load attempt has ended, well or not
        self.observer: InferenceObserver | None = None

    def _load_configured(self) -> SentimentBackend:
        _bound_torch_threads(self.settings.torch_threads)
        return TransformersBackend.load(self.settings.sentiment_model, token=self._token)

    # -- lifetime ---------------------------------------------------------------------------------------
    async def __aenter__(self) -> SentimentRunner:
        _bound_torch_threads(self.settings.torch_threads)
        if self._loader == self._load_configured and TransformersBackend.can_load(self.settings.sentiment_model):
            TransformersBackend.prepare()  # before the server listens: see its docstring
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sentiment",
                                            initializer=_bound_torch_threads,
                                            initargs=(self.settings.torch_threads,))
        self._tasks = [asyncio.create_task(self._work(), name="sentiment-worker"),
                       asyncio.create_task(self._load(), name="sentiment-load")]
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        queue, self._queue = self._queue, None
        while queue is not None and not queue.empty():
            job = queue.get_nowait()
            if not job.future.done():
                job.future.set_exception(RuntimeError("the sentiment runner stopped"))
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._model = None

    async def _load(self) -> None:
        attempt = 0
        while True:
            self._state, self._error = "loading", None
            try:
                model = await _in_daemon_thread(self._loader)
            except Exception as exc:
                self._state, self._error = "failed", self._describe(exc)
                retry = not isinstance(exc, UnmappedLabels) and bool(self._retry_delays)
                if not retry:
                    log.warning("sentiment model %s not used, VADER answers instead: %s", self.model_id, self._error)
                    self.loaded.set()
                    return
                delay = self._retry_delays[min(attempt, len(self._retry_delays) - 1)]
                attempt += 1
                log.warning("sentiment model %s did not load (%s); VADER answers meanwhile; next try in %.0f s",
                            self.model_id, self._error, delay)
                self.loaded.set()
                await asyncio.sleep(delay)
                continue
            self._model, self._state, self._loaded_at = model, "ready", time.time()
            log.info("sentiment model %s ready", model.name)
            self.loaded.set()
            return

    def _describe(self, exc: BaseException) -> str:
        """``Type: message``, scrubbed of secrets and cut short: it goes to the log and the published state."""
        return self._redact(f"{type(exc).__name__}: {exc}".strip())[:500]

    # -- what it shows ----------------------------------------------------------------------------------
    @property
    def backend(self) -> SentimentBackend:
        """What answers now: the model once ready, VADER before or without it."""
        return self._model or self._lexicon

    @property
    def state(self) -> ModelState:
        labels = getattr(self._model, "labels", {}) if self._model is not None else {}
        return ModelState(id=self.model_id, backend=self.backend.kind, state=self._state, error=self._error,
                          loaded_at=iso(self._loaded_at), labels=dict(labels))

    @property
    def stats(self) -> InferenceStats:
        """Figures of the backend answering now (a lexicon's microseconds would hide a model's milliseconds)."""
        return self._figures_of(self.backend.name).view()

    def _figures_of(self, name: str) -> _Figures:
        return self._figures.setdefault(name, _Figures())

    # -- scoring ----------------------------------------------------------------------------------------
    async def score(self, texts: Sequence[str]) -> list[ArticleSentiment]:
        """One verdict per text, in order, each naming the model or backend that produced it."""
        if self._queue is None:
            raise RuntimeError("the sentiment runner is not running (use it with `async with`)")
        answering = self.backend.name
        results: list[ArticleSentiment | asyncio.Future[ArticleSentiment]] = []
        for text in texts:
            key = _text_key(text)
            cached = self._cache.get((answering, key))
            if cached is not None:
                self._cache.move_to_end((answering, key))
                self._figures_of(answering).cache_hits += 1
                results.append(cached)
                continue
            future = self._pending.get(key)
            if future is None:  # the same text asked twice while in flight is scored once
                future = asyncio.get_running_loop().create_future()
                self._pending[key] = future
                self._queue.put_nowait(_Job(text, key, future))
            results.append(future)
        # shield: one caller giving up must not cancel a verdict another caller waits for
        return [r if isinstance(r, ArticleSentiment) else await asyncio.shield(r) for r in results]

    async def annotate(self, texts: Sequence[str]) -> list[ArticleSentiment]:
        """Verdicts for collected texts (the news service's headlines): the same as :meth:`score`."""
        return await self.score(texts)

    async def _work(self) -> None:
        assert self._queue is not None
        queue = self._queue
        loop = asyncio.get_running_loop()
        window = self.settings.sentiment_batch_window_ms / 1000
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + window
            # Wait a moment for more texts, so concurrent callers share one forward pass.
            while len(batch) < self.settings.sentiment_batch_size:
                if not queue.empty():
                    batch.append(queue.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except TimeoutError:
                    break
            try:
                await self._run_batch(batch, loop)
            except asyncio.CancelledError:
                for job in batch:
                    self._settle(job, RuntimeError("the sentiment runner stopped"))
                raise
            except Exception as exc:  # the worker outlives any one batch
                log.exception("sentiment batch failed")
                for job in batch:
                    self._settle(job, exc)

    async def _run_batch(self, batch: list[_Job], loop: asyncio.AbstractEventLoop) -> None:
        backend = self.backend
        texts = [job.text for job in batch]
        started = time.perf_counter()
        try:
            verdicts = await loop.run_in_executor(self._executor, backend.score_batch, texts)
            if len(verdicts) != len(texts):
                raise RuntimeError(f"{len(verdicts)} verdicts for {len(texts)} texts")
        except Exception as exc:
            if backend is self._lexicon:
                for job in batch:
                    self._settle(job, exc)
                return
            # One bad batch does not retire the model: VADER answers for it, and the verdicts say so.
            log.warning("sentiment model %s failed on a batch of %d texts (%s); VADER answered it",
                        backend.name, len(texts), self._describe(exc))
            backend = self._lexicon
            started = time.perf_counter()
            verdicts = await loop.run_in_executor(self._executor, backend.score_batch, texts)
        elapsed_ms = (time.perf_counter() - started) * 1000
        figures = self._figures_of(backend.name)
        figures.texts += len(texts)
        figures.batches += 1
        figures.total_ms += elapsed_ms
        figures.batch_ms.append(elapsed_ms)
        if self.observer is not None:
            self.observer.inference(backend.name, len(texts), elapsed_ms / 1000)
        for job, result in zip(batch, verdicts, strict=True):
            self._cache[(backend.name, job.key)] = result
            self._settle(job, result)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _settle(self, job: _Job, outcome: ArticleSentiment | BaseException) -> None:
        self._pending.pop(job.key, None)
        if job.future.done():
            return
        if isinstance(outcome, BaseException):
            job.future.set_exception(outcome)
        else:
            job.future.set_result(outcome)
