"""The portal over real HTTP: the dev host serving function_app.app, Azurite, the sandbox as Microsoft."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest

from shared.app_context import services
from shared.domain.access import Role
from shared.domain.inbox import InboxState
from shared.queueing.messages import MessageKind
from shared.web.current_user import SignedInUser
from tests.portal import (
    ADELE,
    ALEX,
    CONTOSO,
    FABRIKAM,
    MEGAN,
    Portal,
    post_form,
    remember_user,
    running_portal,
    token_for,
)

XSS = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def portal(azurite_connection_string: str) -> Iterator[Portal]:
    prefix = "p" + uuid.uuid4().hex[:10]
    with running_portal(
        azurite_connection_string,
        prefix,
        env={"POLICY_BLOCK_DOWNGRADES": "true", "POLICY_PLAN_ORDER": "basic,team-seats,pro"},
    ) as running:
        yield running


def without_nonce(html: str) -> str:
    return re.sub(r'nonce="[^"]+"', "", html)


def track_messages(subscription_id: str) -> list[dict[str, object]]:
    return [
        m.body
        for m in services().queue.messages  # type: ignore[attr-defined]
        if m.body.get("kind") == MessageKind.TRACK and m.body.get("subscriptionId") == subscription_id
    ]


def microsoft(portal: Portal, subscription_id: str) -> dict[str, object]:
    return portal.control.subscription(subscription_id)


def test_without_a_session_the_portal_sends_the_user_to_sign_in_and_back(portal: Portal) -> None:
    response = portal.browser().get(f"{portal.url}/api/portal/subscriptions/abc?x=1", allow_redirects=False)
    assert response.status_code == 303
    assert (
        response.headers["Location"] == "/api/auth/signin?next=%2Fapi%2Fportal%2Fsubscriptions%2Fabc%3Fx%3D1"
    )


def test_a_tampered_session_cookie_counts_as_signed_out(portal: Portal) -> None:
    client = portal.browser(ADELE)
    [cookie] = list(client.cookies)
    client.cookies.set(cookie.name, cookie.value[:-2] + "xx", domain="127.0.0.1", path="/")
    assert client.get(f"{portal.url}/api/portal", allow_redirects=False).status_code == 303


def test_home_lists_the_users_subscriptions_only(portal: Portal) -> None:
    mine = portal.buy(quantity=3)
    theirs = portal.buy(quantity=2, buyer="alex.wilber@fabrikam.onmicrosoft.com")
    page = portal.browser(ADELE).get(f"{portal.url}/api/portal")
    assert page.status_code == 200
    assert f"/api/portal/subscriptions/{mine}" in page.text
    assert theirs not in page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert "nonce-" in page.headers["Content-Security-Policy"]


def test_subscription_page_offers_live_plans_and_marks_blocked_downgrades(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=3)
    page = portal.browser(ADELE).get(portal.page_url(subscription_id))
    assert page.status_code == 200
    assert 'data-status="Subscribed"' in page.text
    assert "Pro (annual)" in page.text
    assert "Legacy" not in page.text  # stop-sold plans are not offered
    assert "Downgrade: not allowed" in page.text  # basic ranks below team-seats
    assert "0 of 3 seats used, 3 free." in page.text


def test_quantity_change_goes_to_microsoft_and_is_tracked(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=3)
    client = portal.browser(ADELE)
    response = post_form(client, portal.page_url(subscription_id), "quantity", {"quantity": "7"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(
        f"/api/portal/subscriptions/{subscription_id}?notice=quantity-requested"
    )
    [record] = services().operations.list_for_subscription(subscription_id)
    assert (record.action, record.quantity, record.state) == ("ChangeQuantity", 7, InboxState.TRACKING)
    assert record.initiated_by_publisher is True
    [message] = track_messages(subscription_id)
    assert message["operationId"] == record.operation_id
    operations = microsoft(portal, subscription_id)["operations"]
    assert any(op["id"] == record.operation_id and op["quantity"] == 7 for op in operations)  # type: ignore[index]
    page = client.get(portal.page_url(subscription_id))
    assert "Changes Microsoft is still processing" in page.text
    assert 'data-action="ChangeQuantity"' in page.text
    assert "Seat quantity change" in page.text


def test_a_seat_cut_in_progress_limits_new_seats_to_the_lower_quantity(portal: Portal) -> None:
    # Microsoft applies the cut later (the sandbox holds it for a minute); until the stored quantity follows,
    # a seat assigned against the old 3 would license more people than the 1 paid for.
    subscription_id = portal.buy(quantity=3)
    client = portal.browser(ADELE)
    url = portal.page_url(subscription_id)
    assert post_form(client, url, "quantity", {"quantity": "1"}).status_code == 303

    assert post_form(client, url, "seats", {"email": "one@contoso.com"}).status_code == 303
    refused = post_form(client, url, "seats", {"email": "two@contoso.com"})

    assert refused.status_code == 409
    assert services().seats.count(subscription_id) == 1
    [record] = services().operations.list_for_subscription(subscription_id)
    assert record.holds_seats


def test_a_seat_cut_microsoft_refuses_holds_nothing(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=3)
    client = portal.browser(ADELE)
    url = portal.page_url(subscription_id)
    portal.control.unsubscribe(subscription_id)  # Microsoft refuses any change now (400); the mirror lags

    assert post_form(client, url, "quantity", {"quantity": "1"}).status_code == 400

    for email in ("one@contoso.com", "two@contoso.com"):
        assert post_form(client, url, "seats", {"email": email}).status_code == 303
    assert services().seats.count(subscription_id) == 2


def test_a_seat_cut_whose_answer_was_lost_keeps_its_hold(portal: Portal) -> None:
    # A 500 says nothing about whether Microsoft took the change: the hold stays (until it expires).
    subscription_id = portal.buy(quantity=3)
    client = portal.browser(ADELE)
    url = portal.page_url(subscription_id)
    portal.control.add_fault(operation="FulfillmentOperations_UpdateSubscription", kind="500", share=1)
    try:
        assert post_form(client, url, "quantity", {"quantity": "1"}).status_code == 502
    finally:
        portal.control.clear_faults()

    assert post_form(client, url, "seats", {"email": "one@contoso.com"}).status_code == 303
    assert post_form(client, url, "seats", {"email": "two@contoso.com"}).status_code == 409


@pytest.mark.parametrize("typed", ["\uff11", "1_0", "+2", " 2 3", "-1"])
def test_a_quantity_in_anything_but_plain_digits_is_refused(portal: Portal, typed: str) -> None:
    subscription_id = portal.buy(quantity=3)
    response = post_form(
        portal.browser(ADELE), portal.page_url(subscription_id), "quantity", {"quantity": typed}
    )
    assert response.status_code == 400
    assert "must be a whole number" in response.text
    assert services().operations.list_for_subscription(subscription_id) == []


def test_plan_change_goes_to_microsoft(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=3)
    response = post_form(portal.browser(ADELE), portal.page_url(subscription_id), "plan", {"plan_id": "pro"})
    assert response.status_code == 303
    [record] = services().operations.list_for_subscription(subscription_id)
    assert (record.action, record.plan_id) == ("ChangePlan", "pro")


@pytest.mark.parametrize(
    ("action", "fields", "status"),
    [
        ("plan", {"plan_id": "basic"}, 409),  # downgrade blocked by the publisher policy
        ("plan", {"plan_id": "legacy"}, 400),  # stop-sold
        ("plan", {"plan_id": "team-seats"}, 400),  # the current plan
        ("quantity", {"quantity": "51"}, 400),  # above the plan's maximum
        ("quantity", {"quantity": "0"}, 409),  # below the seats assigned (one)
        ("quantity", {"quantity": "many"}, 400),
        ("cancel", {}, 400),  # not confirmed
    ],
)
def test_refused_changes_never_reach_microsoft(
    portal: Portal, action: str, fields: dict[str, str], status: int
) -> None:
    subscription_id = portal.buy(quantity=3)
    client = portal.browser(ADELE)
    assert (
        post_form(client, portal.page_url(subscription_id), "seats", {"email": "ada@contoso.com"}).status_code
        == 303
    )
    response = post_form(client, portal.page_url(subscription_id), action, fields)
    assert response.status_code == status
    assert services().operations.list_for_subscription(subscription_id) == []
    assert microsoft(portal, subscription_id)["operations"] == [] or all(
        op["action"] == "Activate"
        for op in microsoft(portal, subscription_id)["operations"]  # type: ignore[union-attr]
    )


def test_cancel_with_confirmation_deletes_at_microsoft(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=3)
    response = post_form(
        portal.browser(ADELE), portal.page_url(subscription_id), "cancel", {"confirm": "yes"}
    )
    assert response.status_code == 303
    [record] = services().operations.list_for_subscription(subscription_id)
    assert record.action == "Unsubscribe"
    assert microsoft(portal, subscription_id)["subscription"]["saasSubscriptionStatus"] == "Unsubscribed"  # type: ignore[index]


def test_seats_up_to_the_quantity_then_one_over_is_409(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=2)
    client = portal.browser(ADELE)
    url = portal.page_url(subscription_id)
    assert post_form(client, url, "seats", {"email": "one@contoso.com"}).status_code == 303
    assert post_form(client, url, "seats", {"email": "two@contoso.com"}).status_code == 303
    refused = post_form(client, url, "seats", {"email": "three@contoso.com"})
    assert refused.status_code == 409
    assert "No free seats" in refused.text
    assert services().seats.count(subscription_id) == 2
    assert "2 of 2 seats used, 0 free." in client.get(url).text


def test_revoking_frees_a_seat(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=1)
    client = portal.browser(ADELE)
    url = portal.page_url(subscription_id)
    post_form(client, url, "seats", {"email": "one@contoso.com"})
    [seat] = services().seats.list(subscription_id)
    assert post_form(client, url, "seats/revoke", {"seat": seat.user_key}).status_code == 303
    assert services().seats.count(subscription_id) == 0
    assert post_form(client, url, "seats", {"email": "two@contoso.com"}).status_code == 303


def test_a_user_who_signed_in_can_be_picked_for_a_seat_and_as_admin(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=2)
    remember_user(MEGAN)
    client = portal.browser(ADELE)
    url = portal.page_url(subscription_id)
    picked = f"{MEGAN.tenant_id}:{MEGAN.object_id}"
    assert picked in client.get(url).text
    assert post_form(client, url, "seats", {"user": picked}).status_code == 303
    [seat] = services().seats.list(subscription_id)
    assert (seat.tenant_id, seat.object_id, seat.is_bound) == (MEGAN.tenant_id, MEGAN.object_id, True)
    assert post_form(client, url, "admins", {"user": picked}).status_code == 303
    roles = services().admins.roles_for(subscription_id, MEGAN.tenant_id, MEGAN.object_id)
    assert roles == {Role.DELEGATED_ADMIN}
    megan = portal.browser(MEGAN)
    assert megan.get(url).status_code == 200
    assert subscription_id in megan.get(f"{portal.url}/api/portal").text


def test_a_designated_administrator_is_listed_and_can_be_removed_again(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=2)
    remember_user(MEGAN)
    client = portal.browser(ADELE)
    url = portal.page_url(subscription_id)
    megan = f"{MEGAN.tenant_id}:{MEGAN.object_id}"
    assert post_form(client, url, "admins", {"user": megan}).status_code == 303

    page = client.get(url).text
    assert f'<tr data-person="{megan}">' in page
    assert "Designated administrator" in page
    assert megan not in _admin_choices(page), "already an administrator: not offered again"

    removed = post_form(client, url, "admins/remove", {"user": megan})

    assert removed.status_code == 303
    assert services().admins.roles_for(subscription_id, MEGAN.tenant_id, MEGAN.object_id) == set()
    assert portal.browser(MEGAN).get(url).status_code == 404
    assert megan in _admin_choices(client.get(url).text)


def _admin_choices(page: str) -> str:
    """The options of the "Let this user manage the subscription" list (empty when it is not shown)."""
    start = page.find('<select id="admin-user"')
    return page[start : page.index("</select>", start)] if start >= 0 else ""


def test_the_administrators_microsoft_names_and_oneself_cannot_be_removed(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=2)
    remember_user(MEGAN)
    # Megan administers her organisation's side (she confirmed the purchase, say), not named by Microsoft.
    services().admins.grant(
        subscription_id, MEGAN.tenant_id, MEGAN.object_id, Role.BENEFICIARY_ADMIN, granted_by="test"
    )
    url = portal.page_url(subscription_id)
    megan = portal.browser(MEGAN)

    purchaser = post_form(megan, url, "admins/remove", {"user": f"{ADELE.tenant_id}:{ADELE.object_id}"})
    herself = post_form(megan, url, "admins/remove", {"user": f"{MEGAN.tenant_id}:{MEGAN.object_id}"})
    stranger = post_form(
        megan, url, "admins/remove", {"user": f"{FABRIKAM}:00000000-0000-4000-8000-0000000000f1"}
    )

    assert (purchaser.status_code, herself.status_code, stranger.status_code) == (409, 409, 400)
    assert "Microsoft names this person" in purchaser.text
    assert "your own role" in herself.text
    assert 'id="admins-title"' in portal.browser(ADELE).get(url).text  # still manages the subscription
    assert services().admins.roles_for(subscription_id, MEGAN.tenant_id, MEGAN.object_id)


def test_a_plain_user_cannot_remove_an_administrator(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=2)
    remember_user(MEGAN)
    url = portal.page_url(subscription_id)
    admin = portal.browser(ADELE)
    assert post_form(admin, url, "seats", {"user": f"{MEGAN.tenant_id}:{MEGAN.object_id}"}).status_code == 303

    megan = portal.browser(MEGAN)
    answer = post_form(
        megan, url, "admins/remove", {"user": f"{ADELE.tenant_id}:{ADELE.object_id}"}, token=token_for(megan)
    )

    assert answer.status_code in (403, 404)
    assert 'id="admins-title"' in admin.get(url).text


def test_over_assignment_is_flagged_and_blocks_new_seats(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=2)
    client = portal.browser(ADELE)
    url = portal.page_url(subscription_id)
    post_form(client, url, "seats", {"email": "one@contoso.com"})
    post_form(client, url, "seats", {"email": "two@contoso.com"})
    # Microsoft applied a lower quantity anyway (R52): the mirror now says 1 while 2 seats are in use.
    stored = services().subscriptions.get(subscription_id)
    assert stored is not None
    services().subscriptions.replace(replace(stored, quantity=1))
    page = client.get(url)
    assert 'id="over-assignment"' in page.text
    assert "Revoke 1" in page.text
    refused = post_form(client, url, "seats", {"email": "three@contoso.com"})
    assert refused.status_code == 409


def test_output_is_escaped(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=2, name=XSS)
    remember_user(SignedInUser(CONTOSO, "11111111-0000-4000-8000-0000000000ee", XSS, "", "x@contoso.com"))
    client = portal.browser(SignedInUser(CONTOSO, ADELE.object_id, XSS, ADELE.email))
    for url in (f"{portal.url}/api/portal", portal.page_url(subscription_id)):
        page = client.get(url)
        assert page.status_code == 200
        assert XSS not in page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_csrf_missing_or_forged_is_403_and_changes_nothing(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=3)
    url = portal.page_url(subscription_id)
    other_session_token = token_for(portal.browser(MEGAN))
    client = portal.browser(ADELE)
    for token in ("", "forged", other_session_token):
        for action, fields in (
            ("quantity", {"quantity": "9"}),
            ("seats", {"email": "x@contoso.com"}),
            ("cancel", {"confirm": "yes"}),
        ):
            response = post_form(client, url, action, fields, token=token)
            assert response.status_code == 403, (action, token)
            assert "This form has expired" in response.text
    no_field = client.post(f"{url}/quantity", data={"quantity": "9"}, allow_redirects=False)
    assert no_field.status_code == 403
    assert services().operations.list_for_subscription(subscription_id) == []
    assert services().seats.count(subscription_id) == 0


ACTIONS = [
    ("plan", {"plan_id": "pro"}),
    ("quantity", {"quantity": "9"}),
    ("cancel", {"confirm": "yes"}),
    ("seats", {"email": "intruder@fabrikam.com"}),
    ("seats/revoke", {"seat": "u:one@contoso.com"}),
    ("admins", {"user": f"{ALEX.tenant_id}:{ALEX.object_id}"}),
    ("setup-links", {}),
    ("no-such-action", {}),
]


def test_another_tenants_subscription_is_404_on_every_page_and_post(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=3)
    post_form(portal.browser(ADELE), portal.page_url(subscription_id), "seats", {"email": "one@contoso.com"})
    remember_user(ALEX)
    intruder = portal.browser(ALEX)
    url = portal.page_url(subscription_id)
    unknown = portal.page_url(str(uuid.uuid4()))
    assert intruder.get(url).status_code == 404
    assert intruder.get(unknown).status_code == 404
    assert without_nonce(intruder.get(unknown).text) == without_nonce(intruder.get(url).text)
    assert subscription_id not in intruder.get(f"{portal.url}/api/portal").text
    token = token_for(intruder)
    for action, fields in ACTIONS:
        for target in (url, unknown):
            response = post_form(intruder, target, action, fields, token=token)
            assert response.status_code == 404, (action, target)
    assert services().operations.list_for_subscription(subscription_id) == []
    assert services().seats.count(subscription_id) == 1
    assert services().admins.roles_for(subscription_id, ALEX.tenant_id, ALEX.object_id) == set()


def test_malformed_subscription_ids_are_404(portal: Portal) -> None:
    client = portal.browser(ADELE)
    for bad in ("a%27%20or%201%20eq%201", "x" * 80, "%3Cscript%3E"):
        assert client.get(f"{portal.url}/api/portal/subscriptions/{bad}").status_code == 404


def test_a_seat_cut_microsoft_throttles_to_the_end_holds_nothing(portal: Portal) -> None:
    # 429 is Microsoft saying no to this request (any 4xx changes nothing), unlike a 5xx or no answer.
    subscription_id = portal.buy(quantity=3)
    client = portal.browser(ADELE)
    url = portal.page_url(subscription_id)
    portal.control.add_fault(
        operation="FulfillmentOperations_UpdateSubscription", kind="429", share=1, retryAfter=0
    )
    try:
        assert post_form(client, url, "quantity", {"quantity": "1"}).status_code == 502
    finally:
        portal.control.clear_faults()

    for email in ("one@contoso.com", "two@contoso.com"):
        assert post_form(client, url, "seats", {"email": email}).status_code == 303
