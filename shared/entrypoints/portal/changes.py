"""Form posts for publisher-side changes: plan, quantity and cancel, each handed to
`shared.workflows.publisher_changes` (which PATCHes or DELETEs at Microsoft and tracks the operation)."""

from __future__ import annotations

import azure.functions as func

from shared.entrypoints.portal.visit import Visit, done, refused
from shared.workflows import publisher_changes
from shared.workflows.publisher_changes import ChangePorts, ChangeRefusedError, Requester


def _ports(visit: Visit) -> ChangePorts:
    app = visit.app
    return ChangePorts(
        fulfillment=app.fulfillment, operations=app.operations, queue=app.queue, policy=app.policy
    )


def _requester(visit: Visit) -> Requester:
    return Requester(visit.person, visit.roles)


def change_plan(visit: Visit, form: dict[str, str]) -> func.HttpResponse:
    plan_id = form.get("plan_id", "").strip()
    try:
        publisher_changes.change_plan(
            visit.subscription, plan_id, requester=_requester(visit), ports=_ports(visit)
        )
    except ChangeRefusedError as exc:
        return refused(exc.status, exc.title, exc.message)
    return done(visit, "plan-requested")


def change_quantity(visit: Visit, form: dict[str, str]) -> func.HttpResponse:
    typed = form.get("quantity", "")
    try:
        publisher_changes.change_quantity(
            visit.subscription, typed, requester=_requester(visit), ports=_ports(visit), seats=visit.app.seats
        )
    except ChangeRefusedError as exc:
        return refused(exc.status, exc.title, exc.message)
    return done(visit, "quantity-requested")


def cancel(visit: Visit, form: dict[str, str]) -> func.HttpResponse:
    confirmed = form.get("confirm") == "yes"
    try:
        publisher_changes.cancel(
            visit.subscription, confirmed=confirmed, requester=_requester(visit), ports=_ports(visit)
        )
    except ChangeRefusedError as exc:
        return refused(exc.status, exc.title, exc.message)
    return done(visit, "cancel-requested")
