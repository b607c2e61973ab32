"""The local CA and server certificate: valid for loopback, trusted through the CA file, reused if valid."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from sandbox.tls import TlsFiles, ensure_certificates, ensure_signing_key, ssl_context, write_trust_bundle
from tests.sandbox_entra.conftest import RunningEntra


def _port(entra: RunningEntra) -> int:
    return int(entra.base_url.rsplit(":", 1)[1])


def _handshake(port: int, context: ssl.SSLContext, server_hostname: str) -> str:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=server_hostname) as tls,
    ):
        return tls.version() or ""


def test_second_call_reuses_the_files(tmp_path: Path) -> None:
    first = ensure_certificates(tmp_path)
    contents = [p.read_bytes() for p in (first.ca_cert, first.server_cert, first.server_key)]

    second = ensure_certificates(tmp_path)

    assert second == first
    assert [p.read_bytes() for p in (second.ca_cert, second.server_cert, second.server_key)] == contents


def test_server_certificate_names_loopback_and_is_signed_by_the_ca(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path)
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(files.server_cert.read_bytes())

    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value

    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(names.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    server.verify_directly_issued_by(ca)
    assert stat.S_IMODE(files.server_key.stat().st_mode) == 0o600


def test_a_damaged_certificate_is_replaced(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path)
    old_ca = files.ca_cert.read_bytes()
    files.server_cert.write_text("not a certificate")

    ensure_certificates(tmp_path)

    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    x509.load_pem_x509_certificate(files.server_cert.read_bytes()).verify_directly_issued_by(ca)
    assert files.ca_cert.read_bytes() != old_ca


def test_clients_trusting_the_ca_connect_to_127_0_0_1_with_hostname_checks(entra: RunningEntra) -> None:
    context = ssl.create_default_context(cafile=entra.ca_cert)

    assert _handshake(_port(entra), context, "127.0.0.1") in {"TLSv1.2", "TLSv1.3"}
    assert _handshake(_port(entra), context, "localhost")


def test_clients_without_the_ca_refuse_the_server(entra: RunningEntra, tmp_path: Path) -> None:
    other_ca = ensure_certificates(tmp_path).ca_cert
    context = ssl.create_default_context(cafile=str(other_ca))

    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(_port(entra), context, "127.0.0.1")


def test_server_context_sets_tls_1_2_as_the_floor(tmp_path: Path) -> None:
    # Asserted on the context: this OpenSSL build refuses TLS 1.1 on the client side already, so a
    # handshake test could not tell whether the server would have accepted it.
    context = ssl_context(ensure_certificates(tmp_path))

    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_signing_key_is_created_once_and_kept_private(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing-key.pem"

    first = ensure_signing_key(path)
    second = ensure_signing_key(path)

    assert first.private_numbers() == second.private_numbers()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_trust_bundle_keeps_the_base_bundle_and_adds_the_sandbox_ca(
    entra: RunningEntra, tls_files: TlsFiles, tmp_path: Path
) -> None:
    base = ensure_certificates(tmp_path / "unrelated").ca_cert

    bundle = write_trust_bundle(tls_files, tmp_path / "bundle.pem", base_bundle=base)

    assert bundle.read_bytes().startswith(base.read_bytes())
    assert _handshake(_port(entra), ssl.create_default_context(cafile=str(bundle)), "127.0.0.1")
