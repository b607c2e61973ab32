"""What the console's overview shows: subscriptions by status, offer and plan; activity per day; latency.

Sources, each the cheapest that is correct:

- counts by status, offer and plan: the list's `SummaryIndex` (the same per-instance copy, no extra read);
- activations, plan and seat changes, cancellations per day: the audit trail, not the inbox. The inbox
  holds what Microsoft announced, including refused changes and not activations (the landing page and the
  activate message never pass through it), while an audit entry records what the mirror changed, however
  the change arrived (webhook, landing, a reconciliation that found it late). Its RowKey begins with the
  entry's time, so one query filtered on the key returns the last days' rows only;
- webhook-to-answer latency: the inbox, whose change rows carry `received_at` and `answered_at`;
- pending operations: inbox rows still `received` or `tracking`;
- dead letters: the dead-letter workflow's listing, bounded by `DEAD_LETTER_LIMIT`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Protocol

from shared.domain.console_stats import (
    DAYS,
    Activity,
    DayLatency,
    activities,
    count_by,
    count_per_day,
    last_days,
    latency_per_day,
)
from shared.domain.status import SubscriptionStatus
from shared.logs import get_logger
from shared.workflows.dead_letters import DeadLetterPorts, list_dead_letters
from shared.workflows.reconcile import recent_sweeps
from shared.workflows.subscription_views import (
    LIST_UNREADABLE,
    SummaryIndex,
    SummaryIndexUnreadableError,
    index_notes,
)
from shared.workflows.sync import utcnow

if TYPE_CHECKING:
    from shared.domain.audit import AuditEntry
    from shared.workflows.ports import RecentAuditHistory

log = get_logger(__name__)
# Listing a dead-letter queue reads each message; past this many the overview says "at least".
DEAD_LETTER_LIMIT = 500
STILL_COUNTING = "Subscriptions are still being counted on this server; this page reloads in 2 seconds."


class RecentAudit(Protocol):
    def since(self, cutoff: datetime) -> Iterable[AuditEntry]: ...


class AnswerTimes(Protocol):
    def answered_since(self, cutoff: datetime) -> Iterable[tuple[datetime, datetime]]: ...

    def count_in_progress(self) -> int: ...


@dataclass(frozen=True)
class OverviewPorts:
    index: SummaryIndex
    audit: RecentAudit
    inbox: AnswerTimes
    # Built on first use: a queue backend with no dead-letter view (the in-memory one) refuses to build it,
    # and the overview then says so instead of failing.
    dead_letters: Callable[[], DeadLetterPorts]
    sweeps: RecentAuditHistory


@dataclass(frozen=True)
class Overview:
    total: int
    by_status: dict[SubscriptionStatus, int]
    by_offer: dict[str, int]
    by_plan: dict[str, int]
    days: list[date]
    activity: dict[Activity, dict[date, int]]
    latency: list[DayLatency]
    pending_operations: int
    dead_letters: int
    dead_letters_capped: bool
    as_of: datetime
    problems: tuple[str, ...] = ()
    counting: bool = False
    # The latest sweeps and requests, newest first; None when their record could not be read.
    sweeps: tuple[AuditEntry, ...] | None = ()


def overview(*, ports: OverviewPorts, days: int = DAYS, first_read_wait: float = 0.5) -> Overview:
    """The overview's figures. A source that fails is reported in `problems` and shows as zero, so one
    unreachable queue never hides the rest; so does the subscription list while an instance's first read
    of it takes longer than `first_read_wait` seconds (`counting`: the page reloads itself), or fails."""
    now = utcnow()
    window = last_days(now.date(), days)
    cutoff = datetime.combine(window[0], datetime.min.time(), tzinfo=now.tzinfo)
    problems: list[str] = []
    counting = False
    try:
        snapshot = ports.index.snapshot_within(first_read_wait)
    except SummaryIndexUnreadableError:
        snapshot = None
        problems.append(LIST_UNREADABLE)
    else:
        counting = snapshot is None
        problems.extend([STILL_COUNTING] if snapshot is None else index_notes(snapshot, ports.index))
    rows = snapshot.rows if snapshot is not None else ()
    counted = count_by(rows, lambda row: row.status.value)
    by_status = {status: counted.get(status.value, 0) for status in SubscriptionStatus}
    activity = _activity(ports, cutoff, window, problems)
    try:
        latency = latency_per_day(ports.inbox.answered_since(cutoff), window)
        pending = ports.inbox.count_in_progress()
    except Exception as exc:  # one unreadable source must not take the page down
        log.warning("overview: inbox unreadable", extra={"error": type(exc).__name__})
        problems.append("The operations inbox could not be read; latency and pending operations show 0.")
        latency, pending = latency_per_day([], window), 0
    try:
        parked = len(list_dead_letters(ports=ports.dead_letters(), limit=DEAD_LETTER_LIMIT))
    except Exception as exc:
        log.warning("overview: dead letters unreadable", extra={"error": type(exc).__name__})
        problems.append("The dead-letter queues could not be read; their count shows 0.")
        parked = 0
    return Overview(
        total=len(rows),
        by_status=by_status,
        by_offer=count_by(rows, lambda row: row.offer_id or "(none)"),
        by_plan=count_by(rows, lambda row: row.plan_id or "(none)"),
        days=window,
        activity=activity,
        latency=latency,
        pending_operations=pending,
        dead_letters=parked,
        dead_letters_capped=parked >= DEAD_LETTER_LIMIT,
        as_of=snapshot.taken_at if snapshot is not None else now,
        problems=tuple(problems),
        counting=counting,
        sweeps=_sweeps(ports),
    )


def _sweeps(ports: OverviewPorts) -> tuple[AuditEntry, ...] | None:
    try:
        return tuple(recent_sweeps(ports.sweeps))
    except Exception as exc:  # the page says so in the sweeps' own section; the rest still shows
        log.warning("overview: recent sweeps unreadable", extra={"error": type(exc).__name__})
        return None


def _activity(
    ports: OverviewPorts, cutoff: datetime, window: list[date], problems: list[str]
) -> dict[Activity, dict[date, int]]:
    moments: dict[Activity, list[datetime]] = {kind: [] for kind in Activity}
    try:
        for entry, kinds in _classified(ports.audit.since(cutoff)):
            for kind in kinds:
                moments[kind].append(entry.at)
    except Exception as exc:
        log.warning("overview: audit trail unreadable", extra={"error": type(exc).__name__})
        problems.append("The audit trail could not be read; activity per day shows 0.")
    return {kind: count_per_day(at, window) for kind, at in moments.items()}


def _classified(entries: Iterable[AuditEntry]) -> Iterator[tuple[AuditEntry, set[Activity]]]:
    for entry in entries:
        kinds = activities(entry.changes)
        if kinds:
            yield entry, kinds
