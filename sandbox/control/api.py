"""`ControlApi`: the control surface's front door. Answers loopback callers only, refuses cross-site form
posts, routes /control/*, / and /page/* to their handlers, and turns refusals into JSON errors (or, for the
page's forms, a message on the page)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map
from werkzeug.wrappers import Request, Response

from sandbox.control import fault_routes, json_routes, page
from sandbox.control.answers import ControlError, back_to_page, error_answer
from sandbox.control.context import ControlContext, reset
from sandbox.control.purchases import buy
from sandbox.marketplace.errors import MarketplaceError

log = logging.getLogger("sandbox.control")

LOOPBACK_ADDRESSES = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


class ControlApi:
    """Serves /control/* (JSON) and / plus /page/* (HTML); `dispatch` returns None for other paths."""

    def __init__(self, context: ControlContext) -> None:
        self._ctx = context
        # A Rule belongs to one Map once bound: each ControlApi maps unbound copies of the modules' rules.
        rules = [*json_routes.RULES, *fault_routes.RULES, *page.RULES]
        self._urls = Map([rule.empty() for rule in rules], strict_slashes=False)
        self._handlers: dict[str, Callable[..., Response]] = {
            **json_routes.JsonRoutes(context).handlers(),
            **fault_routes.FaultRoutes(context.faults).handlers(),
            **page.ControlPage(context).handlers(),
        }

    def buy(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A direct purchase (`buyer`) or a CSP purchase (`partner` + `customerTenantId`)."""
        return buy(self._ctx, body)

    def reset(self) -> None:
        reset(self._ctx)

    def dispatch(self, request: Request) -> Response | None:
        if not (request.path == "/" or request.path.startswith(("/control/", "/page/"))):
            return None
        if request.remote_addr not in LOOPBACK_ADDRESSES:
            log.warning("control call from %s refused: loopback only", request.remote_addr)
            return error_answer(403, "Forbidden", "the control API answers loopback callers only")
        if request.method != "GET" and _cross_site(request):
            log.warning("control call refused: Origin %s is another site", request.headers.get("Origin"))
            return error_answer(403, "Forbidden", "cross-site requests are refused")
        return self._route(request)

    def _route(self, request: Request) -> Response:
        try:
            endpoint, arguments = self._urls.bind_to_environ(request.environ).match()
        except NotFound:
            return error_answer(404, "NotFound", f"nothing at {request.path}")
        except MethodNotAllowed:
            return error_answer(405, "MethodNotAllowed", f"{request.method} is not allowed on {request.path}")
        except HTTPException as exc:
            return error_answer(exc.code or 400, "BadRequest", str(exc.description))
        try:
            return self._handlers[endpoint](request, **arguments)
        except (ControlError, MarketplaceError) as exc:
            log.warning("control %s refused with %d: %s", endpoint, exc.status, exc.message)
            if endpoint.startswith("page"):
                return back_to_page(f"Refused: {exc.message}")
            return error_answer(exc.status, exc.code, exc.message)


def _cross_site(request: Request) -> bool:
    # The page sends no referrer, so browsers post with `Origin: null`; Sec-Fetch-Site still tells.
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site:
        return fetch_site not in {"same-origin", "none"}
    origin = request.headers.get("Origin")
    return bool(origin) and origin != "null" and urlsplit(origin).netloc != request.host
