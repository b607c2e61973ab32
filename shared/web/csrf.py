"""CSRF protection for the portal's forms: a synchronizer token bound to the signed session.

The session holds a random per-session secret (`CSRF_SESSION_KEY`). Each rendered form carries a token that
is that secret masked with fresh random bytes (token = base64url(mask || mask XOR secret)), so the token
differs on every page (no BREACH-style compression oracle on a constant value) yet verifies against the same
secret. A token from another session, a forged or a missing token fails verification.

`issue` creates the secret on first use, which changes the session: the caller must then send the session
cookie again (SessionCodec.dump).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import MutableMapping
from typing import Any

from shared.logs import get_logger

log = get_logger(__name__)

CSRF_SESSION_KEY = "csrf"
FORM_FIELD = "csrf_token"
_SECRET_BYTES = 32


def _session_secret(session: MutableMapping[str, Any]) -> bytes | None:
    stored = session.get(CSRF_SESSION_KEY)
    if not isinstance(stored, str):
        return None
    try:
        secret = bytes.fromhex(stored)
    except ValueError:
        return None
    return secret if len(secret) == _SECRET_BYTES else None


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def _decode(token: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None


def issue(session: MutableMapping[str, Any]) -> str:
    """A fresh token for a form; adds the session's secret when it has none yet."""
    secret = _session_secret(session)
    if secret is None:
        secret = secrets.token_bytes(_SECRET_BYTES)
        session[CSRF_SESSION_KEY] = secret.hex()
    mask = secrets.token_bytes(_SECRET_BYTES)
    return base64.urlsafe_b64encode(mask + _xor(mask, secret)).decode().rstrip("=")


def verify(session: MutableMapping[str, Any], submitted: str | None) -> bool:
    """True only when `submitted` was issued for this session; compared in constant time."""
    secret = _session_secret(session)
    if secret is None:
        log.warning("csrf check failed: the session has no csrf secret")
        return False
    if not submitted or not isinstance(submitted, str):
        log.warning("csrf check failed: no token submitted")
        return False
    raw = _decode(submitted.strip())
    if raw is None or len(raw) != 2 * _SECRET_BYTES:
        log.warning("csrf check failed: malformed token", extra={"token_length": len(submitted)})
        return False
    mask, masked = raw[:_SECRET_BYTES], raw[_SECRET_BYTES:]
    if not hmac.compare_digest(_xor(mask, masked), secret):
        log.warning("csrf check failed: token does not belong to this session")
        return False
    return True
