"""Burst of plan changes through the whole local stack: how many the app answers (PATCH) inside the window.

Starts `python -m devhost.stack` (Azurite, sandbox, dev host as separate processes, as under `make dev`) on
free loopback ports with a temporary data folder, buys and activates `--subscriptions` team-seat
subscriptions, then fires `--changes` ChangeQuantity operations spread over them through the sandbox's
control API as fast as it accepts them (`--fire-threads` clients), and finally `--steady` more at
`--rate` changes/s. For every operation the latency is taken from the sandbox's own clock: the start of its
first webhook POST to the moment the operation left InProgress (`decidedAt`); an operation decided by
"auto-accepted" never got its PATCH inside the window. Nothing is read from the stack until every window has
closed: the sandbox keeps the times itself, and polling 500 operations while they were being answered took
CPU from the stack being measured. RSS and open files of the dev host process are read
from /proc before the burst and after the queue drained. Traffic goes to 127.0.0.1 only; every wait is
bounded and the stack is stopped at the end.

The floor, measured in the same run once the app is idle: for each change of the burst, only the calls a
change needs inside its window, bare (GetOperation and the PATCH through the app's Fulfillment client, two
Table point reads, one insert and one update through the SDK on the app's transport), on as many threads as
one worker instance runs sessions. Its CPU per change (this process, the sandbox and Azurite) is what the
libraries and the two servers cost before the app adds anything (the webhook, the queue, the policy, logs);
the stack's CPU per change in the burst over it is the ratio to compare on a noisy machine.

Run: .venv/bin/python -m bench.burst [--subscriptions 100 --changes 500 --steady 100 --rate 10]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.machine import machine_line
from devhost import PROJECT_ROOT, apply_dev_env, mark_local_stack
from devhost.queue_runner import max_concurrent_sessions
from shared.domain.answer_window import RECHECK_AFTER_WHEN_BEHIND
from tests.support.ports import free_port, wait_for_port
from tests.support.processes import children_running
from tests.support.sandbox import ControlClient

PLAN = "team-seats"
START_QUANTITY = 5
SETTLE_MARGIN_SECONDS = 30.0
# After the last change was fired, how much longer than the window to wait before reading the outcomes.
WINDOW_MARGIN_SECONDS = 1.0


@dataclass(frozen=True)
class Outcome:
    operation_id: str
    answered: bool  # decided by the publisher's PATCH (not by the window closing)
    latency: float | None  # first webhook POST -> decided, seconds (sandbox clock)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def process_figures(pids: Iterable[int]) -> tuple[float, int, int]:
    """RSS in MiB, open file descriptors and threads of processes together, from /proc (Linux)."""
    rss_kib = files = threads = 0
    for pid in pids:
        status = Path(f"/proc/{pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss_kib += int(fields["VmRSS"].split()[0])
        files += len(os.listdir(f"/proc/{pid}/fd"))
        threads += int(fields["Threads"])
    return rss_kib / 1024, files, threads


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds processes have used so far, together, from /proc (Linux)."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def child_running(parent: int, module: str) -> int:
    """The pid of `parent`'s child started as `python -m <module>` (or whose command line names `module`)."""
    found = children_running(parent, module)
    if not found:
        raise RuntimeError(f"no child `-m {module}` of {parent}")
    return found[0]


class LocalStack:
    """`python -m devhost.stack` on free ports in a temporary folder, stopped (SIGTERM) on exit."""

    def __init__(self, state_dir: Path) -> None:
        self.ports = {
            name: free_port()
            for name in ("AZURITE_PORT", "SANDBOX_HTTP_PORT", "SANDBOX_HTTPS_PORT", "DEVHOST_PORT")
        }
        self.state_dir = state_dir
        self.env = {
            **os.environ,
            "DEVHOST_STATE_DIR": str(state_dir),
            "LOG_LEVEL": "WARNING",
            **{k: str(v) for k, v in self.ports.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LocalStack:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devhost.stack"],
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for port in self.ports.values():
            wait_for_port(port, timeout=90)
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    @property
    def devhost_pid(self) -> int:
        assert self.process is not None
        return child_running(self.process.pid, "devhost")

    @property
    def app_pids(self) -> list[int]:
        """The dev host (HTTP functions, timers) and its worker instances (the queue-triggered function)."""
        return [self.devhost_pid, *children_running(self.devhost_pid, "devhost.queue_instance")]

    def process_ids(self) -> dict[str, list[int]]:
        """The stack's processes by role: where the CPU of a burst goes."""
        assert self.process is not None
        names = {"sandbox (Microsoft)": "sandbox", "Azurite": "azurite-table"}
        devhost = self.devhost_pid
        return {
            "app: webhook": [devhost],
            "app: worker": children_running(devhost, "devhost.queue_instance"),
            **{role: [child_running(self.process.pid, module)] for role, module in names.items()},
        }


def cpu_per_change(
    processes: dict[str, list[int]], before: dict[str, float], changes: int
) -> tuple[str, float]:
    """CPU milliseconds per change that each process of the stack spent on the burst (all its work: webhook,
    queue, worker for the app; token, webhook and API for the sandbox; storage for Azurite), as a line, and
    the stack's total."""
    spent = {role: cpu_seconds(pids) - before[role] for role, pids in processes.items()}
    parts = ", ".join(f"{role} {seconds * 1000 / changes:.1f}" for role, seconds in spent.items())
    total = sum(spent.values()) * 1000 / changes
    return f"  CPU ms per change: {parts}; stack {total:.1f} ({os.cpu_count()} cores)", total


def use_app_settings(stack: LocalStack) -> None:
    """This process plays the landing page's confirm step, so it needs the app's settings (dev.env)."""
    os.environ.update({k: v for k, v in stack.env.items() if k in stack.ports or k == "DEVHOST_STATE_DIR"})
    os.environ.pop("REQUESTS_CA_BUNDLE", None)  # dev.env names the sandbox CA
    apply_dev_env(os.environ)
    mark_local_stack(os.environ)
    os.environ["LOG_LEVEL"] = "WARNING"


def buy_and_activate(control: ControlClient, count: int) -> list[str]:
    """`count` subscriptions, each resolved, recorded and activated as the landing page's confirm does."""
    from devhost.local_queue import LocalQueue, register_local_queue
    from shared.app_context import services
    from shared.queueing.messages import activation_message
    from shared.workflows.confirmation import record_purchase

    register_local_queue()
    queue = LocalQueue(os.environ["LOCAL_QUEUE_PATH"])
    ids = []
    for _ in range(count):
        bought = control.buy(PLAN, quantity=START_QUANTITY)
        purchase = services().fulfillment.resolve(bought["token"])
        record_purchase(purchase, "bench-activation", sync=services().sync_ports)
        queue.send(activation_message(bought["subscriptionId"], PLAN, START_QUANTITY, "bench-activation"))
        ids.append(bought["subscriptionId"])
    deadline = time.monotonic() + 120
    pending = set(ids)
    while pending and time.monotonic() < deadline:
        pending = {
            i
            for i in pending
            if control.subscription(i)["subscription"]["saasSubscriptionStatus"] != "Subscribed"
        }
        time.sleep(0.5)
    if pending:
        raise RuntimeError(f"{len(pending)} subscriptions were not activated within 120 s")
    wait_for_queue(queue, 120)
    queue.close()
    return ids


def wait_for_queue(queue: Any, timeout: float) -> float:
    """Seconds until the local queue holds nothing ready or in flight (bounded by `timeout`)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        counts = queue.counts()
        if counts.active == 0 and counts.locked == 0:
            break
        time.sleep(0.2)
    return time.monotonic() - started


def wait_for_empty_queue(queue: Any, timeout: float) -> float:
    """Seconds until the local queue holds nothing at all, scheduled re-checks included (bounded)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        counts = queue.counts()
        if counts.active == 0 and counts.locked == 0 and counts.scheduled == 0:
            break
        time.sleep(0.5)
    return time.monotonic() - started


def fire(base_url: str, changes: list[tuple[str, int]], threads: int, rate: float | None) -> list[str]:
    """Starts every change through the control API; at `rate` per second when given, else flat out."""
    local = threading.local()
    started = time.monotonic()

    def one(index_change: tuple[int, tuple[str, int]]) -> str:
        index, (subscription_id, quantity) = index_change
        if rate:
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = ControlClient(base_url, timeout=30)
        return str(client.change_quantity(subscription_id, quantity)["operationId"])

    with ThreadPoolExecutor(max_workers=1 if rate else threads) as pool:
        return list(pool.map(one, enumerate(changes)))


def settle(control: ControlClient, operation_ids: Iterable[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Every operation once it left InProgress (the window closes at the latest), polled every second."""
    decided: dict[str, dict[str, Any]] = {}
    pending = list(operation_ids)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        still = []
        for operation_id in pending:
            operation = control.operation(operation_id)
            if operation["status"] == "InProgress":
                still.append(operation_id)
            else:
                decided[operation_id] = operation
        pending = still
        if pending:
            time.sleep(1.0)
    return decided


def outcomes(control: ControlClient, decided: dict[str, dict[str, Any]]) -> list[Outcome]:
    first_post: dict[str, float] = {}
    for attempt in control.deliveries():
        started = _epoch(attempt["at"]) - attempt["elapsedSeconds"]
        if attempt["operationId"] in decided:
            first_post[attempt["operationId"]] = min(first_post.get(attempt["operationId"], started), started)
    found = []
    for operation_id, operation in decided.items():
        answered = "PATCH" in operation["decision"]
        webhook = first_post.get(operation_id)
        latency = _epoch(operation["decidedAt"]) - webhook if webhook and operation["decidedAt"] else None
        found.append(Outcome(operation_id, answered, latency if answered else None))
    return found


def table(title: str, fired: int, results: list[Outcome], elapsed_fire: float) -> list[str]:
    answered = [r for r in results if r.answered]
    latencies = [r.latency for r in answered if r.latency is not None]
    lines = [
        f"{title}: {fired} changes fired in {elapsed_fire:.1f} s ({fired / elapsed_fire:.0f}/s)",
        f"  answered by PATCH: {len(answered)}   auto-accepted/other: {len(results) - len(answered)}"
        f"   undecided: {fired - len(results)}",
    ]
    if latencies:
        lines.append(
            "  webhook->PATCH latency s: "
            + "  ".join(f"p{int(q * 100)} {percentile(latencies, q):.2f}" for q in (0.5, 0.9, 0.99))
            + f"  max {max(latencies):.2f}"
        )
    return lines


def run_phase(
    name: str,
    control: ControlClient,
    changes: list[tuple[str, int]],
    *,
    threads: int,
    rate: float | None,
    window: float,
    once_windows_closed: Callable[[], None] = lambda: None,
) -> tuple[list[str], list[tuple[str, str]]]:
    """Fires `changes`, waits until every window has closed, calls `once_windows_closed` (the figures of the
    stack's own work are taken there), then reads the outcomes: their lines, and the (subscription id,
    operation id) of each change fired."""
    started = time.monotonic()
    operation_ids = fire(control.base_url, changes, threads, rate)
    elapsed_fire = time.monotonic() - started
    time.sleep(window + WINDOW_MARGIN_SECONDS)
    once_windows_closed()
    decided = settle(control, operation_ids, SETTLE_MARGIN_SECONDS)
    fired = [
        (subscription_id, operation_id)
        for (subscription_id, _), operation_id in zip(changes, operation_ids, strict=True)
    ]
    return table(name, len(changes), outcomes(control, decided), elapsed_fire), fired


def floor_per_change(
    stack: LocalStack, operations: list[tuple[str, str]], threads: int
) -> tuple[float, float]:
    """(CPU ms per change of this process, the sandbox and Azurite; seconds for all) for the floor."""
    from azure.data.tables import TableServiceClient

    from shared.app_context import services
    from shared.fulfillment.errors import FulfillmentConflictError
    from shared.tls import azure_transport_settings

    fulfillment = services().fulfillment
    tables = TableServiceClient.from_connection_string(
        os.environ["STORAGE_CONNECTION_STRING"], **azure_transport_settings()
    )
    table = tables.create_table_if_not_exists("benchburstfloor")
    table.upsert_entity({"PartitionKey": "read", "RowKey": "row", "quantity": START_QUANTITY})

    def one_change(index_operation: tuple[int, tuple[str, str]]) -> None:
        index, (subscription_id, operation_id) = index_operation
        fulfillment.get_operation(subscription_id, operation_id)
        table.get_entity("read", "row")
        table.get_entity("read", "row")
        table.create_entity({"PartitionKey": subscription_id, "RowKey": f"{index}", "state": "received"})
        # The operation is decided already: Microsoft answers 409, after the same request and checks.
        with contextlib.suppress(FulfillmentConflictError):
            fulfillment.update_operation(subscription_id, operation_id, True)
        table.upsert_entity({"PartitionKey": subscription_id, "RowKey": f"{index}", "state": "done"})

    processes = stack.process_ids()
    servers = [*processes["sandbox (Microsoft)"], *processes["Azurite"]]
    cpu_before, own_before = cpu_seconds(servers), time.process_time()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one_change, enumerate(operations)))
    elapsed = time.monotonic() - started
    spent = cpu_seconds(servers) - cpu_before + time.process_time() - own_before
    return spent * 1000 / len(operations), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscriptions", type=int, default=100)
    parser.add_argument("--changes", type=int, default=500)
    parser.add_argument("--fire-threads", type=int, default=4)
    parser.add_argument("--steady", type=int, default=100, help="changes at --rate after the burst (0: none)")
    parser.add_argument("--rate", type=float, default=10.0)
    args = parser.parse_args()
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-burst-") as folder, LocalStack(Path(folder)) as stack:
        use_app_settings(stack)
        control = ControlClient(f"http://127.0.0.1:{stack.ports['SANDBOX_HTTP_PORT']}", timeout=30)
        window = float(control.settings()["autoAcceptSeconds"])
        setup_started = time.monotonic()
        ids = buy_and_activate(control, args.subscriptions)
        setup_seconds = time.monotonic() - setup_started
        lines.append(f"setup: {len(ids)} subscriptions bought and activated in {setup_seconds:.1f} s")
        app = stack.app_pids
        before = process_figures(app)
        processes = stack.process_ids()
        cpu_before = {role: cpu_seconds(pids) for role, pids in processes.items()}
        # Round-robin over subscriptions: each gets changes/subscriptions of them, in firing order.
        burst = [(ids[i % len(ids)], START_QUANTITY + 1 + i // len(ids)) for i in range(args.changes)]
        from devhost.local_queue import LocalQueue

        with LocalQueue(os.environ["LOCAL_QUEUE_PATH"]) as queue:
            closed: dict[str, Any] = {}

            def figures_of_the_burst() -> None:
                closed["drained"] = wait_for_queue(queue, 180)
                closed["figures"] = process_figures(app)
                closed["cpu"], closed["stack_ms"] = cpu_per_change(processes, cpu_before, args.changes)

            burst_lines, burst_operations = run_phase(
                "burst",
                control,
                burst,
                threads=args.fire_threads,
                rate=None,
                window=window,
                once_windows_closed=figures_of_the_burst,
            )
            lines += burst_lines
            lines.append(f"  queue drained {closed['drained']:.1f} s after the windows closed")
            after_burst = closed["figures"]
            lines.append(closed["cpu"])
            # Changes answered while behind leave their mirror to a re-check a minute later: that work moved
            # out of the window, it did not vanish, so it is measured too.
            cpu_before = {role: cpu_seconds(pids) for role, pids in processes.items()}
            waited = wait_for_empty_queue(queue, RECHECK_AFTER_WHEN_BEHIND.total_seconds() + 60)
            lines.append(
                f"  re-checks ran within {waited:.0f} s; afterwards, "
                + cpu_per_change(processes, cpu_before, args.changes)[0].strip()
            )
            if args.steady:
                top = START_QUANTITY + 1 + (args.changes - 1) // len(ids) + 5
                steady = [(ids[i % len(ids)], top + i // len(ids)) for i in range(args.steady)]
                lines += run_phase(
                    f"steady {args.rate:g}/s", control, steady, threads=1, rate=args.rate, window=window
                )[0]
                wait_for_queue(queue, 180)
        after = process_figures(app)
        threads = max_concurrent_sessions()
        floor_ms, floor_seconds = floor_per_change(stack, burst_operations, threads)
        lines.append(
            "floor: the calls a change needs inside its window, bare (GetOperation, PATCH, two Table reads,"
            f" an insert, an update), {len(burst_operations)} changes on {threads} threads in"
            f" {floor_seconds:.1f} s: {floor_ms:.1f} ms CPU per change (client, sandbox and Azurite);"
            f" the burst's stack {closed['stack_ms']:.1f}: ratio {closed['stack_ms'] / floor_ms:.2f}"
        )
        # Three points: growth from the burst, then none from more traffic, is a pool filling, not a leak.
        lines.append(
            f"dev host and its {len(app) - 1} worker instances (pids {', '.join(map(str, app))}), together, "
            "before burst / after burst / at end: "
            f"RSS {before[0]:.0f} / {after_burst[0]:.0f} / {after[0]:.0f} MiB, "
            f"open files {before[1]} / {after_burst[1]} / {after[1]}, "
            f"threads {before[2]} / {after_burst[2]} / {after[2]}"
        )
    lines.append(f"window {window:g} s; {machine_line()}")
    command = (
        f".venv/bin/python -m bench.burst --subscriptions {args.subscriptions} --changes {args.changes} "
        f"--fire-threads {args.fire_threads} --steady {args.steady} --rate {args.rate:g}"
    )
    lines.append(f"reproduce: {command}")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
