"""`python -m devhost.stack` refuses busy ports clearly, and starts, stops and restarts the local stack."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import requests
from azure.data.tables import TableClient, TableServiceClient

from devhost import PROJECT_ROOT, read_dev_env
from devhost.stack import azurite_log_flags
from tests.support.ports import free_port, wait_for_port


def stack_env(state_dir: Path, **ports: int) -> dict[str, str]:
    chosen = {
        "AZURITE_PORT": ports.get("azurite", free_port()),
        "SANDBOX_HTTP_PORT": ports.get("sandbox_http", free_port()),
        "SANDBOX_HTTPS_PORT": ports.get("sandbox_https", free_port()),
        "DEVHOST_PORT": ports.get("devhost", free_port()),
    }
    return {**os.environ, "DEVHOST_STATE_DIR": str(state_dir), **{k: str(v) for k, v in chosen.items()}}


def test_a_port_in_use_is_named_and_nothing_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "devhost.stack"],
            cwd=PROJECT_ROOT,
            env=stack_env(tmp_path, sandbox_https=busy),
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 1
    assert f"port {busy} (sandbox) is already in use" in done.stderr
    assert "SANDBOX_HTTPS_PORT" in done.stderr
    assert not (tmp_path / "logs").exists(), "no child was started"


def test_one_port_for_two_services_is_refused(tmp_path: Path) -> None:
    port = free_port()
    done = subprocess.run(
        [sys.executable, "-m", "devhost.stack"],
        cwd=PROJECT_ROOT,
        env=stack_env(tmp_path, azurite=port, devhost=port),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert f"port {port} is set for both azurite and devhost" in done.stderr


def test_sigterm_before_ready_still_stops_cleanly(tmp_path: Path) -> None:
    azurite_port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "devhost.stack"],
        cwd=PROJECT_ROOT,
        env=stack_env(tmp_path, azurite=azurite_port),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_file(tmp_path / "logs" / "azurite.log")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, err
    assert "Local stack stopped." in out
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", azurite_port))  # Azurite is gone: its port is free again


def _wait_for_file(path: Path, timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.05)


def _run_stack(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "devhost.stack"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _read_until(proc: subprocess.Popen[str], text: str, timeout: float = 90) -> str:
    """Stdout up to the line containing `text`: the stack prints its table only once all is up."""
    seen: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if text in line:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    return "".join(seen)


def _stop(proc: subprocess.Popen[str], stop_signal: signal.Signals, before: str = "") -> tuple[str, str]:
    proc.send_signal(stop_signal)
    try:
        out, err = proc.communicate(timeout=60)
        return before + out, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _table(env: dict[str, str]) -> TableClient:
    settings = read_dev_env(env)
    service = TableServiceClient.from_connection_string(settings["STORAGE_CONNECTION_STRING"])
    return service.get_table_client("stacktest")


def test_the_stack_runs_stops_on_ctrl_c_and_restarts_on_the_same_data(tmp_path: Path) -> None:
    env = stack_env(tmp_path)
    ports = [
        int(env[name]) for name in ("AZURITE_PORT", "SANDBOX_HTTP_PORT", "SANDBOX_HTTPS_PORT", "DEVHOST_PORT")
    ]
    first = _run_stack(env)
    printed = ""
    try:
        for port in ports:
            wait_for_port(port, timeout=90)
        health = requests.get(f"http://127.0.0.1:{env['DEVHOST_PORT']}/api/health", timeout=10)
        assert health.status_code == 200
        assert requests.get(f"http://127.0.0.1:{env['SANDBOX_HTTP_PORT']}/", timeout=10).status_code == 200
        table = _table(env)
        table.create_table()
        table.create_entity({"PartitionKey": "p", "RowKey": "r", "note": "kept"})
        printed = _read_until(first, "Data: ")  # the last line of the table: every address is in it
    finally:
        out, err = _stop(first, signal.SIGINT, printed)
    assert first.returncode == 0, err
    assert f"http://127.0.0.1:{env['SANDBOX_HTTP_PORT']}/" in out
    assert f"http://127.0.0.1:{env['DEVHOST_PORT']}/api/health" in out
    assert f"http://127.0.0.1:{env['DEVHOST_PORT']}/api/console" in out
    assert "Local stack stopped." in out
    for name in ("azurite", "sandbox", "devhost"):
        assert (tmp_path / "logs" / f"{name}.log").stat().st_size > 0
    assert (tmp_path / "sandbox" / "tls" / "ca.pem").exists()

    second = _run_stack(env)
    try:
        for port in ports:
            wait_for_port(port, timeout=90)
        assert _table(env).get_entity("p", "r")["note"] == "kept"
    finally:
        _, err = _stop(second, signal.SIGTERM)
    assert second.returncode == 0, err


def test_azurite_writes_no_access_log_unless_asked() -> None:
    assert azurite_log_flags({}) == ("--silent",)
    assert azurite_log_flags({"AZURITE_ACCESS_LOG": "0"}) == ("--silent",)
    assert azurite_log_flags({"AZURITE_ACCESS_LOG": "1"}) == ()
    assert azurite_log_flags({"AZURITE_ACCESS_LOG": " True "}) == ()
