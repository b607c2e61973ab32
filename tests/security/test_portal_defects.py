"""Regression tests of four portal defects: a license lost while another seat remains, admin picks the page
never showed, a setup link granted by a plain GET, and malformed form posts answered with a 500."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
import requests

from shared.app_context import services
from shared.web.current_user import SignedInUser
from tests.portal import (
    ADELE,
    FABRIKAM,
    FUNCTION_KEY,
    MEGAN,
    NESTOR,
    NORTHWIND,
    Portal,
    csrf_token,
    post_form,
    remember_user,
    running_portal,
    token_for,
)

OFFER = "contoso-analytics"
CUSTOMER_ADMIN = SignedInUser(FABRIKAM, "22222222-0000-4000-8000-0000000000d3", "Customer Admin")
NESTORS_COLLEAGUE = SignedInUser(NORTHWIND, "33333333-0000-4000-8000-0000000000d4", "Partner Colleague")
_LINK = re.compile(r'value="http://[^"]+(/api/portal/setup\?code=([^"]+))"')


@pytest.fixture(scope="module")
def portal(azurite_connection_string: str) -> Iterator[Portal]:
    with running_portal(azurite_connection_string, "d" + uuid.uuid4().hex[:10]) as running:
        yield running


def licensed(portal: Portal, user: SignedInUser) -> dict[str, object]:
    params = {"tenantId": user.tenant_id, "objectId": user.object_id, "offerId": OFFER}
    response = requests.get(
        f"{portal.url}/api/licenses/check",
        params=params,
        headers={"x-functions-key": FUNCTION_KEY},
        timeout=10,
    )
    assert response.status_code == 200
    return response.json()


def seat_key(subscription_id: str, user: SignedInUser) -> str:
    seat = services().seats.find(subscription_id, tenant_id=user.tenant_id, object_id=user.object_id)
    assert seat is not None
    return seat.key


def test_revoking_one_of_two_seats_of_the_same_offer_keeps_the_license(portal: Portal) -> None:
    first, second = portal.buy(quantity=2), portal.buy(quantity=2)
    remember_user(MEGAN)
    client = portal.browser(ADELE)
    megan = {"user": f"{MEGAN.tenant_id}:{MEGAN.object_id}"}
    for subscription_id in (first, second):
        assert post_form(client, portal.page_url(subscription_id), "seats", megan).status_code == 303
    assert licensed(portal, MEGAN)["subscriptionId"] == second

    revoked = post_form(client, portal.page_url(second), "seats/revoke", {"seat": seat_key(second, MEGAN)})
    assert revoked.status_code == 303
    answer = licensed(portal, MEGAN)
    assert answer["allowed"] is True, "the seat in the first subscription still licenses her"
    assert answer["subscriptionId"] == first

    post_form(client, portal.page_url(first), "seats/revoke", {"seat": seat_key(first, MEGAN)})
    assert licensed(portal, MEGAN)["allowed"] is False


def test_a_partner_cannot_designate_a_colleague_the_page_did_not_list(portal: Portal) -> None:
    subscription_id = portal.buy_as_csp(quantity=3, customer=FABRIKAM)
    remember_user(NESTORS_COLLEAGUE)
    partner = portal.browser(NESTOR)
    url = portal.page_url(subscription_id)
    assert NESTORS_COLLEAGUE.object_id not in partner.get(url).text
    pick = {"user": f"{NESTORS_COLLEAGUE.tenant_id}:{NESTORS_COLLEAGUE.object_id}"}

    for action in ("admins", "seats"):
        refused = post_form(partner, url, action, pick)
        assert refused.status_code == 400, action
        assert "Choose someone from the list" in refused.text
    roles = services().admins.roles_for(
        subscription_id, NESTORS_COLLEAGUE.tenant_id, NESTORS_COLLEAGUE.object_id
    )
    assert roles == set()
    assert services().seats.count(subscription_id) == 0


def create_link(portal: Portal, subscription_id: str) -> tuple[str, str]:
    response = post_form(portal.browser(NESTOR), portal.page_url(subscription_id), "setup-links", {})
    assert response.status_code == 200
    [(path, code)] = _LINK.findall(response.text)
    return path, code


def test_opening_a_setup_link_only_asks_and_the_csrf_checked_post_grants(portal: Portal) -> None:
    subscription_id = portal.buy_as_csp(quantity=3, customer=FABRIKAM)
    path, code = create_link(portal, subscription_id)
    customer = portal.browser(CUSTOMER_ADMIN)

    opened = customer.get(f"{portal.url}{path}", allow_redirects=False)
    assert opened.status_code == 200
    assert "Accept administration" in opened.text
    assert services().admins.roles_for(subscription_id, FABRIKAM, CUSTOMER_ADMIN.object_id) == set()
    # A prefetcher or scanner that opens the link again changes nothing either.
    assert customer.get(f"{portal.url}{path}", allow_redirects=False).status_code == 200

    setup = f"{portal.url}/api/portal/setup"
    forged = customer.post(setup, data={"code": code, "csrf_token": "forged"}, allow_redirects=False)
    assert forged.status_code == 403
    assert services().admins.roles_for(subscription_id, FABRIKAM, CUSTOMER_ADMIN.object_id) == set()

    accepted = customer.post(
        setup, data={"code": code, "csrf_token": csrf_token(opened.text)}, allow_redirects=False
    )
    assert accepted.status_code == 303
    assert accepted.headers["Location"].endswith(f"{subscription_id}?notice=setup-complete")
    roles = services().admins.roles_for(subscription_id, FABRIKAM, CUSTOMER_ADMIN.object_id)
    assert roles == {"beneficiary-admin"}


_MALFORMED_BODIES: list[tuple[str, bytes, str]] = [
    ("seats/revoke", b"seat=oid%3Aa%2Fb%23c%3Fd", "urlencoded"),
    ("seats/revoke", b"seat=oid%3A" + b"x" * 2000, "urlencoded"),
    ("seats/revoke", b"seat=%00%01", "urlencoded"),
    ("seats", b"email=" + b"a" * 5000 + b"%40contoso.com", "urlencoded"),
    ("seats", b"email=%FF%FE%40contoso.com", "urlencoded"),
    ("seats", b"user=%00%3A%00", "urlencoded"),
    ("seats", b"user=" + b"x" * 5000, "urlencoded"),
    ("admins", b"user=a%3Ab&user=c%3Ad", "urlencoded"),
    ("quantity", b"quantity=" + b"9" * 5000, "urlencoded"),
    ("quantity", b"quantity=-1&quantity=2", "urlencoded"),
    ("quantity", b"quantity=1e9", "urlencoded"),
    ("plan", b"plan_id=%00", "urlencoded"),
    ("seats", b"\xff\xfe\x00garbage", "urlencoded"),
    ("seats", b"--x\r\nContent-Disposition: form-data; name=email\r\n\r\na@b.c\r\n--x--", "multipart"),
]


@pytest.mark.parametrize(("action", "body", "kind"), _MALFORMED_BODIES)
def test_malformed_portal_forms_get_a_4xx_never_a_500(
    portal: Portal, action: str, body: bytes, kind: str
) -> None:
    subscription_id = portal.buy(quantity=2)
    client = portal.browser(ADELE)
    token = token_for(client).encode()
    content_type = {
        "urlencoded": "application/x-www-form-urlencoded",
        "multipart": "multipart/form-data; boundary=x",
    }[kind]
    data = body if kind == "multipart" else b"csrf_token=" + token + b"&" + body
    response = client.post(
        f"{portal.page_url(subscription_id)}/{action}",
        data=data,
        headers={"Content-Type": content_type},
        allow_redirects=False,
    )
    assert 400 <= response.status_code < 500, (action, body[:60], response.status_code)


@pytest.mark.parametrize(
    "data",
    [
        {"code": "x" * 5000},
        {"code": "%00"},
        {"code": ["a" * 43, "b" * 43]},
        {},
    ],
)
def test_malformed_setup_posts_get_a_4xx(portal: Portal, data: dict[str, object]) -> None:
    client = portal.browser(CUSTOMER_ADMIN)
    response = client.post(
        f"{portal.url}/api/portal/setup",
        data={"csrf_token": token_for(client), **data},
        allow_redirects=False,
    )
    assert 400 <= response.status_code < 500, response.status_code
