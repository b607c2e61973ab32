"""What every portal request shares: the signed-in visitor, their roles on one subscription, form parsing,
CSRF-carrying pages and the refusal / done answers.

A subscription the visitor holds no role on answers 404, the same as one that does not exist, so ids of
other tenants' subscriptions reveal nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

import azure.functions as func

from shared.app_context import Services, services
from shared.domain import access
from shared.domain.access import Role
from shared.domain.identity import Person
from shared.logs import get_logger
from shared.web import csrf
from shared.web.current_user import SignedInUser, session_codec
from shared.web.pages import error_page, page, redirect

if TYPE_CHECKING:
    from shared.domain.subscription import Subscription

log = get_logger(__name__)

PORTAL_HOME = "/api/portal"
# fullmatch, never match + `$`: `$` also matches before a trailing newline ("%0A"), which storage refuses.
_SUBSCRIPTION_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
MAX_FORM_BYTES = 16 * 1024
MAX_FIELD_CHARS = 2048
NOT_FOUND_MESSAGE = "There is no subscription at this address that you can manage."


@dataclass
class Visit:
    """A signed-in user looking at one subscription they hold at least one role on."""

    app: Services
    user: SignedInUser
    session: dict[str, Any]
    subscription: Subscription
    roles: frozenset[Role]

    @property
    def person(self) -> Person:
        return self.user.person

    @property
    def page_url(self) -> str:
        return f"{PORTAL_HOME}/subscriptions/{quote(self.subscription.id)}"

    @property
    def actor(self) -> str:
        return f"{self.user.tenant_id}:{self.user.object_id}"


def not_found(reason: str) -> func.HttpResponse:
    # The reason goes to the log only: the page is the same for "does not exist" and "not yours".
    log.warning("portal subscription refused", extra={"reason": reason})
    return error_page(404, "Subscription not found", NOT_FOUND_MESSAGE, "Go back to your subscriptions.")


def roles_of(app: Services, subscription: Subscription, user: SignedInUser) -> frozenset[Role]:
    granted = app.admins.roles_for(subscription.id, user.tenant_id, user.object_id)
    return access.roles_of(subscription, user.person, granted)


def open_visit(
    app: Services, req: func.HttpRequest, user: SignedInUser, session: dict[str, Any]
) -> Visit | func.HttpResponse:
    subscription_id = req.route_params.get("subscription_id", "")
    if not _SUBSCRIPTION_ID.fullmatch(subscription_id):
        return not_found("malformed subscription id")
    subscription = app.subscriptions.get(subscription_id)
    if subscription is None:
        return not_found("unknown subscription id")
    roles = roles_of(app, subscription, user)
    if not access.can_view(roles):
        return not_found("no role on this subscription")
    return Visit(app, user, session, subscription, roles)


def render(
    template: str, session: dict[str, Any], user: SignedInUser, *, status: int = 200, **context: Any
) -> func.HttpResponse:
    """A page with a fresh CSRF token; re-sends the cookie when issuing the token created the secret."""
    had_secret = csrf.CSRF_SESSION_KEY in session
    token = csrf.issue(session)
    headers = {} if had_secret else {"Set-Cookie": session_codec(services().settings).dump(session)}
    return page(template, status=status, headers=headers, csrf_token=token, user=user.display, **context)


def read_form(req: func.HttpRequest) -> dict[str, str] | None:
    """The posted fields (first value of each), or None for a body that is no sane form: too large, not
    UTF-8 (percent-escapes included), too many fields, or a field too long to be anything we ask for."""
    body = req.get_body() or b""
    if len(body) > MAX_FORM_BYTES:
        return None
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20, errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None
    fields = {name: values[0] for name, values in parsed.items() if values}
    if any(len(value) > MAX_FIELD_CHARS for value in fields.values()):
        return None
    return fields


def bad_form() -> func.HttpResponse:
    log.warning("portal form refused: not a readable form")
    return error_page(
        400, "This form could not be read", "The form was sent in a way we do not accept.", _RELOAD
    )


def form_expired() -> func.HttpResponse:
    log.warning("portal form refused: csrf token missing or forged")
    return error_page(
        403, "This form has expired", "For your security the form could not be accepted.", _RELOAD
    )


_RELOAD = "Reload the page and submit the form again."


def refused(status: int, title: str, message: str) -> func.HttpResponse:
    log.warning("portal action refused", extra={"status": status, "reason": title})
    return error_page(status, title, message, "Go back to the subscription and try again.")


def done(visit: Visit, notice: str) -> func.HttpResponse:
    return redirect(f"{visit.page_url}?notice={notice}")
