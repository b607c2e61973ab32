"""A tiny Entra ID stand-in for tests: OpenID metadata and a JWKS on 127.0.0.1, with fetch counters.

Paths follow Entra ID so the validator derives the authority exactly as it does in Azure:
`/{tenant}/v2.0/.well-known/openid-configuration` (v2 metadata), `/{tenant}/.well-known/openid-configuration`
(v1 metadata, issuer `https://sts.windows.net/{tenant}/`) and `/{tenant}/discovery/v2.0/keys` (JWKS).
Tests rotate keys with `set_keys`/`rotate` and read `metadata_fetches`/`jwks_fetches`. With `tls_dir` it
serves HTTPS with a fresh self-signed certificate for 127.0.0.1 (`ca_bundle` is the file to trust), like the
local sandbox does. With `jwks_tenant` every metadata document names that one tenant's JWKS, so validators of
different tenants (a webhook's, the `common` sign-in's) read the same JWKS URL.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.support.tokens import SigningKey, new_signing_key


class OidcServer:
    """Serves metadata and the public halves of `keys`; start with `with OidcServer(...) as server:`."""

    def __init__(
        self,
        keys: Iterable[SigningKey] | None = None,
        *,
        tls_dir: Path | None = None,
        jwks_tenant: str | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._jwks_tenant = jwks_tenant
        self._keys = list(keys) if keys is not None else [new_signing_key()]
        self._metadata_fetches = 0
        self._jwks_fetches = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._scheme = "http"
        self.ca_bundle: Path | None = None
        if tls_dir is not None:
            self.ca_bundle = self._serve_tls(tls_dir)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self._httpd.server_address[1]}"

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

    def _serve_tls(self, tls_dir: Path) -> Path:
        cert_path, key_path = _self_signed_certificate(tls_dir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._scheme = "https"
        return cert_path

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
            "jwks_uri": f"{self.base_url}/{self._jwks_tenant or tenant}/discovery/v2.0/keys",
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


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A CA-flagged certificate for 127.0.0.1, so it can be trusted directly as a CA bundle."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "oidc-cert.pem", directory / "oidc-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path
