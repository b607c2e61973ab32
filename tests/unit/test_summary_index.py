"""The console list's per-instance copy: read once, answered from memory, read again once too old."""

from __future__ import annotations

import threading

import pytest

from shared.domain.subscription_query import SubscriptionQuery, SubscriptionSummary
from shared.workflows.subscription_views import (
    SummaryIndex,
    SummaryIndexUnreadableError,
    export_subscriptions,
    search_subscriptions,
)


class Source:
    def __init__(self, count: int) -> None:
        self.rows = [SubscriptionSummary(id=f"sub-{n:03}", name=f"Name {n}") for n in range(count)]
        self.reads = 0
        self.gate: threading.Event | None = None

    def list_summaries(self, *, unreadable: list[str] | None = None) -> list[SubscriptionSummary]:
        self.reads += 1
        if self.gate is not None:
            self.gate.wait(5)
        return list(self.rows)


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def _settle(index: SummaryIndex) -> None:
    """Waits for a background read to finish (it holds the index's lock while it runs)."""
    with index._lock:
        pass


def test_the_table_is_read_once_then_again_in_the_background_past_max_age() -> None:
    source, clock = Source(3), Clock()
    index = SummaryIndex(source, max_age=30, clock=clock)
    assert len(index.snapshot().rows) == 3
    source.rows.append(SubscriptionSummary(id="sub-new"))
    clock.now = 29.9
    assert len(index.snapshot().rows) == 3, "inside max_age the copy answers"
    assert source.reads == 1
    clock.now = 30.0
    assert len(index.snapshot().rows) == 3, "past max_age the old copy still answers at once"
    _settle(index)
    assert source.reads == 2
    assert len(index.snapshot().rows) == 4, "and the next reader gets the copy read meanwhile"


def test_readers_never_wait_for_a_background_read_and_only_one_runs() -> None:
    source, clock = Source(2), Clock()
    index = SummaryIndex(source, max_age=1, clock=clock)
    index.snapshot()
    clock.now = 5
    source.gate = threading.Event()
    for _ in range(5):
        assert len(index.snapshot().rows) == 2, "the stale copy, without waiting"
    source.gate.set()
    _settle(index)
    assert source.reads == 2, "one background read, however many readers came meanwhile"


def test_a_failed_background_read_keeps_the_old_copy() -> None:
    source, clock = Source(2), Clock()
    index = SummaryIndex(source, max_age=1, clock=clock)
    index.snapshot()
    clock.now = 5

    def broken(*, unreadable: list[str] | None = None) -> list[SubscriptionSummary]:
        raise ConnectionError("table unreachable")

    source.list_summaries = broken  # type: ignore[method-assign]
    assert len(index.snapshot().rows) == 2
    _settle(index)
    assert len(index.snapshot().rows) == 2


def test_search_pages_and_counts_and_export_takes_every_match() -> None:
    index = SummaryIndex(Source(120))
    first = search_subscriptions(SubscriptionQuery(), 1, 50, index=index)
    assert first.page.total == 120
    assert len(first.rows) == 50
    assert first.page.has_next
    last = search_subscriptions(SubscriptionQuery(), 3, 50, index=index)
    assert len(last.rows) == 20
    assert not last.page.has_next
    assert search_subscriptions(SubscriptionQuery(), 9, 50, index=index).rows == []
    found = search_subscriptions(SubscriptionQuery(name="name 11"), 1, 50, index=index)
    assert {row.id for row in found.rows} == {
        "sub-011",
        "sub-110",
        "sub-111",
        "sub-112",
        "sub-113",
        "sub-114",
        "sub-115",
        "sub-116",
        "sub-117",
        "sub-118",
        "sub-119",
    }
    assert len(list(export_subscriptions(SubscriptionQuery(), index=index))) == 120


def test_a_first_read_waits_only_so_long_then_the_copy_arrives_in_the_background() -> None:
    source = Source(4)
    source.gate = threading.Event()
    index = SummaryIndex(source)
    assert index.snapshot_within(0.05) is None, "still being read"
    assert index.snapshot_within(0.05) is None
    source.gate.set()
    _settle(index)
    assert source.reads == 1, "one read, however many pages asked meanwhile"
    snapshot = index.snapshot_within(0.05)
    assert snapshot is not None
    assert len(snapshot.rows) == 4
    assert search_subscriptions(SubscriptionQuery(), 1, 50, index=index, wait=0.05) is not None


def test_a_failed_first_read_is_reported_to_every_caller_until_a_read_succeeds() -> None:
    # Not None ("still reading") on every other call: a page would reload itself forever.
    source = Source(1)
    working = source.list_summaries

    def broken(*, unreadable: list[str] | None = None) -> list[SubscriptionSummary]:
        raise ConnectionError("table unreachable")

    source.list_summaries = broken  # type: ignore[method-assign]
    index = SummaryIndex(source)
    for _ in range(3):
        with pytest.raises(SummaryIndexUnreadableError):
            index.snapshot_within(0.2)
        _settle(index)
    assert index.failed_since is not None
    source.list_summaries = working  # type: ignore[method-assign]
    snapshot = index.snapshot_within(1)
    assert snapshot is not None
    assert len(snapshot.rows) == 1
    assert index.failed_since is None
