"""How often a running operation is looked at again, and when the looks stop."""

from __future__ import annotations

from datetime import timedelta

from shared.domain.tracking_schedule import FAST_EVERY, FAST_LOOKS, GIVE_UP_AFTER, SLOW_MOST, next_look


def test_the_first_five_minutes_look_every_five_seconds() -> None:
    assert [next_look(a) for a in range(FAST_LOOKS - 1)] == [FAST_EVERY] * (FAST_LOOKS - 1)


def test_then_the_looks_slow_down_to_at_most_an_hour_and_stop_after_two_days() -> None:
    waits = []
    attempt = 0
    while (wait := next_look(attempt)) is not None:
        waits.append(wait)
        attempt += 1
    slow = waits[FAST_LOOKS - 1 :]
    assert slow[:4] == [timedelta(minutes=m) for m in (5, 10, 20, 40)]
    assert max(slow) == SLOW_MOST
    assert sum(waits, timedelta()) <= GIVE_UP_AFTER
    assert sum(waits, timedelta()) > GIVE_UP_AFTER - SLOW_MOST, "the looks go on for (nearly) two days"
    assert len(waits) < 120, "a bounded number of messages per operation"
