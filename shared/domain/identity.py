"""Who a signed-in person is, from what Entra ID vouches for only (pure, no I/O).

Two facts decide everything here:

- Personal Microsoft accounts all share one tenant id (`MSA_TENANT_ID`). That tenant is not an
  organisation: two personal accounts are two unrelated people. So a personal account is always matched on
  tenant id *and* object id, never on the tenant alone, and never shown to anyone but itself.
- An address identifies a person only when Entra ID controls it: the `preferred_username` of the ID token
  (the UPN of a work account, the sign-in name of a personal one), `email` only when Entra marks its domain
  as verified (the optional claim `xms_edov`), and the optional claims `verified_primary_email` /
  `verified_secondary_email` (taken from the directory's authoritative addresses). An address a user typed
  (the contact email of the confirm page) is contact data and never identifies, matches or binds anything.

A seat assigned to an address binds at sign-in only to a user whose ID token's `tid` is the subscription's
beneficiary tenant (a member, or a guest signed in to that tenant) and whose Entra-controlled addresses
include the seat's address; for a personal-account beneficiary, only to the personal account whose own
sign-in name (or verified email) that address is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.domain.addresses import normalize_user_key
from shared.domain.subscription import Party

MSA_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"
# Optional claims Entra fills from the directory's authoritative (verified) addresses; string or list.
VERIFIED_EMAIL_CLAIMS = ("verified_primary_email", "verified_secondary_email")
EMAIL_DOMAIN_VERIFIED_CLAIM = "xms_edov"


@dataclass(frozen=True)
class Person:
    """An Entra identity: lower-case tenant id and object id."""

    tenant_id: str
    object_id: str

    @classmethod
    def of(cls, tenant_id: str, object_id: str) -> Person:
        return cls(_norm(tenant_id), _norm(object_id))


def _norm(value: str | None) -> str:
    return (value or "").strip().lower()


def is_personal_tenant(tenant_id: str | None) -> bool:
    """The tenant every personal Microsoft account carries in `tid`: one person per object id."""
    return _norm(tenant_id) == MSA_TENANT_ID


def is_personal_account(party: Party) -> bool:
    return is_personal_tenant(party.tenant_id)


def is_party(party: Party, who: Person) -> bool:
    """Exactly the person Microsoft named (tenant id and object id)."""
    return bool(who.tenant_id and who.object_id) and Person.of(party.tenant_id, party.object_id) == who


def acts_for(party: Party, who: Person) -> bool:
    """Whether `who` belongs to the side `party` stands for: its organisation, or, for a personal account,
    that account alone (its tenant is shared by every personal account)."""
    if not who.tenant_id or not party.tenant_id:
        return False
    if is_personal_account(party) or is_personal_tenant(who.tenant_id):
        return is_party(party, who)
    return _norm(party.tenant_id) == who.tenant_id


# --- addresses Entra ID vouches for -----------------------------------------------------------------------


def _claim_true(value: Any) -> bool:
    # Entra emits a JSON boolean; accept its string spelling too, nothing else.
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [item for item in value if isinstance(item, str)]
    return []


def _address(value: str) -> str | None:
    try:
        return normalize_user_key(value)
    except ValueError:
        return None  # a phone-number sign-in name, or nothing at all


def entra_addresses(claims: Mapping[str, Any]) -> tuple[str, ...]:
    """The addresses in a validated ID token that Entra ID controls, normalized, in claim order.

    `email` alone is mutable by users and admins in many tenants (and unverified for some guests), so it
    counts only when `xms_edov` says its domain owner is verified.
    """
    candidates = [*_texts(claims.get("preferred_username"))]
    if _claim_true(claims.get(EMAIL_DOMAIN_VERIFIED_CLAIM)):
        candidates += _texts(claims.get("email"))
    for name in VERIFIED_EMAIL_CLAIMS:
        candidates += _texts(claims.get(name))
    found = (_address(candidate) for candidate in candidates)
    return tuple(dict.fromkeys(address for address in found if address))


def may_bind_seat(
    seat_address: str, beneficiary: Party, signed_in: Person, verified_addresses: Iterable[str]
) -> bool:
    """Whether a seat assigned to `seat_address` may become the signed-in person's at sign-in."""
    address = _address(seat_address)
    if address is None or address not in set(verified_addresses):
        return False
    # The token's tenant must be the beneficiary's: a member, or a guest signed in to that tenant. For a
    # personal-account beneficiary that is the personal-account tenant, and the address (the account's own
    # sign-in name or verified email) is what singles out the one account the seat was given to.
    return bool(signed_in.tenant_id) and signed_in.tenant_id == _norm(beneficiary.tenant_id)


# --- who may see and be given what -------------------------------------------------------------------------


def sees_beneficiary_directory(beneficiary: Party, viewer: Person) -> bool:
    """A user of the beneficiary's own organisation may pick from its people who signed in before. A CSP
    partner (or anyone else outside it) sees only the people related to the subscription."""
    return (
        not is_personal_account(beneficiary)
        and bool(viewer.tenant_id)
        and viewer.tenant_id == _norm(beneficiary.tenant_id)
    )


def may_show_person(beneficiary: Party, viewer: Person, person: Person, related: Iterable[Person]) -> bool:
    """Whether `viewer` may see `person` as a seat or admin candidate of the beneficiary's subscription."""
    if is_personal_tenant(person.tenant_id):
        return person == viewer  # a personal account is shown to itself only
    if person.tenant_id != _norm(beneficiary.tenant_id):
        return False
    return sees_beneficiary_directory(beneficiary, viewer) or person in set(related)


def seat_address_refusal(beneficiary: Party, holders: Iterable[Person]) -> str | None:
    """Why a seat cannot be reserved for an address whose known holders are `holders`; None when it can.

    `holders` are the people who signed in with that address in an Entra-controlled claim. An address nobody
    has signed in with yet may be reserved: only a user of the beneficiary tenant can ever bind it.
    """
    known = list(holders)
    if not known:
        return None
    if is_personal_account(beneficiary):
        if any(is_personal_tenant(h.tenant_id) for h in known):
            return None
        return (
            "This address belongs to a work or school account. This subscription was bought with a personal "
            "Microsoft account, so its seats can only go to personal Microsoft accounts."
        )
    if any(h.tenant_id == _norm(beneficiary.tenant_id) for h in known):
        return None
    return (
        "This address belongs to someone outside the organisation this subscription is for, so they could "
        "never use the seat. Enter the address of a member or guest of that organisation."
    )
