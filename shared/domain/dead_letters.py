"""A message no worker could finish, as an operator sees it, and which of them an operator's command means.

Two places hold such messages: the parking queue, where the worker puts what no retry can fix (a forged
operation, a malformed body) with its own reason, and the broker's dead-letter sub-queue of the events
queue, where Service Bus (or the dev host's stand-in) moves a message whose every delivery failed. Both are
listed, replayed and discarded the same way; `DeadLetterSource` says which one an entry came from.

A replay is a new message with an id of its own (duplicate detection would drop the original id within
its window) that names the original in `ORIGINAL_MESSAGE_ID`; the worker keys its work on the operation or
subscription in the body, never on the message id, so a replayed message is handled exactly once. The id is
derived from the entry (`replay_message_id`), not random: a replay retried after its copy went out but the
entry stayed (Service Bus: send succeeded, complete failed) sends the same id again, and duplicate detection
drops that second copy within its window.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.domain.subscription import SWEEP_SESSION

# Service Bus refuses a longer MessageId.
MAX_MESSAGE_ID = 128

# Application properties a replay and a parked copy carry (names as Service Bus shows them).
ORIGINAL_MESSAGE_ID = "originalMessageId"
REPLAYED_BY = "replayedBy"
REPLAY_COUNT = "replayCount"
# What the worker saw of the delivery it parked (a parked copy is a new message: the broker's own first
# enqueue time and delivery count belong to the original).
FIRST_ENQUEUED_AT = "firstEnqueuedTimeUtc"
DELIVERY_COUNT = "deliveryCount"


class DeadLetterSource(StrEnum):
    """Where an entry waits: the worker's parking queue, or the broker's dead-letter sub-queue."""

    PARKING = "parking"
    DEAD_LETTER = "deadletter"


@dataclass(frozen=True)
class DeadLetterEntry:
    """One waiting message: enough to judge it, and to replay it as it was sent.

    `sequence_number` is the broker's number within its source, so `key` (source:number) names one entry
    even when the same message id waits twice. `first_enqueued_at` is when the original entered the events
    queue; `dead_lettered_at` is when it left it (parked, or moved by the broker) where that is known.
    """

    source: DeadLetterSource
    sequence_number: int
    message_id: str
    session_id: str
    reason: str
    description: str
    body: Mapping[str, Any]
    content_type: str = "application/json"
    correlation_id: str = ""
    application_properties: Mapping[str, str] = field(default_factory=dict)
    delivery_count: int = 0
    first_enqueued_at: datetime | None = None
    dead_lettered_at: datetime | None = None

    @property
    def key(self) -> str:
        return f"{self.source.value}:{self.sequence_number}"

    @property
    def original_message_id(self) -> str:
        """The id the message first had: a replay that failed again still answers to it."""
        return self.application_properties.get(ORIGINAL_MESSAGE_ID) or self.message_id

    @property
    def subscription_id(self) -> str:
        """The session id (the subscription id, but for a sweep's), else what the body names."""
        if self.session_id == SWEEP_SESSION:
            return ""  # a sweep is about every subscription, not one
        if self.session_id:
            return self.session_id
        payload = self.body.get("payload")
        named = self.body.get("subscriptionId") or (
            payload.get("subscriptionId") if isinstance(payload, Mapping) else ""
        )
        return str(named or "")

    @property
    def operation_id(self) -> str:
        """The marketplace operation the message is about, when it is about one."""
        payload = self.body.get("payload")
        named = self.body.get("operationId") or (payload.get("id") if isinstance(payload, Mapping) else "")
        return str(named or "")

    @property
    def kind(self) -> str:
        return str(self.body.get("kind") or "")

    @property
    def replay_count(self) -> int:
        try:
            return int(self.application_properties.get(REPLAY_COUNT, "0"))
        except ValueError:
            return 0


@dataclass(frozen=True)
class DeadLetterSelection:
    """Which entries a command means: named ones (a key or a message id), or all that pass the filters.

    An empty selection means nothing, so `replay` with no ids and no `--all` is refused rather than
    replaying everything by accident.
    """

    ids: frozenset[str] = frozenset()
    everything: bool = False
    reason: str = ""
    source: DeadLetterSource | None = None
    subscription_id: str = ""

    @property
    def is_empty(self) -> bool:
        return not self.ids and not self.everything and not self.reason and not self.subscription_id

    def matches(self, entry: DeadLetterEntry) -> bool:
        if self.source is not None and entry.source is not self.source:
            return False
        if self.reason and entry.reason.lower() != self.reason.lower():
            return False
        if self.subscription_id and entry.subscription_id.lower() != self.subscription_id.lower():
            return False
        if self.ids:
            return bool({entry.key, entry.message_id, entry.original_message_id} & self.ids)
        return not self.is_empty

    def pick(self, entries: Iterable[DeadLetterEntry]) -> list[DeadLetterEntry]:
        return [entry for entry in entries if self.matches(entry)]


def parked_history(properties: Mapping[str, str]) -> tuple[int, datetime | None]:
    """Deliveries and first enqueue time of the original, as the worker recorded them when it parked it.

    A parked copy is a new message: its own delivery count and enqueue time say nothing of the original.
    A value that cannot be read is unknown (0, None)."""
    try:
        deliveries = int(properties.get(DELIVERY_COUNT) or 0)
    except ValueError:
        deliveries = 0
    try:
        first = properties.get(FIRST_ENQUEUED_AT)
        first_enqueued = datetime.fromisoformat(first) if first else None
    except ValueError:
        first_enqueued = None
    return deliveries, first_enqueued


def replay_properties(entry: DeadLetterEntry, operator: str) -> dict[str, str]:
    """The application properties of `entry`'s replay: the original's, minus what the parking added, plus
    the original id, who replayed it and how often it has been replayed."""
    parked_only = {"deadLetterReason", "deadLetterDescription", FIRST_ENQUEUED_AT, DELIVERY_COUNT}
    kept = {name: value for name, value in entry.application_properties.items() if name not in parked_only}
    return {
        **kept,
        ORIGINAL_MESSAGE_ID: entry.original_message_id,
        REPLAYED_BY: operator,
        REPLAY_COUNT: str(entry.replay_count + 1),
    }


def replay_message_id(entry: DeadLetterEntry) -> str:
    """The id of `entry`'s replay, the same every time that entry is replayed: the original id, the source
    and the sequence number (each source numbers its own messages). An original id too long to fit is
    replaced by its digest, so the id stays within Service Bus's limit and still names one entry."""
    suffix = f"-{entry.source.value}-{entry.sequence_number}"
    original = entry.original_message_id
    if len("replay-") + len(original) + len(suffix) > MAX_MESSAGE_ID:
        original = hashlib.sha256(original.encode("utf-8")).hexdigest()
    return f"replay-{original}{suffix}"
