"""Form posts for the publisher's own features: assign and revoke seats, designate and remove admins.

Each handler parses the form, calls `shared.workflows.seats` / `shared.workflows.people` (which decide who may
do what, and keep seats and the license index in step) and turns their refusals into pages.
"""

from __future__ import annotations

import azure.functions as func

from shared.domain.seats import SeatLimitError, SeatNotFoundError
from shared.entrypoints.portal.visit import Visit, done, refused
from shared.workflows import seats as seat_workflow
from shared.workflows.people import (
    NOT_LISTED,
    DesignationRefusedError,
    NotListedError,
    RemovalRefusedError,
    designate_admin,
    remove_admin,
)
from shared.workflows.seats import OutsiderAddressError, SeatRequest, SeatsClosedError

_ENDED = "This subscription has ended."


def assign_seat(visit: Visit, form: dict[str, str]) -> func.HttpResponse:
    request = SeatRequest(choice=form.get("user", ""), typed=form.get("email", ""))
    app = visit.app
    try:
        seat = seat_workflow.assign_seat(
            visit.subscription,
            visit.person,
            visit.roles,
            request,
            assigned_by=visit.actor,
            users=app.users,
            admins=app.admins,
            seats=app.seats,
            licenses=app.licenses,
        )
    except SeatsClosedError:
        return refused(403, "Seats cannot be changed", _ENDED)
    except SeatLimitError as exc:
        return refused(409, "No free seats", str(exc))
    except NotListedError:
        return refused(400, "Choose someone from the list", NOT_LISTED)
    except OutsiderAddressError as exc:
        return refused(400, "This person cannot use this subscription", str(exc))
    except ValueError as exc:
        return refused(400, "Check the user", str(exc))
    return done(visit, "seat-assigned" if seat.is_bound else "seat-reserved")


def revoke_seat(visit: Visit, form: dict[str, str]) -> func.HttpResponse:
    app = visit.app
    try:
        seat_workflow.revoke_seat(
            visit.subscription,
            visit.roles,
            form.get("seat", "").strip(),
            seats=app.seats,
            subscriptions=app.subscriptions,
            licenses=app.licenses,
        )
    except SeatsClosedError:
        return refused(403, "Seats cannot be changed", _ENDED)
    except SeatNotFoundError:
        return refused(404, "Seat not found", "That seat is not assigned in this subscription.")
    return done(visit, "seat-revoked")


def designate(visit: Visit, form: dict[str, str]) -> func.HttpResponse:
    app = visit.app
    try:
        designate_admin(
            visit.subscription,
            visit.person,
            visit.roles,
            form.get("user", ""),
            granted_by=visit.actor,
            users=app.users,
            admins=app.admins,
            seats=app.seats,
        )
    except DesignationRefusedError:
        return refused(403, "Not allowed", "Only the purchaser or an administrator can designate admins.")
    except NotListedError:
        return refused(400, "Choose someone from the list", NOT_LISTED)
    return done(visit, "admin-designated")


def remove_admin_role(visit: Visit, form: dict[str, str]) -> func.HttpResponse:
    app = visit.app
    try:
        remove_admin(
            visit.subscription,
            visit.person,
            visit.roles,
            form.get("user", ""),
            users=app.users,
            admins=app.admins,
        )
    except DesignationRefusedError:
        return refused(403, "Not allowed", "Only the purchaser or an administrator can remove admins.")
    except NotListedError:
        return refused(400, "Choose someone from the list", "That person holds no role on this subscription.")
    except RemovalRefusedError as exc:
        return refused(409, "This role stays", str(exc))
    return done(visit, "admin-removed")
