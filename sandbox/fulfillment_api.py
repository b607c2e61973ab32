"""The SaaS Fulfillment API v2 stand-in, served under /api/saas/... as `saasapi.v2.json` describes it.

Every call: optional injected fault (faults.py) -> bearer token check (401/403 from the Entra stand-in) ->
`api-version=2018-08-31` (400 otherwise) -> the operation. Every answer echoes `x-ms-requestid` and
`x-ms-correlationid` (generated when the caller sent none, S1) and errors carry a JSON body
`{"error": {"code", "message"}}`.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from sandbox.entra.signing import AccessDenied
from sandbox.faults import FaultRule, Faults
from sandbox.marketplace.errors import MarketplaceBadRequestError, MarketplaceError
from sandbox.marketplace.service import Marketplace

log = logging.getLogger("sandbox.fulfillment")

API_PREFIX = "/api/saas"
API_VERSION = "2018-08-31"
_SUBSCRIPTION = "/api/saas/subscriptions/<subscription_id>"

TokenVerifier = Callable[[str | None], dict[str, Any]]


def _url_map() -> Map:
    def rule(path: str, method: str, endpoint: str) -> Rule:
        return Rule(path, methods=[method], endpoint=endpoint)

    return Map(
        [
            rule("/api/saas/subscriptions/resolve", "POST", "FulfillmentOperations_Resolve"),
            rule("/api/saas/subscriptions/", "GET", "FulfillmentOperations_ListSubscriptions"),
            rule(_SUBSCRIPTION, "GET", "FulfillmentOperations_GetSubscription"),
            rule(_SUBSCRIPTION, "PATCH", "FulfillmentOperations_UpdateSubscription"),
            rule(_SUBSCRIPTION, "DELETE", "FulfillmentOperations_DeleteSubscription"),
            rule(f"{_SUBSCRIPTION}/listAvailablePlans", "GET", "FulfillmentOperations_ListAvailablePlans"),
            rule(f"{_SUBSCRIPTION}/activate", "POST", "FulfillmentOperations_ActivateSubscription"),
            rule(f"{_SUBSCRIPTION}/operations", "GET", "SubscriptionOperations_ListOperations"),
            rule(
                f"{_SUBSCRIPTION}/operations/<operation_id>",
                "GET",
                "SubscriptionOperations_GetOperationStatus",
            ),
            rule(
                f"{_SUBSCRIPTION}/operations/<operation_id>",
                "PATCH",
                "SubscriptionOperations_UpdateOperationStatus",
            ),
        ],
        strict_slashes=False,
    )


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({"error": {"code": code, "message": message}})
    return Response(body, status=status, mimetype="application/json", headers=headers)


def _json(document: Any, status: int = 200) -> Response:
    return Response(json.dumps(document), status=status, mimetype="application/json")


def _json_body(request: Request) -> Any:
    """The parsed body; a missing or non-JSON body is a 400 with a reason, as validation failures are."""
    raw = request.get_data(cache=True)
    if not raw:
        raise MarketplaceBadRequestError("a JSON request body is required")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MarketplaceBadRequestError(f"the request body is not valid JSON: {exc}") from exc


class FulfillmentApi:
    """Routes /api/saas/... requests to the marketplace; `dispatch` returns None for other paths."""

    def __init__(self, marketplace: Marketplace, verify_token: TokenVerifier, faults: Faults) -> None:
        self._marketplace = marketplace
        self._verify_token = verify_token
        self._faults = faults
        self._urls = _url_map()

    def dispatch(self, request: Request) -> Response | None:
        if not request.path.startswith(API_PREFIX + "/"):
            return None
        request_id = request.headers.get("x-ms-requestid") or str(uuid.uuid4())
        correlation_id = request.headers.get("x-ms-correlationid") or str(uuid.uuid4())
        response = self._answer(request)
        response.headers["x-ms-requestid"] = request_id
        response.headers["x-ms-correlationid"] = correlation_id
        log.info(
            "%s %s -> %d (request %s, correlation %s)",
            request.method,
            request.path,
            response.status_code,
            request_id,
            correlation_id,
        )
        return response

    def _answer(self, request: Request) -> Response:
        try:
            endpoint, arguments = self._urls.bind_to_environ(request.environ).match()
        except NotFound:
            return _error(404, "NotFound", f"no Fulfillment API operation at {request.path}")
        except MethodNotAllowed as exc:
            return _error(
                405,
                "MethodNotAllowed",
                f"{request.method} is not allowed on {request.path}",
                {"Allow": ", ".join(exc.valid_methods or ())},
            )
        except HTTPException as exc:
            return _error(exc.code or 400, "BadRequest", str(exc.description))
        fault = self._faults.pick(endpoint)
        if fault is not None and fault.kind != "hang":
            return self._fault_response(fault)
        if fault is not None:
            time.sleep(fault.hang_seconds)
        return self._checked(request, endpoint, arguments)

    @staticmethod
    def _fault_response(fault: FaultRule) -> Response:
        if fault.kind == "429":
            return _error(
                429,
                "TooManyRequests",
                "injected throttling",
                {"Retry-After": str(fault.retry_after_seconds)},
            )
        return _error(500, "InternalServerError", "injected server error")

    def _checked(self, request: Request, endpoint: str, arguments: Mapping[str, Any]) -> Response:
        try:
            self._verify_token(request.headers.get("Authorization"))
        except AccessDenied as exc:
            log.warning("fulfillment call refused: %s %s", exc.status, exc.reason)
            return _error(exc.status, "Unauthorized" if exc.status == 401 else "Forbidden", exc.reason)
        version = request.args.get("api-version")
        if version != API_VERSION:
            log.warning("fulfillment call refused: api-version %r", version)
            return _error(400, "BadRequest", f"api-version must be {API_VERSION}, got {version!r}")
        handler: Callable[..., Response] = getattr(self, f"_{endpoint.split('_', 1)[1].lower()}")
        try:
            return handler(request, **arguments)
        except MarketplaceError as exc:
            log.warning("%s refused with %d: %s", endpoint, exc.status, exc.message)
            return _error(exc.status, exc.code, exc.message)

    # --- operations (named after the spec's operationIds) ---------------------------------------------------

    def _resolve(self, request: Request) -> Response:
        return _json(self._marketplace.resolve(request.headers.get("x-ms-marketplace-token")))

    def _listsubscriptions(self, request: Request) -> Response:
        offset = _offset(request.args.get("continuationToken"))
        page, next_offset = self._marketplace.subscription_page(offset)
        body: dict[str, Any] = {"subscriptions": page}
        if next_offset is not None:
            query = urlencode({"continuationToken": str(next_offset), "api-version": API_VERSION})
            body["@nextLink"] = f"{request.host_url}api/saas/subscriptions/?{query}"
        return _json(body)

    def _getsubscription(self, request: Request, subscription_id: str) -> Response:
        return _json(self._marketplace.subscription(subscription_id))

    def _updatesubscription(self, request: Request, subscription_id: str) -> Response:
        operation_id = self._marketplace.publisher_update(subscription_id, _json_body(request))
        return self._accepted(request, subscription_id, operation_id)

    def _deletesubscription(self, request: Request, subscription_id: str) -> Response:
        operation_id = self._marketplace.publisher_delete(subscription_id)
        return self._accepted(request, subscription_id, operation_id)

    def _listavailableplans(self, request: Request, subscription_id: str) -> Response:
        plans = self._marketplace.available_plans(subscription_id, request.args.get("planId"))
        return _json({"plans": plans})

    def _activatesubscription(self, request: Request, subscription_id: str) -> Response:
        self._marketplace.activate(subscription_id, _json_body(request))
        return Response(status=200)

    def _listoperations(self, request: Request, subscription_id: str) -> Response:
        pending = self._marketplace.pending_operations(subscription_id)
        if self._marketplace.settings.emulator_wire_format:
            return _json(pending)  # Microsoft's emulator answers a bare array (docs/wire-variants.md)
        return _json({"operations": pending})

    def _getoperationstatus(self, request: Request, subscription_id: str, operation_id: str) -> Response:
        return _json(self._marketplace.operation(subscription_id, operation_id))

    def _updateoperationstatus(self, request: Request, subscription_id: str, operation_id: str) -> Response:
        self._marketplace.update_operation(subscription_id, operation_id, _json_body(request))
        return Response(status=200)

    @staticmethod
    def _accepted(request: Request, subscription_id: str, operation_id: str) -> Response:
        """202 with the absolute Operation-Location the publisher polls (R25)."""
        location = (
            f"{request.host_url}api/saas/subscriptions/{subscription_id}/operations/{operation_id}"
            f"?api-version={API_VERSION}"
        )
        return Response(status=202, headers={"Operation-Location": location})


def _offset(continuation_token: str | None) -> int:
    if continuation_token is None:
        return 0
    if not continuation_token.isdigit():
        raise MarketplaceBadRequestError(
            f"continuationToken {continuation_token!r} was not issued by this API"
        )
    return int(continuation_token)
