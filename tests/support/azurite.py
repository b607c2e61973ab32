"""Starts the project's pinned Azurite (node_modules) for one test session, in memory, on a free port."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.ports import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
AZURITE = ROOT / "node_modules" / ".bin" / "azurite-table"
# Azurite's well-known development account (public, documented by Microsoft; not a secret).
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def connection_string(port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"TableEndpoint=http://127.0.0.1:{port}/{DEV_ACCOUNT};"
    )


@contextmanager
def running_azurite() -> Iterator[str]:
    """Yields a connection string; the server lives for the block and keeps nothing on disk."""
    if not AZURITE.exists():
        raise RuntimeError("Azurite is not installed: run `npm ci` (make test does) in the project root")
    port = free_port()
    proc = subprocess.Popen(
        [
            str(AZURITE),
            "--tableHost",
            "127.0.0.1",
            "--tablePort",
            str(port),
            "--inMemoryPersistence",
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--loose",
            "--silent",  # no access log: its output goes nowhere, and writing it costs Azurite CPU
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield connection_string(port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
