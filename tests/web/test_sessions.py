"""Signed session cookies: round trip, tampering, expiry, rotation and cookie attributes."""

from __future__ import annotations

import logging
import secrets

import pytest

from shared.web.sessions import SessionCodec, SessionTooLargeError, read_cookie

SECRET = "s" * 40
OTHER_SECRET = "o" * 40
CLAIMS = {"tid": "tenant-1", "oid": "object-1", "name": "Ada Admin", "email": "ada@contoso.example"}


class FakeClock:
    """Time the test controls (the clock is an input of the codec, not project code)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _cookie_header(set_cookie: str) -> str:
    return set_cookie.split(";", 1)[0]


def test_round_trip_returns_the_claims() -> None:
    codec = SessionCodec(SECRET, secure=True)

    loaded = codec.load("theme=dark; " + _cookie_header(codec.dump(CLAIMS)) + "; other=1")

    assert loaded == CLAIMS


def test_secure_cookie_uses_host_prefix_and_safe_attributes() -> None:
    set_cookie = SessionCodec(SECRET, secure=True).dump(CLAIMS)

    attributes = [part.strip() for part in set_cookie.split(";")[1:]]
    assert set_cookie.startswith("__Host-session=")
    assert set(attributes) == {"Max-Age=28800", "Path=/", "Secure", "HttpOnly", "SameSite=Lax"}
    assert not any(a.lower().startswith("domain") for a in attributes)


def test_insecure_cookie_for_local_http_drops_secure_and_the_prefix() -> None:
    set_cookie = SessionCodec(SECRET, secure=False).dump(CLAIMS)

    assert set_cookie.startswith("session=")
    assert "Secure" not in set_cookie
    assert "HttpOnly" in set_cookie


def test_host_prefix_without_secure_is_refused() -> None:
    with pytest.raises(ValueError, match="__Host-"):
        SessionCodec(SECRET, secure=False, cookie_name="__Host-session")


def test_clear_expires_the_cookie_with_the_same_attributes() -> None:
    cleared = SessionCodec(SECRET, secure=True).clear()

    assert cleared.startswith("__Host-session=;")
    assert "Max-Age=0" in cleared
    assert "Path=/" in cleared
    assert "Secure" in cleared


@pytest.mark.parametrize(
    "tamper",
    [
        # Not the last character: its two lowest bits are base64 padding of the 20-byte HMAC, so swapping
        # "A" and "B" there can decode to the same signature (a flake of about one run in sixteen).
        lambda v: v[:-2] + ("A" if v[-2] != "A" else "B") + v[-1],
        lambda v: "x" + v[1:],
        lambda v: v.rsplit(".", 1)[0],
        lambda v: "not-a-session",
    ],
)
def test_tampered_cookie_loads_as_empty_and_logs(tamper, caplog: pytest.LogCaptureFixture) -> None:
    codec = SessionCodec(SECRET, secure=True)
    value = _cookie_header(codec.dump(CLAIMS)).split("=", 1)[1]

    with caplog.at_level(logging.WARNING, logger="shared.web.sessions"):
        loaded = codec.load(f"__Host-session={tamper(value)}")

    assert loaded == {}
    assert "session cookie refused" in caplog.text


def test_cookie_signed_with_another_secret_is_refused() -> None:
    forged = SessionCodec(OTHER_SECRET, secure=True).dump({**CLAIMS, "oid": "someone-else"})

    assert SessionCodec(SECRET, secure=True).load(_cookie_header(forged)) == {}


def test_cookie_for_another_purpose_is_refused() -> None:
    other_purpose = SessionCodec(SECRET, secure=True, salt="sign-in-state").dump(CLAIMS)

    assert SessionCodec(SECRET, secure=True).load(_cookie_header(other_purpose)) == {}


def test_expired_cookie_loads_as_empty_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    codec = SessionCodec(SECRET, secure=True, max_age_seconds=3600, clock=clock)
    header = _cookie_header(codec.dump(CLAIMS))

    clock.now += 3600
    still_valid = codec.load(header)
    clock.now += 2
    with caplog.at_level(logging.INFO, logger="shared.web.sessions"):
        expired = codec.load(header)

    assert still_valid == CLAIMS
    assert expired == {}
    assert "session cookie expired" in caplog.text


def test_rotation_accepts_cookies_signed_with_the_previous_secret() -> None:
    old_cookie = SessionCodec(OTHER_SECRET, secure=True).dump(CLAIMS)

    rotated = SessionCodec([OTHER_SECRET, SECRET], secure=True)

    assert rotated.load(_cookie_header(old_cookie)) == CLAIMS
    assert SessionCodec(SECRET, secure=True).load(_cookie_header(rotated.dump(CLAIMS))) == CLAIMS


@pytest.mark.parametrize("header", [None, "", "theme=dark", "__Host-session=", ";;=;"])
def test_no_session_cookie_loads_as_empty(header: str | None) -> None:
    assert SessionCodec(SECRET, secure=True).load(header) == {}


def test_a_signed_non_object_is_refused() -> None:
    codec = SessionCodec(SECRET, secure=True)
    value = codec._serializer.dumps(["not", "a", "dict"])

    assert codec.load(f"__Host-session={value}") == {}


@pytest.mark.parametrize("key", ["access_token", "id_token", "Refresh_Token", "token"])
def test_tokens_never_go_into_the_session(key: str) -> None:
    with pytest.raises(ValueError, match="never tokens"):
        SessionCodec(SECRET, secure=True).dump({**CLAIMS, key: "eyJ..."})


def test_oversized_session_is_refused() -> None:
    with pytest.raises(SessionTooLargeError):
        SessionCodec(SECRET, secure=True).dump({"name": secrets.token_urlsafe(4000)})


@pytest.mark.parametrize("secret", ["", "short", ["s" * 40, "short"], []])
def test_weak_or_missing_secret_is_refused(secret: str | list[str]) -> None:
    with pytest.raises(ValueError, match="SESSION_SECRET"):
        SessionCodec(secret, secure=True)


def test_read_cookie_takes_the_named_cookie_only() -> None:
    assert read_cookie('a=1; session="v.2"; sessionx=3', "session") == "v.2"
    assert read_cookie("a=1", "session") is None
