"""Operations Microsoft announces through the webhook: verify, decide, answer, mirror (R33-R38, R42).

The body of a webhook is a claim, not a fact. Nothing changes until GetOperation confirms the operation
exists with the announced action and target (R38); the new state itself always comes from GetSubscription.

For ChangePlan and ChangeQuantity the publisher has about ten seconds to refuse (R34, R36), so the answer
comes first. Before the PATCH the worker does only what the decision needs: GetOperation (with the stored
subscription and, for a quantity the policy guards, the seat count read beside it, on two threads), and one
durable write of the decision (the inbox row, inserted with the decision in it; a change is not looked up
first). A redelivered message cannot insert that row again: it is handled from the stored row and sends the
same answer, never a new one. The decision's audit row, the
re-check and the `acknowledged` mark come after the PATCH; then the mirror, which reuses the subscription read
for the decision (under its ETag) instead of reading it again. A change that waited in the queue past
`BEHIND_AFTER` (a burst) stops after the mark when its mirror can wait (a refusal, an accepted seat increase):
the re-check mirrors it, after the burst. docs/design.md traces the path.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.domain.answer_window import is_behind, mirror_can_wait, recheck_delay
from shared.domain.inbox import ANSWERED, InboxRecord, InboxState
from shared.domain.policy import ChangeRequest, Decision, PublisherPolicy, decide
from shared.domain.seats import SeatLimitError
from shared.domain.status import Action, OperationStatus, parse_action
from shared.domain.subscription import Operation, Subscription
from shared.domain.transitions import Cause
from shared.domain.wording import outcome_name
from shared.faultpoints import faultpoint
from shared.fulfillment.errors import FulfillmentConflictError, FulfillmentNotFoundError
from shared.fulfillment.models import announced_action
from shared.logs import get_logger
from shared.queueing.messages import track_message
from shared.workflows.decision_audit import audit_decision
from shared.workflows.errors import PermanentFailureError
from shared.workflows.seat_holds import holder_of, release_seat_hold
from shared.workflows.sync import SyncPorts, sync_from_microsoft, utcnow

if TYPE_CHECKING:
    from shared.workflows.ports import AuditLog, EventPublisher, Inbox

log = get_logger(__name__)
CHANGE_ACTIONS = frozenset({Action.CHANGE_PLAN, Action.CHANGE_QUANTITY})
# What `_record_decision` writes; Microsoft's final status (Succeeded, Failed) may stand there instead.
_VERDICTS = frozenset({"accept", "refuse"})
# The Table reads a decision needs run while GetOperation is on the wire: they depend only on the
# subscription id. Two per event at most; a small shared pool bounds the threads whatever the burst.
_readers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="decision-reads")
# How a decision found the seat hold it needs: placed it, or found it placed (a redelivery renews it).
_NEW, _RENEWED = "new", "renewed"


@dataclass(frozen=True)
class OperationPorts:
    """Mirroring (Microsoft and the seats a quantity change is checked against come with it), the inbox of
    announced operations, the audit trail for decisions, the queue for re-checks, the publisher's policy."""

    sync: SyncPorts
    inbox: Inbox
    audit: AuditLog
    events: EventPublisher
    policy: PublisherPolicy


@dataclass(frozen=True)
class _Facts:
    """What the policy reads from our side: the stored subscription (with its ETag) and the seats in use."""

    subscription: Subscription | None
    seats_assigned: int | None  # None when the decision does not need it (not read)


@dataclass(frozen=True)
class _FactsAhead:
    """The reads started while GetOperation was on the wire; `result` waits for them."""

    stored: Future[Subscription | None]
    seats: Future[int] | None

    def result(self) -> _Facts:
        return _Facts(self.stored.result(), self.seats.result() if self.seats is not None else None)


@dataclass(frozen=True)
class Answered:
    """When the webhook took a change in and when our answer reached Microsoft (None: unknown)."""

    received_at: datetime | None
    answered_at: datetime


def handle_announced_operation(
    payload: dict[str, Any],
    correlation_id: str,
    *,
    ports: OperationPorts,
    received_at: datetime | None = None,
) -> None:
    """Handles one announced operation; `received_at` is when the webhook took it (None: unknown)."""
    subscription_id = str(payload.get("subscriptionId", "")).strip()
    operation_id = str(payload.get("id", "")).strip()
    # A change is not looked up first: nearly every one is new, and the lookup was a Table round trip inside
    # Microsoft's window. Its decision goes in as the operation's first row; if a row is there already (a
    # redelivery, our portal's own request, an operator's decision), the insert fails before anything is
    # sent and the handling starts again from that row, as if the lookup had found it. So does a change
    # whose policy reads fail while a row is stored, and a `done` one whose GetOperation fails.
    looked_up = parse_action(announced_action(payload)) not in CHANGE_ACTIONS
    record = ports.inbox.get(subscription_id, operation_id) if looked_up else None
    if _already_done(record):
        return
    behind = is_behind(received_at, utcnow())
    facts = _read_ahead(ports, subscription_id, record, payload)
    try:
        operation = _verified_operation(ports, subscription_id, operation_id, payload, correlation_id)
    except Exception:
        # A duplicate of a finished change needs nothing from Microsoft: it must not be parked or retried
        # because GetOperation fails for it now.
        if not looked_up and _already_done(ports.inbox.get(subscription_id, operation_id)):
            return
        raise
    handling = _Handling(
        ports=ports,
        subscription_id=subscription_id,
        operation=operation,
        facts=facts,
        correlation_id=correlation_id,
        behind=behind,
        received_at=received_at,
    )
    try:
        handling.run(record)
    except _AlreadyRecordedError:
        _run_from_stored(handling, payload)


def _run_from_stored(handling: _Handling, payload: dict[str, Any]) -> None:
    """The handling again, from the row the insert found, with the reads a lookup would have started for it
    (none for a decided or portal one)."""
    ports, subscription_id = handling.ports, handling.subscription_id
    # Under the keys the insert used (Microsoft's), so the row it found is the row read here.
    stored = ports.inbox.get(handling.operation.subscription_id, handling.operation.id)
    if stored is None:
        # Inserted by someone, then gone (deleted by hand?): retrying the message starts clean.
        raise PermanentFailureError("InboxRace", "the inbox row vanished between insert and read")
    if not _already_done(stored):
        replace(handling, facts=_read_ahead(ports, subscription_id, stored, payload)).run(stored)


def _already_done(record: InboxRecord | None) -> bool:
    if record is not None and record.state == InboxState.DONE:
        log.info("operation already handled; duplicate delivery ignored")
        return True
    return False


class _AlreadyRecordedError(Exception):
    """The operation's first row could not go in: one is stored already, and nothing was sent yet."""


@dataclass(frozen=True, kw_only=True)
class _Handling:
    """One verified operation, handled from its inbox row (None: none is stored, as far as we know)."""

    ports: OperationPorts
    subscription_id: str
    operation: Operation
    facts: _FactsAhead | None
    correlation_id: str
    behind: bool
    received_at: datetime | None

    def run(self, record: InboxRecord | None) -> None:
        ports, operation, correlation_id = self.ports, self.operation, self.correlation_id
        known: Subscription | None = None
        if operation.action in CHANGE_ACTIONS:
            record, known = _answer_change(
                ports,
                record,
                operation,
                self.facts,
                correlation_id,
                behind=self.behind,
                received_at=self.received_at,
            )
            if record.left_to_recheck and (self.behind or not operation.status.is_terminal):
                log.info(
                    "change answered while behind; its re-check audits and mirrors it",
                    extra={"behind": True},
                )
                return
        else:
            if operation.action is Action.UNKNOWN:
                log.warning(
                    "unknown action: mirroring the subscription only", extra={"action": operation.action_raw}
                )
            record = record or _receive(ports, operation, correlation_id)
        cause = Cause(
            operation.id, operation.action_raw, operation.request_source, operation.timestamp or utcnow()
        )
        sync_from_microsoft(ports.sync, self.subscription_id, cause, correlation_id, known=known)
        if operation.status.is_terminal:
            # Final already (no re-check will come for it): the mirror has Microsoft's quantity.
            release_seat_hold(ports.sync.seats, operation, record, correlation_id)
        if record.owes_decision_audit:
            # Final before its re-check ran: the decision's audit row is this delivery's to write.
            audit_decision(ports.audit, record, operation, correlation_id)
        # A change we just answered is still InProgress here; the scheduled re-check records its outcome.
        outcome = operation.status.value if operation.status.is_terminal else record.outcome
        done = replace(
            record, state=InboxState.DONE, outcome=outcome, left_to_recheck=False, updated_at=utcnow()
        )
        ports.inbox.save(done)


def _may_leave_to_recheck(record: InboxRecord, operation: Operation, known: Subscription | None) -> bool:
    """Whether a change answered while behind may leave its audit row and mirror to the re-check."""
    stored_quantity = known.quantity if known is not None else None
    return mirror_can_wait(record.decision == "accept", operation.action, operation.quantity, stored_quantity)


def _read_ahead(
    ports: OperationPorts, subscription_id: str, record: InboxRecord | None, payload: dict[str, Any]
) -> _FactsAhead | None:
    """Starts the policy's reads while GetOperation runs, when the webhook announces a change not yet
    decided. The announced action only chooses what to read early; the decision uses Microsoft's."""
    if record is not None and (record.decision or record.state in ANSWERED or record.initiated_by_publisher):
        return None
    action = parse_action(announced_action(payload))
    if action not in CHANGE_ACTIONS or not subscription_id:
        return None
    # Both reads are submitted from this (the worker's) thread and neither waits on the pool: a task that
    # waited on another task of the same bounded pool deadlocks it as soon as every reader does so (a burst
    # over many sessions did exactly that). Log lines written on a reader thread keep this message's ids.
    stored = _readers.submit(contextvars.copy_context().run, ports.sync.subscriptions.get, subscription_id)
    seats: Future[int] | None = None
    if action is Action.CHANGE_QUANTITY and ports.policy.refuse_quantity_below_assigned:
        seats = _readers.submit(contextvars.copy_context().run, ports.sync.seats.count, subscription_id)
    return _FactsAhead(stored, seats)


def _read_facts(ports: OperationPorts, subscription_id: str, action: Action) -> _Facts:
    """The same reads, one after the other, on the caller's thread (nothing was read ahead)."""
    seats = None
    if action is Action.CHANGE_QUANTITY and ports.policy.refuse_quantity_below_assigned:
        seats = ports.sync.seats.count(subscription_id)
    return _Facts(ports.sync.subscriptions.get(subscription_id), seats)


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


def _receive(
    ports: OperationPorts,
    operation: Operation,
    correlation_id: str,
    *,
    decision: str = "",
    reason: str = "",
    left_to_recheck: bool = False,
    holds_seats: bool = False,
) -> InboxRecord:
    """The operation's first inbox row (with the decision, when there is one: a single durable write).

    Raises `_AlreadyRecordedError` when a row is stored already: the handling then starts again from that row,
    so a decision stored first (another delivery's, an operator's) is the one sent."""
    record = _first_record(operation, correlation_id, decision=decision, reason=reason)
    record = replace(record, left_to_recheck=left_to_recheck, holds_seats=holds_seats)
    # put_new hands back the stored record with its ETag, so the first delivery reads nothing back.
    stored = ports.inbox.put_new(record)
    if stored is None:
        # Stored since (or before: a change is not looked up first); handled again from that row.
        raise _AlreadyRecordedError
    return stored


def _store_decision(
    ports: OperationPorts,
    record: InboxRecord | None,
    operation: Operation,
    correlation_id: str,
    **fields: Any,
) -> InboxRecord:
    """`fields` (decision, reason, left_to_recheck) as the operation's first row when none was read, else
    over the row read, under its ETag."""
    if record is None:
        return _receive(ports, operation, correlation_id, **fields)
    return ports.inbox.save(replace(record, **fields, updated_at=utcnow()))


def _first_record(
    operation: Operation, correlation_id: str, *, decision: str, reason: str, decided_by: str = ""
) -> InboxRecord:
    now = utcnow()
    return InboxRecord(
        subscription_id=operation.subscription_id,
        operation_id=operation.id,
        action=operation.action_raw or operation.action.value,
        state=InboxState.RECEIVED,
        source=operation.request_source,
        decision=decision,
        reason=reason,
        decided_by=decided_by,
        plan_id=operation.plan_id,
        quantity=operation.quantity,
        correlation_id=correlation_id,
        created_at=now,
        updated_at=now,
    )


def _answer_change(
    ports: OperationPorts,
    record: InboxRecord | None,
    operation: Operation,
    facts: _FactsAhead | None,
    correlation_id: str,
    *,
    behind: bool,
    received_at: datetime | None = None,
) -> tuple[InboxRecord, Subscription | None]:
    """Records the decision once, sends it, then does the bookkeeping; returns the record and the
    subscription read for the decision (None when none was read), for the mirror to start from."""
    if record is not None and record.state in ANSWERED:
        return record, None
    if operation.status.is_terminal and record is not None and record.decision in _VERDICTS:
        # We decided and answered (or crashed before the PATCH and Microsoft's window closed): the decision
        # still owes its audit row, and the recorded verdict stays what the row says we decided.
        return _close_decision(ports, record, operation, correlation_id), None
    if operation.status.is_terminal:
        # Microsoft decided already (auto-accepted after the window, R36, or answered before a crash).
        log.info("change already final at Microsoft", extra={"operation_status": operation.status.value})
        final = operation.status.value
        stored = _store_decision(
            ports, record, operation, correlation_id, decision=final, left_to_recheck=behind
        )
        if behind:
            # Nothing is owed to Microsoft any more: in a backlog the mirror goes to a re-check after it,
            # so the changes still inside their window get the worker first. Sent once the row is stored
            # (an insert that finds a row stored first sends nothing); a crash before it leaves the message
            # to be delivered again, and that delivery sends it.
            _schedule_recheck(ports, operation, correlation_id, after=recheck_delay(True))
        return stored, None
    known: Subscription | None = None
    decided_now = record is None or not record.decision
    if decided_now:
        record, known = _record_decision(ports, record, operation, facts, correlation_id)
    assert record is not None  # _record_decision always returns the stored record
    sent = _send_recorded(
        ports, record, operation, correlation_id, behind=behind, known=known, received_at=received_at
    )
    return sent, known


def _send_recorded(
    ports: OperationPorts,
    record: InboxRecord,
    operation: Operation,
    correlation_id: str,
    *,
    behind: bool,
    known: Subscription | None,
    received_at: datetime | None = None,
) -> InboxRecord:
    """Sends the decision the record holds, schedules the re-check and closes the decision: the worker's
    answer path. An operator's goes through the same two steps and reads what `_deliver` says."""
    _deliver(ports, record, operation, correlation_id)
    return _after_answer(
        ports, record, operation, correlation_id, behind=behind, known=known, received_at=received_at
    )


def _deliver(ports: OperationPorts, record: InboxRecord, operation: Operation, correlation_id: str) -> bool:
    """PATCHes the recorded decision; False when Microsoft had already finished the operation (409)."""
    faultpoint("worker.after_state_write")
    accept = record.decision == "accept"
    try:
        ports.sync.marketplace.update_operation(
            operation.subscription_id, operation.id, accept, correlation_id=correlation_id
        )
    except FulfillmentConflictError:
        log.info("operation finished before our answer reached Microsoft (409); state is re-read")
        return False
    return True


def _after_answer(
    ports: OperationPorts,
    record: InboxRecord,
    operation: Operation,
    correlation_id: str,
    *,
    behind: bool,
    known: Subscription | None,
    received_at: datetime | None = None,
) -> InboxRecord:
    # Stamped here, right after the PATCH, for the console's webhook-to-answer latency; a 409 still counts
    # (our answer arrived, Microsoft had finished). Saved with the `acknowledged` mark below: no extra write.
    answered = Answered(received_at=record.received_at or received_at, answered_at=utcnow())
    # --- answered: what follows is bookkeeping, and a crash here re-sends the recorded answer at worst ---
    faultpoint("worker.after_answer")
    # The re-check goes out before the `acknowledged` mark: once the mark is stored a redelivery does not
    # answer again, and the re-check is then the one thing that still audits and mirrors a change handled
    # while behind.
    _schedule_recheck(ports, operation, correlation_id, after=recheck_delay(behind))
    leave = behind and _may_leave_to_recheck(record, operation, known)
    return _close_decision(
        ports, record, operation, correlation_id, leave_to_recheck=leave, answered=answered
    )


def _close_decision(
    ports: OperationPorts,
    record: InboxRecord,
    operation: Operation,
    correlation_id: str,
    *,
    leave_to_recheck: bool = False,
    answered: Answered | None = None,
) -> InboxRecord:
    """Audits the recorded decision, then marks it answered (`acknowledged` or `refused`).

    In that order, so a crash between the two repeats the audit row on redelivery: a decision may be
    audited twice, never not at all. Left to the re-check (behind), the mark says so instead, and the
    re-check (or a later delivery that finds the operation final) writes the audit row."""
    if not leave_to_recheck:
        audit_decision(ports.audit, record, operation, correlation_id)
    state = InboxState.ACKNOWLEDGED if record.decision == "accept" else InboxState.REFUSED
    marked = replace(record, state=state, left_to_recheck=leave_to_recheck, updated_at=utcnow())
    if answered is not None:
        marked = replace(marked, received_at=answered.received_at, answered_at=answered.answered_at)
    return ports.inbox.save(marked)


def _record_decision(
    ports: OperationPorts,
    record: InboxRecord | None,
    operation: Operation,
    facts: _FactsAhead | None,
    correlation_id: str,
) -> tuple[InboxRecord, Subscription | None]:
    try:
        decision, known, hold = _decide(ports, record, operation, facts)
    except Exception:
        # Not looked up first, a stored row (an operator's refusal whose PATCH a crash stopped) would wait on
        # reads it does not need, while Microsoft's window runs out: it is handled from that row instead.
        if record is None and ports.inbox.get(operation.subscription_id, operation.id) is not None:
            log.warning("the policy's reads failed; the decision already stored is sent", exc_info=True)
            raise _AlreadyRecordedError from None
        raise
    verdict = "accept" if decision.accept else "refuse"
    # A row read here may hold seats already (the portal's own cut): saving over it keeps that.
    holds = bool(hold) or (record is not None and record.holds_seats)
    try:
        stored = _store_decision(
            ports,
            record,
            operation,
            correlation_id,
            decision=verdict,
            reason=decision.reason,
            holds_seats=holds,
        )
    except _AlreadyRecordedError:
        if hold:
            _drop_hold_unless_stored_row_needs_it(ports, operation, renewed=hold == _RENEWED)
        raise
    # Logged once it stands: a decision that lost to a stored row is not the one sent.
    log.info("change decided", extra={"accept": decision.accept, "reason": decision.reason})
    return stored, known


def _drop_hold_unless_stored_row_needs_it(
    ports: OperationPorts, operation: Operation, *, renewed: bool
) -> None:
    """This delivery (or an operator) held the seats under the operation id, then found a row stored first,
    whose decision is the one sent. A row holding under the same id still needs the hold if this one only
    renewed it; if the hold was new here, that row's hold was released already (its cut is over), and any
    other row holds nothing under this id: either way the hold goes."""
    stored = ports.inbox.get(operation.subscription_id, operation.id)
    if renewed and stored is not None and stored.holds_seats and holder_of(stored) == operation.id:
        return
    ports.sync.seats.release_limit(operation.subscription_id, operation.id)


def _decide(
    ports: OperationPorts, record: InboxRecord | None, operation: Operation, facts: _FactsAhead | None
) -> tuple[Decision, Subscription | None, str]:
    """The decision, the subscription read for it, and whether an accepted seat cut now holds the seats
    (`_NEW`; `_RENEWED`: it held already; "" for no hold)."""
    by_publisher = record is not None and record.initiated_by_publisher
    if by_publisher or operation.request_source.lower() == "partner":
        # Our own portal asked for this change after the buyer confirmed it (R42, R49); a cut asked for there
        # holds the seats already. A read started early is still worth its result: the mirror starts from it.
        known = facts.result().subscription if facts is not None else None
        return Decision(True, "requested by the publisher's portal"), known, ""
    faultpoint("worker.policy_reads")
    read = (
        facts.result()
        if facts is not None
        else _read_facts(ports, operation.subscription_id, operation.action)
    )
    seats = read.seats_assigned
    if (
        seats is None
        and operation.action is Action.CHANGE_QUANTITY
        and ports.policy.refuse_quantity_below_assigned
    ):
        # Read ahead for a ChangePlan the webhook announced, but Microsoft says ChangeQuantity.
        seats = ports.sync.seats.count(operation.subscription_id)
    current = read.subscription or Subscription(id=operation.subscription_id)
    request = ChangeRequest(
        action=operation.action,
        current_plan=current.plan_id,
        target_plan=operation.plan_id,
        current_quantity=current.quantity,
        target_quantity=operation.quantity,
        seats_assigned=seats or 0,
    )
    decision = decide(ports.policy, request)
    if not (decision.accept and _cuts_guarded_seats(ports, operation, current)):
        return decision, read.subscription, ""
    # The seats were counted beside GetOperation; one may have been assigned since, and more until the cut
    # is mirrored. Checked again and the lower limit held in one write, or the cut is refused after all.
    try:
        return decision, read.subscription, _hold_cut(ports, operation)
    except SeatLimitError as exc:
        reason = (
            f"the new quantity {operation.quantity} is below the {exc.assigned} seats already assigned;"
            " unassign seats first"
        )
        return Decision(False, reason), read.subscription, ""


def _hold_cut(ports: OperationPorts, operation: Operation) -> str:
    """Holds the cut's lower limit on the seats under the operation id: `_NEW`, or `_RENEWED` when it held
    already. Raises SeatLimitError when more seats are assigned than the cut leaves."""
    renewed = ports.sync.seats.hold_limit(
        operation.subscription_id, int(operation.quantity or 0), operation.id
    )
    return _RENEWED if renewed else _NEW


def _cuts_guarded_seats(ports: OperationPorts, operation: Operation, current: Subscription) -> bool:
    """A ChangeQuantity to fewer seats than stored (or than an unknown number), under a policy that keeps
    the seats assigned within the quantity."""
    return (
        operation.action is Action.CHANGE_QUANTITY
        and ports.policy.refuse_quantity_below_assigned
        and operation.quantity is not None
        and (current.quantity is None or operation.quantity < current.quantity)
    )


def _schedule_recheck(
    ports: OperationPorts, operation: Operation, correlation_id: str, *, after: timedelta
) -> None:
    message = track_message(
        operation.subscription_id, operation.id, correlation_id, scheduled_at=utcnow() + after
    )
    ports.events.send(message)


def pending_status(operation: Operation) -> bool:
    return operation.status in {OperationStatus.IN_PROGRESS, OperationStatus.NOT_STARTED}


class DecisionRefusedError(Exception):
    """An operator's decision that was not recorded nor sent, with the words the operator reads."""


def decide_as_operator(
    subscription_id: str,
    operation_id: str,
    *,
    accept: bool,
    reason: str,
    operator: str,
    correlation_id: str,
    ports: OperationPorts,
) -> InboxRecord:
    """An operator accepts or refuses a pending ChangePlan/ChangeQuantity while Microsoft's window is open.

    The inbox record holds the one durable decision, for the worker and the operator alike: the operator's
    verdict goes in only where no decision stands yet (an insert when the worker has not seen the
    operation, a save under the ETag of an undecided row otherwise), so whoever writes first is the one
    answer sent; the loser finds it recorded and sends nothing different. Then the worker's own answer path
    (PATCH, re-check, audit row naming the operator, `acknowledged`/`refused` mark). A save that loses the
    race raises the store's concurrency error: nothing was sent.
    """
    try:
        operation = ports.sync.marketplace.get_operation(
            subscription_id, operation_id, correlation_id=correlation_id
        )
    except FulfillmentNotFoundError:
        raise DecisionRefusedError("Microsoft does not know this operation for this subscription.") from None
    if operation.subscription_id.lower() != subscription_id.lower():
        raise DecisionRefusedError("This change belongs to another subscription. Nothing was sent.")
    if operation.action not in CHANGE_ACTIONS:
        raise DecisionRefusedError("Only a plan change or a seat change waits for the publisher's answer.")
    if operation.request_source.lower() == "partner":
        # Asked for through our own portal after the buyer confirmed it: the worker accepts these (R42, R49),
        # and an operator refusing one would overrule the buyer behind their back.
        raise DecisionRefusedError(_REQUESTED_BY_PORTAL)
    if not pending_status(operation):
        raise DecisionRefusedError(
            "Microsoft's window to answer has closed: the change is already "
            f"{outcome_name(operation.status).lower()} at Microsoft. Nothing was sent."
        )
    record = ports.inbox.get(subscription_id, operation_id)
    verdict = "accept" if accept else "refuse"
    reason = reason.strip() or f"decided by {operator}"
    if record is not None and (
        record.decision or record.state is not InboxState.RECEIVED or record.initiated_by_publisher
    ):
        # Decided by the policy (or by another operator), answered, or asked for by our own portal, which
        # the worker accepts: one answer per operation, never a second one.
        raise DecisionRefusedError(_ALREADY_DECIDED)
    hold = _hold_for_operator(ports, operation) if accept else ""
    try:
        record = _record_operator_decision(
            ports, record, operation, correlation_id, verdict, reason, operator, bool(hold)
        )
    except Exception:
        if hold:  # not this decision: the hold stays only for a row that stood on it before
            _drop_hold_unless_stored_row_needs_it(ports, operation, renewed=hold == _RENEWED)
        raise
    log.info("change decided by an operator", extra={"accept": accept})
    delivered = _deliver(ports, record, operation, correlation_id)
    closed = _after_answer(ports, record, operation, correlation_id, behind=False, known=None)
    if not delivered:
        _too_late(ports, operation, accept, correlation_id)
    return closed


def _hold_for_operator(ports: OperationPorts, operation: Operation) -> str:
    """An operator accepting a seat cut holds the seats as the worker's policy does (or is told why not)."""
    current = ports.sync.subscriptions.get(operation.subscription_id) or Subscription(
        id=operation.subscription_id
    )
    if not _cuts_guarded_seats(ports, operation, current):
        return ""
    try:
        return _hold_cut(ports, operation)
    except SeatLimitError as exc:
        raise DecisionRefusedError(
            f"{exc.assigned} seats are assigned, more than the {operation.quantity} this change leaves."
            " Nothing was sent: free seats first, or refuse the change."
        ) from None


def _record_operator_decision(
    ports: OperationPorts,
    record: InboxRecord | None,
    operation: Operation,
    correlation_id: str,
    verdict: str,
    reason: str,
    operator: str,
    held: bool,
) -> InboxRecord:
    """The operator's verdict as the operation's one decision: a new row, or a save over the undecided one."""
    if record is None:
        first = _first_record(operation, correlation_id, decision=verdict, reason=reason, decided_by=operator)
        stored = ports.inbox.put_new(replace(first, holds_seats=held))
        if stored is None:
            raise DecisionRefusedError(_ALREADY_DECIDED)
        return stored
    decided = replace(
        record, decision=verdict, reason=reason, decided_by=operator, holds_seats=held, updated_at=utcnow()
    )
    return ports.inbox.save(decided)


def _too_late(ports: OperationPorts, operation: Operation, accept: bool, correlation_id: str) -> None:
    """Microsoft finished the operation between our read and our answer (409): the operator must not read
    "refused" when Microsoft applied the change. The re-check sent with the answer mirrors what it did."""
    final = ports.sync.marketplace.get_operation(
        operation.subscription_id, operation.id, correlation_id=correlation_id
    )
    applied = final.status is OperationStatus.SUCCEEDED
    if applied != accept:
        log.warning("operator's answer arrived after Microsoft finished the operation")
        raise DecisionTooLateError(
            "Too late: Microsoft's window closed before the answer arrived, and the change is now "
            f"{outcome_name(final.status).lower()} at Microsoft. The service's records follow Microsoft's."
        )


class DecisionTooLateError(DecisionRefusedError):
    """The operator's answer reached Microsoft after it had finished the operation the other way."""


_REQUESTED_BY_PORTAL = (
    "The buyer asked for this change in the publisher's own portal, so the service accepts it. Nothing was "
    "sent."
)
_ALREADY_DECIDED = (
    "The service has already decided this change (or answered it): one answer per change is sent to "
    "Microsoft. Nothing was sent."
)
