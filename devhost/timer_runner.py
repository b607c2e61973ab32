"""Runs the app's timer-triggered functions on their schedules, the way the Functions host does.

Everything comes from the registrations (`app.get_functions()`): the NCRONTAB schedule (with `%SETTING%`
resolved from the environment, so a setting moves it, as in Azure), `run_on_startup`, the argument name.
Each timer has one thread that sleeps until the next occurrence and runs the function on that thread, so a
timer never overlaps itself: occurrences that pass while a run is still going are skipped and logged, and
the next run is the first occurrence after it ends (the host's singleton lock does the same across
instances). The function gets an `azure.functions.TimerRequest` with `past_due` set when it starts more
than a second late. A failing run is logged and the schedule goes on. `stop()` lets a run in progress
finish and wakes the sleeping threads at once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
from azure.functions.timer import TimerRequest

from devhost import function_name, registered_functions
from devhost.http_host import call_user_function
from devhost.schedules import Schedule, resolve_references
from shared.logs import get_logger, log_context

TIMER_TRIGGER = "timerTrigger"
# A run that starts later than this after its occurrence is past due (TimerInfo.IsPastDue on the host).
PAST_DUE_AFTER = timedelta(seconds=1)
# Counting the occurrences skipped during a long run stops here: a number for the log, not a loop to run.
_SKIPPED_COUNT_LIMIT = 10_000

_log = get_logger(__name__)


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class TimerFunction:
    """One timer trigger as registered, with its schedule resolved."""

    name: str
    schedule: Schedule
    run_on_startup: bool
    argument: str
    user_function: Callable[..., Any]


def timer_functions(app: func.FunctionApp, environ: Mapping[str, str] | None = None) -> list[TimerFunction]:
    """The timer triggers of `app`; ScheduleError for a schedule (or its setting) the host would refuse."""
    env = os.environ if environ is None else environ
    found = []
    for function in registered_functions(app):
        trigger = function.get_trigger()
        if trigger is None or trigger.type != TIMER_TRIGGER:
            continue
        found.append(
            TimerFunction(
                name=function_name(function),
                schedule=Schedule(resolve_references(getattr(trigger, "schedule", ""), env)),
                run_on_startup=bool(getattr(trigger, "run_on_startup", False)),
                argument=trigger.name,
                user_function=function.get_user_function(),
            )
        )
    return found


@dataclass
class TimerStats:
    """What a timer did so far: runs started, runs that raised, occurrences skipped during a run."""

    runs: int = 0
    failures: int = 0
    skipped: int = 0
    running: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class TimerRunner:
    """A thread per timer function, until `stop()`; `stats[name]` says what each timer did."""

    def __init__(
        self,
        functions: list[TimerFunction],
        *,
        stop_event: threading.Event | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.functions = functions
        self.stop_event = stop_event or threading.Event()
        self._clock = clock
        self.stats = {function.name: TimerStats() for function in functions}
        self._threads = [
            threading.Thread(target=self._run_timer, args=(f,), name=f"devhost-timer-{f.name}", daemon=True)
            for f in functions
        ]

    @classmethod
    def for_app(cls, app: func.FunctionApp, **options: Any) -> TimerRunner | None:
        """The runner for the app's timer triggers; None when it has none."""
        functions = timer_functions(app)
        return cls(functions, **options) if functions else None

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Wakes every sleeping timer and waits for a run in progress to finish (up to `timeout` each)."""
        self.stop_event.set()
        for thread in self._threads:
            if thread.ident is not None:
                thread.join(timeout)

    def _run_timer(self, function: TimerFunction) -> None:
        last: datetime | None = None
        if function.run_on_startup:
            started = self._clock()
            last = self._invoke(function, due=started, last=None)
        while not self.stop_event.is_set():
            due = function.schedule.next_after(self._clock())
            if self.stop_event.wait(max(0.0, (due - self._clock()).total_seconds())):
                return
            last = self._invoke(function, due=due, last=last)
            self._count_skipped(function, due)

    def _invoke(self, function: TimerFunction, *, due: datetime, last: datetime | None) -> datetime:
        """Runs the function once on this thread; returns when it started (the next run's `Last`)."""
        started = self._clock()
        stats = self.stats[function.name]
        with stats.lock:
            stats.runs += 1
            stats.running = True
        request = TimerRequest(
            past_due=started - due > PAST_DUE_AFTER,
            schedule_status={
                "Last": (last or started).isoformat(),
                "Next": function.schedule.next_after(started).isoformat(),
                "LastUpdated": started.isoformat(),
            },
            schedule={"AdjustForDST": True},
        )
        with log_context(function=function.name):
            try:
                call_user_function(function.user_function, **{function.argument: request})
            except Exception:
                with stats.lock:
                    stats.failures += 1
                # As on the host: the failure is logged and the next occurrence runs as planned.
                _log.exception("timer function %s failed", function.name)
            finally:
                with stats.lock:
                    stats.running = False
        return started

    def _count_skipped(self, function: TimerFunction, due: datetime) -> None:
        """Occurrences that came and went while the run of `due` was going: never run, only reported."""
        now = self._clock()
        skipped = 0
        following = function.schedule.next_after(due)
        while following <= now and skipped < _SKIPPED_COUNT_LIMIT:
            skipped += 1
            following = function.schedule.next_after(following)
        if skipped:
            with self.stats[function.name].lock:
                self.stats[function.name].skipped += skipped
            _log.warning(
                "timer %s skipped %d occurrence(s): the previous run was still going",
                function.name,
                skipped,
                extra={"skipped": skipped},
            )
