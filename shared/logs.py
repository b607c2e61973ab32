"""Structured logging that carries the marketplace's correlation ids and never a secret.

Every log record is one JSON object. Ids that identify the work at hand (correlation id, request id, SaaS
subscription id, operation id, message id) live in a context variable set with `log_context(...)`, so every
line written while handling one request or message carries them without passing them around.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("log_context", default={})  # noqa: B039

# Values that look like bearer tokens, JWTs, storage keys or marketplace purchase tokens are replaced
# before a record is written: a log is read by more people than a key vault. URLs are covered too: the
# landing's `token=`, a CSP setup link's `code=` (and the sign-in callback's authorization code), also
# URL-encoded inside another parameter (`next=%2F...%3Fcode%3D...`), and a setup code in the path of links
# made before it moved to the query.
_NOT_A_NAME = r"(?<![A-Za-z0-9_])"  # `code=` but not `status_code=`
_SECRET_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-_\.=+/]+"),
    re.compile(r"eyJ[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]*"),
    re.compile(r"(?i)(AccountKey=|SharedAccessKey=|client_secret=|sig=|token=)[^;&\s\"']+"),
    re.compile(rf"(?i)({_NOT_A_NAME}code=)[^;&\s\"']+"),
    re.compile(rf"(?i)((?:token|%3Fcode|%26code|{_NOT_A_NAME}code)%3D)[^;&\s\"']+"),
    re.compile(r"(?i)(/portal/setup/|%2Fportal%2Fsetup%2F)[^/?#;&\s\"']+"),
]
_SECRET_KEYS = {
    "authorization",
    "token",
    "client_secret",
    "password",
    "secret",
    "x-ms-marketplace-token",
    "code",
}


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


class ContextFilter(logging.Filter):
    """For handlers that are not ours (the Functions host's): redacts the message and appends the ids.

    The host ships `record.getMessage()` to Application Insights, so the ids go into the text, where a query
    can still find them (`traces | where message has "<correlation id>"`).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = redact(record.getMessage())
        ids = " ".join(f"{key}={value}" for key, value in _context.get().items())
        record.msg, record.args = (f"{message} [{ids}]" if ids else message), None
        return True


def configure(level: str = "INFO") -> None:
    """Sets up logging once; idempotent so every entry point may call it.

    Under the Azure Functions host (FUNCTIONS_WORKER_RUNTIME set, the host's handler installed) the host's
    handler is kept and given the ContextFilter; everywhere else (dev host, tests, benchmarks) records are
    written as JSON lines.
    """
    root = logging.getLogger()
    if any(isinstance(f, ContextFilter) for h in root.handlers for f in h.filters) or any(
        isinstance(h.formatter, JsonFormatter) for h in root.handlers
    ):
        return
    if os.environ.get("FUNCTIONS_WORKER_RUNTIME") and root.handlers:
        for existing in root.handlers:
            existing.addFilter(ContextFilter())
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level)
    # The Azure SDKs log every HTTP request at INFO, headers included; keep them to warnings.
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)
