"""Landing page sign-in over real HTTP: sandbox Entra ID, Graph and Fulfillment API, Azurite, dev host."""

from __future__ import annotations

import threading
from urllib.parse import quote, urlsplit

import pytest
import requests

from shared.app_context import services
from shared.web.sessions import SessionCodec, read_cookie
from tests.signin.test_app_stack import (
    ADELE,
    ALEX,
    CONTOSO,
    GUEST,
    MEGAN,
    MSA_TENANT,
    NESTOR,
    PAT,
    SESSION_SECRET,
    AppStack,
    Buyer,
    FormFields,
    app_stack,
    query_of,
)

__all__ = ["app_stack"]  # the fixture, imported so pytest finds it here

BASIC_SCOPES = {"openid", "profile", "email", "User.Read"}
NORTHWIND = "33333333-0000-4000-8000-000000000000"


def session_of(buyer: Buyer) -> dict:
    raw = buyer.http.cookies.get("session")
    return SessionCodec(SESSION_SECRET, secure=False).load(f"session={raw}") if raw else {}


def buy(stack: AppStack, buyer: str = "adele.vance@contoso.onmicrosoft.com", **extra: object) -> dict:
    return stack.control.buy("team-seats", buyer=buyer, quantity=5, **extra)


def test_unauthenticated_landing_goes_to_entra_with_pkce_state_nonce_and_basic_scopes(
    app_stack: AppStack,
) -> None:
    bought = buy(app_stack)
    buyer = Buyer(app_stack)
    response = buyer.open_landing(bought["landingUrl"])
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith(f"{app_stack.sandbox.https_url}/common/oauth2/v2.0/authorize?")
    query = query_of(location)
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) >= 43
    assert query["state"]
    assert query["nonce"]
    assert query["response_type"] == "code"
    scopes = set(query["scope"].split())
    assert "openid" in scopes
    assert scopes <= BASIC_SCOPES, f"R9: only basic scopes, asked for {sorted(scopes)}"
    assert query["redirect_uri"] == f"{app_stack.base_url}/api/auth/callback"
    # R4: the session remembers the subscription, never the purchase token.
    assert session_of(buyer) == {"landing_subscription_id": bought["subscriptionId"]}
    assert bought["token"] not in response.headers.get("Set-Cookie", "")


def test_work_user_signs_in_and_sees_what_was_bought_before_anything_is_queued(app_stack: AppStack) -> None:
    bought = buy(app_stack)
    buyer = Buyer(app_stack)
    after_callback = buyer.sign_in_from(buyer.open_landing(bought["landingUrl"]), ADELE)
    assert after_callback.status_code == 303
    assert after_callback.headers["Location"] == "/api/landing/confirm"
    page = buyer.follow(after_callback)
    assert page.status_code == 200
    for expected in (
        'data-field="offer">contoso-analytics<',
        'data-field="plan"><span data-plan="team-seats">Team (per seat)</span><',
        'data-field="quantity">5<',
        'data-field="term">Monthly<',
        'data-field="trial">Yes',
        'data-field="buyer-name"><bdi>Adele Vance</bdi><',  # isolated for bidi text
        'data-field="organisation"',
        f'data-tenant="{CONTOSO}">Your organisation (contoso.onmicrosoft.com)<',  # the id only as data
        'value="adele.vance@contoso.com"',
        "What happens next",
    ):
        assert expected in page.text, expected
    assert 'type="password"' not in page.text
    assert "card number" not in page.text.lower()
    stored_user = services().users.get(CONTOSO, ADELE)
    assert stored_user is not None
    assert stored_user.display_name == "Adele Vance"
    assert session_of(buyer)["oid"] == ADELE
    assert app_stack.activations_queued(bought["subscriptionId"]) == 0


def test_user_without_a_mailbox_gets_the_upn_prefilled(app_stack: AppStack) -> None:
    bought = buy(app_stack, buyer="megan.bowen@contoso.onmicrosoft.com")
    page = Buyer(app_stack).confirm_page(bought["landingUrl"], MEGAN)
    assert page.status_code == 200
    assert 'value="megan.bowen@contoso.onmicrosoft.com"' in page.text


def test_personal_microsoft_account_signs_in_and_confirms(app_stack: AppStack) -> None:
    bought = buy(app_stack, buyer="pat.personal@outlook.com")
    buyer = Buyer(app_stack)
    page = buyer.confirm_page(bought["landingUrl"], PAT)
    assert page.status_code == 200
    assert "You (personal Microsoft account)" in page.text
    assert 'value="pat.personal@outlook.com"' in page.text
    assert buyer.confirm(page).status_code == 303
    assert services().admins.roles_for(bought["subscriptionId"], MSA_TENANT, PAT) == {"purchaser"} | {
        "beneficiary-admin"
    }
    assert app_stack.activations_queued(bought["subscriptionId"]) == 1


def test_buyer_without_any_address_is_asked_for_one(app_stack: AppStack) -> None:
    bought = buy(app_stack, buyer="alex.wilber@fabrikam.onmicrosoft.com")
    buyer = Buyer(app_stack)
    page = buyer.confirm_page(bought["landingUrl"], GUEST)
    assert page.status_code == 200
    assert 'name="contact_email" value=""' in page.text
    refused = buyer.confirm(page, contact_email="not an address")
    assert refused.status_code == 400
    assert 'role="alert"' in refused.text
    assert 'aria-invalid="true"' in refused.text
    assert app_stack.activations_queued(bought["subscriptionId"]) == 0
    accepted = buyer.confirm(refused, contact_email="guest.consultant@outlook.com")
    assert accepted.status_code == 303
    assert services().users.get("22222222-0000-4000-8000-000000000000", GUEST).email == (  # type: ignore[union-attr]
        "guest.consultant@outlook.com"
    )


def test_user_of_an_unrelated_tenant_is_refused(app_stack: AppStack) -> None:
    bought = buy(app_stack)
    buyer = Buyer(app_stack)
    page = buyer.confirm_page(bought["landingUrl"], ALEX)
    assert page.status_code == 403
    assert "another organisation" in page.text
    forged = buyer.post("/api/landing/confirm", {"contact_email": "alex@fabrikam.com", "csrf_token": "x"})
    assert forged.status_code == 403
    assert app_stack.activations_queued(bought["subscriptionId"]) == 0


def test_csp_partner_finishes_setup_for_the_customer(app_stack: AppStack) -> None:
    bought = app_stack.control.buy_as_csp(
        "team-seats", customer_tenant_id="22222222-0000-4000-8000-000000000000"
    )
    buyer = Buyer(app_stack)
    page = buyer.confirm_page(bought["landingUrl"], NESTOR)
    assert page.status_code == 200
    assert (
        "Your organisation (northwindpartners.onmicrosoft.com), buying for a customer as their partner"
        in (page.text)
    )
    assert buyer.confirm(page).status_code == 303
    assert services().admins.roles_for(bought["subscriptionId"], NORTHWIND, NESTOR) == {"purchaser"}
    assert app_stack.activations_queued(bought["subscriptionId"]) == 1


def test_confirm_without_csrf_token_is_refused_and_queues_nothing(app_stack: AppStack) -> None:
    bought = buy(app_stack)
    buyer = Buyer(app_stack)
    page = buyer.confirm_page(bought["landingUrl"], ADELE)
    assert page.status_code == 200
    refused = buyer.post("/api/landing/confirm", {"contact_email": "adele.vance@contoso.com"})
    assert refused.status_code == 403
    wrong = buyer.post("/api/landing/confirm", {"contact_email": "a@contoso.com", "csrf_token": "Zm9yZ2Vk"})
    assert wrong.status_code == 403
    assert app_stack.activations_queued(bought["subscriptionId"]) == 0
    assert services().subscriptions.get(bought["subscriptionId"]).activation_requested_at is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "contact_email",
    ["a" * 20_000 + "@contoso.com", "%FF%FE@contoso.com"],
    ids=["oversized", "not-utf-8"],
)
def test_a_confirm_form_that_is_no_sane_form_is_refused_unread(
    app_stack: AppStack, contact_email: str
) -> None:
    bought = buy(app_stack)
    buyer = Buyer(app_stack)
    page = buyer.confirm_page(bought["landingUrl"], ADELE)
    fields = FormFields(page.text).values
    body = "&".join(f"{name}={quote(value)}" for name, value in fields.items() if name != "contact_email")
    refused = buyer.http.post(
        f"{app_stack.base_url}/api/landing/confirm",
        data=f"{body}&contact_email={contact_email}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        allow_redirects=False,
        timeout=15,
    )

    assert refused.status_code == 400
    assert "This form could not be read" in refused.text
    assert len(refused.content) < 20_000  # nothing echoed back
    assert app_stack.activations_queued(bought["subscriptionId"]) == 0


def test_two_people_confirming_at_once_make_only_the_one_who_counts_an_administrator(
    app_stack: AppStack,
) -> None:
    bought = buy(app_stack)
    subscription_id = bought["subscriptionId"]
    adele, megan = Buyer(app_stack), Buyer(app_stack)
    pages = {ADELE: adele.confirm_page(bought["landingUrl"], ADELE)}
    pages[MEGAN] = megan.confirm_page(app_stack.control.new_token(subscription_id)["landingUrl"], MEGAN)
    start = threading.Barrier(2)
    answers: dict[str, int] = {}

    def confirm(buyer: Buyer, who: str) -> None:
        start.wait()
        answers[who] = buyer.confirm(pages[who], contact_email=f"{who[:4]}@contoso.com").status_code

    threads = [threading.Thread(target=confirm, args=pair) for pair in ((adele, ADELE), (megan, MEGAN))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert answers == {ADELE: 303, MEGAN: 303}
    [confirmation] = [e for e in services().audit.list(subscription_id) if e.action == "Confirm"]
    confirmed_by = confirmation.changes["confirmed_by"][1]
    megan_roles = services().admins.roles_for(subscription_id, CONTOSO, MEGAN)
    # Adele is the purchaser Microsoft names: an administrator either way. Megan only if hers counted.
    assert bool(megan_roles) == (confirmed_by == f"{CONTOSO}:{MEGAN}")
    assert app_stack.activations_queued(subscription_id) == 1


def test_confirm_queues_one_activation_and_repeats_lead_to_status_then_management(
    app_stack: AppStack,
) -> None:
    bought = buy(app_stack)
    subscription_id = bought["subscriptionId"]
    buyer = Buyer(app_stack)
    page = buyer.confirm_page(bought["landingUrl"], ADELE)
    confirmed = buyer.confirm(page, contact_email="billing@contoso.com")
    assert confirmed.status_code == 303
    assert confirmed.headers["Location"].startswith("/api/landing/status?ticket=")
    assert app_stack.activations_queued(subscription_id) == 1
    assert services().admins.roles_for(subscription_id, CONTOSO, ADELE) == {"purchaser", "beneficiary-admin"}
    assert services().users.get(CONTOSO, ADELE).email == "billing@contoso.com"  # type: ignore[union-attr]

    again = buyer.confirm(page, contact_email="billing@contoso.com")  # double submit / back button
    refreshed = buyer.get("/api/landing/confirm")
    reopened = buyer.open_landing(app_stack.control.new_token(subscription_id)["landingUrl"])
    for response in (again, refreshed, buyer.follow(reopened)):
        assert response.status_code == 303
        assert response.headers["Location"].startswith("/api/landing/status?ticket=")
    assert app_stack.activations_queued(subscription_id) == 1
    confirmations = [e for e in services().audit.list(subscription_id) if e.action == "Confirm"]
    assert len(confirmations) == 1
    status = buyer.get(confirmed.headers["Location"])
    assert status.status_code == 200
    assert (
        'data-status="PendingFulfillmentStart" data-testid="activation-status">Waiting for activation<'
        in (status.text)
    )

    assert run_worker(app_stack) >= 1
    sandbox_view = app_stack.control.subscription(subscription_id)["subscription"]
    assert sandbox_view["saasSubscriptionStatus"] == "Subscribed"
    after = buyer.get("/api/landing/confirm")
    assert after.status_code == 303
    assert after.headers["Location"] == f"/api/portal/subscriptions/{quote(subscription_id, safe='')}"


def run_worker(stack: AppStack) -> int:
    """What the queue runner does: hand each waiting message to the worker, then settle it."""
    from devhost.queue_runner import to_service_bus_message
    from shared.entrypoints import worker

    handled = 0
    with stack.queue() as queue:
        while (lease := queue.receive(timeout=0.5)) is not None:
            worker.handle_message(to_service_bus_message(lease))
            queue.complete(lease)
            handled += 1
    return handled


def _callback_url(buyer: Buyer, start: requests.Response, object_id: str) -> str:
    return buyer.choose_user(start.headers["Location"], object_id).headers["Location"]


def test_forged_state_is_refused_without_a_session(app_stack: AppStack) -> None:
    buyer = Buyer(app_stack)
    callback = _callback_url(buyer, buyer.get("/api/auth/signin"), ADELE)
    query = query_of(callback)
    forged = callback.replace(f"state={query['state']}", "state=forged-state")
    answer = buyer.http.get(forged, allow_redirects=False, timeout=15)
    assert answer.status_code == 400
    assert "We could not sign you in" in answer.text
    assert "oid" not in session_of(buyer)


def test_replayed_code_is_refused(app_stack: AppStack) -> None:
    buyer = Buyer(app_stack)
    start = buyer.get("/api/auth/signin")
    flow_cookie = read_cookie(start.headers["Set-Cookie"].replace(", ", "; "), "signin")
    callback = _callback_url(buyer, start, ADELE)
    assert buyer.http.get(callback, allow_redirects=False, timeout=15).status_code == 303

    replay = Buyer(app_stack)
    replay.http.cookies.set("signin", flow_cookie or "", domain="127.0.0.1", path="/")
    answer = replay.http.get(callback, allow_redirects=False, timeout=15)
    assert answer.status_code == 400
    assert "oid" not in session_of(replay)
    without_cookie = Buyer(app_stack).http.get(callback, allow_redirects=False, timeout=15)
    assert without_cookie.status_code == 400


@pytest.mark.parametrize(
    ("next_path", "lands_on"),
    [
        ("//evil.example", "/api/portal"),
        ("https://evil.example/steal", "/api/portal"),
        ("/\\evil.example", "/api/portal"),
        ("/api/landing/confirm?step=2", "/api/landing/confirm?step=2"),
    ],
)
def test_next_after_sign_in_never_leaves_the_site(app_stack: AppStack, next_path: str, lands_on: str) -> None:
    buyer = Buyer(app_stack)
    answer = buyer.sign_in_from(buyer.get(f"/api/auth/signin?next={quote(next_path, safe='')}"), ADELE)
    assert answer.status_code == 303
    assert answer.headers["Location"] == lands_on
    assert not urlsplit(answer.headers["Location"]).netloc


def test_sign_in_binds_a_seat_assigned_to_the_users_upn(app_stack: AppStack) -> None:
    bought = buy(app_stack)
    Buyer(app_stack).open_landing(bought["landingUrl"])  # records the purchase in Contoso's tenant
    seats = services().seats
    seats.assign(
        bought["subscriptionId"], "megan.bowen@contoso.onmicrosoft.com", quantity=5, assigned_by="test"
    )
    buyer = Buyer(app_stack)
    assert buyer.sign_in_from(buyer.get("/api/auth/signin"), MEGAN).status_code == 303
    seat = seats.find(bought["subscriptionId"], tenant_id=CONTOSO, object_id=MEGAN)
    assert seat is not None
    assert seat.is_bound
    license_entry = services().licenses.lookup(CONTOSO, MEGAN, "contoso-analytics")
    assert license_entry is not None
    assert license_entry.subscription_id == bought["subscriptionId"]


def test_sign_out_needs_the_form_and_ends_the_session(app_stack: AppStack) -> None:
    buyer = Buyer(app_stack)
    buyer.sign_in_from(buyer.get("/api/auth/signin"), ADELE)
    assert buyer.post("/api/auth/signout", {}).status_code == 403
    assert session_of(buyer).get("oid") == ADELE
    form = buyer.get("/api/auth/signout")
    assert form.status_code == 200
    token = form.text.split('name="csrf_token" value="')[1].split('"')[0]
    signed_out = buyer.post("/api/auth/signout", {"csrf_token": token})
    assert signed_out.status_code == 200
    assert "Max-Age=0" in signed_out.headers["Set-Cookie"]
    assert session_of(buyer) == {}


def test_a_queue_outage_at_confirm_takes_the_confirmation_back_so_it_can_be_repeated(
    app_stack: AppStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.app_context import reset_services
    from tests.support.ports import free_port

    bought = buy(app_stack)
    subscription_id = bought["subscriptionId"]
    buyer = Buyer(app_stack)
    page = buyer.confirm_page(bought["landingUrl"], ADELE)
    with monkeypatch.context() as outage:
        outage.setenv("QUEUE_BACKEND", "servicebus")
        outage.setenv(
            "ServiceBusConnection",
            f"Endpoint=sb://127.0.0.1:{free_port()}/;SharedAccessKeyName=k;SharedAccessKey=a2V5;UseDevelopmentEmulator=true",
        )
        reset_services()
        try:
            refused = buyer.confirm(page, contact_email="billing@contoso.com")
        finally:
            outage.undo()
            reset_services()

    assert refused.status_code == 503
    assert services().subscriptions.get(subscription_id).activation_requested_at is None  # type: ignore[union-attr]
    assert app_stack.activations_queued(subscription_id) == 0

    again = buyer.confirm(buyer.get("/api/landing/confirm"), contact_email="billing@contoso.com")
    assert again.status_code == 303
    assert app_stack.activations_queued(subscription_id) == 1
    actions = [e.action for e in services().audit.list(subscription_id)]
    assert actions[-3:] == ["Confirm", "ConfirmRolledBack", "Confirm"]
