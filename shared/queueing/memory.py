"""An in-process `EventQueue` for benchmarks and tests (`QUEUE_BACKEND=memory`).

It accepts every message at once and keeps it in a list, so a benchmark of an entry point measures the
entry point and not a broker. Nothing is delivered to a worker: the caller reads `.messages`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from shared.queueing.messages import QueueMessage, send_traced


class InMemoryQueue:
    """Thread-safe lists of what was sent and what was dead-lettered, in arrival order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[QueueMessage] = []
        self._dead_letters: list[tuple[QueueMessage, str, str]] = []

    @property
    def messages(self) -> list[QueueMessage]:
        """A snapshot copy, so a reader never sees the list change under it."""
        with self._lock:
            return list(self._messages)

    @property
    def dead_letters(self) -> list[tuple[QueueMessage, str, str]]:
        """(message, reason, description) for each message parked as unprocessable."""
        with self._lock:
            return list(self._dead_letters)

    def send(self, message: QueueMessage) -> None:
        send_traced(message, "memory", self._append)

    def send_many(self, messages: Sequence[QueueMessage]) -> None:
        for message in messages:
            self.send(message)

    def _append(self, message: QueueMessage) -> None:
        with self._lock:
            self._messages.append(message)

    def dead_letter(self, message: QueueMessage, reason: str, description: str) -> None:
        with self._lock:
            self._dead_letters.append((message, reason, description))

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            self._dead_letters.clear()
