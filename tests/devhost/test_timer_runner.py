"""The dev host runs timer triggers from their registrations: schedule, `%SETTING%`, run_on_startup, one run
at a time, a clean stop. Real threads and a real clock on an every-second schedule."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import azure.functions as func
import pytest

from devhost.schedules import Schedule, ScheduleError, resolve_references
from devhost.timer_runner import TimerFunction, TimerRunner, timer_functions
from tests.support.sandbox import wait_until

EVERY_SECOND = "* * * * * *"


def timer_app(schedule: str, work: Callable[[func.TimerRequest], None], *, run_on_startup: bool = False):
    app = func.FunctionApp()

    @app.timer_trigger(schedule=schedule, arg_name="tick", run_on_startup=run_on_startup)
    def ticker(tick: func.TimerRequest) -> None:
        work(tick)

    return app


def test_a_schedule_has_six_fields_with_seconds_first() -> None:
    schedule = Schedule("0 */30 * * * *")
    after = schedule.next_after(datetime(2026, 1, 1, 0, 10, 5, tzinfo=UTC))
    assert after == datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
    assert Schedule("*/15 * * * * *").next_after(after) == datetime(2026, 1, 1, 0, 30, 15, tzinfo=UTC)
    for refused in ("*/30 * * * *", "0 0 */30 * * * *", "0 99 * * * *", ""):
        with pytest.raises(ScheduleError):
            Schedule(refused)


def test_a_setting_reference_is_resolved_and_an_unset_one_refused() -> None:
    assert resolve_references("%EVERY%", {"EVERY": "*/5 * * * * *"}) == "*/5 * * * * *"
    with pytest.raises(ScheduleError, match="RECONCILE_SCHEDULE"):
        resolve_references("%RECONCILE_SCHEDULE%", {})


def app_timers(**schedules: str) -> dict[str, TimerFunction]:
    import function_app

    environ = {"RECONCILE_SCHEDULE": "0 */30 * * * *", "PURGE_SCHEDULE": "0 30 3 * * *", **schedules}
    return {timer.name: timer for timer in timer_functions(function_app.app, environ)}


def test_the_apps_sweep_follows_its_setting() -> None:
    sweep = app_timers(RECONCILE_SCHEDULE="*/5 * * * * *")["reconciliation_sweep"]
    assert sweep.schedule.expression == "*/5 * * * * *"
    assert sweep.run_on_startup is False
    default = app_timers()["reconciliation_sweep"]
    assert default.schedule.expression == "0 */30 * * * *"


def test_the_apps_purge_follows_its_setting() -> None:
    timers = app_timers(PURGE_SCHEDULE="0 0 4 * * *")
    assert set(timers) == {"reconciliation_sweep", "personal_data_purge"}
    assert timers["personal_data_purge"].schedule.expression == "0 0 4 * * *"
    assert timers["personal_data_purge"].run_on_startup is False


def test_the_purge_needs_its_setting() -> None:
    import function_app

    with pytest.raises(ScheduleError, match="PURGE_SCHEDULE"):
        timer_functions(function_app.app, {"RECONCILE_SCHEDULE": "0 */30 * * * *"})


def test_it_runs_on_schedule_and_stops_at_once() -> None:
    ticks: list[func.TimerRequest] = []
    runner = TimerRunner.for_app(timer_app(EVERY_SECOND, ticks.append))
    assert runner is not None
    runner.start()
    try:
        wait_until(lambda: len(ticks) >= 2, 5)
    finally:
        started = time.monotonic()
        runner.stop()
    assert time.monotonic() - started < 1.0, "a sleeping timer wakes up on stop"
    assert not any(tick.past_due for tick in ticks)
    assert runner.stats["ticker"].runs == len(ticks)


def test_run_on_startup_runs_before_the_first_occurrence() -> None:
    ticks: list[float] = []
    runner = TimerRunner.for_app(
        timer_app("0 0 0 1 1 *", lambda tick: ticks.append(time.monotonic()), run_on_startup=True)
    )
    assert runner is not None
    runner.start()
    try:
        wait_until(lambda: len(ticks) == 1, 3)
    finally:
        runner.stop()
    assert len(ticks) == 1  # once a year otherwise


def test_a_timer_never_overlaps_itself_and_skips_what_passed_meanwhile() -> None:
    running = 0
    most = 0
    lock = threading.Lock()

    def slow(tick: func.TimerRequest) -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(2.2)
        with lock:
            running -= 1

    runner = TimerRunner.for_app(timer_app(EVERY_SECOND, slow))
    assert runner is not None
    runner.start()
    try:
        wait_until(lambda: runner.stats["ticker"].runs >= 2, 8)
    finally:
        runner.stop()
    assert most == 1
    assert runner.stats["ticker"].skipped >= 2
    assert not runner.stats["ticker"].running, "stop waited for the run in progress"


def test_a_failing_run_is_logged_and_the_schedule_goes_on() -> None:
    def fail(tick: func.TimerRequest) -> None:
        raise RuntimeError("boom")

    runner = TimerRunner.for_app(timer_app(EVERY_SECOND, fail))
    assert runner is not None
    runner.start()
    try:
        wait_until(lambda: runner.stats["ticker"].failures >= 2, 5)
    finally:
        runner.stop()
