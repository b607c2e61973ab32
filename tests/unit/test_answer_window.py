"""When a change counts as handled behind (a backlog), and how long its re-check waits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.domain.answer_window import (
    ANSWER_WINDOW,
    BEHIND_AFTER,
    RECHECK_AFTER,
    RECHECK_AFTER_WHEN_BEHIND,
    is_behind,
    recheck_delay,
)

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
