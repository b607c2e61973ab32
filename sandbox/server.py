"""Runs the sandbox: one WSGI app (Entra, Fulfillment API, control API and page) on two loopback listeners.

`start_sandbox(...)` returns a `RunningSandbox` with the URLs, the CA bundle clients must trust for HTTPS, the
publisher's app credentials and the live objects (for test assertions); `stop()` ends it. Plain HTTP is for
the control page and simple clients; HTTPS is what msal/azure-identity insist on for the Entra authority.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from sandbox.catalog import Offer, load_catalog
from sandbox.control.api import ControlApi
from sandbox.control.context import ControlContext
from sandbox.entra.redirect_uris import app_callback_uris
from sandbox.entra.stand_in import EntraStandIn
from sandbox.faults import Faults
from sandbox.fulfillment_api import FulfillmentApi
from sandbox.graph import GraphStandIn
from sandbox.identities import load_identities
from sandbox.keepalive import KeepAliveRequestHandler
from sandbox.marketplace.service import Marketplace
from sandbox.marketplace.settings import SandboxSettings
from sandbox.tls import ensure_certificates, ensure_signing_key, ssl_context
from sandbox.webhooks import ReusedToken, WebhookSender

log = logging.getLogger("sandbox.server")

HOST = "127.0.0.1"
PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_IDENTITIES = PACKAGE_DIR / "identities.example.json"
DEFAULT_CATALOG = PACKAGE_DIR / "catalog.example.json"

Dispatcher = Callable[[Request], Response | None]


@dataclass(frozen=True)
class PublisherCredentials:
    """The publisher's Entra app as the function app is configured with it (R43)."""

    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)


class SandboxApp:
    """The WSGI callable: asks each part in turn; the first that knows the path answers."""

    def __init__(self) -> None:
        self.dispatchers: list[Dispatcher] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        return self._answer(request)(environ, start_response)

    def _answer(self, request: Request) -> Response:
        try:
            for dispatch in self.dispatchers:
                response = dispatch(request)
                if response is not None:
                    return response
        except Exception:
            log.exception("sandbox failed on %s %s", request.method, request.path)
            return _json_error(500, "InternalServerError", "the sandbox failed; see its log")
        return _json_error(404, "NotFound", f"the sandbox has nothing at {request.path}")


def _json_error(status: int, code: str, message: str) -> Response:
    body = json.dumps({"error": {"code": code, "message": message}})
    return Response(body, status=status, mimetype="application/json")


@dataclass
class RunningSandbox:
    """A started sandbox. Use as a context manager or call `stop()`."""

    http_url: str
    https_url: str
    ca_bundle: Path
    state_dir: Path
    publisher: PublisherCredentials
    entra: EntraStandIn
    marketplace: Marketplace
    control: ControlApi
    webhooks: WebhookSender
    faults: Faults
    _servers: list[BaseWSGIServer] = field(default_factory=list, repr=False)
    _threads: list[threading.Thread] = field(default_factory=list, repr=False)
    _temporary_dir: Path | None = field(default=None, repr=False)

    @property
    def fulfillment_base_url(self) -> str:
        """What FULFILLMENT_API_BASE_URL should be (the real one is https://marketplaceapi.microsoft.com/api)."""
        return f"{self.https_url}/api"

    def stop(self) -> None:
        """Stops listening, stops webhook retries and timers; a temporary state directory is removed."""
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self.webhooks.stop()
        self.marketplace.close()
        if self._temporary_dir is not None:
            shutil.rmtree(self._temporary_dir, ignore_errors=True)
        log.info("sandbox stopped")

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _explicit_settings(
    webhook_url: str | None, landing_url: str | None, overrides: dict[str, Any]
) -> dict[str, Any]:
    """Settings the caller named; they win over a restored state (so `make dev` flags always apply)."""
    named = {"webhook_url": webhook_url, "landing_url": landing_url, **overrides}
    return {name: value for name, value in named.items() if value is not None}


def _listen(app: SandboxApp, port: int, tls: Any = None) -> BaseWSGIServer:
    # Keep-alive, as Microsoft's endpoints: a client calling over HTTPS shakes hands once, not per call.
    return make_server(
        HOST, port, app, threaded=True, ssl_context=tls, request_handler=KeepAliveRequestHandler
    )


def _serve(server: BaseWSGIServer, name: str) -> threading.Thread:
    # A short poll interval makes stop() prompt, which keeps test teardowns fast.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
    )
    thread.start()
    return thread


def start_sandbox(
    *,
    http_port: int = 0,
    https_port: int = 0,
    state_dir: Path | None = None,
    identities_path: Path | str | None = None,
    catalog_path: Path | str | None = None,
    webhook_url: str | None = None,
    landing_url: str | None = None,
    **settings: Any,
) -> RunningSandbox:
    """Starts the sandbox on 127.0.0.1; port 0 picks a free port. `settings` are `SandboxSettings` fields
    (auto_accept_seconds, ignore_rejections, webhook_max_attempts, webhook_base_delay_seconds, page_size...).
    """
    temporary_dir = None if state_dir is not None else Path(tempfile.mkdtemp(prefix="sandbox-state-"))
    state_dir = Path(state_dir or temporary_dir)  # type: ignore[arg-type]
    identities = load_identities(Path(identities_path or DEFAULT_IDENTITIES))
    offers: dict[str, Offer] = load_catalog(Path(catalog_path or DEFAULT_CATALOG))
    explicit = _explicit_settings(webhook_url, landing_url, settings)
    baseline_settings = SandboxSettings().with_changes(explicit)
    marketplace = Marketplace(offers=offers, settings=baseline_settings, state_dir=state_dir)
    marketplace.replace_settings(marketplace.settings.with_changes(explicit))

    tls_files = ensure_certificates(state_dir / "tls")
    app = SandboxApp()
    https_server = _listen(app, https_port, ssl_context(tls_files))
    http_server = _listen(app, http_port)
    https_url = f"https://{HOST}:{https_server.server_port}"
    entra = EntraStandIn(
        https_url,
        identities,
        ensure_signing_key(state_dir / "tls" / "token-signing-key.pem"),
        app_redirect_uris=lambda: app_callback_uris(marketplace.settings.landing_url),
    )
    faults = Faults()
    webhooks = WebhookSender(
        settings=lambda: marketplace.settings,
        mint_token=ReusedToken(entra.mint_webhook_token, entra.webhook_token_claims),
        on_answer=marketplace.record_webhook_answer,
    )
    marketplace.connect_webhooks(webhooks.send)
    control = ControlApi(
        ControlContext(marketplace, identities, webhooks, faults, lambda: (offers, baseline_settings))
    )
    app.dispatchers = [
        GraphStandIn(entra).dispatch,
        entra.dispatch,
        FulfillmentApi(marketplace, entra.verify_access_token, faults).dispatch,
        control.dispatch,
    ]

    publisher = identities.publisher
    sandbox = RunningSandbox(
        http_url=f"http://{HOST}:{http_server.server_port}",
        https_url=https_url,
        ca_bundle=tls_files.ca_cert,
        state_dir=state_dir,
        publisher=PublisherCredentials(publisher.tenant_id, publisher.client_id, publisher.client_secret),
        entra=entra,
        marketplace=marketplace,
        control=control,
        webhooks=webhooks,
        faults=faults,
        _servers=[https_server, http_server],
        _threads=[_serve(https_server, "sandbox-https"), _serve(http_server, "sandbox-http")],
        _temporary_dir=temporary_dir,
    )
    log.info("sandbox listening on %s and %s (state %s)", sandbox.http_url, sandbox.https_url, state_dir)
    return sandbox
