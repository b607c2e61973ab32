"""`python -m devhost.stack` refuses busy ports clearly, and starts, stops and restarts the local stack."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from devhost import PROJECT_ROOT
from tests.support.ports import free_port


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
