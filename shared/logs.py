"""Structured logging that carries the marketplace's correlation ids and never a secret.

Every log record is one JSON object. Ids that identify the work at hand (correlation id, request id, SaaS
subscription id, operation id, message id) live in a context variable set with `log_context(...)`, so every
line written while handling one request or message carries them without passing them around.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("log_context", default={})  # noqa: B039

# Values that look like bearer tokens, JWTs, storage keys or marketplace purchase tokens are replaced
# before a record is written: a log is read by more people than a key vault.
_SECRET_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-_\.=+/]+"),
    re.compile(r"eyJ[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]*"),
    re.compile(r"(?i)(AccountKey=|SharedAccessKey=|client_secret=|sig=|token=)[^;&\s\"']+"),
]
_SECRET_KEYS = {"authorization", "token", "client_secret", "password", "secret", "x-ms-marketplace-token"}


def redact(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[redacted]", text)
    return text


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    return {
        key: "[redacted]" if key.lower() in _SECRET_KEYS else (redact(v) if isinstance(v, str) else v)
        for key, v in fields.items()
    }


@contextmanager
def log_context(**ids: str | None) -> Iterator[None]:
    """Adds ids (correlation_id, request_id, subscription_id, operation_id, ...) to every record inside."""
    merged = {**_context.get(), **{k: v for k, v in ids.items() if v}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, str]:
    return dict(_context.get())


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, context ids and `extra` fields."""

    _STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            **_context.get(),
        }
        extra = {k: v for k, v in vars(record).items() if k not in self._STANDARD and not k.startswith("_")}
        entry.update(_clean(extra))
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class _ContextFilter(logging.Filter):
    """Copies the context ids onto records, for handlers that do not use JsonFormatter (Functions host)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        record.msg = redact(str(record.msg))
        return True


def configure(level: str = "INFO") -> None:
    """Installs JSON output on the root logger once; idempotent so every entry point may call it."""
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(_ContextFilter())
    root.addHandler(handler)
    root.setLevel(level)
    # The Azure SDKs log every HTTP request at INFO, headers included; keep them to warnings.
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)
