"""The overview's arithmetic, pure: counts per day and per value, latency percentiles per day.

What an audit entry counts as: the entry holds the fields the mirror changed (`AuditEntry.changes`, field
-> [old, new]), so a change is counted by what it did, whoever caused it (a webhook, the landing page, the
reconciliation that found it late), and a refused change, which changed nothing, is never counted.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from shared.domain.status import SubscriptionStatus

DAYS = 14
T = TypeVar("T")


class Activity(StrEnum):
    ACTIVATION = "activation"
    PLAN_CHANGE = "plan change"
    SEAT_CHANGE = "seat change"
    CANCELLATION = "cancellation"


def activities(changes: Mapping[str, tuple[Any, Any]]) -> set[Activity]:
    """What one audit entry's changes amount to (an entry may be two, e.g. a plan and its seats)."""
    found: set[Activity] = set()
    old_status, new_status = changes.get("status", (None, None))
    if new_status == SubscriptionStatus.SUBSCRIBED.value and old_status in (
        SubscriptionStatus.PENDING_FULFILLMENT_START.value,
        SubscriptionStatus.PENDING_FULFILLMENT_START,
    ):
        found.add(Activity.ACTIVATION)
    # A first sight of one already cancelled (a first sweep over old purchases) is no cancellation today.
    if new_status == SubscriptionStatus.UNSUBSCRIBED.value and old_status not in (None, "", new_status):
        found.add(Activity.CANCELLATION)
    # A first sight (old None) records what the subscription was bought with, not a change of it.
    if "plan_id" in changes and changes["plan_id"][0] not in (None, ""):
        found.add(Activity.PLAN_CHANGE)
    if "quantity" in changes and changes["quantity"][0] is not None:
        found.add(Activity.SEAT_CHANGE)
    return found


def last_days(today: date, days: int = DAYS) -> list[date]:
    """The `days` calendar days (UTC) ending with `today`, oldest first."""
    return [today - timedelta(days=back) for back in range(days - 1, -1, -1)]


def count_per_day(moments: Iterable[datetime], days: list[date]) -> dict[date, int]:
    """How many moments fall on each of `days` (by their UTC date); moments outside are ignored."""
    counts = Counter(moment.date() for moment in moments)
    return {day: counts.get(day, 0) for day in days}


def count_by(items: Iterable[T], key: Callable[[T], str]) -> dict[str, int]:
    """How many items share each key, largest first (ties by key, so the order is stable).

    Keys that differ only in case are one group, shown as first seen: the list's filters ignore case, so
    "Analytics" and "analytics" counted apart would each link to a list of both."""
    counts: Counter[str] = Counter()
    shown: dict[str, str] = {}
    for item in items:
        label = key(item)
        group = label.casefold()
        shown.setdefault(group, label)
        counts[group] += 1
    return dict(sorted(((shown[g], n) for g, n in counts.items()), key=lambda pair: (-pair[1], pair[0])))


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank percentile (`q` from 0 to 100) of `values`: a value that occurred, never an
    interpolation; None for no values."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"q must be between 0 and 100, got {q}")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class DayLatency:
    day: date
    answered: int
    p50_seconds: float | None
    p99_seconds: float | None


def latency_per_day(pairs: Iterable[tuple[datetime, datetime]], days: list[date]) -> list[DayLatency]:
    """For each day, the webhook-to-answer seconds of the changes taken in that day (received, answered);
    a pair answered before it was received (clocks of two machines) counts as 0 s."""
    seconds: dict[date, list[float]] = {day: [] for day in days}
    for received, answered in pairs:
        bucket = seconds.get(received.date())
        if bucket is not None:
            bucket.append(max(0.0, (answered - received).total_seconds()))
    return [
        DayLatency(day, len(values), percentile(values, 50), percentile(values, 99))
        for day, values in seconds.items()
    ]
