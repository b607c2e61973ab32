"""Sign-out ends the session (issue 7, item 4): every copy of the cookie dies with it; nothing extends one.

Over real HTTP on 127.0.0.1: the dev host serving `function_app.app`, the sandbox's Entra ID sign-in and
Fulfillment API, Azurite behind a counting proxy (tests/support/storage_counter.py), so the storage cost of
the server-side check is read off the wire. The codec's absolute lifetime is also checked with a clock the
test controls.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from shared.app_context import reset_services, services
from shared.web.sessions import SessionCodec, read_cookie
from tests.signin.test_app_stack import ADELE, CONTOSO, SESSION_SECRET, AppStack, Buyer, running_app_stack
from tests.support.storage_counter import CountingStorageProxy, is_point_read

COOKIE = "session"  # the app is served over http here, so no __Host- prefix
SIGN_IN = "/api/auth/signin"
BUYER = "adele.vance@contoso.onmicrosoft.com"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def storage(azurite_connection_string: str) -> Iterator[CountingStorageProxy]:
    with CountingStorageProxy(azurite_connection_string) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def app_stack(storage: CountingStorageProxy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppStack]:
    with running_app_stack(storage.connection_string, tmp_path_factory.mktemp("session-end")) as stack:
        yield stack


# --- helpers ---------------------------------------------------------------------------------------------


def signed_in(stack: AppStack, object_id: str = ADELE) -> Buyer:
    """A browser that went through the real sign-in (sandbox Entra ID) and holds the app's session cookie."""
    buyer = Buyer(stack)
    answer = buyer.sign_in_from(buyer.get(SIGN_IN), object_id)
    assert answer.status_code == 303, answer.text
    assert buyer.http.cookies.get(COOKIE)
    return buyer


def copy_of(buyer: Buyer) -> Buyer:
    """Another browser holding a copy of `buyer`'s session cookie, as a thief would."""
    thief = Buyer(buyer.stack)
    thief.http.cookies.set(COOKIE, buyer.http.cookies.get(COOKIE), domain="127.0.0.1", path="/")
    return thief


def sign_out(buyer: Buyer) -> None:
    """What the buyer does: open the sign-out page and press the button (a POST with its CSRF token)."""
    form = buyer.get("/api/auth/signout")
    assert form.status_code == 200
    assert buyer.post("/api/auth/signout", {"csrf_token": csrf_token(form.text)}).status_code == 200


def csrf_token(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page carries no CSRF token"
    return match.group(1)


def claims(cookie_value: str | None) -> dict:
    """The claims of a session cookie value (signature checked; a lifetime long enough not to matter)."""
    return SessionCodec(SESSION_SECRET, secure=False, max_age_seconds=10**9).load(f"{COOKIE}={cookie_value}")


def session_cookies_set(response: requests.Response) -> list[str]:
    """Set-Cookie values for the session cookie that carry a value (a cleared cookie carries none)."""
    raw = response.raw.headers.getlist("Set-Cookie") if response.raw else []
    return [c for c in raw if c.startswith(f"{COOKIE}=") and not c.startswith(f"{COOKIE}=;")]


def goes_to_sign_in(response: requests.Response) -> bool:
    return response.status_code == 303 and urlsplit(response.headers["Location"]).path == SIGN_IN


def goes_to_entra(stack: AppStack, response: requests.Response) -> bool:
    return response.status_code == 303 and response.headers["Location"].startswith(stack.sandbox.https_url)


def bought_and_landed(stack: AppStack, buyer: Buyer) -> tuple[str, requests.Response]:
    """A purchase whose landing link `buyer` opened (signed in already): its id and the confirm page."""
    bought = stack.control.buy("team-seats", buyer=BUYER, quantity=5)
    page = buyer.follow(buyer.open_landing(bought["landingUrl"]))
    assert page.status_code == 200, page.text
    return bought["subscriptionId"], page


# --- sign-out ends every copy of the session ----------------------------------------------------------


def test_a_cookie_copied_before_sign_out_is_refused_after_it(app_stack: AppStack) -> None:
    buyer = signed_in(app_stack)
    thief = copy_of(buyer)
    assert thief.get("/api/portal").status_code == 200  # the copy works while the session lives

    sign_out(buyer)

    assert goes_to_sign_in(thief.get("/api/portal"))
    assert goes_to_sign_in(buyer.get("/api/portal"))


def test_every_page_that_loads_the_session_refuses_an_ended_one(app_stack: AppStack) -> None:
    buyer = signed_in(app_stack)
    subscription_id, confirm_page = bought_and_landed(app_stack, buyer)
    confirm_token = csrf_token(confirm_page.text)
    # Confirming grants Adele the admin roles, so the portal's subscription and seat pages open for her.
    confirmed = buyer.post(
        "/api/landing/confirm", {"csrf_token": confirm_token, "contact_email": "adele@contoso.com"}
    )
    assert confirmed.status_code == 303
    page_path = f"/api/portal/subscriptions/{subscription_id}"
    page = buyer.get(page_path)
    assert page.status_code == 200
    portal_token = csrf_token(page.text)
    thief = copy_of(buyer)

    sign_out(buyer)

    assert goes_to_sign_in(thief.get("/api/portal"))
    assert goes_to_sign_in(thief.get(page_path))
    seat = thief.post(f"{page_path}/seats", {"csrf_token": portal_token, "email": "eve@contoso.com"})
    assert goes_to_sign_in(seat)
    assert services().seats.find(subscription_id, user_key="eve@contoso.com") is None
    assert goes_to_sign_in(thief.get("/api/portal/setup/" + "a" * 43))
    assert goes_to_entra(app_stack, thief.get("/api/landing/confirm"))


def test_an_ended_session_cannot_confirm_a_purchase(app_stack: AppStack) -> None:
    buyer = signed_in(app_stack)
    subscription_id, confirm_page = bought_and_landed(app_stack, buyer)
    thief = copy_of(buyer)

    sign_out(buyer)

    form = {"csrf_token": csrf_token(confirm_page.text), "contact_email": "eve@evil.example"}
    answer = thief.post("/api/landing/confirm", form)
    assert goes_to_entra(app_stack, answer)
    assert app_stack.activations_queued(subscription_id) == 0
    assert services().admins.roles_for(subscription_id, CONTOSO, ADELE) == set()


def test_the_sign_out_page_hands_out_no_fresh_cookie(app_stack: AppStack) -> None:
    buyer = signed_in(app_stack)
    thief = copy_of(buyer)

    form = buyer.get("/api/auth/signout")
    assert form.status_code == 200
    assert session_cookies_set(form) == []  # asking to sign out re-signs nothing

    buyer.post("/api/auth/signout", {"csrf_token": csrf_token(form.text)})
    after = thief.get("/api/auth/signout")

    assert session_cookies_set(after) == []
    assert 'data-testid="signout"' not in after.text  # the ended session is not offered a sign-out form
    assert goes_to_sign_in(thief.get("/api/portal"))


# --- one session per sign-in, with an absolute lifetime ----------------------------------------------


def test_each_sign_in_starts_a_session_with_a_new_id_and_ends_the_previous_one(app_stack: AppStack) -> None:
    buyer = signed_in(app_stack)
    first = claims(buyer.http.cookies.get(COOKIE))
    earlier_copy = copy_of(buyer)

    again = buyer.sign_in_from(buyer.get(SIGN_IN), ADELE)
    assert again.status_code == 303
    second = claims(buyer.http.cookies.get(COOKIE))
    elsewhere = claims(signed_in(app_stack).http.cookies.get(COOKIE))

    assert all(session.get("sid") for session in (first, second, elsewhere))
    assert len({first["sid"], second["sid"], elsewhere["sid"]}) == 3
    assert second["iat"] >= first["iat"]
    assert buyer.get("/api/portal").status_code == 200
    assert goes_to_sign_in(earlier_copy.get("/api/portal"))  # the browser's previous session ended


def test_reissued_cookies_keep_the_absolute_lifetime_of_the_sign_in(
    app_stack: AppStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    lifetime = 4
    with monkeypatch.context() as short:
        short.setenv("SESSION_LIFETIME_SECONDS", str(lifetime))
        reset_services()
        try:
            buyer = signed_in(app_stack)
            issued_at = claims(buyer.http.cookies.get(COOKIE))["iat"]
            # Opening a landing link re-issues the cookie (it remembers the purchase) halfway through.
            time.sleep(max(0.0, issued_at + lifetime / 2 - time.time()))
            bought = app_stack.control.buy("team-seats", buyer=BUYER, quantity=5)
            landed = buyer.open_landing(bought["landingUrl"])
            [reissued] = session_cookies_set(landed)
            assert claims(read_cookie(reissued.split(";", 1)[0], COOKIE))["iat"] == issued_at
            max_age = int(re.search(r"Max-Age=(\d+)", reissued).group(1))  # type: ignore[union-attr]
            assert max_age <= lifetime / 2 + 1  # the browser keeps it only for what is left
            # A copy ignores Max-Age (a thief's would): the server itself must refuse it.
            copy = copy_of(buyer)
            assert copy.get("/api/portal").status_code == 200

            time.sleep(max(0.0, issued_at + lifetime + 0.5 - time.time()))
            assert goes_to_sign_in(copy.get("/api/portal"))
        finally:
            short.undo()
            reset_services()


def test_reissuing_never_moves_the_expiry_with_a_controlled_clock() -> None:
    now = [1_700_000_000.0]
    codec = SessionCodec(SESSION_SECRET, secure=False, max_age_seconds=3600, clock=lambda: now[0])
    signed = {"tid": "t", "oid": "o", "sid": "s" * 43, "iat": int(now[0])}
    cookie = codec.dump(signed).split(";", 1)[0]

    now[0] += 3500
    session = codec.load(cookie)
    session["csrf"] = "ab" * 32  # any write that re-signs the cookie, e.g. a new CSRF secret
    reissued = codec.dump(session)
    assert "Max-Age=100;" in reissued

    now[0] += 101
    assert codec.load(reissued.split(";", 1)[0]) == {}
    assert codec.load(cookie) == {}


# --- the cost: one point read per authenticated request ----------------------------------------------


def test_an_authenticated_request_costs_one_point_read_of_the_session_record(
    app_stack: AppStack, storage: CountingStorageProxy
) -> None:
    from shared.storage.sessions import session_table_name

    buyer = signed_in(app_stack)
    subscription_id, _ = bought_and_landed(app_stack, buyer)
    page_path = f"/api/portal/subscriptions/{subscription_id}"
    table = session_table_name(services().settings.table_users)
    requests_made = {
        "portal home": lambda: buyer.get("/api/portal"),
        "landing confirm": lambda: buyer.get("/api/landing/confirm"),
        "subscription page": lambda: buyer.get(page_path),
        "portal form": lambda: buyer.post(f"{page_path}/seats", {"csrf_token": "x"}),
        "sign-out page": lambda: buyer.get("/api/auth/signout"),
    }
    for name, make in requests_made.items():
        storage.clear()
        answer = make()
        assert answer.status_code < 500, name
        seen = storage.requests_to(table)
        assert len(seen) == 1, f"{name}: {seen}"
        assert is_point_read(*seen[0]), f"{name}: {seen}"

    storage.clear()
    Buyer(app_stack).get("/api/portal")  # no session, nothing to check
    assert storage.requests_to(table) == []
