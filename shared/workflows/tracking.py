"""Following an operation to its end: the publisher's own changes (R25) and re-checks after a decision.

A `track` message reads the operation; while it is still running it schedules the next look
(`shared.domain.tracking_schedule`: seconds apart at first, then up to an hour, for two days), and once it is
final it mirrors the subscription, so the portal shows the outcome even if
the matching webhook never arrives. A seat cut's hold on the seats (`SeatBook.hold_limit`, placed by the
portal or by the worker's decision) is released once the mirror has the quantity Microsoft settled on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from shared.domain.inbox import ANSWERED, InboxState
from shared.domain.tracking_schedule import next_look
from shared.domain.transitions import Cause
from shared.logs import get_logger
from shared.queueing.messages import track_message
from shared.workflows.decision_audit import audit_decision
from shared.workflows.seat_holds import release_seat_hold
from shared.workflows.sync import SyncPorts, sync_from_microsoft, utcnow

if TYPE_CHECKING:
    from shared.workflows.ports import AuditLog, EventPublisher, Inbox

log = get_logger(__name__)


@dataclass(frozen=True)
class TrackingPorts:
    sync: SyncPorts
    inbox: Inbox
    events: EventPublisher
    audit: AuditLog  # for the decision of a change answered while the worker was behind


def track_operation(
    subscription_id: str, operation_id: str, attempt: int, correlation_id: str, *, ports: TrackingPorts
) -> None:
    operation = ports.sync.marketplace.get_operation(
        subscription_id, operation_id, correlation_id=correlation_id
    )
    if not operation.status.is_terminal:
        wait = next_look(attempt)
        if wait is None:
            log.warning(
                "operation still running after two days of looks; left to an operator",
                extra={"attempt": attempt},
            )
            return
        ports.events.send(
            track_message(
                subscription_id,
                operation_id,
                correlation_id,
                attempt=attempt + 1,
                scheduled_at=utcnow() + wait,
            )
        )
        return
    cause = Cause(
        operation.id, operation.action_raw, operation.request_source, operation.timestamp or utcnow()
    )
    sync_from_microsoft(ports.sync, subscription_id, cause, correlation_id)
    record = ports.inbox.get(subscription_id, operation_id)
    release_seat_hold(ports.sync.seats, operation, record, correlation_id)
    if record is not None and record.owes_decision_audit:
        # Answered while the worker was behind: the decision's audit row was left to this re-check.
        audit_decision(ports.audit, record, operation, correlation_id)
    # A change answered while the worker was behind stops at `acknowledged` or `refused`: this mirror was
    # its last step, so the record is done now.
    unfinished = record is not None and (
        record.state == InboxState.TRACKING or record.state in ANSWERED or record.left_to_recheck
    )
    if record is not None and (unfinished or record.outcome != operation.status.value):
        # Whoever handled the webhook may have finished the record before Microsoft finished the operation:
        # the outcome shown to the buyer is Microsoft's, recorded here whatever the record's state.
        state = InboxState.DONE if unfinished else record.state
        closed = replace(record, state=state, outcome=operation.status.value, left_to_recheck=False)
        ports.inbox.save(replace(closed, updated_at=utcnow()))
    log.info("operation final", extra={"operation_status": operation.status.value})
