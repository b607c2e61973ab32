"""`python -m devhost`: runs function_app.py's HTTP, queue and timer triggers until Ctrl-C or SIGTERM.

Settings come from the environment, and from devhost/dev.env for anything it leaves unset. The HTTP port is
DEVHOST_PORT (default 7071). Run it from the project root; `make dev` starts it with the rest of the stack.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

import azure.functions as func

from devhost import apply_dev_env, load_function_app, mark_local_stack
from devhost.http_host import ROUTE_PREFIX, FunctionsWsgiApp, HttpFunction, HttpHost
from devhost.local_queue import LocalQueue, register_local_queue
from devhost.queue_runner import QueueRunner, queue_functions
from devhost.schedules import ScheduleError
from devhost.servicebus_runner import ServiceBusRunner
from devhost.timer_runner import TimerRunner
from devhost.worker_instances import WorkerInstances, worker_instance_count
from shared import logs
from shared.config import ConfigurationError, Settings, check_fail_closed

_log = logs.get_logger("devhost")


Worker = QueueRunner | ServiceBusRunner | WorkerInstances


def _start_runner(app: func.FunctionApp, settings: Settings, stop: threading.Event) -> Worker | None:
    """The worker feeding the queue-triggered function: on worker instances of its own (`WorkerInstances`),
    in this process (`DEVHOST_WORKER_INSTANCES=0`), or from a real Service Bus namespace.

    Raises ValueError for a worker instance count that is not a whole number of 0 or more."""
    if settings.queue_backend == "servicebus":
        return _start_servicebus_runner(app, settings, stop)
    if settings.queue_backend != "local":
        _log.warning("QUEUE_BACKEND is %r: queue-triggered functions will not run", settings.queue_backend)
        return None
    count = worker_instance_count()
    # Built even when instances run it: an app the runner refuses (two queue triggers) stops the host here.
    runner = QueueRunner.for_app(app, LocalQueue(settings.local_queue_path), stop_event=stop)
    if runner is None:
        return None
    if count:
        instances = WorkerInstances(count, runner.function.name, settings.local_queue_path)
        instances.start()
        return instances
    runner.start()
    return runner


def _start_servicebus_runner(
    app: func.FunctionApp, settings: Settings, stop: threading.Event
) -> ServiceBusRunner | None:
    """The worker fed from the real namespace the settings name (the same settings the app sends with)."""
    from azure.identity import DefaultAzureCredential

    from shared.queueing.servicebus import service_bus_client

    functions = queue_functions(app)
    if not functions:
        return None
    client = service_bus_client(settings, credential=DefaultAzureCredential)
    runner = ServiceBusRunner(functions[0], client, stop_event=stop)
    runner.start()
    return runner


def _describe(
    host: HttpHost,
    functions: list[HttpFunction],
    runner: Worker | None,
    timers: TimerRunner | None,
) -> str:
    lines = ["Functions:"]
    for function in functions:
        methods = ",".join(function.methods or ("ANY",))
        lines.append(f"  {function.name}: [{methods}] {host.url}/{ROUTE_PREFIX}/{function.route}")
    if isinstance(runner, WorkerInstances):
        where = f"{runner.count} worker instances, pids {', '.join(map(str, runner.pids))}"
        lines.append(f"  {runner.function_name}: local queue {runner.queue_path} ({where})")
    elif isinstance(runner, QueueRunner):
        lines.append(f"  {runner.function.name}: local queue {runner.queue.path} (in this process)")
    elif runner is not None:
        lines.append(f"  {runner.function.name}: Service Bus queue {runner.function.queue_name}")
    for timer in timers.functions if timers is not None else []:
        startup = ", and at startup" if timer.run_on_startup else ""
        lines.append(f"  {timer.name}: timer {timer.schedule.expression} (UTC){startup}")
    return "\n".join(lines)


def _stop_on_signals(stop: threading.Event) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def main() -> int:
    apply_dev_env(os.environ)
    mark_local_stack(os.environ)
    # Before the app builds its queue: `QUEUE_BACKEND=local` (dev.env's choice) must find this host's queue.
    register_local_queue()
    try:
        check_fail_closed()
    except ConfigurationError as exc:
        print(f"devhost: {exc}", file=sys.stderr)
        return 1
    settings = Settings.from_env()
    logs.configure(settings.log_level)
    app = load_function_app()
    stop = threading.Event()
    try:
        # Before anything listens: a schedule the Functions host would refuse stops this host too.
        timers = TimerRunner.for_app(app, stop_event=stop)
    except ScheduleError as exc:
        print(f"devhost: {exc}", file=sys.stderr)
        return 1
    wsgi_app = FunctionsWsgiApp(app)
    port = int(os.environ["DEVHOST_PORT"]) if os.environ.get("DEVHOST_PORT") else 7071
    try:
        host = HttpHost(wsgi_app, port=port)
    except OSError as exc:
        print(
            f"devhost: cannot listen on 127.0.0.1:{port}: {exc.strerror} (set DEVHOST_PORT)", file=sys.stderr
        )
        return 1
    _stop_on_signals(stop)
    try:
        runner = _start_runner(app, settings, stop)
    except ValueError as exc:
        host.stop()
        print(f"devhost: {exc}", file=sys.stderr)
        return 1
    try:
        host.start()
        if timers is not None:
            timers.start()
        print(_describe(host, list(wsgi_app.functions.values()), runner, timers), flush=True)
        while not stop.wait(0.5):
            if isinstance(runner, WorkerInstances):
                runner.keep_running()
    finally:
        # Whatever ends the loop (a signal, or an error such as a closed stdout): no worker instance is left.
        if timers is not None:
            timers.stop()
        if runner is not None:
            runner.stop()
        host.stop()
    _log.info("dev host stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
