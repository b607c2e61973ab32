"""The session user: sign-in rotates the CSRF secret, cookies are Secure on https, redirects stay on site."""

from __future__ import annotations

import azure.functions as func
import pytest
from azure.data.tables import TableServiceClient

from shared.config import Settings
from shared.storage.sessions import SessionStore
from shared.web import csrf
from shared.web.current_user import (
    SignedInUser,
    load_session,
    require_session,
    session_codec,
    sign_in,
    user_from_session,
)
from shared.web.sessions import SessionCodec

SECRET = "unit-test-session-secret-0123456789abcdef"
USER = SignedInUser(
    " 11111111-0000-4000-8000-00000000000A ", "OID-1", "Ada", "ada@contoso.com", "ada@contoso.com"
)


def settings(base_url: str = "http://127.0.0.1:7071") -> Settings:
    return Settings(session_secret=SECRET, public_base_url=base_url)


def request(url: str, cookie: str | None = None) -> func.HttpRequest:
    headers = {"cookie": cookie} if cookie else {}
    return func.HttpRequest(method="GET", url=url, headers=headers, body=b"")


def cookie_header(set_cookie: str) -> str:
    return set_cookie.split(";", 1)[0]


@pytest.fixture
def store(azurite_connection_string: str, table_prefix: str) -> SessionStore:
    """Sign-in records each session in Table Storage (Azurite here)."""
    service = TableServiceClient.from_connection_string(azurite_connection_string)
    return SessionStore(service.create_table_if_not_exists(f"{table_prefix}sessions"))


def test_sign_in_replaces_a_planted_csrf_secret_and_keeps_other_keys(store: SessionStore) -> None:
    before: dict[str, object] = {"next": "/api/portal", "sid": "planted-" + "x" * 40}
    planted = csrf.issue(before)
    after = sign_in(before, USER, settings=settings(), store=store)
    assert after["csrf"] != before["csrf"]
    assert not csrf.verify(after, planted)
    assert csrf.verify(after, csrf.issue(after))
    assert after["next"] == "/api/portal"
    assert (after["tid"], after["oid"]) == ("11111111-0000-4000-8000-00000000000a", "oid-1")
    assert after["sid"] != before["sid"]
    assert store.get(after["sid"]) is not None


def test_the_session_user_reads_the_signed_cookie_and_ignores_a_forged_one(store: SessionStore) -> None:
    config = settings()
    cookie = cookie_header(session_codec(config).dump(sign_in({}, USER, settings=config, store=store)))
    user = user_from_session(
        load_session(request("http://127.0.0.1:7071/api/portal", cookie), config, store=store)
    )
    assert user is not None
    assert (user.tenant_id, user.object_id, user.name) == (
        "11111111-0000-4000-8000-00000000000a",
        "oid-1",
        "Ada",
    )
    forged = foreign_codec().dump(sign_in({}, USER, settings=config, store=store))
    forged_request = request("http://127.0.0.1:7071/api/portal", cookie_header(forged))
    assert user_from_session(load_session(forged_request, config, store=store)) is None


def foreign_codec() -> SessionCodec:
    """A codec under another secret: what a forger without SESSION_SECRET can produce."""
    return session_codec(Settings(session_secret="another-secret-that-is-long-enough-000000"))


@pytest.mark.parametrize(
    ("base_url", "secure", "name"),
    [("https://portal.contoso.example", True, "__Host-session"), ("http://127.0.0.1:7071", False, "session")],
)
def test_cookies_are_secure_when_the_site_is_https(base_url: str, secure: bool, name: str) -> None:
    codec = session_codec(settings(base_url))
    set_cookie = codec.dump({"tid": "t"})
    assert codec.cookie_name == name
    assert ("Secure" in set_cookie) is secure
    assert "HttpOnly" in set_cookie
    assert "SameSite=Lax" in set_cookie


@pytest.mark.parametrize(
    ("url", "location"),
    [
        (
            "http://h/api/portal/subscriptions/s1?notice=x",
            "/api/auth/signin?next=%2Fapi%2Fportal%2Fsubscriptions%2Fs1%3Fnotice%3Dx",
        ),
        ("http://h//evil.example/api", "/api/auth/signin?next=%2Fapi%2Fportal"),
    ],
)
def test_require_session_redirects_to_sign_in_and_back_to_this_site_only(
    url: str, location: str, store: SessionStore
) -> None:
    answer = require_session(request(url), settings(), store=store)
    assert isinstance(answer, func.HttpResponse)
    assert answer.status_code == 303
    assert answer.headers["Location"] == location


def test_the_header_names_the_signed_in_account_never_the_typed_contact_email() -> None:
    # A colleague who typed the CEO's address as their contact email must not be shown as the CEO.
    user = SignedInUser("t", "o", "Eve", email="ceo@contoso.example", upn="eve@contoso.example")

    assert user.display == {"name": "Eve", "email": "eve@contoso.example"}
    assert SignedInUser("t", "o", "", email="ceo@contoso.example", upn="").display["name"] == "Signed-in user"
