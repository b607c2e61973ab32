"""Azure's App Service identity endpoint on loopback: what `DefaultAzureCredential` asks for a managed
identity's token, recorded, and answered with the token a test chooses."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.app_context import reset_services

# Settings that would make DefaultAzureCredential pick another credential before the managed identity.
_OTHER_CREDENTIALS = (
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
)


@contextmanager
def identity_endpoint(
    monkeypatch: pytest.MonkeyPatch, token: str = "t"
) -> Iterator[list[dict[str, list[str]]]]:
    """Serves the endpoint and points the app's credential at it (services are rebuilt before and after);
    yields the query of every token request, in order."""
    asked: list[dict[str, list[str]]] = []

    class Endpoint(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(parse_qs(urlsplit(self.path).query))
            body = json.dumps({"access_token": token, "expires_on": "9999999999", "token_type": "Bearer"})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for name in _OTHER_CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}/msi/token")
    monkeypatch.setenv("IDENTITY_HEADER", "header")
    reset_services()
    try:
        yield asked
    finally:
        server.shutdown()
        reset_services()
