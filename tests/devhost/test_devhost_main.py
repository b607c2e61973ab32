"""`python -m devhost` serves function_app.py over HTTP, runs its worker, and stops cleanly on a signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devhost import PROJECT_ROOT
from tests.support.ports import free_port, wait_for_port


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
