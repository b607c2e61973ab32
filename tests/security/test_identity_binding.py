"""Identity comes from the ID token, never from what a user typed (issue 7, item 3).

Every user here signs in through the sandbox's Entra ID, so what the app knows about them comes from real
signed ID tokens (with `xms_edov` beside `email`, as Entra emits it). The rule under test (README, "Seat
licenses"): a seat reserved for an address binds at sign-in only to a user of the subscription's beneficiary
tenant whose ID token carries that address in a claim Entra ID controls.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from shared.app_context import services
from tests.portal import Portal, post_form, token_for
from tests.security.identity_stack import (
    MSA_TENANT_ID,
    example_user,
    land_and_confirm,
    personal_account,
    running_identity_stack,
    sign_in,
    work_account,
)

CONTOSO = "11111111-0000-4000-8000-000000000000"
FABRIKAM = "22222222-0000-4000-8000-000000000000"
ADELE = example_user("11111111-0000-4000-8000-000000000001", CONTOSO, "adele.vance@contoso.onmicrosoft.com")
MEGAN = example_user("11111111-0000-4000-8000-000000000002", CONTOSO, "megan.bowen@contoso.onmicrosoft.com")
ALEX = example_user("22222222-0000-4000-8000-000000000001", FABRIKAM, "alex.wilber@fabrikam.onmicrosoft.com")
NORTHWIND = "33333333-0000-4000-8000-000000000000"
NESTOR = example_user(
    "33333333-0000-4000-8000-000000000001", NORTHWIND, "nestor.wilke@northwindpartners.onmicrosoft.com"
)
# Contoso's colleague who types someone else's address as their contact email.
LEE = work_account(CONTOSO, "lee", "contoso.onmicrosoft.com")
# Contoso users whose `mail` is on a domain Entra did not verify, and one whose mail it did.
DEE = work_account(
    CONTOSO,
    "dee",
    "contoso.onmicrosoft.com",
    mail=f"desk.{uuid.uuid4().hex[:6]}@contoso.com",
    mail_domain_verified=False,
)
VAL = work_account(CONTOSO, "val", "contoso.onmicrosoft.com", mail=f"val.{uuid.uuid4().hex[:6]}@contoso.com")
# The same outlook.com address: a personal account, and that person as a guest signed in to Contoso.
CASEY = personal_account("casey")
CASEY_AS_GUEST = work_account(CONTOSO, "casey", "", username=CASEY.username)
# A Fabrikam user with no part in the CSP subscription, and one outside every customer.
FAY = work_account(FABRIKAM, "fay", "fabrikam.onmicrosoft.com")
OUTSIDER = personal_account("outsider")


@pytest.fixture(scope="module")
def portal(azurite_connection_string: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    directory = Path(tmp_path_factory.mktemp("binding"))
    people = [LEE, DEE, VAL, CASEY, CASEY_AS_GUEST, FAY, OUTSIDER]
    with running_identity_stack(
        azurite_connection_string, "i" + uuid.uuid4().hex[:10], directory, people
    ) as up:
        yield up


def contoso_subscription(portal: Portal) -> tuple[str, requests.Session]:
    """A Contoso per-seat subscription and its purchaser Adele's signed-in browser."""
    subscription_id = portal.buy("team-seats", quantity=5, buyer=ADELE.username)
    return subscription_id, sign_in(portal, ADELE)


def reserve(portal: Portal, admin: requests.Session, subscription_id: str, address: str) -> requests.Response:
    return post_form(admin, portal.page_url(subscription_id), "seats", {"email": address})


def holder(subscription_id: str) -> tuple[str, str]:
    [seat] = services().seats.list(subscription_id)
    return seat.tenant_id, seat.object_id


def test_a_contact_email_typed_as_a_colleagues_address_does_not_take_their_seat(portal: Portal) -> None:
    subscription_id, adele = contoso_subscription(portal)
    assert reserve(portal, adele, subscription_id, MEGAN.username).status_code == 303

    own = portal.control.buy("team-seats", buyer=LEE.username, quantity=1)
    assert land_and_confirm(portal, LEE, own["landingUrl"], MEGAN.username).status_code == 303
    sign_in(portal, LEE)
    assert holder(subscription_id) == ("", "")
    stored = services().users.get(CONTOSO, LEE.object_id)
    assert stored is not None
    assert stored.email == MEGAN.username
    assert MEGAN.username not in stored.addresses

    sign_in(portal, MEGAN)
    assert holder(subscription_id) == (CONTOSO, MEGAN.object_id)


def test_an_email_claim_binds_only_when_entra_marks_its_domain_verified(portal: Portal) -> None:
    subscription_id, adele = contoso_subscription(portal)
    assert DEE.mail
    assert VAL.mail
    assert reserve(portal, adele, subscription_id, DEE.mail).status_code == 303
    sign_in(portal, DEE)  # email = the seat's address, xms_edov = false
    assert holder(subscription_id) == ("", "")

    other_id, adele = contoso_subscription(portal)
    assert reserve(portal, adele, other_id, VAL.mail).status_code == 303
    sign_in(portal, VAL)  # email = the seat's address, xms_edov = true
    assert holder(other_id) == (CONTOSO, VAL.object_id)


def test_a_seat_for_someone_outside_the_beneficiary_tenant_is_refused_clearly(portal: Portal) -> None:
    subscription_id, adele = contoso_subscription(portal)
    sign_in(portal, ALEX)
    sign_in(portal, OUTSIDER)

    for address in (ALEX.username, OUTSIDER.username):
        refused = reserve(portal, adele, subscription_id, address)
        assert refused.status_code == 400, address
        assert "outside the organisation this subscription is for" in refused.text
    picked = post_form(
        adele, portal.page_url(subscription_id), "seats", {"user": f"{FABRIKAM}:{ALEX.object_id}"}
    )
    assert picked.status_code == 400
    assert "Choose someone from the list" in picked.text
    assert services().seats.count(subscription_id) == 0


def test_a_guest_of_the_beneficiary_tenant_may_hold_a_seat_by_address(portal: Portal) -> None:
    subscription_id, adele = contoso_subscription(portal)
    sign_in(portal, CASEY)  # the personal account: outside Contoso
    sign_in(portal, CASEY_AS_GUEST)  # the same person, a guest signed in to Contoso (tid = Contoso)
    accepted = reserve(portal, adele, subscription_id, CASEY.username)
    assert accepted.status_code == 303
    assert "notice=seat-reserved" in accepted.headers["Location"]

    sign_in(portal, CASEY)
    assert holder(subscription_id) == ("", "")  # the personal account's tid is not Contoso
    sign_in(portal, CASEY_AS_GUEST)
    assert holder(subscription_id) == (CONTOSO, CASEY_AS_GUEST.object_id)


def test_a_csp_partner_sees_only_the_people_of_that_subscription(portal: Portal) -> None:
    subscription_id = portal.buy_as_csp("team-seats", quantity=3, customer=FABRIKAM)
    sign_in(portal, FAY)  # a Fabrikam user who signed in once, for something else
    url, fay = portal.page_url(subscription_id), f"{FABRIKAM}:{FAY.object_id}"

    partner = sign_in(portal, NESTOR)
    page = partner.get(url)
    assert page.status_code == 200
    assert FAY.object_id not in page.text
    assert post_form(partner, url, "seats", {"user": fay}, token=token_for(partner)).status_code == 400
    assert post_form(partner, url, "admins", {"user": fay}, token=token_for(partner)).status_code == 400
    assert services().admins.roles_for(subscription_id, FABRIKAM, FAY.object_id) == set()

    customer = sign_in(portal, ALEX)  # the customer's own admin may pick from their organisation
    assert FAY.object_id in customer.get(url).text
    assert post_form(customer, url, "seats", {"user": fay}).status_code == 303
    assert holder(subscription_id) == (FABRIKAM, FAY.object_id)
    assert FAY.object_id in partner.get(url).text  # now related: a seat holder
    assert MSA_TENANT_ID not in partner.get(url).text


def test_each_side_of_a_csp_subscription_sees_and_removes_only_its_own_administrators(portal: Portal) -> None:
    subscription_id = portal.buy_as_csp("team-seats", quantity=3, customer=FABRIKAM)
    url = portal.page_url(subscription_id)
    partner_colleague = f"{NORTHWIND}:{uuid.uuid4()}"
    tenant, _, object_id = partner_colleague.partition(":")
    services().admins.grant(subscription_id, tenant, object_id, "purchaser", granted_by="test")

    customer = sign_in(portal, ALEX)
    page = customer.get(url).text
    removed = post_form(customer, url, "admins/remove", {"user": partner_colleague})

    assert object_id not in page
    assert removed.status_code == 400
    assert services().admins.roles_for(subscription_id, tenant, object_id)
    partner = sign_in(portal, NESTOR)
    assert object_id in partner.get(url).text  # the partner manages its own staff
