"""The portal's pages: GET /api/portal (the visitor's subscriptions) and GET /api/portal/subscriptions/{id}
(plan, quantity, cancel, seats, admins and operations of one subscription)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import azure.functions as func

from shared.app_context import services
from shared.domain import access
from shared.domain.inbox import IN_PROGRESS
from shared.domain.seats import over_assignment
from shared.entrypoints.portal.visit import Visit, open_visit, render, roles_of
from shared.logs import get_logger, log_context
from shared.web.current_user import SignedInUser, require_session
from shared.workflows import publisher_changes, setup_links
from shared.workflows.people import administrators, listed_people

if TYPE_CHECKING:
    from shared.app_context import Services

log = get_logger(__name__)

NOTICES = {
    "plan-requested": "Plan change requested. Microsoft is processing it; its progress is shown below.",
    "quantity-requested": "Seat quantity change requested. Microsoft is processing it; see progress below.",
    "cancel-requested": "Cancellation requested. Microsoft is processing it; see progress below.",
    "seat-assigned": "Seat assigned.",
    "seat-reserved": "Seat reserved. It takes effect the first time that person signs in with their account "
    "in the organisation this subscription is for, using the address you entered as their sign-in name or "
    "verified email.",
    "seat-revoked": "Seat revoked.",
    "admin-designated": "Administrator designated.",
    "admin-removed": "Administrator removed: they can no longer manage this subscription.",
    "setup-complete": "You now manage this subscription for your organisation.",
}


def handle_index(req: func.HttpRequest) -> func.HttpResponse:
    """The subscriptions the signed-in user may see: granted ones and their tenant's, filtered by role."""
    app = services()
    # Loaded once: each load is a read of the session record.
    signed_in = require_session(req, app.settings, store=app.sessions)
    if isinstance(signed_in, func.HttpResponse):
        return signed_in
    user, session = signed_in
    with log_context(tenant_id=user.tenant_id):
        rows = _visible_subscriptions(app, user)
        log.info("portal home", extra={"subscriptions": len(rows)})
        return render("portal_index.html", session, user, rows=rows)


def _visible_subscriptions(app: Services, user: SignedInUser) -> list[dict[str, Any]]:
    granted_ids = app.admins.subscriptions_for(user.tenant_id, user.object_id)
    found = {s.id: s for s in app.subscriptions.list_for_tenant(user.tenant_id)}
    for subscription_id in granted_ids:
        if subscription_id not in found and (subscription := app.subscriptions.get(subscription_id)):
            found[subscription_id] = subscription
    rows = []
    for subscription in sorted(found.values(), key=lambda s: (s.name.lower(), s.id)):
        roles = roles_of(app, subscription, user)
        if access.can_view(roles):
            rows.append(
                {
                    "subscription": subscription,
                    "roles": sorted(roles),
                    "csp": access.is_csp(subscription),
                    "plan_names": app.plan_catalog.names_for(subscription),
                }
            )
    return rows


def handle_subscription(req: func.HttpRequest) -> func.HttpResponse:
    app = services()
    # Loaded once: each load is a read of the session record.
    signed_in = require_session(req, app.settings, store=app.sessions)
    if isinstance(signed_in, func.HttpResponse):
        return signed_in
    user, session = signed_in
    with log_context(tenant_id=user.tenant_id, subscription_id=req.route_params.get("subscription_id")):
        visit = open_visit(app, req, user, session)
        if isinstance(visit, func.HttpResponse):
            return visit
        notice = NOTICES.get(req.params.get("notice", ""), "")
        return render("portal_subscription.html", visit.session, visit.user, **_details(visit), notice=notice)


def _details(visit: Visit) -> dict[str, Any]:
    app, subscription = visit.app, visit.subscription
    can_change = access.can_change_plan_or_quantity(subscription, visit.person, visit.roles)
    plans, plans_error = (
        publisher_changes.plan_choices(subscription, fulfillment=app.fulfillment, policy=app.policy)
        if can_change
        else ([], "")
    )
    seats = app.seats.list(subscription.id) if subscription.quantity is not None else []
    assigned = len(seats)
    people = people_listed(visit)
    seated = {seat.holder for seat in seats}
    can_designate = access.can_designate_admins(subscription, visit.roles)
    admins = (
        administrators(subscription, visit.person, users=app.users, admins=app.admins)
        if can_designate
        else []
    )
    managing = {admin.person for admin in admins}
    return {
        "subscription": subscription,
        "page_url": visit.page_url,
        "roles": sorted(visit.roles),
        "csp": access.is_csp(subscription),
        "can_change": can_change,
        "can_cancel": access.can_cancel(subscription, visit.person, visit.roles),
        "can_manage_seats": access.can_manage_seats(subscription, visit.roles),
        "can_designate": can_designate,
        "administrators": admins,
        "viewer": visit.person,
        "designatable": [p for p in people if p.person not in managing],
        "can_create_setup_link": setup_links.may_create(subscription, visit.roles),
        "plans": plans,
        # From listAvailablePlans where it was asked anyway, else from the offer's names kept per instance.
        "plan_names": (
            {c["plan"].plan_id: c["plan"].display_name for c in plans}
            if plans or plans_error  # asked just now (a failure is not asked again on the same view)
            else app.plan_catalog.names_for(subscription)
        ),
        "plans_error": plans_error,
        "quantity_min": _quantity_floor(plans, subscription.plan_id, assigned),
        "quantity_max": publisher_changes.plan_limit(plans, subscription.plan_id, "max_quantity"),
        "seats": seats,
        "assigned": assigned,
        "free": max(0, (subscription.quantity or 0) - assigned),
        "over": over_assignment(subscription.quantity, assigned),
        "people": people,
        "candidates": [p for p in people if p.person not in seated],
        **_operations(visit),
    }


def _operations(visit: Visit) -> dict[str, list[Any]]:
    operations = sorted(
        visit.app.operations.list_for_subscription(visit.subscription.id),
        key=lambda record: record.created_at or datetime.min.replace(tzinfo=UTC),
        reverse=True,
    )
    return {
        "in_progress": [op for op in operations if op.state in IN_PROGRESS],
        "history": [op for op in operations if op.state not in IN_PROGRESS],
    }


def _quantity_floor(choices: list[dict[str, Any]], plan_id: str, assigned: int) -> int:
    return max(1, publisher_changes.plan_limit(choices, plan_id, "min_quantity") or 1, assigned)


def people_listed(visit: Visit) -> list[Any]:
    """Who the page offers for seats and admin roles; form posts are checked against the same list."""
    app = visit.app
    return listed_people(
        visit.subscription, visit.person, visit.roles, users=app.users, admins=app.admins, seats=app.seats
    )
