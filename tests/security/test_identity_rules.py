"""The pure identity rules of `shared.domain.identity`: which addresses identify, who binds, who is shown."""

from __future__ import annotations

import uuid

import pytest

from shared.domain.identity import (
    MSA_TENANT_ID,
    Person,
    acts_for,
    entra_addresses,
    may_bind_seat,
    may_show_person,
    seat_address_refusal,
)
from shared.domain.subscription import Party

CONTOSO = "11111111-0000-4000-8000-000000000000"
FABRIKAM = "22222222-0000-4000-8000-000000000000"


def person(tenant_id: str) -> Person:
    return Person.of(tenant_id, str(uuid.uuid4()))


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"preferred_username": "Ada@Contoso.com", "email": "x@contoso.com"}, ("ada@contoso.com",)),
        (
            {"preferred_username": "ada@contoso.com", "email": "x@c.com", "xms_edov": False},
            ("ada@contoso.com",),
        ),
        (
            {"preferred_username": "ada@contoso.com", "email": "x@c.com", "xms_edov": True},
            ("ada@contoso.com", "x@c.com"),
        ),
        (
            {"preferred_username": "ada@contoso.com", "email": "x@c.com", "xms_edov": "true"},
            ("ada@contoso.com", "x@c.com"),
        ),
        ({"preferred_username": "ada@contoso.com", "email": "x@c.com", "xms_edov": 1}, ("ada@contoso.com",)),
        ({"preferred_username": "+44 20 7946 0000", "verified_primary_email": ["p@c.com"]}, ("p@c.com",)),
        ({"verified_secondary_email": "s@c.com", "verified_primary_email": None}, ("s@c.com",)),
        ({"preferred_username": "a@c.com", "email": "A@C.com", "xms_edov": True}, ("a@c.com",)),
        ({}, ()),
    ],
)
def test_only_addresses_entra_controls_identify(claims: dict[str, object], expected: tuple[str, ...]) -> None:
    assert entra_addresses(claims) == expected


def test_a_seat_binds_only_in_the_beneficiary_tenant_and_only_through_a_vouched_address() -> None:
    contoso = Party(tenant_id=CONTOSO, object_id=str(uuid.uuid4()))
    member_or_guest = person(CONTOSO)
    assert may_bind_seat("ada@contoso.com", contoso, member_or_guest, ["ada@contoso.com"])
    assert not may_bind_seat("ada@contoso.com", contoso, member_or_guest, ["eve@contoso.com"])
    assert not may_bind_seat("ada@contoso.com", contoso, person(FABRIKAM), ["ada@contoso.com"])
    assert not may_bind_seat("ada@contoso.com", contoso, person(MSA_TENANT_ID), ["ada@contoso.com"])
    personal = Party(tenant_id=MSA_TENANT_ID, object_id=str(uuid.uuid4()))
    assert may_bind_seat("sam@outlook.com", personal, person(MSA_TENANT_ID), ["sam@outlook.com"])
    assert not may_bind_seat("sam@outlook.com", personal, person(CONTOSO), ["sam@outlook.com"])


def test_a_personal_account_acts_only_for_itself() -> None:
    buyer = Person.of(MSA_TENANT_ID, str(uuid.uuid4()))
    party = Party(tenant_id=MSA_TENANT_ID, object_id=buyer.object_id.upper())
    assert acts_for(party, buyer)
    assert not acts_for(party, person(MSA_TENANT_ID))
    organisation = Party(tenant_id=CONTOSO, object_id=str(uuid.uuid4()))
    assert acts_for(organisation, person(CONTOSO))
    assert not acts_for(organisation, person(MSA_TENANT_ID))


def test_who_is_shown_to_whom() -> None:
    contoso = Party(tenant_id=CONTOSO, object_id=str(uuid.uuid4()))
    colleague, partner, stranger = person(CONTOSO), person(FABRIKAM), person(MSA_TENANT_ID)
    assert may_show_person(contoso, person(CONTOSO), colleague, related=[])
    assert not may_show_person(contoso, partner, colleague, related=[])  # a CSP partner: related only
    assert may_show_person(contoso, partner, colleague, related=[colleague])
    assert not may_show_person(contoso, person(CONTOSO), stranger, related=[stranger])
    personal = Party(tenant_id=MSA_TENANT_ID, object_id=str(uuid.uuid4()))
    me = Person.of(MSA_TENANT_ID, personal.object_id)
    assert may_show_person(personal, me, me, related=[])
    assert not may_show_person(personal, me, stranger, related=[stranger])


def test_a_seat_address_is_refused_when_everyone_holding_it_is_outside() -> None:
    contoso = Party(tenant_id=CONTOSO)
    assert seat_address_refusal(contoso, []) is None  # nobody signed in with it yet: reserved
    assert seat_address_refusal(contoso, [person(CONTOSO)]) is None
    assert seat_address_refusal(contoso, [person(MSA_TENANT_ID), person(CONTOSO)]) is None  # a guest too
    assert "outside the organisation" in str(seat_address_refusal(contoso, [person(FABRIKAM)]))
    assert "outside the organisation" in str(seat_address_refusal(contoso, [person(MSA_TENANT_ID)]))
    personal = Party(tenant_id=MSA_TENANT_ID)
    assert seat_address_refusal(personal, [person(MSA_TENANT_ID)]) is None
    assert "work or school account" in str(seat_address_refusal(personal, [person(CONTOSO)]))
