"""`python -m devhost.queue_instance`: one instance of the queue-triggered function, fed from the local queue.

The dev host starts these (`devhost.worker_instances`) so that the worker runs apart from the HTTP functions,
as Flex Consumption runs it: each instance is a process of its own with host.json's `maxConcurrentSessions`
sessions, all taking messages from the one local queue file. An instance stops on SIGTERM after the messages
it is working on, and on its own once the dev host that started it is gone; Ctrl-C is the dev host's to act
on (it then stops its instances).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

from devhost import apply_dev_env, load_function_app, mark_local_stack
from devhost.local_queue import LocalQueue, register_local_queue
from devhost.queue_runner import QueueRunner
from devhost.worker_instances import INSTANCE_SETTING, PARENT_SETTING
from shared import logs
from shared.config import Settings

# How often an instance looks whether its dev host is still there.
_PARENT_CHECK_SECONDS = 0.5

_log = logs.get_logger("devhost.queue_instance")


def _dev_host_gone(dev_host: int) -> bool:
    return dev_host > 0 and os.getppid() != dev_host


def main() -> int:
    # Named by the dev host, not read from getppid() once the imports are done: by then a dev host that died
    # early has handed this process to init, whose pid would look like a live parent.
    dev_host = int(os.environ.get(PARENT_SETTING) or 0)
    if _dev_host_gone(dev_host):
        return 0
    apply_dev_env(os.environ)
    mark_local_stack(os.environ)
    register_local_queue()
    settings = Settings.from_env()
    logs.configure(settings.log_level)
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Ctrl-C in a terminal reaches the whole process group: the dev host stops, then stops its instances
    # with SIGTERM. Stopping on SIGINT too would race the dev host, which would see an instance gone and
    # start it again.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, handle)
    runner = QueueRunner.for_app(load_function_app(), LocalQueue(settings.local_queue_path), stop_event=stop)
    if runner is None:
        print("devhost.queue_instance: the app has no queue-triggered function", file=sys.stderr)
        return 1
    runner.start()
    instance = os.environ.get(INSTANCE_SETTING, "")
    _log.info("worker instance %s started", instance, extra={"sessions": runner.workers, "pid": os.getpid()})
    while not stop.wait(_PARENT_CHECK_SECONDS):
        if _dev_host_gone(dev_host):
            _log.warning("the dev host that started this worker instance is gone; stopping")
            break
    runner.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
