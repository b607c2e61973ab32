"""Named points where a test or a chaos drill can make the app fail on purpose.

`FAULT_POINTS="worker.after_state_write:1,..."` makes the named point raise `InjectedFaultError` that
many times in this process (no count: every time). Unset in production, a fault point costs one
environment lookup. It exists because "crash between writing our state and answering Microsoft" must be
shown to converge, and a crash at an exact line cannot be produced from outside the process.
"""

from __future__ import annotations

import os
import threading

from shared.logs import get_logger

log = get_logger(__name__)
_lock = threading.Lock()
_remaining: dict[str, int | None] | None = None
_source: str | None = None


class InjectedFaultError(RuntimeError):
    """Raised at an armed fault point; transient by design, so the message is delivered again."""


def _parse(spec: str) -> dict[str, int | None]:
    points: dict[str, int | None] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, _, count = item.partition(":")
        points[name.strip()] = int(count) if count.strip() else None
    return points


def faultpoint(name: str) -> None:
    global _remaining, _source  # process-wide, re-read when the setting changes
    spec = os.environ.get("FAULT_POINTS", "")
    if not spec:
        return
    with _lock:
        if _remaining is None or spec != _source:
            _remaining, _source = _parse(spec), spec
        if name not in _remaining:
            return
        left = _remaining[name]
        if left is not None:
            if left <= 0:
                return
            _remaining[name] = left - 1
    log.warning("fault injected", extra={"fault_point": name})
    raise InjectedFaultError(f"fault injected at {name}")
