"""`python -m devhost` serves function_app.py over HTTP, runs its worker, and stops cleanly on a signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devhost import PROJECT_ROOT
from tests.support.ports import free_port, wait_for_port
from tests.support.processes import children_running
from tests.support.sandbox import wait_until


def start_devhost(tmp_path: Path, **settings: str) -> tuple[subprocess.Popen[str], int]:
    """`python -m devhost` on a free port with its data under `tmp_path`, plus any extra settings."""
    port = free_port()
    env = {**os.environ, "DEVHOST_PORT": str(port), "DEVHOST_STATE_DIR": str(tmp_path), **settings}
    proc = subprocess.Popen(
        [sys.executable, "-m", "devhost"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, port


@pytest.fixture
def devhost(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    proc, port = start_devhost(tmp_path)
    try:
        wait_for_port(port, timeout=30)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_it_serves_the_app_and_stops_on_a_signal(
    devhost: tuple[subprocess.Popen[str], int], tmp_path: Path, stop_signal: signal.Signals
) -> None:
    proc, port = devhost
    response = requests.get(f"http://127.0.0.1:{port}/api/health", timeout=10)
    assert response.status_code == 200
    assert requests.get(f"http://127.0.0.1:{port}/api/no-such-function", timeout=10).status_code == 404
    proc.send_signal(stop_signal)
    output, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, output
    assert f"http://127.0.0.1:{port}/api/health" in output
    assert "events_worker: local queue" in output
    assert "reconciliation_sweep: timer 0 */30 * * * * (UTC)" in output, "dev.env's RECONCILE_SCHEDULE"
    assert "personal_data_purge: timer 0 30 3 * * * (UTC)" in output, "dev.env's PURGE_SCHEDULE"
    assert (tmp_path / "queue.sqlite3").exists(), "the worker reads the queue under the data folder"


def test_a_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "DEVHOST_PORT": str(port), "DEVHOST_STATE_DIR": str(tmp_path)}
        done = subprocess.run(
            [sys.executable, "-m", "devhost"],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_with_service_bus_settings_the_worker_is_fed_from_service_bus(tmp_path: Path) -> None:
    """Pointing the dev host at Azure is a matter of settings; an unreachable namespace is retried."""
    unreachable = f"Endpoint=sb://127.0.0.1:{free_port()}/;SharedAccessKeyName=k;SharedAccessKey=a2V5;UseDevelopmentEmulator=true"
    proc, port = start_devhost(tmp_path, QUEUE_BACKEND="servicebus", ServiceBusConnection=unreachable)
    try:
        wait_for_port(port, timeout=30)
        assert requests.get(f"http://127.0.0.1:{port}/api/health", timeout=10).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    assert "events_worker: Service Bus queue saas-events" in output


def test_a_schedule_the_functions_host_would_refuse_stops_it(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DEVHOST_PORT": str(free_port()),
        "DEVHOST_STATE_DIR": str(tmp_path),
        "RECONCILE_SCHEDULE": "*/30 * * * *",  # five fields: crontab, not NCRONTAB
    }
    done = subprocess.run(
        [sys.executable, "-m", "devhost"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert "has 5 fields; NCRONTAB needs 6" in done.stderr


def _instances_of(devhost: int) -> list[int]:
    return children_running(devhost, "devhost.queue_instance")


def _two_instances_of(devhost: int) -> list[int]:
    """The dev host's two worker instances, once both run."""
    return wait_until(lambda: len(found := _instances_of(devhost)) == 2 and found, 30)


def _worker_takes(queue_path: Path, message_id: str) -> None:
    """Sends one message the worker cannot use (it parks it) and waits until a worker instance took it."""
    from devhost.local_queue import LocalQueue
    from shared.queueing.messages import QueueMessage

    with LocalQueue(queue_path) as queue:
        queue.send(QueueMessage(message_id=message_id, session_id="s-1", body={"kind": "no-such-kind"}))
        wait_until(lambda: queue.counts().active == 0 and queue.counts().locked == 0, timeout=30)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the instances through /proc")
def test_the_worker_runs_on_instances_of_its_own_restarted_when_one_dies_and_stopped_with_the_host(
    tmp_path: Path,
) -> None:
    proc, port = start_devhost(tmp_path, DEVHOST_WORKER_INSTANCES="2")
    try:
        wait_for_port(port, timeout=30)
        instances = _two_instances_of(proc.pid)
        _worker_takes(tmp_path / "queue.sqlite3", "first")

        os.kill(instances[0], signal.SIGKILL)
        restarted = wait_until(
            lambda: (now := _instances_of(proc.pid)) != instances and len(now) == 2 and now,
            timeout=30,
        )
        assert instances[1] in restarted, "the instance that did not die kept running"
        _worker_takes(tmp_path / "queue.sqlite3", "second")
        # A terminal's Ctrl-C reaches every process of the group; the instances leave stopping to the host.
        os.kill(instances[1], signal.SIGINT)
        time.sleep(1.0)
        assert _instances_of(proc.pid) == restarted
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    assert "events_worker: local queue" in output
    assert "2 worker instances" in output
    assert "worker instance 0 exited" in output
    assert not any(Path(f"/proc/{pid}").exists() for pid in restarted), "no instance outlives the dev host"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the instances through /proc")
def test_worker_instances_stop_when_their_dev_host_is_killed_outright(tmp_path: Path) -> None:
    proc, port = start_devhost(tmp_path, DEVHOST_WORKER_INSTANCES="2")
    try:
        wait_for_port(port, timeout=30)
        instances = _two_instances_of(proc.pid)
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in instances), timeout=10)


def test_a_worker_instance_count_that_is_not_a_number_stops_it(tmp_path: Path) -> None:
    env = {**os.environ, "DEVHOST_PORT": str(free_port()), "DEVHOST_STATE_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "devhost"],
        cwd=PROJECT_ROOT,
        env={**env, "DEVHOST_WORKER_INSTANCES": "two"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert "DEVHOST_WORKER_INSTANCES must be a whole number, 0 or more, got 'two'" in done.stderr
