"""A personal Microsoft account is one person, not an organisation (issue 7, item 2).

Every personal account carries the same tenant id, so nothing may be granted, listed or matched on that
tenant alone. Personal accounts with random object ids buy, sign in and look at each other's
subscriptions through the real stack: dev host, Azurite, and the sandbox playing Microsoft and Entra ID.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.app_context import services
from tests.portal import FUNCTION_KEY, Portal, post_form, token_for
from tests.security.identity_stack import (
    MSA_TENANT_ID,
    land_and_confirm,
    personal_account,
    running_identity_stack,
    sign_in,
)

OFFER = "contoso-analytics"
PAT_ONE = personal_account("pat")
SAM_TWO = personal_account("sam")
# Their own three for the binding test, so no test's licenses depend on another's (any order).
KIM_BUYER, LOU_HOLDER, MAX_OTHER = (personal_account(name) for name in ("kim", "lou", "max"))


@pytest.fixture(scope="module")
def portal(azurite_connection_string: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    directory = tmp_path_factory.mktemp("personal")
    prefix = "m" + uuid.uuid4().hex[:10]
    people = [PAT_ONE, SAM_TWO, KIM_BUYER, LOU_HOLDER, MAX_OTHER]
    with running_identity_stack(azurite_connection_string, prefix, Path(directory), people) as running:
        yield running


def license_of(portal: Portal, tenant_id: str, object_id: str) -> dict[str, object]:
    response = portal.browser().get(
        f"{portal.url}/api/licenses/check",
        params={"tenantId": tenant_id, "objectId": object_id, "offerId": OFFER},
        headers={"x-functions-key": FUNCTION_KEY},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_flat_rate_purchase_licenses_the_buying_personal_account_only(portal: Portal) -> None:
    subscription_id = portal.buy("basic", quantity=None, buyer=PAT_ONE.username)

    own = license_of(portal, MSA_TENANT_ID, PAT_ONE.object_id)
    assert (own["allowed"], own["subscriptionId"]) == (True, subscription_id)
    for stranger in (SAM_TWO.object_id, str(uuid.uuid4())):
        answer = license_of(portal, MSA_TENANT_ID, stranger)
        assert (answer["allowed"], answer["reason"]) == (False, "no-license"), stranger


def test_a_personal_buyers_portal_never_lists_other_personal_accounts(portal: Portal) -> None:
    subscription_id = portal.buy("team-seats", quantity=3, buyer=PAT_ONE.username)
    sign_in(portal, SAM_TWO)  # Sam signed in once, for some purchase of their own
    pat = sign_in(portal, PAT_ONE)

    page = pat.get(portal.page_url(subscription_id))

    assert page.status_code == 200
    assert SAM_TWO.object_id not in page.text
    assert SAM_TWO.username not in page.text


def test_a_personal_buyer_cannot_pick_another_personal_account_for_a_seat_or_as_admin(portal: Portal) -> None:
    subscription_id = portal.buy("team-seats", quantity=3, buyer=PAT_ONE.username)
    sign_in(portal, SAM_TWO)
    pat = sign_in(portal, PAT_ONE)
    url, sam = portal.page_url(subscription_id), f"{MSA_TENANT_ID}:{SAM_TWO.object_id}"

    seat = post_form(pat, url, "seats", {"user": sam}, token=token_for(pat))
    admin = post_form(pat, url, "admins", {"user": sam}, token=token_for(pat))

    assert seat.status_code == 400
    assert admin.status_code == 400
    assert services().seats.count(subscription_id) == 0
    assert services().admins.roles_for(subscription_id, MSA_TENANT_ID, SAM_TWO.object_id) == set()
    assert sign_in(portal, SAM_TWO).get(url, allow_redirects=False).status_code == 404


def test_a_seat_given_to_a_personal_address_binds_to_that_accounts_sign_in_only(portal: Portal) -> None:
    subscription_id = portal.buy("team-seats", quantity=3, buyer=KIM_BUYER.username)
    kim = sign_in(portal, KIM_BUYER)
    assigned = post_form(kim, portal.page_url(subscription_id), "seats", {"email": LOU_HOLDER.username})
    assert assigned.status_code == 303

    # Another personal account (same tenant, another person) types Lou's address as their contact email
    # on a purchase of their own, then signs in again: the seat must not follow the typed address.
    own = portal.control.buy("team-seats", buyer=MAX_OTHER.username, quantity=1)
    assert land_and_confirm(portal, MAX_OTHER, own["landingUrl"], LOU_HOLDER.username).status_code == 303
    sign_in(portal, MAX_OTHER)
    [seat] = services().seats.list(subscription_id)
    assert not seat.is_bound
    assert license_of(portal, MSA_TENANT_ID, MAX_OTHER.object_id)["allowed"] is False

    sign_in(portal, LOU_HOLDER)
    [seat] = services().seats.list(subscription_id)
    assert (seat.tenant_id, seat.object_id) == (MSA_TENANT_ID, LOU_HOLDER.object_id)
    assert license_of(portal, MSA_TENANT_ID, LOU_HOLDER.object_id)["allowed"] is True
    assert license_of(portal, MSA_TENANT_ID, MAX_OTHER.object_id)["allowed"] is False


def test_a_personal_account_may_still_pick_itself(portal: Portal) -> None:
    subscription_id = portal.buy("team-seats", quantity=3, buyer=PAT_ONE.username)
    pat = sign_in(portal, PAT_ONE)
    me = f"{MSA_TENANT_ID}:{PAT_ONE.object_id}"
    assert me in pat.get(portal.page_url(subscription_id)).text

    assert post_form(pat, portal.page_url(subscription_id), "seats", {"user": me}).status_code == 303
    [seat] = services().seats.list(subscription_id)
    assert (seat.object_id, seat.is_bound) == (PAT_ONE.object_id, True)


def test_a_personal_buyer_is_shown_and_may_remove_no_other_personal_accounts_role(portal: Portal) -> None:
    # Every personal account shares one tenant id: "the buyer's organisation" must not mean all of them.
    subscription_id = portal.buy("team-seats", quantity=3, buyer=PAT_ONE.username)
    services().admins.grant(
        subscription_id, MSA_TENANT_ID, SAM_TWO.object_id, "delegated-admin", granted_by="x"
    )
    pat = sign_in(portal, PAT_ONE)
    url, sam = portal.page_url(subscription_id), f"{MSA_TENANT_ID}:{SAM_TWO.object_id}"

    page = pat.get(url)
    removed = post_form(pat, url, "admins/remove", {"user": sam}, token=token_for(pat))

    assert SAM_TWO.object_id not in page.text
    assert removed.status_code == 400
