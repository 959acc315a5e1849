"""Logging for operators: every line has the time (UTC, ISO 8601), the level, the logger and the
correlation id of the request it belongs to (the id a fault quotes to the caller), as text or as
one JSON object per line (``log_format = "json"``) for a log shipper.

``serve`` and the WSGI entry point (gunicorn) call :func:`configure_logging` once per process.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_correlation_id: ContextVar[str] = ContextVar("dsmf_correlation_id", default="-")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s"


@contextmanager
def correlation(correlation_id: str) -> Iterator[None]:
    """Tags every log record written in this block (this thread) with ``correlation_id``."""
    token = _correlation_id.set(correlation_id)
    try:
        yield
    finally:
        _correlation_id.reset(token)


class CorrelationFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "correlation_id"):
            record.correlation_id = _correlation_id.get()
        return True


class _UtcFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"


class JsonFormatter(_UtcFormatter):
    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "correlation_id": getattr(record, "correlation_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False)


def configure_logging(log_format: str = "text", level: str = "INFO") -> None:
    """Replaces the root logger's handlers with one on stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(CorrelationFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(_UtcFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # spyne logs every exception our operations raise at CRITICAL, with a traceback; we answer
    # (and log) them as faults ourselves, so nothing of spyne's gets through.
    logging.getLogger("spyne").setLevel(logging.CRITICAL + 1)
