"""Microsoft's window for refusing a plan or quantity change, and what a late message does with it (pure).

Microsoft waits about ten seconds for the publisher's answer to a ChangePlan or ChangeQuantity and then
applies the change anyway (R34, R36). A webhook that waited in the queue for more than a moment means the
worker is behind, typically in a burst of changes: every message still queued has less of its window left.
Then the worker sends the answer and, where nothing reads the stored state before the re-check, leaves the
mirror of Microsoft's new state to the re-check it schedules anyway, a little later than usual so that it
runs after the burst instead of inside it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.domain.status import Action

ANSWER_WINDOW = timedelta(seconds=10)
# How long a change may have waited before the worker counts itself behind: far above the queue's ordinary
# latency (milliseconds) and a twentieth of the window. Later would let the backlog grow at full cost per
# change before the cheap path starts (a burst measured at 99 changes/s answered 332 of 500 with 2 s).
BEHIND_AFTER = timedelta(milliseconds=500)
# When to look again after answering (the outcome and the new state): once the window has surely closed;
# when behind, once the burst has most likely been answered.
RECHECK_AFTER = timedelta(seconds=15)
RECHECK_AFTER_WHEN_BEHIND = timedelta(seconds=60)


def is_behind(received_at: datetime | None, now: datetime) -> bool:
    """Whether a change received at `received_at` (by the webhook) has waited long enough to mean a backlog.

    Unknown (None) is not behind: the message predates the timestamp, and mirroring at once is always safe.
    """
    return received_at is not None and now - received_at > BEHIND_AFTER


def recheck_delay(behind: bool) -> timedelta:
    return RECHECK_AFTER_WHEN_BEHIND if behind else RECHECK_AFTER


def mirror_can_wait(
    accepted: bool, action: Action, target_quantity: int | None, stored_quantity: int | None
) -> bool:
    """Whether the stored subscription may keep its old values until the re-check, after an answer.

    A refusal changes nothing at Microsoft. An accepted seat increase only raises a limit nobody is refused
    by in the meantime (a quantity decision reads the seats in use, not the stored quantity). An accepted plan
    change or seat cut must be mirrored at once: the next plan decision reads the stored plan (a downgrade
    judged from a stale one would pass as an upgrade), and seat assignment reads the stored quantity.
    """
    if not accepted:
        return True
    if action is not Action.CHANGE_QUANTITY or target_quantity is None or stored_quantity is None:
        return False
    return target_quantity >= stored_quantity
