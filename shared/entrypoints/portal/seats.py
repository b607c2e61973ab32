"""Form posts for the publisher's own features: assign and revoke seats, designate admins.

Seats and the license index change together through `shared.workflows.seats`; picks are checked against the
people the page listed (`shared.workflows.people`).
"""

from __future__ import annotations

import azure.functions as func

from shared.domain import access
from shared.domain.identity import seat_address_refusal
from shared.domain.seats import SeatLimitError, normalize_user_key, over_assignment
from shared.entrypoints.portal.pages import people_listed
from shared.entrypoints.portal.visit import Visit, done, refused
from shared.workflows import seats as seat_workflow
from shared.workflows.people import NOT_LISTED, NotListedError, designate_admin, picked
from shared.workflows.seats import SeatTarget

_ENDED = "This subscription has ended."
_NO_ADDRESS = "This user has no sign-in name we can show; ask them to sign in again, then try again."


def assign_seat(visit: Visit, form: dict[str, str]) -> func.HttpResponse:
    if not access.can_manage_seats(visit.subscription, visit.roles):
        return refused(403, "Seats cannot be changed", _ENDED)
    over = over_assignment(visit.subscription.quantity, visit.app.seats.count(visit.subscription.id))
    if over:
        return refused(409, "No free seats", f"Revoke {over} seat(s) first: more are assigned than bought.")
    target = _seat_target(visit, form)
    if isinstance(target, func.HttpResponse):
        return target
    app = visit.app
    try:
        seat = seat_workflow.assign_seat(
            visit.subscription, target, assigned_by=visit.actor, seats=app.seats, licenses=app.licenses
        )
    except SeatLimitError as exc:
        return refused(409, "No free seats", str(exc))
    except ValueError as exc:
        return refused(400, "Check the user", str(exc))
    return done(visit, "seat-assigned" if seat.is_bound else "seat-reserved")


def _seat_target(visit: Visit, form: dict[str, str]) -> SeatTarget | func.HttpResponse:
    """Who gets the seat: someone the page listed (picked by tid:oid) or an email/UPN typed in."""
    choice = form.get("user", "").strip()
    if choice:
        try:
            known = picked(choice, people_listed(visit))
        except NotListedError:
            return refused(400, "Choose someone from the list", NOT_LISTED)
        # The seat binds to tid + oid at once; the address is a label, and only one Entra vouched for.
        address = next(iter(known.addresses), "") or known.upn
        if not address:
            return refused(400, "Check the user", _NO_ADDRESS)
        return SeatTarget(address, known.display_name, known.tenant_id, known.object_id)
    typed = form.get("email", "")
    refusal = _address_refusal(visit, typed)
    if refusal:
        return refused(400, "This person cannot use this subscription", refusal)
    return SeatTarget(typed)


def _address_refusal(visit: Visit, typed: str) -> str | None:
    """Why a typed address cannot get a seat of this subscription (someone outside it holds it)."""
    try:
        address = normalize_user_key(typed)
    except ValueError:
        return None  # the seat store explains a malformed address
    return seat_address_refusal(visit.subscription.beneficiary, visit.app.users.holders_of(address))


def revoke_seat(visit: Visit, form: dict[str, str]) -> func.HttpResponse:
    if not access.can_manage_seats(visit.subscription, visit.roles):
        return refused(403, "Seats cannot be changed", _ENDED)
    key, app = form.get("seat", "").strip(), visit.app
    try:
        seat = app.seats.find(visit.subscription.id, user_key=key) if key else None
    except ValueError:
        seat = None
    if seat is None:
        return refused(404, "Seat not found", "That seat is not assigned in this subscription.")
    seat_workflow.revoke_seat(
        visit.subscription, seat, seats=app.seats, subscriptions=app.subscriptions, licenses=app.licenses
    )
    return done(visit, "seat-revoked")


def designate(visit: Visit, form: dict[str, str]) -> func.HttpResponse:
    if not access.can_designate_admins(visit.subscription, visit.roles):
        return refused(403, "Not allowed", "Only the purchaser or an administrator can designate admins.")
    try:
        designate_admin(
            visit.subscription,
            form.get("user", ""),
            people_listed(visit),
            granted_by=visit.actor,
            admins=visit.app.admins,
        )
    except NotListedError:
        return refused(400, "Choose someone from the list", NOT_LISTED)
    return done(visit, "admin-designated")
