"""Operations Microsoft announces through the webhook: verify, decide, answer, mirror (R33-R38, R42).

The body of a webhook is a claim, not a fact. Nothing changes until GetOperation confirms the operation
exists with the announced action and target (R38); the new state itself always comes from GetSubscription.

For ChangePlan and ChangeQuantity the publisher has about ten seconds to refuse (R34, R36). The decision is
written to the inbox before it is sent, so a redelivered message sends the same answer, never a new one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from shared.domain.audit import AuditAction, AuditEntry, AuditSource
from shared.domain.inbox import ANSWERED, InboxRecord, InboxState
from shared.domain.policy import ChangeRequest, Decision, PublisherPolicy, decide
from shared.domain.status import Action, OperationStatus, parse_action
from shared.domain.subscription import Operation, Subscription
from shared.domain.transitions import Cause
from shared.faultpoints import faultpoint
from shared.fulfillment.errors import FulfillmentConflictError, FulfillmentNotFoundError
from shared.fulfillment.models import announced_action
from shared.logs import get_logger
from shared.queueing.messages import track_message
from shared.workflows.errors import PermanentFailureError
from shared.workflows.sync import SyncPorts, sync_from_microsoft, utcnow

if TYPE_CHECKING:
    from shared.workflows.ports import AuditLog, EventPublisher, Inbox

log = get_logger(__name__)
CHANGE_ACTIONS = frozenset({Action.CHANGE_PLAN, Action.CHANGE_QUANTITY})
# After answering a change, look again once Microsoft's window has surely closed (R52: a refusal may be
# ignored; an acceptance may take a moment to show in GetSubscription).
RECHECK_AFTER = timedelta(seconds=15)


@dataclass(frozen=True)
class OperationPorts:
    """Mirroring (Microsoft and the seats a quantity change is checked against come with it), the inbox of
    announced operations, the audit trail for decisions, the queue for re-checks, the publisher's policy."""

    sync: SyncPorts
    inbox: Inbox
    audit: AuditLog
    events: EventPublisher
    policy: PublisherPolicy


def handle_announced_operation(
    payload: dict[str, Any], correlation_id: str, *, ports: OperationPorts
) -> None:
    subscription_id = str(payload.get("subscriptionId", "")).strip()
    operation_id = str(payload.get("id", "")).strip()
    record = ports.inbox.get(subscription_id, operation_id)
    if record is not None and record.state == InboxState.DONE:
        log.info("operation already handled; duplicate delivery ignored")
        return
    operation = _verified_operation(ports, subscription_id, operation_id, payload, correlation_id)
    record = record or _receive(ports, operation, correlation_id)
    if operation.action in CHANGE_ACTIONS:
        record = _answer_change(ports, record, operation, correlation_id)
    elif operation.action is Action.UNKNOWN:
        log.warning("unknown action: mirroring the subscription only", extra={"action": operation.action_raw})
    cause = Cause(
        operation.id, operation.action_raw, operation.request_source, operation.timestamp or utcnow()
    )
    sync_from_microsoft(ports.sync, subscription_id, cause, correlation_id)
    # A change we just answered is still InProgress here; the scheduled re-check records its outcome.
    outcome = operation.status.value if operation.status.is_terminal else record.outcome
    ports.inbox.save(replace(record, state=InboxState.DONE, outcome=outcome, updated_at=utcnow()))


def _verified_operation(
    ports: OperationPorts,
    subscription_id: str,
    operation_id: str,
    payload: dict[str, Any],
    correlation_id: str,
) -> Operation:
    try:
        operation = ports.sync.marketplace.get_operation(
            subscription_id, operation_id, correlation_id=correlation_id
        )
    except FulfillmentNotFoundError:
        raise PermanentFailureError(
            "UnknownOperation", "GetOperation does not know this operation: the webhook body is not trusted"
        ) from None
    announced = parse_action(announced_action(payload))
    if announced is not Action.UNKNOWN and announced is not operation.action:
        raise PermanentFailureError(
            "OperationMismatch", f"webhook says {announced.value}, Microsoft says {operation.action.value}"
        )
    if operation.action in CHANGE_ACTIONS and not _same_target(operation, payload):
        raise PermanentFailureError("OperationMismatch", "webhook target differs from Microsoft's operation")
    return operation


def _same_target(operation: Operation, payload: dict[str, Any]) -> bool:
    announced_plan = str(payload.get("planId") or "").strip()
    if operation.action is Action.CHANGE_PLAN and announced_plan and announced_plan != operation.plan_id:
        return False
    announced_quantity = str(payload.get("quantity") or "").strip()
    if operation.action is Action.CHANGE_QUANTITY and announced_quantity:
        return announced_quantity == str(operation.quantity)
    return True


def _receive(ports: OperationPorts, operation: Operation, correlation_id: str) -> InboxRecord:
    now = utcnow()
    record = InboxRecord(
        subscription_id=operation.subscription_id,
        operation_id=operation.id,
        action=operation.action_raw or operation.action.value,
        state=InboxState.RECEIVED,
        source=operation.request_source,
        plan_id=operation.plan_id,
        quantity=operation.quantity,
        correlation_id=correlation_id,
        created_at=now,
        updated_at=now,
    )
    # put_new hands back the stored record with its ETag, so the first delivery reads nothing back.
    stored = ports.inbox.put_new(record)
    if stored is not None:
        return stored
    # Another delivery recorded it between our lookup and our insert: continue from its record.
    return ports.inbox.get(operation.subscription_id, operation.id) or record


def _answer_change(
    ports: OperationPorts, record: InboxRecord, operation: Operation, correlation_id: str
) -> InboxRecord:
    if record.state in ANSWERED:
        return record
    if operation.status.is_terminal:
        # Microsoft decided already (auto-accepted after the window, R36, or answered before a crash).
        log.info("change already final at Microsoft", extra={"operation_status": operation.status.value})
        return ports.inbox.save(replace(record, decision=operation.status.value, updated_at=utcnow()))
    if not record.decision:
        record = _record_decision(ports, record, operation, correlation_id)
    faultpoint("worker.after_state_write")
    accept = record.decision == "accept"
    try:
        ports.sync.marketplace.update_operation(
            operation.subscription_id, operation.id, accept, correlation_id=correlation_id
        )
    except FulfillmentConflictError:
        log.info("operation finished before our answer reached Microsoft (409); state is re-read")
    state = InboxState.ACKNOWLEDGED if accept else InboxState.REFUSED
    record = ports.inbox.save(replace(record, state=state, updated_at=utcnow()))
    _schedule_recheck(ports, operation, correlation_id)
    return record


def _record_decision(
    ports: OperationPorts, record: InboxRecord, operation: Operation, correlation_id: str
) -> InboxRecord:
    decision = _decide(ports, record, operation)
    verdict = "accept" if decision.accept else "refuse"
    log.info("change decided", extra={"accept": decision.accept, "reason": decision.reason})
    # The audit row goes first: a crash between the two writes leaves a decision recorded twice at worst
    # (decided again on redelivery), never a decision that is nowhere in the audit trail.
    ports.audit.append(
        AuditEntry(
            subscription_id=operation.subscription_id,
            at=utcnow(),
            action=AuditAction.decision_on(operation.action),
            source=AuditSource.PUBLISHER_POLICY,
            operation_id=operation.id,
            changes={"decision": (None, verdict), "reason": (None, decision.reason)},
            correlation_id=correlation_id,
        )
    )
    record = ports.inbox.save(replace(record, decision=verdict, reason=decision.reason, updated_at=utcnow()))
    return record


def _decide(ports: OperationPorts, record: InboxRecord, operation: Operation) -> Decision:
    if record.initiated_by_publisher or operation.request_source.lower() == "partner":
        # Our own portal asked for this change after the buyer confirmed it (R42, R49).
        return Decision(True, "requested by the publisher's portal")
    stored = ports.sync.subscriptions.get(operation.subscription_id)
    current = stored or Subscription(id=operation.subscription_id)
    request = ChangeRequest(
        action=operation.action,
        current_plan=current.plan_id,
        target_plan=operation.plan_id,
        current_quantity=current.quantity,
        target_quantity=operation.quantity,
        seats_assigned=ports.sync.seats.count(operation.subscription_id),
    )
    return decide(ports.policy, request)


def _schedule_recheck(ports: OperationPorts, operation: Operation, correlation_id: str) -> None:
    message = track_message(
        operation.subscription_id, operation.id, correlation_id, scheduled_at=utcnow() + RECHECK_AFTER
    )
    ports.events.send(message)


def pending_status(operation: Operation) -> bool:
    return operation.status in {OperationStatus.IN_PROGRESS, OperationStatus.NOT_STARTED}
