"""Table of contents of the function app: each trigger hands its input to a plain function in `shared`.

Nothing else lives here, so the dev host (`devhost/`) and the tests run exactly what Azure runs. Each entry
module is imported when its first trigger runs, not here (`shared.entrypoints.binding`), which keeps the
host's cold-start import of this file close to a bare `import azure.functions`.
"""

from typing import TYPE_CHECKING

import azure.functions as func

from shared.config import check_fail_closed
from shared.entrypoints.binding import entry_module

if TYPE_CHECKING:  # the type checker sees the real modules; at run time each loads on its first call
    from shared.entrypoints import auth, health, licenses, reconciliation, retention, webhook, worker
    from shared.entrypoints.console import dead_letters as console_dead_letters
    from shared.entrypoints.console import overview as console_overview
    from shared.entrypoints.console import subscription as console_subscription
    from shared.entrypoints.console import subscriptions as console_subscriptions
    from shared.entrypoints.landing import confirm, land, status
    from shared.entrypoints.portal import actions as portal_actions
    from shared.entrypoints.portal import pages as portal_pages
    from shared.entrypoints.portal import setup as portal_setup_links
else:
    auth = entry_module("shared.entrypoints.auth")
    health = entry_module("shared.entrypoints.health")
    licenses = entry_module("shared.entrypoints.licenses")
    reconciliation = entry_module("shared.entrypoints.reconciliation")
    retention = entry_module("shared.entrypoints.retention")
    webhook = entry_module("shared.entrypoints.webhook")
    worker = entry_module("shared.entrypoints.worker")
    land = entry_module("shared.entrypoints.landing.land")
    confirm = entry_module("shared.entrypoints.landing.confirm")
    status = entry_module("shared.entrypoints.landing.status")
    portal_actions = entry_module("shared.entrypoints.portal.actions")
    portal_pages = entry_module("shared.entrypoints.portal.pages")
    portal_setup_links = entry_module("shared.entrypoints.portal.setup")
    console_overview = entry_module("shared.entrypoints.console.overview")
    console_dead_letters = entry_module("shared.entrypoints.console.dead_letters")
    console_subscription = entry_module("shared.entrypoints.console.subscription")
    console_subscriptions = entry_module("shared.entrypoints.console.subscriptions")

# Before any function is registered: an unresolved Key Vault reference or a public dev secret stops the app
# at start (the host logs the setting's name) instead of serving with a value anyone can read.
check_fail_closed()

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


# --- Marketplace: landing, webhook, worker and reconciliation
@app.route(route="landing", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def landing_page(req: func.HttpRequest) -> func.HttpResponse:
    """Microsoft sends the buyer here with ?token=... after a purchase or 'Manage account' (R1-R7)."""
    return land.handle_landing(req)


@app.route(route="landing/status", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def landing_status(req: func.HttpRequest) -> func.HttpResponse:
    """Activation progress that the landing page polls."""
    return status.handle_status(req)


@app.route(route="webhook", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def marketplace_webhook(req: func.HttpRequest) -> func.HttpResponse:
    """Microsoft's connection webhook, authenticated by its Entra ID bearer token (R39)."""
    return webhook.handle_webhook(req)


@app.service_bus_queue_trigger(
    arg_name="msg",
    queue_name="%SERVICEBUS_QUEUE%",
    connection="ServiceBusConnection",
    is_sessions_enabled=True,
)
def events_worker(msg: func.ServiceBusMessage) -> None:
    """Reconciles one event with Microsoft's truth; raising makes Service Bus deliver it again."""
    worker.handle_message(msg)


@app.timer_trigger(schedule="%RECONCILE_SCHEDULE%", arg_name="timer", run_on_startup=False)
def reconciliation_sweep(timer: func.TimerRequest) -> None:
    """On RECONCILE_SCHEDULE (every 30 minutes): queue a reconcile message per subscription Microsoft lists
    (R83). Not on startup: every scale-out instance would sweep again."""
    reconciliation.handle_timer(timer)


@app.timer_trigger(schedule="%PURGE_SCHEDULE%", arg_name="timer", run_on_startup=False)
def personal_data_purge(timer: func.TimerRequest) -> None:
    """On PURGE_SCHEDULE (daily): delete or anonymise the personal data of subscriptions Unsubscribed for
    longer than RETENTION_DAYS (R56, R58); billing fields and the audit trail, redacted, stay."""
    retention.handle_timer(timer)


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health_probe(req: func.HttpRequest) -> func.HttpResponse:
    return health.handle_health(req)


# --- Buyer sign-in and confirmation
@app.route(route="auth/signin", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def auth_signin(req: func.HttpRequest) -> func.HttpResponse:
    """Starts the Entra ID sign-in (code flow with PKCE); `next` may only be a path on this site (R8)."""
    return auth.handle_signin(req)


@app.route(route="auth/callback", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def auth_callback(req: func.HttpRequest) -> func.HttpResponse:
    """Entra ID returns here: state, code and ID token are checked before a session exists (R10)."""
    return auth.handle_callback(req)


@app.route(route="auth/signout", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def auth_signout(req: func.HttpRequest) -> func.HttpResponse:
    """GET asks, POST (CSRF-checked) ends the session."""
    return auth.handle_signout(req)


@app.route(route="landing/confirm", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def landing_confirm(req: func.HttpRequest) -> func.HttpResponse:
    """The signed-in buyer checks the purchase and contact email; POST queues the activation (R12, R14)."""
    return confirm.handle_confirm(req)


# --- Buyer portal and license check
@app.route(route="portal", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def portal_home(req: func.HttpRequest) -> func.HttpResponse:
    """The signed-in user's subscriptions."""
    return portal_pages.handle_index(req)


@app.route(
    route="portal/subscriptions/{subscription_id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS
)
def portal_subscription(req: func.HttpRequest) -> func.HttpResponse:
    """One subscription: plan, quantity, cancel, seats, admins, operations."""
    return portal_pages.handle_subscription(req)


@app.route(
    route="portal/subscriptions/{subscription_id}/{*action}",
    methods=["POST"],
    auth_level=func.AuthLevel.ANONYMOUS,
)
def portal_action(req: func.HttpRequest) -> func.HttpResponse:
    """Form posts: plan, quantity, cancel, seats, seats/revoke, admins, admins/remove, setup-links (CSRF)."""
    return portal_actions.handle_action(req)


@app.route(route="portal/setup/{code?}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def portal_setup(req: func.HttpRequest) -> func.HttpResponse:
    """A CSP setup link, `?code=...`: GET asks, POST (CSRF-checked, code in the body) makes the customer's
    admin take over one subscription (R65).

    The code travels in the query, which the Functions host leaves out of the URL it records; the path form
    is still accepted for links handed out before (they expire within 72 hours)."""
    return portal_setup_links.handle_setup(req)


@app.route(route="licenses/check", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def license_check(req: func.HttpRequest) -> func.HttpResponse:
    """The publisher's own app asks whether a user may use an offer; the function key authenticates it."""
    return licenses.handle_license_check(req)


# --- The publisher's operations console (staff with Publisher.Admin / Publisher.Reader only).
# Under "console", never "admin": the Functions host refuses routes starting with "admin" (its admin API).
@app.route(route="console", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def console_home(req: func.HttpRequest) -> func.HttpResponse:
    """Subscriptions by status, activity and answer latency per day, pending operations, dead letters."""
    return console_overview.handle_overview(req)


@app.route(route="console/sweep", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def console_sweep(req: func.HttpRequest) -> func.HttpResponse:
    """An administrator asks for the reconciliation sweep now; the worker runs it in the app's identity."""
    return console_overview.handle_sweep(req)


@app.route(route="console/dead-letters", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def console_dead_letters_list(req: func.HttpRequest) -> func.HttpResponse:
    """The parked and dead-lettered messages, filtered by reason, place and subscription."""
    return console_dead_letters.handle_list(req)


@app.route(route="console/dead-letters/{action}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def console_dead_letters_action(req: func.HttpRequest) -> func.HttpResponse:
    """replay or discard (admins, CSRF-checked): one entry or all the filter matches, after a confirmation."""
    return console_dead_letters.handle_action(req)


@app.route(
    route="console/subscriptions/{subscription_id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS
)
def console_subscription_page(req: func.HttpRequest) -> func.HttpResponse:
    """One subscription: the stored mirror beside Microsoft's view, operations, audit trail, seats."""
    return console_subscription.handle_subscription(req)


@app.route(
    route="console/subscriptions/{subscription_id}/{*action}",
    methods=["POST"],
    auth_level=func.AuthLevel.ANONYMOUS,
)
def console_subscription_action(req: func.HttpRequest) -> func.HttpResponse:
    """An admin's action: reconcile, activation retry, accept/refuse a pending change, cancel."""
    return console_subscription.handle_action(req)


@app.route(route="console/subscriptions", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def console_subscriptions_list(req: func.HttpRequest) -> func.HttpResponse:
    """Find, filter and page through subscriptions; `format=csv` exports every match as CSV."""
    return console_subscriptions.handle_list(req)
