"""Structured logging that carries the marketplace's correlation ids and never a secret.

Every log record is one JSON object. Ids that identify the work at hand (correlation id, request id, SaaS
subscription id, operation id, message id) live in a context variable set with `log_context(...)`, so every
line written while handling one request or message carries them without passing them around.
"""

from __future__ import annotations

import bisect
import contextvars
import json
import logging
import os
import re
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("log_context", default={})  # noqa: B039

# Values that look like bearer tokens, JWTs, storage keys or marketplace purchase tokens are replaced
# before a record is written: a log is read by more people than a key vault. URLs are covered too: the
# landing's `token=`, a CSP setup link's `code=` (and the sign-in callback's authorization code, and a
# function key), and a setup code in the path of links made before it moved to the query.
#
# A URL can hide a parameter behind percent-encoding: a name spelled `tok%65n=`, a sign-in link's
# `next=%2Fapi%2Flanding%253Ftoken%253D...` (encoded twice), a path `/api/portal/%2Fsetup/<code>`. Rather
# than one pattern per spelling, the text is decoded round by round (keeping, for every decoded character,
# where it came from), the same case-insensitive patterns are matched on every round, and each secret found
# is replaced where it stands in the original text. Text still encoded after the last round is too deep to
# read: the whole URL-like run around it is replaced.
_DECODE_ROUNDS = 4
_VALUE = r"[^;&#\s\"'<>]+"
_SEP = r"(?:\.?/)*"  # `/`, `//`, `/./`: one path separator however it is spelled
_SECRETS = re.compile(
    "|".join(
        [
            r"(?i:bearer\s+)([A-Za-z0-9\-_.=+/~]+)",
            r"(eyJ[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]*)",
            # `code=` but not `status_code=`; `token=` also as `access_token=`, `x-ms-marketplace-token=`.
            rf"(?i:(?:accountkey|sharedaccesskey|secret|password|sig|token|(?<![a-z0-9_])code)=)({_VALUE})",
            rf"(?i:(?<![a-z0-9_])portal/{_SEP}setup/{_SEP})([^/?#\s\"'<>]+)",
        ]
    )
)
_ENCODED = re.compile(r"%[0-9A-Fa-f]{2}")
_RUN = re.compile(r"[^\s\"'<>]+")
_MARK = "[redacted]"


def _decode_once(text: str, starts: list[int], ends: list[int]) -> tuple[str, list[int], list[int]]:
    """Percent-decodes `text` once; character i of the result came from original[starts[i]:ends[i]]."""
    out: list[str] = []
    new_starts: list[int] = []
    new_ends: list[int] = []
    last = 0
    for match in _ENCODED.finditer(text):
        at = match.start()
        out.append(text[last:at])
        new_starts += starts[last:at]
        new_ends += ends[last:at]
        out.append(chr(int(text[at + 1 : at + 3], 16)))
        new_starts.append(starts[at])
        new_ends.append(ends[at + 2])
        last = at + 3
    out.append(text[last:])
    new_starts += starts[last:]
    new_ends += ends[last:]
    return "".join(out), new_starts, new_ends


def _secret_spans(text: str) -> list[tuple[int, int]]:
    """Where the secrets are in `text`, found in it and in each of its percent-decodings."""
    spans = [match.span(match.lastindex or 0) for match in _SECRETS.finditer(text)]
    if "%" not in text or not _ENCODED.search(text):
        return spans
    decoded, starts, ends = text, list(range(len(text))), list(range(1, len(text) + 1))
    for _ in range(_DECODE_ROUNDS):
        decoded, starts, ends = _decode_once(decoded, starts, ends)
        for match in _SECRETS.finditer(decoded):
            first, stop = match.span(match.lastindex or 0)
            spans.append((starts[first], ends[stop - 1]))
        if not _ENCODED.search(decoded):
            return spans
    deep = sorted(starts[match.start()] for match in _ENCODED.finditer(decoded))
    for run in _RUN.finditer(text):
        at = bisect.bisect_left(deep, run.start())
        if at < len(deep) and deep[at] < run.end():
            spans.append(run.span())
    return spans


def _may_hold_a_secret(text: str) -> bool:
    """False when no pattern can match in the text or any of its decodings: every one needs one of these.

    Substring tests run at C speed; most log lines (no URL, no `=`) are let through without a regex scan.
    """
    return "=" in text or "/" in text or "%" in text or "eyJ" in text or "earer" in text.lower()


def redact(text: str) -> str:
    if not _may_hold_a_secret(text):
        return text
    spans = _secret_spans(text)
    if not spans:
        return text
    merged: list[list[int]] = []
    for first, stop in sorted(spans):
        if merged and first <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([first, stop])
    out: list[str] = []
    last = 0
    for first, stop in merged:
        out += [text[last:first], _MARK]
        last = stop
    out.append(text[last:])
    return "".join(out)


_SECRET_KEYS = {
    "authorization",
    "token",
    "client_secret",
    "password",
    "secret",
    "x-ms-marketplace-token",
    "code",
}


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: _clean_value(key, value) for key, value in fields.items()}


def _clean_value(key: str, value: Any) -> Any:
    if key.lower() in _SECRET_KEYS:
        return _MARK
    return redact(value) if isinstance(value, str) else value


def scrub(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` as a log line may carry them: secret-named keys and secrets inside text redacted. For sinks
    that do not go through the formatters below (OpenTelemetry log records, `shared.telemetry`)."""
    return _clean(fields)


def context_ids() -> dict[str, str]:
    """The ids `log_context` set for the work at hand (a copy)."""
    return dict(_context.get())


def log_context(**ids: str | None) -> AbstractContextManager[None]:
    """Adds ids (correlation_id, request_id, subscription_id, operation_id, ...) to every record inside."""
    return _LogContext(ids)


class _LogContext(AbstractContextManager[None]):
    """A class rather than a `@contextmanager` generator: entered up to three times per webhook, and a
    generator and its wrapper cost several times the two calls here."""

    __slots__ = ("_ids", "_token")

    def __init__(self, ids: dict[str, str | None]) -> None:
        self._ids = ids

    def __enter__(self) -> None:
        self._token = _context.set({**_context.get(), **{k: v for k, v in self._ids.items() if v}})

    def __exit__(self, *exc_info: object) -> None:
        _context.reset(self._token)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, context ids and `extra` fields.

    INFO is the production level, so this runs for every request: the time's seconds are formatted once
    per second, the encoder is built once (`json.dumps(..., default=str)` builds one per call), and the
    record's own attributes are skipped by one frozenset lookup each.
    """

    _STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
    _ENCODER = json.JSONEncoder(default=str)

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._second_text = ""

    def _time(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            # A race between threads can only format the same second twice; the pair is set together.
            text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second, self._second_text = second, text
        else:
            text = self._second_text
        return f"{text}.{int((created - second) * 1000):03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            **_context.get(),
        }
        fields = record.__dict__
        # A set difference (in C) finds the `extra` names; the attributes are walked only to keep their order.
        extras = fields.keys() - self._STANDARD
        in_order = [key for key in fields if key in extras] if len(extras) > 1 else extras
        for key in in_order:
            if not key.startswith("_"):
                entry[key] = _clean_value(key, fields[key])
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return self._ENCODER.encode(entry)


class ContextFilter(logging.Filter):
    """For handlers that are not ours (the Functions host's): redacts the message and appends the ids.

    The host ships `record.getMessage()` to Application Insights, so the ids go into the text, where a query
    can still find them (`traces | where message has "<correlation id>"`).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = redact(record.getMessage())
        fields = _context.get()
        # A line's stable `event` name (what alert rules match) rides in the text too, with that line's
        # `reason` (what they leave out, e.g. an activation's RetryLaterError): the host drops extras.
        event = getattr(record, "event", None)
        if isinstance(event, str) and event:
            fields = {**fields, "event": event}
            reason = getattr(record, "reason", None)
            if isinstance(reason, str) and reason:
                fields["reason"] = redact(reason)
        ids = " ".join(f"{key}={value}" for key, value in fields.items())
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
