"""When to look at a running operation again: often at first, then more and more rarely, and when to stop.

Most operations end within seconds, so the first looks are 5 s apart for five minutes. Some take longer (an
unsubscribe Microsoft processes slowly, an outage on its side); giving up after five minutes left their
inbox record "in progress" for good, since the reconciliation sweep only visits subscriptions whose stored
state drifted. So the looks go on, doubling from five minutes to at most an hour apart, for two days; only
then is the operation left to an operator (the console lists it among the operations in progress).
"""

from __future__ import annotations

from datetime import timedelta

FAST_EVERY = timedelta(seconds=5)
FAST_LOOKS = 60  # five minutes
SLOW_FIRST = timedelta(minutes=5)
SLOW_MOST = timedelta(hours=1)
GIVE_UP_AFTER = timedelta(days=2)


def next_look(attempt: int) -> timedelta | None:
    """How long after look number `attempt` (0-based) to look again; None once two days of looks are spent."""
    if attempt + 1 < FAST_LOOKS:
        return FAST_EVERY
    spent = FAST_EVERY * FAST_LOOKS
    delay = SLOW_FIRST
    for _ in range(attempt + 1 - FAST_LOOKS):
        spent += delay
        delay = min(delay * 2, SLOW_MOST)
    return delay if spent + delay <= GIVE_UP_AFTER else None
