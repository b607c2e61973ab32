"""Serves the Entra stand-in over real HTTPS on a free loopback port, as msal and azure-identity need."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from sandbox.entra.stand_in import EntraStandIn
from sandbox.identities import Identities, load_identities
from sandbox.tls import TlsFiles, ensure_certificates, ssl_context
from tests.support.ports import free_port, wait_for_port

EXAMPLE_IDENTITIES = Path(__file__).resolve().parents[2] / "sandbox" / "identities.example.json"


class FakeClock:
    """Time the stand-in reads, moved by tests to expire codes and tokens without sleeping."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class RunningEntra:
    stand_in: EntraStandIn
    base_url: str
    ca_cert: str
    identities: Identities
    clock: FakeClock


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def signing_key() -> rsa.RSAPrivateKey:
    # One key for the session: generating RSA keys per test would dominate the run time.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def identities() -> Identities:
    return load_identities(EXAMPLE_IDENTITIES)


@pytest.fixture
def entra(
    tls_files: TlsFiles, identities: Identities, signing_key: rsa.RSAPrivateKey
) -> Iterator[RunningEntra]:
    port = free_port()
    base_url = f"https://127.0.0.1:{port}"
    clock = FakeClock()
    stand_in = EntraStandIn(base_url, identities, signing_key, clock=clock)
    server = make_server(
        "127.0.0.1", port, _wsgi(stand_in), threaded=True, ssl_context=ssl_context(tls_files)
    )
    # A short poll interval keeps shutdown (once per test) from adding half a second each time.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    wait_for_port(port)
    try:
        yield RunningEntra(stand_in, base_url, str(tls_files.ca_cert), identities, clock)
    finally:
        _stop(server, thread)


def _wsgi(stand_in: EntraStandIn):
    @Request.application
    def application(request: Request) -> Response:
        return stand_in.dispatch(request) or Response("not an Entra path", status=404)

    return application


def _stop(server: BaseWSGIServer, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
