"""When a change counts as handled behind (a backlog), and how long its re-check waits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.domain.answer_window import (
    ANSWER_WINDOW,
    BEHIND_AFTER,
    RECHECK_AFTER,
    RECHECK_AFTER_WHEN_BEHIND,
    is_behind,
    mirror_can_wait,
    recheck_delay,
)
from shared.domain.status import Action

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_a_change_taken_in_just_now_is_not_behind() -> None:
    assert not is_behind(NOW - timedelta(milliseconds=50), NOW)
    assert not is_behind(NOW - BEHIND_AFTER, NOW)


def test_a_change_that_waited_past_the_threshold_is_behind() -> None:
    assert is_behind(NOW - BEHIND_AFTER - timedelta(milliseconds=1), NOW)


def test_an_unknown_reception_time_is_not_behind() -> None:
    assert not is_behind(None, NOW)


def test_the_threshold_leaves_most_of_the_window_and_the_recheck_waits_longer_when_behind() -> None:
    assert BEHIND_AFTER * 4 <= ANSWER_WINDOW < RECHECK_AFTER < RECHECK_AFTER_WHEN_BEHIND
    assert recheck_delay(False) == RECHECK_AFTER
    assert recheck_delay(True) == RECHECK_AFTER_WHEN_BEHIND


def test_a_refusal_or_an_accepted_seat_increase_may_wait_for_the_recheck() -> None:
    assert mirror_can_wait(False, Action.CHANGE_PLAN, None, None)
    assert mirror_can_wait(False, Action.CHANGE_QUANTITY, 2, 10)
    assert mirror_can_wait(True, Action.CHANGE_QUANTITY, 12, 10)
    assert mirror_can_wait(True, Action.CHANGE_QUANTITY, 10, 10)


def test_an_accepted_plan_change_or_seat_cut_is_mirrored_at_once() -> None:
    assert not mirror_can_wait(True, Action.CHANGE_PLAN, None, 10)
    assert not mirror_can_wait(True, Action.CHANGE_QUANTITY, 9, 10)
    assert not mirror_can_wait(True, Action.CHANGE_QUANTITY, 12, None), "no stored quantity: mirror at once"
