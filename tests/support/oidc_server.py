"""A tiny Entra ID stand-in for tests: OpenID metadata and a JWKS on 127.0.0.1, with fetch counters.

Paths follow Entra ID so the validator derives the authority exactly as it does in Azure:
`/{tenant}/v2.0/.well-known/openid-configuration` (v2 metadata), `/{tenant}/.well-known/openid-configuration`
(v1 metadata, issuer `https://sts.windows.net/{tenant}/`) and `/{tenant}/discovery/v2.0/keys` (JWKS).
Tests rotate keys with `set_keys`/`rotate` and read `metadata_fetches`/`jwks_fetches`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from tests.support.tokens import SigningKey, new_signing_key


class OidcServer:
    """Serves metadata and the public halves of `keys`; start with `with OidcServer(...) as server:`."""

    def __init__(self, keys: Iterable[SigningKey] | None = None) -> None:
        self._lock = threading.Lock()
        self._keys = list(keys) if keys is not None else [new_signing_key()]
        self._metadata_fetches = 0
        self._jwks_fetches = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def metadata_url(self, tenant_id: str, version: str = "v2") -> str:
        middle = "/v2.0" if version == "v2" else ""
        return f"{self.base_url}/{tenant_id}{middle}/.well-known/openid-configuration"

    @property
    def keys(self) -> list[SigningKey]:
        with self._lock:
            return list(self._keys)

    @property
    def signing_key(self) -> SigningKey:
        return self.keys[0]

    def set_keys(self, keys: Iterable[SigningKey]) -> None:
        with self._lock:
            self._keys = list(keys)

    def rotate(self) -> SigningKey:
        """Replaces every published key with a new one, as after a key rollover, and returns it."""
        key = new_signing_key()
        self.set_keys([key])
        return key

    @property
    def metadata_fetches(self) -> int:
        with self._lock:
            return self._metadata_fetches

    @property
    def jwks_fetches(self) -> int:
        with self._lock:
            return self._jwks_fetches

    def __enter__(self) -> OidcServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _answer(self, path: str) -> dict[str, Any] | None:
        parts = [part for part in path.split("?")[0].split("/") if part]
        if len(parts) < 2:
            return None
        tenant, rest = parts[0], "/".join(parts[1:])
        if rest == "v2.0/.well-known/openid-configuration":
            return self._metadata(tenant, f"{self.base_url}/{tenant}/v2.0")
        if rest == ".well-known/openid-configuration":
            return self._metadata(tenant, f"https://sts.windows.net/{tenant}/")
        if rest == "discovery/v2.0/keys":
            with self._lock:
                self._jwks_fetches += 1
                return {"keys": [key.public_jwk() for key in self._keys]}
        return None

    def _metadata(self, tenant: str, issuer: str) -> dict[str, Any]:
        with self._lock:
            self._metadata_fetches += 1
        return {
            "issuer": issuer,
            "jwks_uri": f"{self.base_url}/{tenant}/discovery/v2.0/keys",
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint": f"{self.base_url}/{tenant}/oauth2/v2.0/token",
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                answer = server._answer(self.path)
                body = json.dumps(answer if answer is not None else {"error": "not_found"}).encode()
                self.send_response(200 if answer is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the test output is for the tests."""

        return Handler
