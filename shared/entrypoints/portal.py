"""The buyer's portal: signed-in users see and manage the subscriptions they hold a role on (R49, R60-R66).

Every request: session -> user (else sign in) -> for POSTs the CSRF token -> the subscription and the user's
roles on it (none: 404, so ids of other tenants' subscriptions reveal nothing) -> the access rule of
`shared.domain.access` for the action -> the change. Plan, quantity and cancel go to Microsoft (PATCH or
DELETE); the returned operation is recorded in the inbox as publisher-initiated and followed by a `track`
message, so the page shows it in progress until the worker sees it finish (R25, R49). Seats are the
publisher's own feature and change at once.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

import azure.functions as func

from shared.domain import access
from shared.domain.access import Principal, Role
from shared.domain.identity import (
    Person,
    acts_for,
    is_personal_tenant,
    may_show_person,
    seat_address_refusal,
    sees_beneficiary_directory,
)
from shared.domain.inbox import IN_PROGRESS
from shared.domain.policy import fits_plan_limits, is_downgrade
from shared.domain.seats import over_assignment
from shared.logs import get_logger, log_context
from shared.web import csrf
from shared.web.current_user import (
    SignedInUser,
    load_session,
    require_session,
    require_user,
    session_codec,
    sign_in_url,
    user_from_session,
)
from shared.web.pages import error_page, page, redirect

if TYPE_CHECKING:
    from shared.app_context import Services
    from shared.domain.subscription import Subscription
    from shared.storage.setup_links import SetupLinkStore

log = get_logger(__name__)

PORTAL_HOME = "/api/portal"
# fullmatch, never match + `$`: `$` also matches before a trailing newline ("%0A"), which storage refuses.
_SUBSCRIPTION_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
MAX_FORM_BYTES = 16 * 1024
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
    "setup-complete": "You now manage this subscription for your organisation.",
}
NOT_FOUND_MESSAGE = "There is no subscription at this address that you can manage."


# --- composition ---------------------------------------------------------------------------------------


def _setup_links(svc: Services) -> SetupLinkStore:
    return svc.setup_links


def _services() -> Services:
    from shared.app_context import services

    return services()


# --- one request ---------------------------------------------------------------------------------------


@dataclass
class _Visit:
    """A signed-in user looking at one subscription they hold at least one role on."""

    svc: Services
    user: SignedInUser
    session: dict[str, Any]
    subscription: Subscription
    roles: frozenset[Role]

    @property
    def who(self) -> Principal:
        return Principal.of(self.user.tenant_id, self.user.object_id)

    @property
    def page_url(self) -> str:
        return f"{PORTAL_HOME}/subscriptions/{quote(self.subscription.id)}"

    @property
    def actor(self) -> str:
        return f"{self.user.tenant_id}:{self.user.object_id}"


def _not_found(reason: str) -> func.HttpResponse:
    # The reason goes to the log only: the page is the same for "does not exist" and "not yours".
    log.warning("portal subscription refused", extra={"reason": reason})
    return error_page(404, "Subscription not found", NOT_FOUND_MESSAGE, "Go back to your subscriptions.")


def _roles(svc: Services, subscription: Subscription, user: SignedInUser) -> frozenset[Role]:
    granted = svc.admins.roles_for(subscription.id, user.tenant_id, user.object_id)
    return access.roles_of(subscription, Principal.of(user.tenant_id, user.object_id), granted)


def _visit(
    svc: Services, req: func.HttpRequest, user: SignedInUser, session: dict[str, Any]
) -> _Visit | func.HttpResponse:
    subscription_id = req.route_params.get("subscription_id", "")
    if not _SUBSCRIPTION_ID.fullmatch(subscription_id):
        return _not_found("malformed subscription id")
    subscription = svc.subscriptions.get(subscription_id)
    if subscription is None:
        return _not_found("unknown subscription id")
    roles = _roles(svc, subscription, user)
    if not access.can_view(roles):
        return _not_found("no role on this subscription")
    return _Visit(svc, user, session, subscription, roles)


def _render(
    template: str, session: dict[str, Any], user: SignedInUser, *, status: int = 200, **context: Any
) -> func.HttpResponse:
    """A page with a fresh CSRF token; re-sends the cookie when issuing the token created the secret."""
    had_secret = csrf.CSRF_SESSION_KEY in session
    token = csrf.issue(session)
    headers = {} if had_secret else {"Set-Cookie": session_codec(_services().settings).dump(session)}
    return page(template, status=status, headers=headers, csrf_token=token, user=user.display, **context)


# --- GET /api/portal -----------------------------------------------------------------------------------


def handle_index(req: func.HttpRequest) -> func.HttpResponse:
    """The subscriptions the signed-in user may see: granted ones and their tenant's, filtered by role."""
    svc = _services()
    # Loaded once: each load is a read of the session record.
    signed_in = require_session(req, svc.settings, store=svc.sessions)
    if isinstance(signed_in, func.HttpResponse):
        return signed_in
    user, session = signed_in
    with log_context(tenant_id=user.tenant_id):
        rows = _visible_subscriptions(svc, user)
        log.info("portal home", extra={"subscriptions": len(rows)})
        return _render("portal_index.html", session, user, rows=rows)


def _visible_subscriptions(svc: Services, user: SignedInUser) -> list[dict[str, Any]]:
    granted_ids = svc.admins.subscriptions_for(user.tenant_id, user.object_id)
    found = {s.id: s for s in svc.subscriptions.list_for_tenant(user.tenant_id)}
    for subscription_id in granted_ids:
        if subscription_id not in found and (subscription := svc.subscriptions.get(subscription_id)):
            found[subscription_id] = subscription
    rows = []
    for subscription in sorted(found.values(), key=lambda s: (s.name.lower(), s.id)):
        roles = _roles(svc, subscription, user)
        if access.can_view(roles):
            rows.append(
                {"subscription": subscription, "roles": sorted(roles), "csp": access.is_csp(subscription)}
            )
    return rows


# --- GET /api/portal/subscriptions/{subscription_id} ---------------------------------------------------


def handle_subscription(req: func.HttpRequest) -> func.HttpResponse:
    svc = _services()
    # Loaded once: each load is a read of the session record.
    signed_in = require_session(req, svc.settings, store=svc.sessions)
    if isinstance(signed_in, func.HttpResponse):
        return signed_in
    user, session = signed_in
    with log_context(tenant_id=user.tenant_id, subscription_id=req.route_params.get("subscription_id")):
        visit = _visit(svc, req, user, session)
        if isinstance(visit, func.HttpResponse):
            return visit
        notice = NOTICES.get(req.params.get("notice", ""), "")
        return _subscription_page(visit, notice=notice)


def _subscription_page(visit: _Visit, *, notice: str = "", status: int = 200) -> func.HttpResponse:
    return _render(
        "portal_subscription.html", visit.session, visit.user, status=status, **_details(visit), notice=notice
    )


def _details(visit: _Visit) -> dict[str, Any]:
    svc, subscription = visit.svc, visit.subscription
    can_change = access.can_change_plan_or_quantity(subscription, visit.who, visit.roles)
    plans, plans_error = _plan_choices(visit) if can_change else ([], "")
    seats = svc.seats.list(subscription.id) if subscription.quantity is not None else []
    assigned = len(seats)
    people = _people_of_beneficiary(visit)
    seated = {(seat.tenant_id, seat.object_id) for seat in seats}
    operations = sorted(
        svc.operations.list_for_subscription(subscription.id),
        key=lambda record: record.created_at or datetime.min.replace(tzinfo=UTC),
        reverse=True,
    )
    return {
        "subscription": subscription,
        "page_url": visit.page_url,
        "roles": sorted(visit.roles),
        "csp": access.is_csp(subscription),
        "can_change": can_change,
        "can_cancel": access.can_cancel(subscription, visit.who, visit.roles),
        "can_manage_seats": access.can_manage_seats(subscription, visit.roles),
        "can_designate": access.can_designate_admins(subscription, visit.roles),
        "can_create_setup_link": _can_create_setup_link(visit),
        "plans": plans,
        # Display names only where listAvailablePlans was asked anyway; elsewhere the page shows the ids.
        "plan_names": {c["plan"].plan_id: c["plan"].display_name for c in plans},
        "plans_error": plans_error,
        "quantity_min": _quantity_floor(plans, subscription.plan_id, assigned),
        "quantity_max": _plan_of(plans, subscription.plan_id, "max_quantity"),
        "seats": seats,
        "assigned": assigned,
        "free": max(0, (subscription.quantity or 0) - assigned),
        "over": over_assignment(subscription.quantity, assigned),
        "people": people,
        "candidates": [p for p in people if (p.tenant_id, p.object_id) not in seated],
        "in_progress": [op for op in operations if op.state in IN_PROGRESS],
        "history": [op for op in operations if op.state not in IN_PROGRESS],
    }


def _plan_choices(visit: _Visit) -> tuple[list[dict[str, Any]], str]:
    """Plans Microsoft offers this subscription (stop-sold left out), each marked downgrade/blocked."""
    from shared.fulfillment.errors import FulfillmentError

    try:
        plans = visit.svc.fulfillment.list_available_plans(visit.subscription.id)
    except FulfillmentError as exc:
        log.error("listAvailablePlans failed", extra={"status": exc.status_code})
        return [], "Microsoft did not list the available plans just now; try again in a few minutes."
    policy = visit.svc.policy
    current = visit.subscription.plan_id
    choices = []
    for plan in plans:
        if plan.is_stop_sell and plan.plan_id != current:
            continue
        downgrade = is_downgrade(policy.plan_order, current, plan.plan_id)
        choices.append(
            {
                "plan": plan,
                "current": plan.plan_id == current,
                "downgrade": downgrade,
                "blocked": downgrade and policy.block_downgrades,
            }
        )
    return choices, ""


def _plan_of(choices: list[dict[str, Any]], plan_id: str, attribute: str) -> Any:
    for choice in choices:
        if choice["plan"].plan_id == plan_id:
            return getattr(choice["plan"], attribute)
    return None


def _quantity_floor(choices: list[dict[str, Any]], plan_id: str, assigned: int) -> int:
    return max(1, _plan_of(choices, plan_id, "min_quantity") or 1, assigned)


def _people_of_beneficiary(visit: _Visit) -> list[Any]:
    """Who seats and admin roles can go to: people of the beneficiary's organisation who signed in before,
    as `shared.domain.identity.may_show_person` lets this visitor see them. An outsider (a CSP partner)
    sees only the subscription's own people; a personal account only itself."""
    subscription = visit.subscription
    tenant = (subscription.beneficiary.tenant_id or "").strip().lower()
    if not tenant or not access.can_manage_seats(subscription, visit.roles):
        return []
    viewer = Person.of(visit.user.tenant_id, visit.user.object_id)
    try:
        if sees_beneficiary_directory(subscription.beneficiary, viewer):
            candidates = visit.svc.users.list_for_tenant(tenant)
            related: set[Person] = set()
        else:
            related = _related_people(visit, tenant) | {viewer}
            candidates = [u for p in sorted(related, key=str) if (u := visit.svc.users.get(*_key(p)))]
    except ValueError:
        return []
    beneficiary = subscription.beneficiary
    return [user for user in candidates if may_show_person(beneficiary, viewer, _person(user), related)]


def _person(user: Any) -> Person:
    return Person.of(user.tenant_id, user.object_id)


def _key(person: Person) -> tuple[str, str]:
    return person.tenant_id, person.object_id


def _related_people(visit: _Visit, tenant: str) -> set[Person]:
    """The beneficiary's people this subscription already knows: Microsoft's beneficiary, admins, seats."""
    subscription = visit.subscription
    related = {Person.of(subscription.beneficiary.tenant_id, subscription.beneficiary.object_id)}
    related |= set(visit.svc.admins.grantees(subscription.id, tenant))
    seats = visit.svc.seats.list(subscription.id) if subscription.quantity is not None else []
    related |= {Person.of(seat.tenant_id, seat.object_id) for seat in seats if seat.is_bound}
    return {person for person in related if person.tenant_id and person.object_id}


def _can_create_setup_link(visit: _Visit) -> bool:
    """R65: the partner who bought for a customer hands the customer's admin a setup link."""
    return (
        access.is_csp(visit.subscription)
        and access.PURCHASER in visit.roles
        and access.can_manage_seats(visit.subscription, visit.roles)
    )


# --- POST /api/portal/subscriptions/{subscription_id}/{action} -----------------------------------------


def handle_action(req: func.HttpRequest) -> func.HttpResponse:
    """Dispatches a form POST after the session, CSRF and role checks every action shares."""
    svc = _services()
    session = load_session(req, svc.settings, store=svc.sessions)
    user = user_from_session(session)
    subscription_id = req.route_params.get("subscription_id", "")
    if user is None:
        log.info("portal form posted without a session")
        return redirect(sign_in_url(f"{PORTAL_HOME}/subscriptions/{quote(subscription_id)}"))
    with log_context(tenant_id=user.tenant_id, subscription_id=subscription_id):
        form = _form(req)
        if not csrf.verify(session, (form.get(csrf.FORM_FIELD) or [""])[0]):
            log.warning("portal form refused: csrf token missing or forged")
            return error_page(
                403,
                "This form has expired",
                "For your security the form could not be accepted.",
                "Reload the page and submit the form again.",
            )
        action = _ACTIONS.get(req.route_params.get("action", "").strip("/"))
        visit = _visit(svc, req, user, session)
        if isinstance(visit, func.HttpResponse):
            return visit
        if action is None:
            return _not_found("unknown portal action")
        return action(visit, {k: v[0] for k, v in form.items() if v})


def _form(req: func.HttpRequest) -> dict[str, list[str]]:
    body = req.get_body() or b""
    if len(body) > MAX_FORM_BYTES:
        return {}
    try:
        return parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return {}


def _refused(visit: _Visit, status: int, title: str, message: str) -> func.HttpResponse:
    log.warning("portal action refused", extra={"status": status, "reason": title})
    return error_page(status, title, message, "Go back to the subscription and try again.")


def _done(visit: _Visit, notice: str) -> func.HttpResponse:
    return redirect(f"{visit.page_url}?notice={notice}")


def _forbidden_change(visit: _Visit) -> func.HttpResponse:
    return _refused(
        visit,
        403,
        "This change is not available",
        "You cannot change this subscription here: it is not active, or it was bought through a partner "
        "(Cloud Solution Provider), who manages plan, quantity and cancellation.",
    )


def _change_plan(visit: _Visit, form: dict[str, str]) -> func.HttpResponse:
    if not access.can_change_plan_or_quantity(visit.subscription, visit.who, visit.roles):
        return _forbidden_change(visit)
    target = form.get("plan_id", "").strip()
    choices, error = _plan_choices(visit)
    if error:
        return _refused(visit, 502, "Microsoft is not answering", error)
    choice = next((c for c in choices if c["plan"].plan_id == target and not c["current"]), None)
    if choice is None:
        return _refused(visit, 400, "Plan not available", "Choose one of the plans listed on the page.")
    if choice["blocked"]:
        return _refused(
            visit, 409, "Downgrade not allowed", "The publisher does not allow moving to a lower plan."
        )
    return _send_change(visit, "ChangePlan", "plan-requested", plan_id=target)


def _change_quantity(visit: _Visit, form: dict[str, str]) -> func.HttpResponse:
    if not access.can_change_plan_or_quantity(visit.subscription, visit.who, visit.roles):
        return _forbidden_change(visit)
    if visit.subscription.quantity is None:
        return _refused(visit, 400, "Not a per-user plan", "This plan has no seat quantity to change.")
    try:
        quantity = int(form.get("quantity", "").strip())
    except ValueError:
        return _refused(visit, 400, "Enter a whole number", "The seat quantity must be a whole number.")
    problem = _quantity_problem(visit, quantity)
    if problem:
        return _refused(visit, problem[0], "Quantity not possible", problem[1])
    return _send_change(visit, "ChangeQuantity", "quantity-requested", quantity=quantity)


def _quantity_problem(visit: _Visit, quantity: int) -> tuple[int, str] | None:
    assigned = visit.svc.seats.count(visit.subscription.id)
    if quantity < assigned:
        return 409, f"{assigned} seats are assigned; revoke seats before lowering the quantity to {quantity}."
    if quantity == visit.subscription.quantity:
        return 400, f"The subscription already has {quantity} seats."
    choices, error = _plan_choices(visit)
    if error:
        return 502, error
    low = _plan_of(choices, visit.subscription.plan_id, "min_quantity")
    high = _plan_of(choices, visit.subscription.plan_id, "max_quantity")
    if not fits_plan_limits(quantity, low, high):
        return 400, f"This plan allows between {low or 1} and {high or 'any number of'} seats."
    return None


def _cancel(visit: _Visit, form: dict[str, str]) -> func.HttpResponse:
    if not access.can_cancel(visit.subscription, visit.who, visit.roles):
        return _forbidden_change(visit)
    if form.get("confirm") != "yes":
        return _refused(visit, 400, "Please confirm", "Tick the box to confirm that you want to cancel.")
    return _send_change(visit, "Unsubscribe", "cancel-requested")


def _send_change(
    visit: _Visit, action: str, notice: str, *, plan_id: str = "", quantity: int | None = None
) -> func.HttpResponse:
    """Asks Microsoft for the change, records the operation and queues its tracking (R25, R49)."""
    from shared.fulfillment.errors import FulfillmentError

    correlation_id = str(uuid.uuid4())
    client, subscription_id = visit.svc.fulfillment, visit.subscription.id
    try:
        if action == "ChangePlan":
            operation_id = client.change_plan(subscription_id, plan_id, correlation_id=correlation_id)
        elif action == "ChangeQuantity":
            operation_id = client.change_quantity(
                subscription_id, int(quantity or 0), correlation_id=correlation_id
            )
        else:
            operation_id = client.delete_subscription(subscription_id, correlation_id=correlation_id)
    except FulfillmentError as exc:
        return _fulfillment_refused(visit, exc)
    _track(visit, operation_id, action, correlation_id, plan_id=plan_id, quantity=quantity)
    return _done(visit, notice)


def _fulfillment_refused(visit: _Visit, exc: Exception) -> func.HttpResponse:
    from shared.fulfillment.errors import BadRequestError, ConflictError

    status = getattr(exc, "status_code", None)
    log.error("Fulfillment API refused a portal change", extra={"status": status})
    if isinstance(exc, ConflictError):
        return _refused(visit, 409, "Another change is in progress", "Wait for it to finish, then try again.")
    if isinstance(exc, BadRequestError):
        return _refused(visit, 400, "Microsoft refused the change", "Microsoft did not accept this change.")
    return _refused(
        visit, 502, "Microsoft is not answering", "Nothing was changed. Try again in a few minutes."
    )


def _track(
    visit: _Visit, operation_id: str, action: str, correlation_id: str, *, plan_id: str, quantity: int | None
) -> None:
    from shared.domain.inbox import InboxRecord, InboxState
    from shared.queueing.messages import track_message

    now = datetime.now(UTC)
    record = InboxRecord(
        subscription_id=visit.subscription.id,
        operation_id=operation_id,
        action=action,
        state=InboxState.TRACKING,
        source="portal",
        plan_id=plan_id,
        quantity=quantity,
        initiated_by_publisher=True,
        correlation_id=correlation_id,
        created_at=now,
        updated_at=now,
    )
    visit.svc.operations.put_new(record)
    visit.svc.queue.send(track_message(visit.subscription.id, operation_id, correlation_id))
    log.info("publisher change sent", extra={"action": action, "operation_id": operation_id})


def _assign_seat(visit: _Visit, form: dict[str, str]) -> func.HttpResponse:
    from shared.domain.seats import SeatLimitError

    if not access.can_manage_seats(visit.subscription, visit.roles):
        return _refused(visit, 403, "Seats cannot be changed", "This subscription has ended.")
    over = over_assignment(visit.subscription.quantity, visit.svc.seats.count(visit.subscription.id))
    if over:
        return _refused(
            visit, 409, "No free seats", f"Revoke {over} seat(s) first: more are assigned than bought."
        )
    target = _seat_target(visit, form)
    if isinstance(target, func.HttpResponse):
        return target
    try:
        seat = visit.svc.seats.assign(
            visit.subscription.id,
            target["user_key"],
            quantity=visit.subscription.quantity,
            assigned_by=visit.actor,
            display_name=target["name"],
            tenant_id=target["tenant_id"],
            object_id=target["object_id"],
        )
    except SeatLimitError as exc:
        return _refused(visit, 409, "No free seats", str(exc))
    except ValueError as exc:
        return _refused(visit, 400, "Check the user", str(exc))
    if seat.is_bound:
        _license_index(visit).put_seat(visit.subscription, seat.tenant_id, seat.object_id)
        return _done(visit, "seat-assigned")
    return _done(visit, "seat-reserved")


def _seat_target(visit: _Visit, form: dict[str, str]) -> dict[str, str] | func.HttpResponse:
    """Who gets the seat: someone the page listed (picked by tid:oid) or an email/UPN typed in."""
    picked = form.get("user", "").strip()
    if picked:
        known = _known_user(visit, picked, _people_of_beneficiary(visit))
        if known is None:
            return _refused(visit, 400, "Choose someone from the list", _NOT_LISTED)
        # The seat binds to tid + oid at once; the address is a label, and only one Entra vouched for.
        address = next(iter(known.addresses), "") or known.upn
        if not address:
            return _refused(visit, 400, "Check the user", _NO_ADDRESS)
        return {
            "user_key": address,
            "name": known.display_name,
            "tenant_id": known.tenant_id,
            "object_id": known.object_id,
        }
    typed = form.get("email", "")
    refusal = _address_refusal(visit, typed)
    if refusal:
        return _refused(visit, 400, "This person cannot use this subscription", refusal)
    return {"user_key": typed, "name": "", "tenant_id": "", "object_id": ""}


_NOT_LISTED = (
    "That person is not one you can give a seat or a role to here. Choose someone from the list, or enter "
    "the address of a member or guest of the organisation this subscription is for."
)
_NO_ADDRESS = "This user has no sign-in name we can show; ask them to sign in again, then try again."


def _address_refusal(visit: _Visit, typed: str) -> str | None:
    """Why a typed address cannot get a seat of this subscription (someone outside it holds it)."""
    from shared.domain.seats import normalize_user_key

    try:
        address = normalize_user_key(typed)
    except ValueError:
        return None  # the seat store explains a malformed address
    return seat_address_refusal(visit.subscription.beneficiary, visit.svc.users.holders_of(address))


def _known_user(visit: _Visit, picked: str, allowed: list[Any]) -> Any:
    """The listed user `picked` ("tid:oid") names; None for anyone the visitor was not shown."""
    tenant_id, _, object_id = picked.partition(":")
    wanted = Person.of(tenant_id, object_id)
    found = next((user for user in allowed if _person(user) == wanted), None)
    if found is None:
        log.warning("portal form named a user the visitor was not shown")
    return found


def _revoke_seat(visit: _Visit, form: dict[str, str]) -> func.HttpResponse:
    if not access.can_manage_seats(visit.subscription, visit.roles):
        return _refused(visit, 403, "Seats cannot be changed", "This subscription has ended.")
    key = form.get("seat", "").strip()
    try:
        seat = visit.svc.seats.find(visit.subscription.id, user_key=key) if key else None
    except ValueError:
        seat = None
    if seat is None:
        return _refused(visit, 404, "Seat not found", "That seat is not assigned in this subscription.")
    visit.svc.seats.revoke(visit.subscription.id, seat.key if seat.is_bound else seat.user_key)
    if seat.is_bound:
        _license_index(visit).remove_seat(visit.subscription, seat.tenant_id, seat.object_id)
    return _done(visit, "seat-revoked")


def _designate_admin(visit: _Visit, form: dict[str, str]) -> func.HttpResponse:
    if not access.can_designate_admins(visit.subscription, visit.roles):
        return _refused(
            visit, 403, "Not allowed", "Only the purchaser or an administrator can designate admins."
        )
    known = _known_user(visit, form.get("user", "").strip(), _admin_candidates(visit))
    if known is None:
        return _refused(visit, 400, "Choose someone from the list", _NOT_LISTED)
    visit.svc.admins.grant(
        visit.subscription.id, known.tenant_id, known.object_id, "delegated", granted_by=visit.actor
    )
    return _done(visit, "admin-designated")


def _admin_candidates(visit: _Visit) -> list[Any]:
    """The people listed, plus colleagues of the visitor's own organisation (a partner may let a colleague
    help); never another personal account, whose tenant is no organisation."""
    people = _people_of_beneficiary(visit)
    own = visit.user.tenant_id
    if is_personal_tenant(own) or own == visit.subscription.beneficiary.tenant_id.strip().lower():
        return people
    try:
        return people + visit.svc.users.list_for_tenant(own)
    except ValueError:
        return people


def _create_setup_link(visit: _Visit, form: dict[str, str]) -> func.HttpResponse:
    if not _can_create_setup_link(visit):
        return _refused(
            visit, 403, "Not allowed", "Only the partner who bought this subscription can do this."
        )
    code = _setup_links(visit.svc).create(visit.subscription.id, created_by=visit.actor)
    # In the query, not the path: the Functions host records request paths but strips query strings.
    link = f"{visit.svc.settings.public_base_url}{PORTAL_HOME}/setup?code={code}"
    return _render(
        "portal_setup_link.html",
        visit.session,
        visit.user,
        subscription=visit.subscription,
        link=link,
        page_url=visit.page_url,
    )


_ACTIONS = {
    "plan": _change_plan,
    "quantity": _change_quantity,
    "cancel": _cancel,
    "seats": _assign_seat,
    "seats/revoke": _revoke_seat,
    "admins": _designate_admin,
    "setup-links": _create_setup_link,
}


def _license_index(visit: _Visit) -> Any:
    from shared.storage.licenses import license_index

    return license_index(visit.svc)


# --- GET /api/portal/setup?code=... (or /api/portal/setup/{code}) ---------------------------------------


def handle_setup(req: func.HttpRequest) -> func.HttpResponse:
    """A customer's admin takes over a subscription their partner bought (R65)."""
    from shared.storage.setup_links import SetupLinkError

    svc = _services()
    user = require_user(req, svc.settings, store=svc.sessions)
    if isinstance(user, func.HttpResponse):
        return user
    links = _setup_links(svc)
    with log_context(tenant_id=user.tenant_id):
        try:
            link = links.check(setup_code(req))
        except SetupLinkError as exc:
            log.warning("setup link refused", extra={"reason": exc.reason})
            return _setup_refused(400, exc.reason)
        subscription = svc.subscriptions.get(link.subscription_id)
        who = Person.of(user.tenant_id, user.object_id)
        if subscription is None or not acts_for(subscription.beneficiary, who):
            log.warning("setup link opened by a user of another tenant")
            return _setup_refused(403, "other-tenant")
        return _claim(svc, links, link, user)


def setup_code(req: func.HttpRequest) -> str:
    """The code from `?code=` (links made now) or from the path (links made before it moved to the query)."""
    return req.params.get("code") or req.route_params.get("code") or ""


def _claim(svc: Services, links: SetupLinkStore, link: Any, user: SignedInUser) -> func.HttpResponse:
    from shared.storage.setup_links import SetupLinkError

    try:
        links.claim(link, used_by=f"{user.tenant_id}:{user.object_id}")
    except SetupLinkError as exc:
        return _setup_refused(400, exc.reason)
    svc.admins.grant(
        link.subscription_id, user.tenant_id, user.object_id, "beneficiary-admin", granted_by=link.created_by
    )
    with log_context(subscription_id=link.subscription_id):
        log.info("setup link used: beneficiary admin granted")
    return redirect(f"{PORTAL_HOME}/subscriptions/{quote(link.subscription_id)}?notice=setup-complete")


_SETUP_MESSAGES = {
    "unknown": "This setup link is not valid. Check that you copied all of it.",
    "expired": "This setup link has expired.",
    "used": "This setup link has already been used.",
    "other-tenant": "This setup link is for another organisation. Sign in with an account of the "
    "organisation the subscription was bought for.",
}


def _setup_refused(status: int, reason: str) -> func.HttpResponse:
    return error_page(
        status,
        "This setup link cannot be used",
        _SETUP_MESSAGES.get(reason, _SETUP_MESSAGES["unknown"]),
        "Ask your partner for a new setup link.",
    )
