"""The queue-triggered function on instances of its own, as Flex Consumption scales it.

On Flex Consumption every HTTP function of an app shares one group of instances, and every other trigger
scales on instances of its own: the worker never shares a process, or a core, with the webhook, and a queue
that grows gets more worker instances, each holding host.json's `maxConcurrentSessions` sessions. Run in
the dev host's own process instead, a burst of 500 changes had the webhook and the worker share one
interpreter lock, and the worker one core.

So the dev host starts `DEVHOST_WORKER_INSTANCES` processes (`python -m devhost.queue_instance`, default: one
per core), all fed from the same local queue file, whose sessions keep each subscription's messages in order
whichever instance takes them. An instance that exits unexpectedly is started again, as the Functions host
restarts a worker that died, after a delay that grows while it keeps dying; stopping the dev host stops them
all, and an instance whose dev host died stops too. `DEVHOST_WORKER_INSTANCES=0` runs the worker inside the
dev host's process, as before.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from devhost import PROJECT_ROOT
from devhost.parent_death import die_with_parent
from shared.logs import get_logger

INSTANCES_SETTING = "DEVHOST_WORKER_INSTANCES"
# The dev host's pid, handed to each instance: it stops once its parent is no longer that process.
PARENT_SETTING = "DEVHOST_PARENT_PID"
INSTANCE_SETTING = "DEVHOST_WORKER_INSTANCE"
# For all instances together: shorter than the 10 s `make dev` gives the dev host before killing it.
STOP_SECONDS = 8.0
# An instance that keeps dying is started again after 0.5 s, then 1, 2, ... up to 30 s; one that ran for a
# minute starts the count again.
_FIRST_DELAY = 0.5
_LONGEST_DELAY = 30.0
_HEALTHY_AFTER = 60.0

_log = get_logger(__name__)


def worker_instance_count() -> int:
    """`DEVHOST_WORKER_INSTANCES`, or one per core when unset; ValueError for anything but an int >= 0."""
    raw = os.environ.get(INSTANCES_SETTING, "").strip()
    if not raw:
        return os.cpu_count() or 1
    if not raw.isdigit():
        raise ValueError(f"{INSTANCES_SETTING} must be a whole number, 0 or more, got {raw!r}")
    return int(raw)


@dataclass
class _Slot:
    """One instance's process, when it started, and how long to wait before starting it again."""

    process: subprocess.Popen[bytes]
    started: float
    delay: float = _FIRST_DELAY
    restart_at: float | None = None


class WorkerInstances:
    """`count` worker instance processes running `function_name` from the queue at `queue_path`, kept
    running until `stop()`."""

    def __init__(self, count: int, function_name: str, queue_path: str) -> None:
        self.count = count
        self.function_name = function_name
        self.queue_path = queue_path
        self._slots: list[_Slot] = []
        self._stopping = False

    @property
    def pids(self) -> list[int]:
        return [slot.process.pid for slot in self._slots]

    def start(self) -> None:
        self._slots = [_Slot(self._spawn(number), time.monotonic()) for number in range(self.count)]

    def keep_running(self) -> None:
        """Starts again, after a growing delay, any instance that exited while the dev host runs (call it
        every so often)."""
        now = time.monotonic()
        for number, slot in enumerate(self._slots):
            code = slot.process.poll()
            if code is None or self._stopping:
                continue
            if slot.restart_at is None:
                if now - slot.started >= _HEALTHY_AFTER:
                    slot.delay = _FIRST_DELAY
                slot.restart_at = now + slot.delay
                _log.error(
                    "worker instance %d exited with code %s; starting it again in %.1f s",
                    number,
                    code,
                    slot.delay,
                    extra={"pid": slot.process.pid},
                )
            elif now >= slot.restart_at:
                self._slots[number] = _Slot(
                    self._spawn(number), now, delay=min(slot.delay * 2, _LONGEST_DELAY)
                )

    def stop(self) -> None:
        """Asks every instance to finish its messages and stop; kills the ones still running after 8 s (their
        messages are delivered again once their locks run out, as on Service Bus)."""
        self._stopping = True
        for slot in self._slots:
            if slot.process.poll() is None:
                slot.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for slot in self._slots:
            try:
                slot.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _log.warning("worker instance did not stop in time; killed", extra={"pid": slot.process.pid})
                slot.process.kill()
                slot.process.wait()

    def _spawn(self, number: int) -> subprocess.Popen[bytes]:
        # The dev host's own environment (dev.env applied) and folder, so that every setting, relative paths
        # included, means for the instance what it means for the dev host.
        path = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p)
        env = {
            **os.environ,
            "PYTHONPATH": path,
            PARENT_SETTING: str(os.getpid()),
            INSTANCE_SETTING: str(number),
        }
        return subprocess.Popen(
            [sys.executable, "-m", "devhost.queue_instance"],
            env=env,
            preexec_fn=die_with_parent(),
        )
