"""`python -m sandbox`: starts on the given ports, prints its URLs, stops cleanly on SIGTERM and SIGINT."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.ports import free_port, refusing_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app_port() -> Iterator[int]:
    """The publisher's port in the URLs given to the sandbox: held, so no other process answers there."""
    with refusing_port() as port:
        yield port


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_command_line_serves_and_stops_on_signal(
    tmp_path: Path, stop_signal: signal.Signals, app_port: int
) -> None:
    http_port, https_port = free_port(), free_port()
    command = [
        sys.executable,
        "-m",
        "sandbox",
        *("--http-port", str(http_port), "--https-port", str(https_port)),
        *("--state-dir", str(tmp_path / "state")),
        *(
            "--webhook-url",
            f"http://127.0.0.1:{app_port}/api/webhook",
            "--landing-url",
            f"http://127.0.0.1:{app_port}/landing",
        ),
    ]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        wait_for_port(http_port, timeout=20)
        session = requests.Session()
        session.trust_env = False
        settings = session.get(f"http://127.0.0.1:{http_port}/control/settings", timeout=10).json()
        assert settings["landingUrl"] == f"http://127.0.0.1:{app_port}/landing"
        ca_bundle = tmp_path / "state" / "tls" / "ca.pem"
        health = session.get(
            f"https://127.0.0.1:{https_port}/control/health", verify=str(ca_bundle), timeout=10
        )
        assert health.json() == {"status": "ok"}
        process.send_signal(stop_signal)
        output, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
    assert process.returncode == 0
    assert f"http://127.0.0.1:{http_port}/" in output
    assert f"https://127.0.0.1:{https_port}/api" in output
    assert "sandbox-publisher-secret" not in output
    assert (tmp_path / "state" / "marketplace.json").exists()
