"""Reconciliation of a large marketplace through the whole local stack: one sweep, every subscription
reconciled by the worker, against a floor measured in the same run.

Starts `python -m devhost.stack` (Azurite, sandbox, dev host as separate processes, as under `make dev`)
on free loopback ports in a temporary folder, seeds `--subscriptions` Subscribed subscriptions in the
sandbox in one control call (`POST /control/subscriptions/seed`), sets its ListSubscriptions page size,
then times two rounds:

- first sweep: none of them is known to the app, so every reconcile creates the mirror (unknown locally);
- steady sweep: all known, with `--drift` of them suspended at Microsoft while the webhook goes nowhere.

Each round is the registered timer function `reconciliation_sweep` called in this process (listing and
queueing), then the dev host's worker draining the local queue (GetSubscription, the mirror write with its
audit row, ListOperations, per subscription). The floor is what any reconciliation must do at least: a bare
GetSubscription plus one Table upsert per subscription, on as many threads as the worker has sessions.
RSS of this process (the sweep) and of the dev host are read from /proc before and after.

Run: .venv/bin/python -m bench.reconcile_sweep [--subscriptions 10000 --page-size 100 --drift 100]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.burst import LocalStack, process_figures, use_app_settings, wait_for_queue
from bench.machine import machine_line
from tests.support.sandbox import ControlClient

PLAN = "basic"
TARGET_SECONDS = 60.0


def rss_mib(*pids: int) -> float:
    return process_figures(pids)[0]


def sweep_once() -> tuple[float, object]:
    """The timer function as the host calls it; seconds spent listing and queueing, and its report."""
    from azure.functions.timer import TimerRequest

    from shared.entrypoints.reconciliation import handle_timer

    started = time.monotonic()
    report = handle_timer(TimerRequest(past_due=False))
    return time.monotonic() - started, report


def drain(queue: object, timeout: float) -> float:
    return wait_for_queue(queue, timeout)


def floor(ids: list[str], workers: int) -> float:
    """GetSubscription + one Table upsert per subscription on `workers` threads: seconds."""
    from azure.data.tables import TableServiceClient

    from shared.app_context import services
    from shared.tls import azure_transport_settings

    client = services().fulfillment
    # The app's own transport (pool of 64): with the SDK's default pool of 10, the floor's 16 threads threw
    # connections away ("Connection pool is full") and the floor was slower than the app's calls would be.
    tables = TableServiceClient.from_connection_string(
        os.environ["STORAGE_CONNECTION_STRING"], **azure_transport_settings()
    )
    table = tables.create_table_if_not_exists("benchfloor")

    def one(subscription_id: str) -> None:
        snapshot = client.get_subscription(subscription_id)
        table.upsert_entity(
            {"PartitionKey": subscription_id, "RowKey": "floor", "status": snapshot.status.value}
        )

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, ids))
    return time.monotonic() - started


def round_line(name: str, listed: int, sweep_s: float, total_s: float, report: object) -> str:
    rate = listed / total_s if total_s else 0.0
    return (
        f"  {name}: sweep (list + queue) {sweep_s:.1f} s, sweep + reconcile all {total_s:.1f} s "
        f"({rate:.0f} subscriptions/s); {report}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--drift", type=int, default=100, help="suspended at Microsoft before the 2nd sweep")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-reconcile-") as folder, LocalStack(Path(folder)) as stack:
        use_app_settings(stack)
        from devhost.local_queue import LocalQueue, register_local_queue
        from devhost.queue_runner import max_concurrent_sessions

        register_local_queue()
        queue = LocalQueue(os.environ["LOCAL_QUEUE_PATH"])
        control = ControlClient(f"http://127.0.0.1:{stack.ports['SANDBOX_HTTP_PORT']}", timeout=300)
        control.settings(
            pageSize=args.page_size, webhookUrl="http://127.0.0.1:9/nowhere", webhookMaxAttempts=1
        )
        seeded_at = time.monotonic()
        seeded = control.request("POST", "/subscriptions/seed", {"planId": PLAN, "count": args.subscriptions})
        seed_s = time.monotonic() - seeded_at
        app = stack.app_pids
        timeout = max(600.0, args.subscriptions / 10)

        me_before, host_before = rss_mib(os.getpid()), rss_mib(*app)
        sweep_s, report = sweep_once()
        first_total = sweep_s + drain(queue, timeout)
        me_after, host_after = rss_mib(os.getpid()), rss_mib(*app)

        ids = [s["id"] for s in control.request("GET", "/subscriptions")["subscriptions"]]
        for subscription_id in ids[: args.drift]:
            control.suspend(subscription_id)
        steady_sweep_s, steady_report = sweep_once()
        steady_total = steady_sweep_s + drain(queue, timeout)
        from shared.app_context import services

        repaired = sum(
            1 for i in ids[: args.drift] if services().subscriptions.get(i).status.value == "Suspended"
        )
        workers = max_concurrent_sessions()
        instances = len(app) - 1
        floor_s = floor(ids, workers)
        me_end = rss_mib(os.getpid())

    print(
        f"Reconciliation sweep: {args.subscriptions} subscriptions seeded in {seed_s:.1f} s "
        f"(first {seeded['first'][:8]}...), ListSubscriptions page size {args.page_size}, "
        f"worker sessions {workers} on each of {instances} worker instances"
    )
    print(round_line("first sweep, all unknown locally", args.subscriptions, sweep_s, first_total, report))
    print(
        round_line("steady sweep, all known", args.subscriptions, steady_sweep_s, steady_total, steady_report)
    )
    print(f"  drift repaired by the steady sweep: {repaired} of {args.drift} suspended with the webhook lost")
    print(
        f"  floor (GetSubscription + Table upsert each, {workers} threads): {floor_s:.1f} s "
        f"({args.subscriptions / floor_s:.0f}/s); steady sweep is {steady_total / floor_s:.1f}x the floor"
    )
    print(
        f"  RSS of the sweeping process: {me_before:.0f} MiB before, {me_after:.0f} MiB after the 1st sweep "
        f"(one page = {args.page_size} subscriptions held at a time); {me_end:.0f} MiB at the end "
        f"(after the floor listed all ids on purpose)"
    )
    print(
        f"  RSS of the dev host and its worker instances: {host_before:.0f} MiB before, "
        f"{host_after:.0f} MiB after"
    )
    target = "met" if steady_total <= TARGET_SECONDS and first_total <= TARGET_SECONDS else "NOT met"
    print(f"  target {TARGET_SECONDS:.0f} s for sweep + reconcile all: {target}")
    print(f"  {machine_line()}")
    print(
        f"  reproduce: .venv/bin/python -m bench.reconcile_sweep --subscriptions {args.subscriptions} "
        f"--page-size {args.page_size} --drift {args.drift}"
    )


if __name__ == "__main__":
    main()
