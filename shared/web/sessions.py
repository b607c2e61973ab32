"""Signed session cookies: small claims about the signed-in buyer, readable by us alone, never tokens.

The cookie value is JSON signed with itsdangerous (HMAC, timestamped) under the caller's SESSION_SECRET and a
salt per purpose, so a cookie minted for one purpose is not accepted for another. Signed, not encrypted: the
browser can read the claims (tenant id, object id, name, email, CSRF secret), so the session must never hold
an access, ID or refresh token; `dump` refuses such keys.

Rotation: pass a list of secrets, newest last; cookies signed with any of them still load, new ones use the
newest.

Absolute lifetime: a signed-in session carries `iat`, the time its sign-in happened. itsdangerous stamps
every dump with a fresh time, so re-issuing a cookie (a new CSRF secret, a remembered purchase) would
otherwise restart its clock; `iat` is copied along with the other claims, so no re-issue extends the
session past `iat + max_age_seconds`, and only a new sign-in starts a new one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from itsdangerous import BadData, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from shared.logs import get_logger

log = get_logger(__name__)

DEFAULT_MAX_AGE_SECONDS = 8 * 3600
MIN_SECRET_LENGTH = 32
# Browsers drop cookies above ~4 KB silently; failing here is kinder than a sign-in loop.
MAX_COOKIE_BYTES = 4000
FORBIDDEN_KEYS = frozenset(
    {"token", "access_token", "id_token", "refresh_token", "client_secret", "password"}
)
_EXPIRED = "Thu, 01 Jan 1970 00:00:00 GMT"
ISSUED_AT_KEY = "iat"


def past_lifetime(issued_at: float, now: float, lifetime_seconds: int) -> bool:
    """True once a session issued at `issued_at` has lived its absolute lifetime (pure; epoch seconds)."""
    return now >= issued_at + lifetime_seconds


def remaining_lifetime(issued_at: float, now: float, lifetime_seconds: int) -> int:
    """Whole seconds the session may still be used; 0 when it has ended."""
    return max(0, int(issued_at + lifetime_seconds - now))


class SessionTooLargeError(ValueError):
    """The claims do not fit in one cookie."""


class _ClockedSigner(TimestampSigner):
    """A TimestampSigner whose notion of "now" is injectable, so expiry is testable without sleeping."""

    def __init__(self, *args: Any, clock: Callable[[], float], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock())


def _check_secrets(secret: str | Sequence[str]) -> list[str]:
    secrets_list = [secret] if isinstance(secret, str) else list(secret)
    if not secrets_list or any(len(s) < MIN_SECRET_LENGTH for s in secrets_list):
        raise ValueError(f"SESSION_SECRET must be set and at least {MIN_SECRET_LENGTH} characters long")
    return secrets_list


def read_cookie(cookie_header: str | None, name: str) -> str | None:
    """The first value of cookie `name` in a Cookie request header, tolerant of junk around it."""
    for pair in (cookie_header or "").split(";"):
        key, sep, value = pair.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"')
    return None


class SessionCodec:
    """Turns the session dict into a Set-Cookie value and a Cookie header back into the dict."""

    def __init__(
        self,
        secret: str | Sequence[str],
        *,
        secure: bool = True,
        max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS,
        cookie_name: str | None = None,
        salt: str = "portal-session",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secure = secure
        self.max_age_seconds = max_age_seconds
        self.cookie_name = cookie_name or ("__Host-session" if secure else "session")
        if self.cookie_name.startswith("__Host-") and not secure:
            raise ValueError("a __Host- cookie is only kept by browsers when it is Secure")
        if max_age_seconds < 1:
            raise ValueError("max_age_seconds must be at least 1")
        self._clock = clock
        self._serializer = URLSafeTimedSerializer(
            _check_secrets(secret), salt=salt, signer=_ClockedSigner, signer_kwargs={"clock": clock}
        )

    def load(self, cookie_header: str | None) -> dict[str, Any]:
        """The session in a Cookie header; {} when absent, tampered, expired or not a JSON object."""
        raw = read_cookie(cookie_header, self.cookie_name)
        if not raw:
            return {}
        try:
            data = self._serializer.loads(raw, max_age=self.max_age_seconds)
        except SignatureExpired:
            log.info("session cookie expired", extra={"cookie": self.cookie_name})
            return {}
        except BadData as exc:
            log.warning(
                "session cookie refused: bad signature or format",
                extra={"cookie": self.cookie_name, "error": type(exc).__name__},
            )
            return {}
        if not isinstance(data, dict):
            log.warning("session cookie refused: not an object", extra={"cookie": self.cookie_name})
            return {}
        if ISSUED_AT_KEY in data and self._past_lifetime(data[ISSUED_AT_KEY]):
            log.info("session past its absolute lifetime", extra={"cookie": self.cookie_name})
            return {}
        return data

    def _past_lifetime(self, issued_at: Any) -> bool:
        # bool is an int subclass; a signed non-number can only come from a bug, and counts as ended.
        if isinstance(issued_at, bool) or not isinstance(issued_at, int | float):
            return True
        return past_lifetime(issued_at, self._clock(), self.max_age_seconds)

    def dump(self, data: Mapping[str, Any]) -> str:
        """A Set-Cookie header value carrying `data`, signed now.

        Valid for max_age_seconds, or, for a session with `iat`, only for what is left of its lifetime.
        """
        leaked = FORBIDDEN_KEYS.intersection(key.lower() for key in data)
        if leaked:
            raise ValueError(f"a session holds claims, never tokens or secrets: {sorted(leaked)}")
        value = self._serializer.dumps(dict(data))
        max_age = self.max_age_seconds
        if ISSUED_AT_KEY in data:
            max_age = remaining_lifetime(data[ISSUED_AT_KEY], self._clock(), self.max_age_seconds)
        cookie = f"{self.cookie_name}={value}; Max-Age={max_age}; {self._attributes()}"
        if len(cookie.encode()) > MAX_COOKIE_BYTES:
            raise SessionTooLargeError(f"session cookie would be {len(cookie)} bytes; keep claims small")
        return cookie

    def clear(self) -> str:
        """A Set-Cookie header value that deletes the session cookie (sign-out)."""
        return f"{self.cookie_name}=; Max-Age=0; Expires={_EXPIRED}; {self._attributes()}"

    def _attributes(self) -> str:
        # Lax: the cookie still arrives on the top-level GET back from the Entra sign-in redirect.
        attributes = ["Path=/", "HttpOnly", "SameSite=Lax"]
        if self.secure:
            attributes.insert(1, "Secure")
        return "; ".join(attributes)
