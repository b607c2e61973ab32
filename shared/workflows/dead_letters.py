"""An operator lists, replays and discards the messages no worker could finish (the CLI and the console).

Replaying sends a copy with a message id of its own to the events queue (duplicate detection would drop
the original id within its window) and only then removes the entry, so a crash in between leaves a replay
and the entry, never neither. The copy's id is derived from the entry (`replay_message_id`), so a second try
at the same entry sends the same id and duplicate detection drops it within its window; past the window,
replaying twice is still harmless because the worker keys its work on the operation or subscription, not
on the message id. Every replay and discard is written to the subscription's audit trail
with the operator's name, twice: the request (`DeadLetterReplayRequested` / `DeadLetterDiscardRequested`)
before the queue acts, and the outcome (`DeadLetterReplayed` / `DeadLetterDiscarded`) after. A request that
cannot be recorded is not carried out (FAILED), so no message leaves without a record; a request with no
outcome after it was not carried out, or was and its outcome could not be recorded (the result's error and
the log say so). A message naming no subscription is recorded under `UNASSIGNED_SUBSCRIPTION`. A discard
must say why.

Bulk actions yield one result per entry as they go, so a caller can show progress, and one entry's failure
is reported on that entry instead of stopping the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from shared.domain.audit import SWEEPS_PARTITION, AuditAction, AuditEntry, AuditSource
from shared.domain.dead_letters import (
    DeadLetterEntry,
    DeadLetterSelection,
    replay_message_id,
    replay_properties,
)
from shared.logs import get_logger
from shared.queueing.messages import MessageKind, QueueMessage
from shared.workflows.sync import utcnow

if TYPE_CHECKING:
    from shared.workflows.ports import AuditLog, DeadLetterBox

log = get_logger(__name__)
# The audit partition of a dead letter that names no subscription (no session, a body nobody could read).
# Audit rows share the subscriptions table, but nothing lists this partition as a subscription: listings
# read only RowKey `subscription`, and this partition holds audit rows only.
UNASSIGNED_SUBSCRIPTION = "_unassigned"


class NothingSelectedError(ValueError):
    """A replay or discard named no entry and no filter: acting on everything must be asked for."""


class ReasonRequiredError(ValueError):
    """A discard without a reason: the audit trail must say why a message was thrown away."""


class DeadLetterOutcome(StrEnum):
    REPLAYED = "replayed"
    DISCARDED = "discarded"
    GONE = "gone"  # settled by someone else between listing and acting
    FAILED = "failed"


@dataclass(frozen=True)
class DeadLetterPorts:
    box: DeadLetterBox
    audit: AuditLog


@dataclass(frozen=True)
class DeadLetterResult:
    entry: DeadLetterEntry
    outcome: DeadLetterOutcome
    replay_message_id: str = ""
    error: str = ""


_Action = Callable[[DeadLetterEntry], DeadLetterResult]


def list_dead_letters(
    selection: DeadLetterSelection | None = None, *, ports: DeadLetterPorts, limit: int | None = None
) -> list[DeadLetterEntry]:
    """Entries of both sources (parking first), those `selection`'s filters pass when given.

    A listing filters with whatever is set, a place alone included: `is_empty` guards acting on
    everything by accident, and a list acts on nothing."""
    entries = ports.box.list(limit=limit)
    return entries if selection is None else replace(selection, everything=True).pick(entries)


def select_dead_letters(selection: DeadLetterSelection, *, ports: DeadLetterPorts) -> list[DeadLetterEntry]:
    """What a replay or discard of `selection` would act on; refuses an empty selection."""
    if selection.is_empty:
        raise NothingSelectedError(
            "name entries (key or message id) or choose --all, --reason or --subscription"
        )
    return selection.pick(ports.box.list())


def replay_dead_letters(
    entries: Iterable[DeadLetterEntry], *, operator: str, correlation_id: str, ports: DeadLetterPorts
) -> Iterator[DeadLetterResult]:
    for entry in entries:
        yield _settle_one(entry, lambda e: _replay(e, operator, correlation_id, ports))


def discard_dead_letters(
    entries: Iterable[DeadLetterEntry],
    *,
    reason: str,
    operator: str,
    correlation_id: str,
    ports: DeadLetterPorts,
) -> Iterator[DeadLetterResult]:
    if not reason.strip():
        raise ReasonRequiredError("a discard needs a reason; it is kept in the subscription's audit trail")
    for entry in entries:
        yield _settle_one(entry, lambda e: _discard(e, reason.strip(), operator, correlation_id, ports))


def replay_message(entry: DeadLetterEntry, operator: str) -> QueueMessage:
    """The copy a replay sends: same body, session and correlation id; an id derived from the entry."""
    return QueueMessage(
        message_id=replay_message_id(entry),
        session_id=entry.session_id or entry.subscription_id,
        body=dict(entry.body),
        content_type=entry.content_type,
        correlation_id=entry.correlation_id,
        application_properties=replay_properties(entry, operator),
    )


def _settle_one(entry: DeadLetterEntry, act: _Action) -> DeadLetterResult:
    try:
        return act(entry)
    except Exception as exc:  # one entry's trouble is reported on it; the rest of a bulk action goes on
        log.warning("dead letter not settled", extra={"key": entry.key, "error": str(exc)}, exc_info=True)
        return DeadLetterResult(entry, DeadLetterOutcome.FAILED, error=f"{type(exc).__name__}: {exc}")


def _replay(
    entry: DeadLetterEntry, operator: str, correlation_id: str, ports: DeadLetterPorts
) -> DeadLetterResult:
    message = replay_message(entry, operator)
    changes = {
        "message_id": (entry.message_id, message.message_id),
        "dead_letter_reason": (entry.reason, None),
    }
    _audit(entry, AuditAction.DEAD_LETTER_REPLAY_REQUESTED, changes, operator, correlation_id, ports)
    if not ports.box.replay(entry, message):
        return DeadLetterResult(entry, DeadLetterOutcome.GONE)
    error = _audit_outcome(entry, AuditAction.DEAD_LETTER_REPLAYED, changes, operator, correlation_id, ports)
    return DeadLetterResult(
        entry, DeadLetterOutcome.REPLAYED, replay_message_id=message.message_id, error=error
    )


def _discard(
    entry: DeadLetterEntry, reason: str, operator: str, correlation_id: str, ports: DeadLetterPorts
) -> DeadLetterResult:
    changes = {
        "message_id": (entry.message_id, None),
        "dead_letter_reason": (entry.reason, None),
        "discard_reason": (None, reason),
    }
    _audit(entry, AuditAction.DEAD_LETTER_DISCARD_REQUESTED, changes, operator, correlation_id, ports)
    if not ports.box.discard(entry):
        return DeadLetterResult(entry, DeadLetterOutcome.GONE)
    error = _audit_outcome(entry, AuditAction.DEAD_LETTER_DISCARDED, changes, operator, correlation_id, ports)
    return DeadLetterResult(entry, DeadLetterOutcome.DISCARDED, error=error)


def _audit_outcome(
    entry: DeadLetterEntry,
    action: AuditAction,
    changes: Mapping[str, tuple[str | None, str | None]],
    operator: str,
    correlation_id: str,
    ports: DeadLetterPorts,
) -> str:
    """Records what the queue did; the trail holds the request already, so a failure here is reported on
    the result (the queue did act: FAILED would send the operator after an entry that is gone)."""
    try:
        _audit(entry, action, changes, operator, correlation_id, ports)
    except Exception as exc:  # the request entry stands; the outcome is in the log line and the result
        log.warning(
            "dead letter settled but its outcome not audited",
            extra={"key": entry.key, "action": action.value, "error": str(exc)},
            exc_info=True,
        )
        return f"settled, but the outcome was not audited: {type(exc).__name__}: {exc}"
    return ""


def _audit(
    entry: DeadLetterEntry,
    action: AuditAction,
    changes: Mapping[str, tuple[str | None, str | None]],
    operator: str,
    correlation_id: str,
    ports: DeadLetterPorts,
) -> None:
    # The request is written before the queue acts (so nothing leaves the queue without a record, and a
    # request that cannot be recorded is not carried out), the outcome after it. A message that names no
    # subscription (a body nobody could read) is recorded in the fixed UNASSIGNED_SUBSCRIPTION partition.
    log.info(
        "dead letter action by an operator",
        extra={
            "action": action.value,
            "key": entry.key,
            "message_id": entry.message_id,
            "operator": operator,
        },
    )
    ports.audit.append(
        AuditEntry(
            subscription_id=entry.subscription_id or _partition_without_subscription(entry),
            at=utcnow(),
            action=action,
            source=AuditSource.OPERATOR,
            operation_id=entry.operation_id,
            changes=changes,
            correlation_id=correlation_id,
            actor=operator,
        )
    )


def _partition_without_subscription(entry: DeadLetterEntry) -> str:
    """Where an entry naming no subscription is audited: a sweep's beside the sweeps (the console's overview
    lists them), anything else in UNASSIGNED_SUBSCRIPTION."""
    return SWEEPS_PARTITION if entry.kind == MessageKind.SWEEP else UNASSIGNED_SUBSCRIPTION
