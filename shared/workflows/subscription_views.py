"""What an operator reads about subscriptions: a filtered list, and one subscription with its history.

Read-only. The stored mirror is shown as stored; `microsoft_view` adds Microsoft's live view beside it
(GetSubscription and the operations still in progress) for the console, and says in words when Microsoft
does not know the subscription or does not answer, so the mirror is still shown. The CLI's list walks the
stored rows page by page and stops at the limit, so memory stays bounded by what is shown.

The console's list answers from a `SummaryIndex`: one instance's copy of every subscription's list columns
(`SubscriptionSummary`, under 1 kB each), read with a single projected query and kept for `max_age`
seconds. Reading 10,000 full rows from Table Storage for each page, search or export took 3 to 4 s on an
idle machine's Azurite, over the 1 s the console allows; the projection is about 2.4 times faster
(bench/console_search.py) but still over it, while a cached copy answers in tens of milliseconds. The
price is bounded staleness: a page may miss changes made in the last `max_age` seconds plus one read,
which the page says ("as of"); the one-subscription page reads the row itself, so an operator about to
act sees it fresh. An instance's first read is the one slow moment: pages wait for it at most
`snapshot_within` seconds, then say it is still being read and reload themselves. A stored row that
cannot be read is left out and counted, and a read that fails is said on the page (`index_notes`,
`SummaryIndexUnreadableError`) rather than shown as "still being read" or a 500. Server-side filters
would help exact-match fields only, not the substring search that is the list's main use, and Table
Storage has no count.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING, Protocol

from shared.domain.subscription_query import Page, SubscriptionQuery, SubscriptionSummary
from shared.fulfillment.errors import FulfillmentError, FulfillmentNotFoundError
from shared.logs import get_logger
from shared.workflows.sync import utcnow

if TYPE_CHECKING:
    from shared.domain.audit import AuditEntry
    from shared.domain.inbox import InboxRecord
    from shared.domain.seats import Seat
    from shared.domain.subscription import MicrosoftSubscription, Operation, Subscription
    from shared.workflows.ports import AuditHistory, Inbox, Marketplace, SeatBook, SubscriptionCatalog

log = get_logger(__name__)
MICROSOFT_UNKNOWN = (
    'Microsoft does not know this subscription (GetSubscription answered "not found"): it may have been '
    "deleted at Microsoft, or it belongs to another publisher or environment. The stored copy is shown alone."
)
MICROSOFT_SILENT = (
    "Microsoft did not answer just now, so its view cannot be compared. The stored copy is shown alone; "
    "reload the page in a minute."
)
OPERATIONS_SILENT = "Microsoft did not list its operations in progress just now; reload the page in a minute."

DEFAULT_MAX_AGE_SECONDS = 30.0


class SummarySource(Protocol):
    """Every stored subscription's list columns (`SubscriptionStore.list_summaries`); the ids of rows that
    could not be read are added to `unreadable` instead."""

    def list_summaries(self, *, unreadable: list[str] | None = None) -> Iterable[SubscriptionSummary]: ...


@dataclass(frozen=True)
class Snapshot:
    rows: tuple[SubscriptionSummary, ...]
    taken_at: datetime
    unreadable: int = 0  # stored rows left out of `rows` because they could not be read


class SummaryIndexUnreadableError(Exception):
    """The subscriptions could not be read, and this instance has no earlier copy to show instead."""


LIST_UNREADABLE = (
    "The stored subscriptions could not be read just now, so they are not shown; the log says why. "
    "Reload the page in a minute."
)


class SummaryIndex:
    """One instance's copy of the list columns, read again once older than `max_age` seconds.

    Only the first read of an instance waits for the table. Past `max_age`, readers keep the copy they
    have while one background thread reads the table again, so a page is at most `max_age` plus one read
    (seconds for 10,000 rows on Azurite) old, unless reads fail: then `failed_since` says since when, so a
    page can say its copy is older than it claims. `clock` is monotonic seconds.
    """

    def __init__(
        self,
        source: SummarySource,
        *,
        max_age: float = DEFAULT_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()  # held by whoever is reading the table
        self._snapshot: Snapshot | None = None
        self._read_at = 0.0
        self._loaded = threading.Event()  # set once a copy exists
        self._failed_at: datetime | None = None  # the first failed read since the last good one

    @property
    def max_age(self) -> float:
        return self._max_age

    @property
    def failed_since(self) -> datetime | None:
        """When reads of the table began to fail (None while the last read succeeded)."""
        return self._failed_at

    def snapshot(self) -> Snapshot:
        """The copy, read first if there is none. A copy past `max_age` is still returned at once, while
        one background thread reads the table again: no reader after an instance's first waits for it.
        Raises SummaryIndexUnreadableError when there is no copy and the table cannot be read."""
        current = self._snapshot
        if current is None:
            with self._lock:
                if self._snapshot is None:
                    try:
                        return self._refresh()
                    except Exception as exc:
                        self._note_failure()
                        log.exception("subscription list could not be read")
                        raise SummaryIndexUnreadableError("the subscriptions could not be read") from exc
                return self._snapshot
        self._refresh_if_old()
        return current

    def snapshot_within(self, seconds: float) -> Snapshot | None:
        """Like `snapshot`, but an instance's first read waits at most `seconds`: None means the table is
        still being read in the background (a page says so and asks again), so no answer waits longer.
        Once a read failed, and until one succeeds, raises SummaryIndexUnreadableError instead of None, so
        a page reports the failure rather than "still reading" forever."""
        current = self._snapshot
        if current is not None:
            self._refresh_if_old()
            return current
        self._start_refresh()
        self._loaded.wait(seconds)
        current = self._snapshot
        if current is None and self._failed_at is not None:
            raise SummaryIndexUnreadableError("the subscriptions could not be read")
        return current

    def _refresh_if_old(self) -> None:
        if self._clock() - self._read_at >= self._max_age:
            self._start_refresh()

    def _start_refresh(self) -> None:
        if not self._lock.acquire(blocking=False):
            return  # a read is already under way
        try:
            threading.Thread(target=self._refresh_in_background, name="summary-index", daemon=True).start()
        except Exception:
            # No thread owns the lock now: without this release no read would ever start again.
            self._lock.release()
            self._note_failure()
            log.exception("subscription list: no thread to read it again; the previous copy stays")

    def _refresh_in_background(self) -> None:
        try:
            self._refresh()
        except Exception:  # the old copy keeps answering; the next read past max_age tries again
            self._note_failure()
            log.exception("subscription list could not be read again; the previous copy stays")
        finally:
            self._lock.release()

    def _note_failure(self) -> None:
        if self._failed_at is None:
            self._failed_at = utcnow()

    def expire(self) -> None:
        """Treats the copy as past `max_age`: the next read starts a background read (benches, tests)."""
        self._read_at = self._clock() - self._max_age

    def forget(self) -> None:
        """The next read goes to the table (after an operator's own change, or in tests)."""
        with self._lock:
            self._snapshot = None
            self._failed_at = None
            self._loaded.clear()

    def _refresh(self) -> Snapshot:
        started = self._clock()
        taken_at = utcnow()
        unreadable: list[str] = []
        rows = tuple(self._source.list_summaries(unreadable=unreadable))
        self._snapshot = Snapshot(rows, taken_at, len(unreadable))
        self._read_at = self._clock()
        self._failed_at = None
        self._loaded.set()
        log.info(
            "subscription list read",
            extra={
                "rows": len(rows),
                "unreadable": len(unreadable),
                "seconds": round(self._read_at - started, 3),
            },
        )
        return self._snapshot


def index_notes(snapshot: Snapshot, index: SummaryIndex) -> list[str]:
    """What a page shown from `snapshot` must say besides its rows: stored rows it could not read, and a
    copy older than the page's "read again every 30 seconds" because reading again keeps failing."""
    notes = []
    if snapshot.unreadable:
        many = snapshot.unreadable != 1
        notes.append(
            f"{snapshot.unreadable} stored subscription row{'s' if many else ''} could not be read and "
            f"{'are' if many else 'is'} left out here; the log names {'them' if many else 'it'} by id."
        )
    if index.failed_since is not None:
        notes.append(
            f"The subscription list could not be refreshed since {snapshot.taken_at:%Y-%m-%d %H:%M:%S} UTC: "
            f"what is shown is the copy read then (tried again every {index.max_age:.0f} seconds)."
        )
    return notes


@dataclass(frozen=True)
class SearchResult:
    rows: list[SubscriptionSummary]
    page: Page
    as_of: datetime
    notes: tuple[str, ...] = ()  # `index_notes`


@dataclass(frozen=True)
class SubscriptionViewPorts:
    subscriptions: SubscriptionCatalog
    inbox: Inbox
    audit: AuditHistory
    seats: SeatBook


@dataclass(frozen=True)
class SubscriptionDetail:
    subscription: Subscription
    operations: list[InboxRecord]
    audit: list[AuditEntry]
    seats: list[Seat]


@dataclass(frozen=True)
class MicrosoftView:
    """What Microsoft says about one subscription now; `problem` (words) when it could not say it."""

    subscription: MicrosoftSubscription | None
    in_progress: list[Operation]
    problem: str = ""
    operations_problem: str = ""


def find_subscriptions(query: SubscriptionQuery, *, ports: SubscriptionViewPorts) -> list[Subscription]:
    matching = (sub for sub in ports.subscriptions.list_all() if query.matches(sub))
    return list(islice(matching, query.limit)) if query.limit is not None else list(matching)


def search_subscriptions(
    query: SubscriptionQuery, page: int, page_size: int, *, index: SummaryIndex, wait: float | None = None
) -> SearchResult | None:
    """One page of the subscriptions `query` matches (newest first, then by id) and how many match in all.
    A page past the last one comes back empty, with the total, so the caller can say so. With `wait`, an
    instance's first read waits that long at most: None means the list is still being read. Raises
    SummaryIndexUnreadableError when the list cannot be read and there is no earlier copy."""
    snapshot = index.snapshot() if wait is None else index.snapshot_within(wait)
    if snapshot is None:
        return None
    matching = [row for row in snapshot.rows if query.matches(row)]
    matching.sort(key=_list_order)
    found = Page(number=page, size=page_size, total=len(matching))
    rows = matching[found.start : found.start + page_size]
    return SearchResult(rows, found, snapshot.taken_at, tuple(index_notes(snapshot, index)))


def export_subscriptions(query: SubscriptionQuery, *, index: SummaryIndex) -> Iterator[SubscriptionSummary]:
    """Every subscription `query` matches, in the list's order (the CSV export)."""
    snapshot = index.snapshot()
    yield from sorted((row for row in snapshot.rows if query.matches(row)), key=_list_order)


def _list_order(row: SubscriptionSummary) -> tuple[bool, float, str]:
    return (row.created_at is None, -row.created_at.timestamp() if row.created_at else 0.0, row.id)


def subscription_detail(subscription_id: str, *, ports: SubscriptionViewPorts) -> SubscriptionDetail | None:
    """The stored mirror, its inbox operations (oldest first) and its audit trail; None if unknown."""
    stored = ports.subscriptions.get(subscription_id)
    if stored is None:
        return None
    operations = sorted(
        ports.inbox.list_for_subscription(subscription_id),
        key=lambda record: (record.created_at is None, record.created_at),
    )
    seats = ports.seats.list(subscription_id)
    return SubscriptionDetail(stored, operations, ports.audit.list(subscription_id), seats)


def microsoft_view(subscription_id: str, *, marketplace: Marketplace, correlation_id: str) -> MicrosoftView:
    """GetSubscription and ListOperations (the operations still in progress) for one subscription."""
    try:
        live = marketplace.get_subscription(subscription_id, correlation_id=correlation_id)
    except FulfillmentNotFoundError:
        log.info("GetSubscription: Microsoft does not know the subscription")
        return MicrosoftView(None, [], MICROSOFT_UNKNOWN)
    except FulfillmentError as exc:
        log.warning("GetSubscription failed for the console", extra={"status": exc.status_code})
        return MicrosoftView(None, [], MICROSOFT_SILENT)
    try:
        in_progress = marketplace.list_operations(subscription_id, correlation_id=correlation_id)
    except FulfillmentError as exc:
        log.warning("ListOperations failed for the console", extra={"status": exc.status_code})
        return MicrosoftView(live, [], operations_problem=OPERATIONS_SILENT)
    return MicrosoftView(live, in_progress)
