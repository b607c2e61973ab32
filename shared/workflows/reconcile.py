"""Repair of missed webhooks, failed activations, unanswered operations and drift (R15, R28, R83).

`sweep` walks every subscription Microsoft lists (ListSubscriptions, page by page along `@nextLink`) and
queues one `reconcile` message per subscription, including those we have no row for, so the repairs run on
the worker with each subscription's order kept. It holds one batch of listed subscriptions at a time (a
page's worth), never the whole list, looks their rows up concurrently and queues the batch's messages in
one `send_many`. A subscription unknown here travels with its listed record, from which the worker creates
the mirror (`reconcile_subscription`'s `listed`). Only a subscription that is Unsubscribed on both sides is
left out: nothing about it can drift any more. An item of the list that could not be read
(`UnreadableSubscription`: an unknown status, a field of the wrong shape, no id) is logged and counted as
`malformed`, and the sweep goes on; one with an id still gets its reconcile message, whose
GetSubscription then fails and parks it, so an operator sees it among the dead letters instead of it being
skipped in silence. One without an id cannot be reconciled; the log line is its only trace.

`reconcile_subscription` repairs one subscription from Microsoft's truth: a mirror created from the listed
record (or GetSubscription) when we had none, status/plan/quantity/term drift mirrored, an activation the
buyer confirmed but that never succeeded performed (R15), and a pending ChangePlan/ChangeQuantity no webhook
brought us answered through the webhook path (R28). Every repair leaves an audit entry with source
`reconciliation` saying what drifted, and one log line saying what was found.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import timedelta
from itertools import islice
from typing import TYPE_CHECKING

from shared.domain.audit import SWEEPS_PARTITION, AuditAction, AuditEntry, AuditSource
from shared.domain.inbox import InboxState
from shared.domain.status import SubscriptionStatus
from shared.domain.subscription import (
    MicrosoftSubscription,
    Operation,
    Subscription,
    UnreadableSubscription,
    needs_reconcile,
)
from shared.domain.transitions import Cause
from shared.logs import get_logger
from shared.queueing.messages import QueueMessage, reconcile_message, sweep_message
from shared.workflows.activation import ActivationPorts, activate_purchase
from shared.workflows.operations import OperationPorts, handle_announced_operation, pending_status
from shared.workflows.sync import mirror_new, sync_from_microsoft, utcnow

if TYPE_CHECKING:
    from shared.workflows.ports import (
        AuditLog,
        EventPublisher,
        Marketplace,
        RecentAuditHistory,
        SubscriptionRecords,
    )

log = get_logger(__name__)
SOURCE = AuditSource.RECONCILIATION
# Subscriptions held at once by the sweep: Microsoft's page size, so memory stays bounded by one page.
SWEEP_BATCH = 100
# Row lookups in flight during a sweep: one batch's reads overlap instead of queueing one after another.
SWEEP_LOOKUPS = 16
# Fields whose difference from Microsoft is drift worth naming in the log (the audit entry has them all).
DRIFT_FIELDS = ("status", "plan_id", "quantity", "term")


@dataclass(frozen=True)
class ReconcilePorts:
    """Reconciling may finish an activation or answer an operation, so it takes what those two take."""

    activation: ActivationPorts
    operations: OperationPorts


@dataclass(frozen=True)
class SweepReport:
    """What one sweep saw and did: subscriptions listed by Microsoft, reconcile messages queued, listed
    subscriptions with no row of ours, those left out because ours is in step with Microsoft's, and listed
    items that could not be read (`malformed`; those with an id are queued, and counted in `queued` too)."""

    listed: int = 0
    queued: int = 0
    unknown_locally: int = 0
    in_step: int = 0
    malformed: int = 0


@dataclass(frozen=True)
class Repairs:
    """What reconciling one subscription found and did."""

    unknown_locally: bool
    drifted: tuple[str, ...]
    activated: bool
    answered: tuple[str, ...]

    @property
    def any(self) -> bool:
        return self.unknown_locally or bool(self.drifted or self.answered) or self.activated


def reconcile_subscription(
    subscription_id: str,
    correlation_id: str,
    *,
    ports: ReconcilePorts,
    listed: MicrosoftSubscription | None = None,
) -> Repairs:
    """`listed`: Microsoft's record as the sweep listed it, for a subscription it found unknown here."""
    sync = ports.operations.sync
    cause = Cause(operation_id="", action=AuditAction.RECONCILE.value, source=SOURCE.value, at=utcnow())
    # The mirror writes the audit entry of whatever drifted (every field, for a row we did not have).
    current = _created_from_list(subscription_id, listed, cause, correlation_id, ports=ports)
    stored: Subscription | None = None
    if current is None:
        stored = sync.subscriptions.get(subscription_id)
        current = sync_from_microsoft(sync, subscription_id, cause, correlation_id, known=stored)
    activated = _finish_activation(subscription_id, stored, current, correlation_id, ports=ports)
    answered: tuple[str, ...] = ()
    if current.status is SubscriptionStatus.SUBSCRIBED and not activated:
        answered = _answer_unanswered(subscription_id, correlation_id, ports=ports)
    repairs = Repairs(stored is None, _drifted(stored, current), activated, answered)
    if repairs.any:
        log.info(
            "reconciliation repaired a subscription",
            extra={
                "unknown_locally": repairs.unknown_locally,
                "drifted": list(repairs.drifted),
                "activated": repairs.activated,
                "answered_operations": list(repairs.answered),
            },
        )
    return repairs


def _created_from_list(
    subscription_id: str,
    listed: MicrosoftSubscription | None,
    cause: Cause,
    correlation_id: str,
    *,
    ports: ReconcilePorts,
) -> Subscription | None:
    """The mirror of a subscription the sweep listed and found unknown here, created from the listed record
    without GetSubscription; None when there is no such record or a row was stored since the sweep looked.

    The listed record is Microsoft's truth at list time. While no row exists nothing of ours is newer, and
    whatever Microsoft changes later is announced by a webhook that mirrors GetSubscription after this
    message (same session, queued behind it). A row stored meanwhile (a webhook or the landing page got
    there first) may be newer than the list, so it is not overwritten from it: the caller asks Microsoft.
    """
    if listed is None or listed.id != subscription_id:
        return None
    created = mirror_new(ports.operations.sync, listed, cause, correlation_id)
    if created is None:
        log.info("a row was stored since the sweep listed this subscription; asking Microsoft instead")
    return created


def _drifted(stored: Subscription | None, current: Subscription) -> tuple[str, ...]:
    if stored is None:
        return ()
    return tuple(name for name in DRIFT_FIELDS if getattr(stored, name) != getattr(current, name))


def _finish_activation(
    subscription_id: str,
    stored: Subscription | None,
    current: Subscription,
    correlation_id: str,
    *,
    ports: ReconcilePorts,
) -> bool:
    """Activates a purchase the buyer confirmed but Microsoft still holds pending (billing never started,
    R15). One never confirmed is left alone: only the buyer's landing may start it (R16)."""
    if current.status is not SubscriptionStatus.PENDING_FULFILLMENT_START:
        return False
    if stored is None or stored.activation_requested_at is None:
        return False
    log.info("activating a confirmed purchase that never became active")
    after = activate_purchase(subscription_id, correlation_id, ports=ports.activation, source=SOURCE)
    return after.status is SubscriptionStatus.SUBSCRIBED


def _answer_unanswered(
    subscription_id: str, correlation_id: str, *, ports: ReconcilePorts
) -> tuple[str, ...]:
    """Answers, through the webhook's own path, each operation Microsoft still waits on that we never
    received (or received and never answered); returns their ids."""
    marketplace = ports.operations.sync.marketplace
    answered = []
    for operation in marketplace.list_operations(subscription_id, correlation_id=correlation_id):
        record = ports.operations.inbox.get(subscription_id, operation.id)
        if not pending_status(operation) or (record is not None and record.state is not InboxState.RECEIVED):
            continue
        log.info("answering a pending operation no webhook announced", extra={"operation_id": operation.id})
        _audit_unanswered(operation, correlation_id, ports=ports)
        payload = {"id": operation.id, "subscriptionId": subscription_id, "action": operation.action_raw}
        handle_announced_operation(payload, correlation_id, ports=ports.operations)
        answered.append(operation.id)
    return tuple(answered)


def _audit_unanswered(operation: Operation, correlation_id: str, *, ports: ReconcilePorts) -> None:
    entry = AuditEntry(
        subscription_id=operation.subscription_id,
        at=utcnow(),
        action=AuditAction.RECONCILE,
        source=SOURCE,
        operation_id=operation.id,
        changes={"unanswered_operation": (operation.action_raw, "answered")},
        correlation_id=correlation_id,
    )
    ports.operations.audit.append(entry)


def sweep(
    correlation_id: str,
    *,
    marketplace: Marketplace,
    subscriptions: SubscriptionRecords,
    events: EventPublisher,
    batch: int = SWEEP_BATCH,
    lookups: int = SWEEP_LOOKUPS,
) -> SweepReport:
    """Queues a reconcile message for each subscription Microsoft lists that is unknown here, drifted or
    waiting for its activation (`needs_reconcile`); returns the counts."""
    listed = queued = unknown = in_step = malformed = 0
    with ThreadPoolExecutor(max_workers=lookups, thread_name_prefix="sweep-lookups") as pool:
        for items in _batches(marketplace.list_subscriptions(correlation_id=correlation_id), batch):
            snapshots = [item for item in items if isinstance(item, MicrosoftSubscription)]
            # One send per batch: the queue takes a page in one transaction or batch, not one per message.
            outgoing: list[QueueMessage] = []
            for bad in (item for item in items if isinstance(item, UnreadableSubscription)):
                listed += 1
                malformed += 1
                log.warning(
                    "unreadable subscription in Microsoft's list",
                    extra={"subscription_id": bad.id, "error": bad.error},
                )
                if bad.id:
                    outgoing.append(reconcile_message(bad.id, "sweep", correlation_id))
            rows = _lookup(pool, subscriptions, snapshots)
            for snapshot, stored in zip(snapshots, rows, strict=True):
                listed += 1
                if stored is None:
                    unknown += 1
                elif not needs_reconcile(stored, snapshot):
                    in_step += 1
                    continue
                # An unknown one travels with its listed record: the worker creates the mirror from it
                # instead of asking GetSubscription for what this page just said.
                record = snapshot if stored is None else None
                outgoing.append(reconcile_message(snapshot.id, "sweep", correlation_id, listed=record))
            if outgoing:
                events.send_many(outgoing)
                queued += len(outgoing)
    report = SweepReport(
        listed=listed, queued=queued, unknown_locally=unknown, in_step=in_step, malformed=malformed
    )
    log.info(
        "reconciliation sweep queued",
        extra={
            "listed": listed,
            "queued": queued,
            "unknown_locally": unknown,
            "in_step": in_step,
            "malformed": malformed,
        },
    )
    return report


def _batches(
    items: Iterable[MicrosoftSubscription | UnreadableSubscription], size: int
) -> Iterator[list[MicrosoftSubscription | UnreadableSubscription]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _lookup(
    pool: ThreadPoolExecutor, subscriptions: SubscriptionRecords, snapshots: list[MicrosoftSubscription]
) -> list[Subscription | None]:
    # Each read runs in this thread's context, so its log lines keep the sweep's correlation id.
    futures = [
        pool.submit(contextvars.copy_context().run, subscriptions.get, snapshot.id) for snapshot in snapshots
    ]
    return [future.result() for future in futures]


# --- a sweep asked for by an operator, and the record of every sweep ------------------------------------

# How far back `recent_sweeps` looks: a day first (about 48 sweeps), then a month for a sweep long stopped.
SWEEP_WINDOWS = (timedelta(days=1), timedelta(days=31))


def request_sweep(
    *, requested_by: str, correlation_id: str, events: EventPublisher, audit: AuditLog
) -> QueueMessage:
    """Queues a sweep for the worker, which runs it with the app's own Fulfillment API identity: an
    operator's machine (the CLI against Azure) or the console's request never needs its credentials."""
    message = sweep_message(requested_by, correlation_id)
    events.send(message)
    audit.append(_sweep_entry(AuditAction.SWEEP_REQUESTED, requested_by, correlation_id, {}))
    return message


@dataclass(frozen=True)
class SweepPorts:
    """What a recorded sweep needs: Microsoft's list, our rows, the queue it fills and the audit trail."""

    marketplace: Marketplace
    subscriptions: SubscriptionRecords
    events: EventPublisher
    audit: AuditLog


def sweep_and_record(correlation_id: str, *, ports: SweepPorts, requested_by: str = "") -> SweepReport:
    """`sweep`, then its counts in the audit trail (SWEEPS_PARTITION), where the console shows them."""
    report = sweep(
        correlation_id, marketplace=ports.marketplace, subscriptions=ports.subscriptions, events=ports.events
    )
    counts = {name: (None, value) for name, value in asdict(report).items()}
    ports.audit.append(_sweep_entry(AuditAction.SWEEP, requested_by, correlation_id, counts))
    return report


def recent_sweeps(audit: RecentAuditHistory, limit: int = 5) -> list[AuditEntry]:
    """The last `limit` sweeps and requests, newest first, from the last day's rows, or the last
    `SWEEP_WINDOWS[-1]` when the day holds fewer. `_sweeps` grows by about 48 rows a day for ever and Table
    Storage reads a partition oldest first only, so the overview, which asks on every load, reads a recent
    window rather than the whole partition."""
    now = utcnow()
    entries: list[AuditEntry] = []
    for window in SWEEP_WINDOWS:
        entries = audit.list_since(SWEEPS_PARTITION, now - window)
        if len(entries) >= limit:
            break
    return entries[::-1][:limit]


def _sweep_entry(
    action: AuditAction, requested_by: str, correlation_id: str, changes: dict[str, tuple[None, int]]
) -> AuditEntry:
    return AuditEntry(
        subscription_id=SWEEPS_PARTITION,
        at=utcnow(),
        action=action,
        source=AuditSource.OPERATOR if requested_by else AuditSource.RECONCILIATION,
        correlation_id=correlation_id,
        changes=changes,
        actor=requested_by,
    )
