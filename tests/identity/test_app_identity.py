"""The app's own credential (Table Storage, Service Bus) asks for the user-assigned identity it is given.

Azure's App Service identity endpoint is played by a loopback HTTP server that records what it is asked; the
credential is the composition root's, built from settings as in Azure.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.app_context import reset_services, services


@pytest.fixture
def identity_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, list[str]]]]:
    asked: list[dict[str, list[str]]] = []

    class Endpoint(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(parse_qs(urlsplit(self.path).query))
            body = json.dumps({"access_token": "t", "expires_on": "9999999999", "token_type": "Bearer"})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "header")
    reset_services()
    try:
        yield asked
    finally:
        server.shutdown()
        reset_services()


def test_the_app_credential_asks_for_the_configured_user_assigned_identity(
    identity_endpoint: list[dict[str, list[str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MANAGED_IDENTITY_CLIENT_ID", "11111111-2222-3333-4444-555555555555")

    services().azure_credential.get_token("https://storage.azure.com/.default")

    assert identity_endpoint, "the credential never asked the identity endpoint"
    assert identity_endpoint[-1].get("client_id") == ["11111111-2222-3333-4444-555555555555"]


def test_without_a_client_id_the_system_assigned_identity_is_asked_for(
    identity_endpoint: list[dict[str, list[str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MANAGED_IDENTITY_CLIENT_ID", raising=False)

    services().azure_credential.get_token("https://storage.azure.com/.default")

    assert identity_endpoint
    assert "client_id" not in identity_endpoint[-1]
