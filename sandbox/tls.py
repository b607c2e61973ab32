"""TLS material for the sandbox's HTTPS listener: a local CA, a server certificate and a token-signing key.

msal and azure-identity only accept https authorities, so the Entra stand-in must speak TLS on loopback.
Clients trust the generated CA through REQUESTS_CA_BUNDLE or `verify=`/`connection_verify=`. Files are
reused across runs while valid, so a trusted CA does not change under a developer's feet.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent first runs there are unlikely enough
    fcntl = None  # type: ignore[assignment]

SERVER_DNS_NAMES = ("localhost",)
SERVER_IP_ADDRESSES = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
CA_LIFETIME = dt.timedelta(days=3650)
SERVER_LIFETIME = dt.timedelta(days=365)
# Renew a little before expiry so a long test run or dev session never crosses the end date.
RENEW_BEFORE = dt.timedelta(days=7)

_CA_CERT = "ca.pem"
_CA_KEY = "ca-key.pem"
_SERVER_CERT = "server.pem"
_SERVER_KEY = "server-key.pem"


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def ensure_certificates(directory: Path) -> TlsFiles:
    """Returns the CA and server certificate in `directory`, creating them when absent or no longer valid."""
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / _CA_CERT, directory / _SERVER_CERT, directory / _SERVER_KEY)
    # Parallel test workers share the directory; the lock keeps one CA and its server cert consistent.
    with _exclusive_lock(directory / ".lock"):
        if not _still_valid(files):
            _generate(directory)
    return files


def ssl_context(tls_files: TlsFiles) -> ssl.SSLContext:
    """The server side of the HTTPS listener; TLS 1.2 is the floor, as at Microsoft (R48)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile=tls_files.server_cert, keyfile=tls_files.server_key)
    return context


def write_trust_bundle(tls_files: TlsFiles, destination: Path, base_bundle: Path | None = None) -> Path:
    """Writes `base_bundle` (default: the bundle this process already trusts) plus the sandbox CA.

    Point REQUESTS_CA_BUNDLE at the result: requests lets that variable override a Session's `verify`,
    which is how msal passes `verify=`, so setting it to the bare sandbox CA would break calls to real hosts
    and leaving it at the system bundle would make msal distrust the sandbox.
    """
    base = base_bundle or _current_bundle()
    existing = base.read_bytes() if base is not None and base.is_file() else b""
    _write_public(destination, existing.rstrip(b"\n") + b"\n" + tls_files.ca_cert.read_bytes())
    return destination


def _current_bundle() -> Path | None:
    configured = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    cafile = configured or ssl.get_default_verify_paths().cafile
    return Path(cafile) if cafile else None


def ensure_signing_key(path: Path) -> rsa.RSAPrivateKey:
    """Loads or creates the RSA key tokens are signed with, so cached tokens survive a sandbox restart."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(path.with_name(path.name + ".lock")):
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if isinstance(key, rsa.RSAPrivateKey):
                return key
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_private_key(path, key)
        return key


@contextlib.contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a+b") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _still_valid(files: TlsFiles) -> bool:
    try:
        ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
        server = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
        key = serialization.load_pem_private_key(files.server_key.read_bytes(), password=None)
    except (OSError, ValueError):
        return False
    return (
        _not_expiring(ca)
        and _not_expiring(server)
        and _issued_by(server, ca)
        and server.public_key() == key.public_key()
        and _covers_loopback(server)
    )


def _not_expiring(certificate: x509.Certificate) -> bool:
    now = dt.datetime.now(dt.UTC)
    return certificate.not_valid_before_utc <= now and now + RENEW_BEFORE < certificate.not_valid_after_utc


def _issued_by(certificate: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _covers_loopback(certificate: x509.Certificate) -> bool:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return set(SERVER_DNS_NAMES) <= set(names.get_values_for_type(x509.DNSName)) and set(
        SERVER_IP_ADDRESSES
    ) <= set(names.get_values_for_type(x509.IPAddress))


def _generate(directory: Path) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _ca_certificate(ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = _server_certificate(server_key, ca_cert, ca_key)
    _write_private_key(directory / _CA_KEY, ca_key)
    _write_private_key(directory / _SERVER_KEY, server_key)
    _write_public(directory / _SERVER_CERT, server_cert.public_bytes(serialization.Encoding.PEM))
    _write_public(directory / _CA_CERT, ca_cert.public_bytes(serialization.Encoding.PEM))


def _ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Marketplace sandbox local CA")])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _server_certificate(
    key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    names = [x509.DNSName(n) for n in SERVER_DNS_NAMES] + [x509.IPAddress(ip) for ip in SERVER_IP_ADDRESSES]
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + SERVER_LIFETIME)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _write_private_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Written to a temporary name first so a reader never sees half a key; owner-only like an ssh key.
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    os.replace(temporary, path)


def _write_public(path: Path, pem: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(pem)
    os.replace(temporary, path)
