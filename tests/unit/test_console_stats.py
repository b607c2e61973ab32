"""The console overview's arithmetic (shared/domain/console_stats.py) and the list's query and paging."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from shared.domain.console_stats import (
    Activity,
    activities,
    count_by,
    count_per_day,
    last_days,
    latency_per_day,
    percentile,
)
from shared.domain.status import SubscriptionStatus
from shared.domain.subscription import Party
from shared.domain.subscription_query import (
    MAX_TEXT,
    Page,
    SubscriptionQuery,
    SubscriptionSummary,
    parse_page,
)

TODAY = date(2026, 12, 1)


def at(day: date, hour: int = 12, second: float = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC) + timedelta(seconds=second)


def test_last_days_are_oldest_first_and_end_today() -> None:
    days = last_days(TODAY, 14)
    assert len(days) == 14
    assert days[0] == date(2026, 11, 18)
    assert days[-1] == TODAY


def test_count_per_day_ignores_moments_outside_the_window() -> None:
    days = last_days(TODAY, 3)
    moments = [at(TODAY), at(TODAY, 23), at(TODAY - timedelta(days=2), 0), at(TODAY - timedelta(days=9))]
    assert count_per_day(moments, days) == {days[0]: 1, days[1]: 0, days[2]: 2}


def test_count_by_puts_the_largest_first_with_a_stable_order() -> None:
    assert list(count_by(["b", "a", "b", "c", "a"], str).items()) == [("a", 2), ("b", 2), ("c", 1)]


def test_count_by_groups_keys_that_differ_only_in_case_as_the_lists_filters_do() -> None:
    assert count_by(["Analytics", "analytics", "ANALYTICS", "backup"], str) == {"Analytics": 3, "backup": 1}


def test_a_first_sight_of_a_subscription_already_cancelled_is_no_cancellation_today() -> None:
    assert activities({"status": (None, "Unsubscribed")}) == set()
    assert activities({"status": ("Subscribed", "Unsubscribed")}) == {Activity.CANCELLATION}


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 50, None),
        ([3.0], 99, 3.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
        ([float(n) for n in range(1, 101)], 99, 99.0),
        ([float(n) for n in range(1, 101)], 100, 100.0),
        ([5.0, 1.0, 3.0], 0, 1.0),
    ],
)
def test_percentile_is_nearest_rank(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected


def test_percentile_refuses_a_q_out_of_range() -> None:
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], 101)


def test_latency_per_day_buckets_by_the_day_the_webhook_took_it_in() -> None:
    days = last_days(TODAY, 2)
    pairs = [
        (at(TODAY), at(TODAY, second=1.5)),
        (at(TODAY), at(TODAY, second=3.0)),
        (at(TODAY, 23, 3599), at(TODAY, 23, 3601)),  # answered after midnight: still today's
        (at(TODAY), at(TODAY, second=-1)),  # clocks disagree: 0 s, not negative
        (at(TODAY - timedelta(days=5)), at(TODAY - timedelta(days=5), second=9)),  # outside the window
    ]
    yesterday, today = latency_per_day(pairs, days)
    assert (yesterday.answered, yesterday.p50_seconds, yesterday.p99_seconds) == (0, None, None)
    assert today.answered == 4
    assert today.p50_seconds == 1.5
    assert today.p99_seconds == 3.0


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"status": ("PendingFulfillmentStart", "Subscribed")}, {Activity.ACTIVATION}),
        ({"status": ("Suspended", "Subscribed")}, set()),  # a reinstatement is no activation
        ({"status": (None, "Subscribed"), "plan_id": (None, "pro"), "quantity": (None, 5)}, set()),
        ({"status": ("Subscribed", "Unsubscribed")}, {Activity.CANCELLATION}),
        ({"plan_id": ("basic", "pro"), "quantity": (5, 10)}, {Activity.PLAN_CHANGE, Activity.SEAT_CHANGE}),
        ({"quantity": (5, 4)}, {Activity.SEAT_CHANGE}),
        ({"last_synced_at": ("a", "b")}, set()),
    ],
)
def test_activities_count_what_an_audit_entry_changed(changes: dict, expected: set[Activity]) -> None:
    assert activities(changes) == expected


SUMMARY = SubscriptionSummary(
    id="0d3c5a1e-aaaa-4000-8000-000000000001",
    name="Contoso Analytics",
    offer_id="analytics",
    plan_id="pro",
    quantity=5,
    status=SubscriptionStatus.SUBSCRIBED,
    purchaser=Party(email="adele@contoso.com", tenant_id="t-buyer"),
    beneficiary=Party(email="megan@fabrikam.com", tenant_id="t-user"),
)


@pytest.mark.parametrize(
    ("query", "matches"),
    [
        (SubscriptionQuery(id="0D3C5A1E"), True),
        (SubscriptionQuery(id="ffff"), False),
        (SubscriptionQuery(name="analytics"), True),
        (SubscriptionQuery(name="fabrikam"), False),
        (SubscriptionQuery(buyer="MEGAN@"), True),
        (SubscriptionQuery(buyer="adele"), True),
        (SubscriptionQuery(buyer="t-user"), False),
        (SubscriptionQuery(tenant=" t-buyer "), True),
        (SubscriptionQuery(offer="Analytics", plan="PRO", status=" subscribed"), True),
        (SubscriptionQuery(plan="pr"), False),
        (SubscriptionQuery(search="fabrikam"), True),
    ],
)
def test_a_query_matches_a_summary_by_each_field(query: SubscriptionQuery, matches: bool) -> None:
    assert query.matches(SUMMARY) is matches


def test_query_problems_say_what_to_fix() -> None:
    assert SubscriptionQuery(status="Subscribed").problems() == []
    (unknown,) = SubscriptionQuery(status="Subscribd").problems()
    assert "no status" in unknown
    assert "Subscribed" in unknown
    (long,) = SubscriptionQuery(search="x" * 10_000).problems()
    assert "10,000 characters" in long
    assert str(MAX_TEXT) in long


@pytest.mark.parametrize(
    ("raw", "page"),
    [
        ("", 1),
        ("1", 1),
        (" 7 ", 7),
        ("0", None),
        ("-1", None),
        ("abc", None),
        ("1e3", None),
        ("99999999999999999999", None),
        ("\uff11", None),
        ("1000000", 1_000_000),
        ("1000001", None),
    ],
)
def test_parse_page(raw: str, page: int | None) -> None:
    assert parse_page(raw) == page


def test_page_arithmetic() -> None:
    assert Page(1, 50, 0).count == 1
    assert Page(1, 50, 101).count == 3
    last = Page(3, 50, 101)
    assert (last.start, last.has_previous, last.has_next) == (100, True, False)
    assert Page(1, 50, 51).has_next
