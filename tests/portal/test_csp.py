"""CSP purchases (R60-R65): the partner manages, the customer is read-only for plan/quantity/cancel, and the
partner's single-use setup link lets the customer's admin take over."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.app_context import services
from shared.storage.setup_links import SetupLinkStore, setup_link_table_name
from shared.web.current_user import SignedInUser
from tests.portal import ADELE, ALEX, FABRIKAM, NESTOR, Portal, csrf_token, post_form, running_portal

GUEST = SignedInUser(FABRIKAM, "22222222-0000-4000-8000-000000000002", "Guest Consultant")
_LINK = re.compile(r'value="(http://[^"]+/api/portal/setup\?code=[^"]+)"')


def links_table() -> Any:
    return services()._tables.table(setup_link_table_name(services().settings.table_users))  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def portal(azurite_connection_string: str) -> Iterator[Portal]:
    with running_portal(azurite_connection_string, "c" + uuid.uuid4().hex[:10]) as running:
        yield running


@pytest.fixture
def csp_subscription(portal: Portal) -> str:
    return portal.buy_as_csp(quantity=3, customer=FABRIKAM)


def test_the_partner_sees_every_customer_subscription_and_manages_it_but_changes_go_through_partner_center(
    portal: Portal, csp_subscription: str
) -> None:
    other = portal.buy_as_csp(quantity=2, customer=FABRIKAM)
    partner = portal.browser(NESTOR)
    home = partner.get(f"{portal.url}/api/portal").text
    assert csp_subscription in home
    assert other in home
    page = partner.get(portal.page_url(csp_subscription)).text
    # allowedCustomerOperations is ["Read"] for CSP purchases: Microsoft refuses publisher-side updates, so
    # the portal offers none; the partner changes plan and seats in Partner Center, the webhook brings them.
    assert "/quantity" not in page
    assert "/cancel" not in page
    assert "Partner Center" in page
    response = post_form(partner, portal.page_url(csp_subscription), "quantity", {"quantity": "4"})
    assert response.status_code == 403
    assert services().operations.list_for_subscription(csp_subscription) == []
    assert (
        post_form(
            partner, portal.page_url(csp_subscription), "seats", {"email": "x@fabrikam.com"}
        ).status_code
        == 303
    )


def test_the_customer_is_read_only_for_plan_quantity_and_cancel_but_manages_seats(
    portal: Portal, csp_subscription: str
) -> None:
    customer = portal.browser(ALEX)
    url = portal.page_url(csp_subscription)
    page = customer.get(url).text
    assert "/quantity" not in page
    assert "/plan" not in page
    assert "/cancel" not in page
    assert "Partner Center" in page
    for action, fields in (
        ("plan", {"plan_id": "pro"}),
        ("quantity", {"quantity": "4"}),
        ("cancel", {"confirm": "yes"}),
    ):
        assert post_form(customer, url, action, fields).status_code == 403
    assert services().operations.list_for_subscription(csp_subscription) == []
    assert post_form(customer, url, "seats", {"email": "someone@fabrikam.com"}).status_code == 303
    assert post_form(portal.browser(NESTOR), url, "seats", {"email": "other@fabrikam.com"}).status_code == 303
    assert services().seats.count(csp_subscription) == 2


def create_link(portal: Portal, subscription_id: str) -> str:
    response = post_form(portal.browser(NESTOR), portal.page_url(subscription_id), "setup-links", {})
    assert response.status_code == 200
    [link] = _LINK.findall(response.text)
    return link.removeprefix(portal.url)


def accept(client: Any, portal: Portal, path: str) -> Any:
    """Opens the link (a confirm page, or a refusal) and, when it asks, accepts with its CSRF form."""
    opened = client.get(f"{portal.url}{path}", allow_redirects=False)
    if opened.status_code != 200:
        return opened
    code = path.rsplit("code=", 1)[-1].rsplit("/", 1)[-1]
    form = {"csrf_token": csrf_token(opened.text), "code": code}
    return client.post(f"{portal.url}/api/portal/setup", data=form, allow_redirects=False)


def test_a_setup_link_makes_a_customer_admin_once(portal: Portal, csp_subscription: str) -> None:
    path = create_link(portal, csp_subscription)
    guest = portal.browser(GUEST)
    assert guest.get(portal.page_url(csp_subscription)).status_code == 404

    used = accept(guest, portal, path)
    assert used.status_code == 303
    assert used.headers["Location"].endswith(f"{csp_subscription}?notice=setup-complete")
    assert services().admins.roles_for(csp_subscription, GUEST.tenant_id, GUEST.object_id) == {
        "beneficiary-admin"
    }
    assert guest.get(portal.page_url(csp_subscription)).status_code == 200

    again = accept(portal.browser(ALEX), portal, path)
    assert again.status_code == 400
    assert "already been used" in again.text


def test_a_user_of_another_tenant_is_refused_and_the_link_stays_usable(
    portal: Portal, csp_subscription: str
) -> None:
    path = create_link(portal, csp_subscription)
    refused = portal.browser(ADELE).get(f"{portal.url}{path}", allow_redirects=False)
    assert refused.status_code == 403
    assert "another organisation" in refused.text
    assert services().admins.roles_for(csp_subscription, ADELE.tenant_id, ADELE.object_id) == set()
    assert accept(portal.browser(GUEST), portal, path).status_code == 303


def test_unknown_and_expired_links_are_refused(portal: Portal, csp_subscription: str) -> None:
    guest = portal.browser(GUEST)
    unknown = guest.get(f"{portal.url}/api/portal/setup/{'A' * 43}", allow_redirects=False)
    assert unknown.status_code == 400
    assert "not valid" in unknown.text
    past = datetime.now(UTC) - timedelta(hours=73)
    code = SetupLinkStore(links_table()).create(csp_subscription, "test", now=past)
    expired = guest.get(f"{portal.url}/api/portal/setup?code={code}", allow_redirects=False)
    assert expired.status_code == 400
    assert "expired" in expired.text
    # Links handed out before the code moved into the query still work, in the path.
    in_path = guest.get(f"{portal.url}/api/portal/setup/{code}", allow_redirects=False)
    assert in_path.status_code == 400
    assert "expired" in in_path.text
    assert services().admins.roles_for(csp_subscription, GUEST.tenant_id, GUEST.object_id) == set()


def test_opening_a_link_signed_out_asks_for_sign_in_first(portal: Portal, csp_subscription: str) -> None:
    path = create_link(portal, csp_subscription)
    response = portal.browser().get(f"{portal.url}{path}", allow_redirects=False)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/api/auth/signin?next=%2Fapi%2Fportal%2Fsetup%3Fcode%3D")


def test_only_the_partner_may_create_setup_links(portal: Portal, csp_subscription: str) -> None:
    response = post_form(portal.browser(ALEX), portal.page_url(csp_subscription), "setup-links", {})
    assert response.status_code == 403
    direct = portal.buy(quantity=2)
    assert post_form(portal.browser(ADELE), portal.page_url(direct), "setup-links", {}).status_code == 403


def test_only_a_hash_of_the_code_is_stored(portal: Portal, csp_subscription: str) -> None:
    code = create_link(portal, csp_subscription).rsplit("/", 1)[1]
    stored = repr(list(links_table().list_entities()))
    assert code not in stored
