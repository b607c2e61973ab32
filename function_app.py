"""Table of contents of the function app: each trigger hands its input to a plain function in `shared`.

Nothing else lives here, so the dev host (`devhost/`) and the tests run exactly what Azure runs. Imports are
kept to the thin entry modules; the SDKs they need load on first use, which keeps cold start short.
"""

import azure.functions as func

from shared.entrypoints import health, landing, webhook, worker

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="landing", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def landing_page(req: func.HttpRequest) -> func.HttpResponse:
    """Microsoft sends the buyer here with ?token=... after a purchase or 'Manage account' (R1-R7)."""
    return landing.handle_landing(req)


@app.route(route="landing/status", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def landing_status(req: func.HttpRequest) -> func.HttpResponse:
    """Activation progress that the landing page polls."""
    return landing.handle_status(req)


@app.route(route="webhook", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def marketplace_webhook(req: func.HttpRequest) -> func.HttpResponse:
    """Microsoft's connection webhook, authenticated by its Entra ID bearer token (R39)."""
    return webhook.handle_webhook(req)


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health_probe(req: func.HttpRequest) -> func.HttpResponse:
    return health.handle_health(req)


@app.service_bus_queue_trigger(
    arg_name="msg",
    queue_name="%SERVICEBUS_QUEUE%",
    connection="ServiceBusConnection",
    is_sessions_enabled=True,
)
def events_worker(msg: func.ServiceBusMessage) -> None:
    """Reconciles one event with Microsoft's truth; raising makes Service Bus deliver it again."""
    worker.handle_message(msg)
