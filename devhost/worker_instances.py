"""The queue-triggered function on instances of its own, as Flex Consumption scales it.

On Flex Consumption every HTTP function of an app shares one group of instances, and every other trigger
scales on instances of its own: the worker never shares a process, or a core, with the webhook, and a queue
that grows gets more worker instances, each holding host.json's `maxConcurrentSessions` sessions. Run in
the dev host's own process instead, a burst of 500 changes had the webhook and the worker share one
interpreter lock, and the worker one core.

So the dev host starts `DEVHOST_WORKER_INSTANCES` processes (`python -m devhost.queue_instance`, default: one
per core), all fed from the same local queue file, whose sessions keep each subscription's messages in order
whichever instance takes them. An instance that exits unexpectedly is started again, as the Functions host
restarts a worker that died; stopping the dev host stops them all. `DEVHOST_WORKER_INSTANCES=0` runs the
worker inside the dev host's process, as before.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from devhost import PROJECT_ROOT
from shared.logs import get_logger

INSTANCES_SETTING = "DEVHOST_WORKER_INSTANCES"
# Long enough for an instance to finish the messages it holds (its runner waits up to 10 s for them).
_STOP_SECONDS = 15.0

_log = get_logger(__name__)


def worker_instance_count() -> int:
    """`DEVHOST_WORKER_INSTANCES`, or one per core when unset; ValueError for anything but an int >= 0."""
    raw = os.environ.get(INSTANCES_SETTING, "").strip()
    if not raw:
        return os.cpu_count() or 1
    count = int(raw)
    if count < 0:
        raise ValueError(f"{INSTANCES_SETTING} must be 0 or more, got {raw!r}")
    return count


class WorkerInstances:
    """`count` worker instance processes running `function_name` from the queue at `queue_path`, kept
    running until `stop()`."""

    def __init__(self, count: int, function_name: str, queue_path: str) -> None:
        self.count = count
        self.function_name = function_name
        self.queue_path = queue_path
        self._processes: list[subprocess.Popen[bytes]] = []
        self._stopping = False

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self._processes]

    def start(self) -> None:
        self._processes = [self._spawn(number) for number in range(self.count)]

    def keep_running(self) -> None:
        """Starts again any instance that exited while the dev host runs (call it every so often)."""
        for number, process in enumerate(self._processes):
            code = process.poll()
            if code is not None and not self._stopping:
                _log.error(
                    "worker instance %d exited with code %s; starting it again",
                    number,
                    code,
                    extra={"pid": process.pid},
                )
                self._processes[number] = self._spawn(number)

    def stop(self) -> None:
        """Asks every instance to finish its messages and stop; kills the ones still running after 15 s."""
        self._stopping = True
        for process in self._processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self._processes:
            try:
                process.wait(_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                _log.warning("worker instance did not stop in time; killed", extra={"pid": process.pid})
                process.kill()
                process.wait()

    def _spawn(self, number: int) -> subprocess.Popen[bytes]:
        # The environment is the dev host's own (dev.env applied), so an instance sees the same settings.
        return subprocess.Popen(
            [sys.executable, "-m", "devhost.queue_instance"],
            cwd=PROJECT_ROOT,
            env={**os.environ, "DEVHOST_WORKER_INSTANCE": str(number)},
        )
