"""The process's logging: one handler on stderr that every logger goes through (ours, uvicorn's, the libraries'),
human-readable by default or one JSON object per line (``LOG_FORMAT=json``) for log shippers.

A JSON line has ``time`` (ISO-8601 UTC), ``level``, ``logger``, ``message``, ``exception`` (its traceback, when
there is one) and ``service`` / ``provider`` where known: from the record's ``extra`` or from the context
(``context``: what the running job is collecting, say); uvicorn's access lines also have ``client``,
``method``, ``path``, ``http_version`` and ``status``. Every line, in either format, is passed through the
:class:`config.Redactor` last, so no secret in use can reach a log line even if a message or a traceback quotes
one.

JSON through python-json-logger (its orjson formatter): a well-kept formatter that already merges ``extra``
fields and renders tracebacks, rather than one of our own.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pythonjsonlogger.orjson import OrjsonFormatter

from config import Redactor

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Record attributes some libraries add that say nothing a shipper needs (uvicorn's coloured copy of a message).
DROPPED = ("color_message",)

Context = Callable[[], Mapping[str, str | None]]


class TextFormatter(logging.Formatter):
    """The human-readable line, scrubbed of secrets."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__(TEXT_FORMAT)
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


class JsonFormatter(OrjsonFormatter):
    """One JSON object per record, scrubbed of secrets."""

    def __init__(self, redact: Redactor, context: Context | None = None) -> None:
        super().__init__("%(levelname)s %(name)s %(message)s",
                         rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"})
        self.redact = redact
        self.context = context

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        log_data["time"] = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
        super().add_fields(log_data, record, message_dict)
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            # uvicorn's access line, also as fields: client, method, path (with its query), HTTP version, status
            log_data.update(zip(("client", "method", "path", "http_version", "status"), record.args, strict=True))
        for key, value in (self.context() if self.context else {}).items():
            if value is not None:
                log_data.setdefault(key, value)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        for key in DROPPED:
            log_data.pop(key, None)
        return {key: self.redact(value) if isinstance(value, str) else value for key, value in log_data.items()}

    def jsonify_log_record(self, log_data: dict[str, Any]) -> str:
        # Last: a secret nested in an ``extra`` value is masked too.
        return self.redact(super().jsonify_log_record(log_data))


def configure(level: str, fmt: Literal["text", "json"], redact: Redactor, context: Context | None = None) -> None:
    """Route every logger to one stderr handler in ``fmt``; run uvicorn with ``log_config=None`` so it adds none
    of its own (its loggers then reach this handler)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(redact, context) if fmt == "json" else TextFormatter(redact))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.captureWarnings(True)  # Python warnings as log records, so in the same format
    # httpx logs every request URL at INFO; some carry API keys in their query.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # One line per job run at INFO, and a warning each time a slow run makes the next one coalesce (the scheduler
    # stream shows both): only its errors are worth a log line.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
