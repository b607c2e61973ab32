"""Who the portal lists for seats and admin roles, and the rule that only someone listed can be picked.

The pick list is the beneficiary organisation's people as `shared.domain.identity.may_show_person` lets the
visitor see them: an outsider (a CSP partner) sees only the subscription's own people, a personal account
only itself. Seat and admin picks are checked against that same list, so a pick the visitor was not shown is
refused for both (README: "a pick the visitor was not shown is refused").

The subscription's administrators are listed too, and whoever may designate one may also take the role
away again from someone of their own organisation, except from the purchaser and the beneficiary Microsoft
names (their roles are Microsoft's naming) and from themselves (no one locks themselves out by a click).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.domain import access
from shared.domain.access import Role
from shared.domain.identity import Person, is_personal_tenant, may_show_person, sees_beneficiary_directory
from shared.logs import get_logger

if TYPE_CHECKING:
    from shared.domain.subscription import Subscription
    from shared.domain.users import User
    from shared.workflows.ports import AdminGrants, SeatBook, UserDirectory

log = get_logger(__name__)

NOT_LISTED = (
    "That person is not one you can give a seat or a role to here. Choose someone from the list, or enter "
    "the address of a member or guest of the organisation this subscription is for."
)


class NotListedError(LookupError):
    """The form named someone the page did not offer this visitor."""


def listed_people(
    subscription: Subscription,
    viewer: Person,
    roles: frozenset[Role],
    *,
    users: UserDirectory,
    admins: AdminGrants,
    seats: SeatBook,
) -> list[User]:
    """The people the page offers for seats and admin roles (empty when the visitor manages neither)."""
    tenant = (subscription.beneficiary.tenant_id or "").strip().lower()
    if not tenant or not access.can_manage_seats(subscription, roles):
        return []
    try:
        if sees_beneficiary_directory(subscription.beneficiary, viewer):
            candidates = users.list_for_tenant(tenant)
            related: set[Person] = set()
        else:
            related = _related_people(subscription, tenant, admins=admins, seats=seats) | {viewer}
            ordered = sorted(related, key=str)
            candidates = [user for p in ordered if (user := users.get(p.tenant_id, p.object_id))]
    except ValueError:
        return []
    beneficiary = subscription.beneficiary
    return [u for u in candidates if may_show_person(beneficiary, viewer, u.person, related)]


def picked(choice: str, listed: list[User]) -> User:
    """The listed user a form's "tid:oid" names; NotListedError for anyone the visitor was not shown."""
    tenant_id, _, object_id = choice.strip().partition(":")
    wanted = Person.of(tenant_id, object_id)
    found = next((user for user in listed if user.person == wanted), None)
    if found is None:
        log.warning("portal form named a user the visitor was not shown")
        raise NotListedError(NOT_LISTED)
    return found


class DesignationRefusedError(Exception):
    """Only the purchaser or a beneficiary admin may designate admins, until the subscription ends."""


class RemovalRefusedError(Exception):
    """This administrator's role may not be taken away here; the message says why, in words."""


@dataclass(frozen=True)
class Administrator:
    """Someone holding a role on the subscription, as the portal lists them."""

    person: Person
    name: str  # display name, else the UPN, else empty (never signed in here)
    upn: str
    roles: frozenset[Role]
    named_by_microsoft: bool  # the purchaser or the beneficiary the subscription names


def administrators(
    subscription: Subscription, viewer: Person, *, users: UserDirectory, admins: AdminGrants
) -> list[Administrator]:
    """Who manages the subscription, as `viewer` may see it: the purchaser and beneficiary Microsoft names,
    and everyone of the viewer's own organisation a role was granted to, each with the roles they hold
    (`access.roles_of`). A partner's staff and its customer's each see, and manage, their own people."""
    parties = (subscription.beneficiary, subscription.purchaser)
    named = {
        Person.of(party.tenant_id, party.object_id)
        for party in parties
        if party.tenant_id and party.object_id
    }
    # Every personal Microsoft account shares one tenant id: for such a viewer "their organisation" is them.
    own = (
        [viewer]
        if is_personal_tenant(viewer.tenant_id)
        else admins.grantees(subscription.id, viewer.tenant_id)
    )
    people = named | set(own)
    found = []
    for person in people:
        granted = admins.roles_for(subscription.id, person.tenant_id, person.object_id)
        roles = access.roles_of(subscription, person, granted)
        if not roles:
            continue
        user = users.get(person.tenant_id, person.object_id)
        name, upn = (user.display_name or user.upn, user.upn) if user is not None else ("", "")
        found.append(Administrator(person, name, upn, roles, person in named))
    return sorted(
        found, key=lambda admin: (not admin.named_by_microsoft, admin.name.lower(), str(admin.person))
    )


def remove_admin(
    subscription: Subscription,
    viewer: Person,
    roles: frozenset[Role],
    choice: str,
    *,
    users: UserDirectory,
    admins: AdminGrants,
) -> Administrator:
    """Takes every role on the subscription away from the listed administrator `choice` ("tid:oid") names.

    Raises DesignationRefusedError (the visitor may not manage admins), NotListedError (no such administrator
    here) or RemovalRefusedError (named by Microsoft, or the visitor themselves)."""
    if not access.can_designate_admins(subscription, roles):
        raise DesignationRefusedError(subscription.id)
    tenant_id, _, object_id = choice.strip().partition(":")
    wanted = Person.of(tenant_id, object_id)
    listed = administrators(subscription, viewer, users=users, admins=admins)
    found = next((admin for admin in listed if admin.person == wanted), None)
    if found is None:
        log.warning("portal form named an administrator the subscription does not have")
        raise NotListedError(NOT_LISTED)
    if found.named_by_microsoft:
        raise RemovalRefusedError(
            "Microsoft names this person as the subscription's purchaser or its organisation's administrator,"
            " so the role stays."
        )
    if found.person == viewer:
        raise RemovalRefusedError("You cannot take your own role away. Ask another administrator.")
    admins.revoke(subscription.id, found.person.tenant_id, found.person.object_id)
    log.info("subscription administrator removed", extra={"roles": sorted(found.roles)})
    return found


def designate_admin(
    subscription: Subscription,
    viewer: Person,
    roles: frozenset[Role],
    choice: str,
    *,
    granted_by: str,
    users: UserDirectory,
    admins: AdminGrants,
    seats: SeatBook,
) -> User:
    """Grants the delegated-admin role to the listed person `choice` names.

    Raises DesignationRefusedError (the visitor may not designate) or NotListedError (not offered to them).
    """
    if not access.can_designate_admins(subscription, roles):
        raise DesignationRefusedError(subscription.id)
    listed = listed_people(subscription, viewer, roles, users=users, admins=admins, seats=seats)
    person = picked(choice, listed)
    admins.grant(
        subscription.id, person.tenant_id, person.object_id, Role.DELEGATED_ADMIN, granted_by=granted_by
    )
    return person


def _related_people(
    subscription: Subscription, tenant: str, *, admins: AdminGrants, seats: SeatBook
) -> set[Person]:
    """The beneficiary's people this subscription already knows: Microsoft's beneficiary, admins, seats."""
    related = {Person.of(subscription.beneficiary.tenant_id, subscription.beneficiary.object_id)}
    related |= set(admins.grantees(subscription.id, tenant))
    held = seats.list(subscription.id) if subscription.quantity is not None else []
    related |= {seat.holder for seat in held if seat.is_bound}
    return {person for person in related if person.tenant_id and person.object_id}
