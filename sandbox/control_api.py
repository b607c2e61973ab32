"""The sandbox's control surface: a JSON API under /control and a small HTML page at /, loopback only.

It plays the customer and Partner Center: define offers and plans, buy as a test user (or as a CSP partner
for a customer tenant), trigger customer-side changes and lifecycle events, read what Microsoft sees, inspect
webhook deliveries, change settings, inject faults, reset. No authentication: it only answers loopback
callers, and refuses cross-site form posts (an `Origin` header naming another host).

| Method | Path | Body | Answer |
|---|---|---|---|
| GET | /control/health | | `{"status": "ok"}` |
| GET | /control/identities | | publisher tenant/client id, tenants, users (no secrets) |
| GET | /control/offers | | `{"offers": [offer]}` (catalog-file form) |
| PUT | /control/offers/{offerId} | offer (catalog form) | 200 the offer, defined or replaced |
| PUT | /control/offers/{offerId}/plans/{planId} | plan (catalog form) | 200 the offer |
| POST | /control/offers/{offerId}/plans/{planId}/stop-sell | `{"isStopSell"}` | 200 the plan |
| POST | /control/purchases | see (1) | 201 `{"subscriptionId", "token", "landingUrl"}` |
| GET | /control/subscriptions | | `{"subscriptions": [...]}` as GetSubscription shows them |
| GET | /control/subscriptions/{id} | | `{"subscription", "operations"}` (2) |
| POST | /control/subscriptions/{id}/token | | 200 `{"subscriptionId", "token", "landingUrl"}` (3) |
| POST | /control/subscriptions/{id}/change-plan | `{"planId"}` | 200 `{"operationId"}` (4) |
| POST | /control/subscriptions/{id}/change-quantity | `{"quantity"}` | 200 `{"operationId"}` (4) |
| POST | /control/subscriptions/{id}/suspend | | 200 `{"operationId"}` (5) |
| POST | /control/subscriptions/{id}/reinstate | | 200 `{"operationId"}` (5) |
| POST | /control/subscriptions/{id}/unsubscribe | | 200 `{"operationId"}` (5) |
| POST | /control/subscriptions/{id}/renew | | 200 `{"operationId"}` (5), term rolled forward |
| GET | /control/operations/{operationId} | | the operation with `decision` |
| GET | /control/webhooks/deliveries | `?operationId=` | `{"deliveries": [...]}` (6) |
| GET | /control/settings | | the settings (7) |
| PATCH | /control/settings | some settings (7) | 200 all settings |
| GET | /control/faults | | `{"faults": [rule]}` |
| POST | /control/faults | rule (8) | 201 the rule with its `id` and `hits` |
| DELETE | /control/faults | | 204, every rule removed |
| DELETE | /control/faults/{id} | | 204 (404 when unknown) |
| POST | /control/reset | | 204 (9) |
| GET | / | | the HTML control page; its forms post to /page/... and come back |

(1) Direct: `{"offerId"?, "planId", "quantity"?, "buyer"}` with `buyer` a test user's object id or username.
    CSP: `{"offerId"?, "planId", "quantity"?, "partner", "customerTenantId", "customerUser"?}`: purchaser is
    the partner's user, beneficiary the customer tenant, allowedCustomerOperations `["Read"]`.
    Optional `name`, `isTest`, `autoRenew`. `offerId` may be left out when the catalog has one offer.
    `landingUrl` is the landing page URL + `?token=` + the URL-encoded token.
(2) Every operation (not only pending ones) with `decision`: how it ended (publisher PATCH, webhook answer,
    auto-accept, ...).
(3) A fresh purchase token for an existing subscription: the buyer opens "Configure account" again (R7).
(4) Customer-side change (source "Azure"): InProgress operation + webhook; accepted by PATCH Success or
    silence for `autoAcceptSeconds`, refused by PATCH Failure or a 4xx webhook answer (R34, R36, R52).
(5) Acts at once: Succeeded operation and a notify-only webhook.
(6) One entry per attempt: `operationId, action, attempt, url, status` (null when no answer), `error,
    elapsedSeconds, at`.
(7) `webhookUrl, landingUrl, autoAcceptSeconds, ignoreRejections, webhookMaxAttempts,
    webhookBaseDelaySeconds, webhookTimeoutSeconds, pageSize, tokenLifetimeSeconds, publisherId,
    emulatorWireFormat` (answer in the spelling of Microsoft's emulator: docs/wire-variants.md).
(8) `{"operation": Fulfillment API operationId or "*", "kind": "429" | "500" | "hang", "share": 0..1,
    "retryAfter": seconds, "hangSeconds", "seed"?, "maxCount"?}`.
(9) Forgets subscriptions, operations, tokens, deliveries and faults; catalog and settings as at start.

Errors: `{"error": {"code", "message"}}` with 400 (bad input), 403 (not loopback / cross-site), 404, 405.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from sandbox.catalog import CatalogError, Offer, offer_from_json, plan_from_json
from sandbox.faults import FAULT_KINDS, FULFILLMENT_OPERATION_IDS, FaultRuleError, Faults, rule_from_json
from sandbox.identities import Identities, TestUser
from sandbox.marketplace.errors import BadRequestError, MarketplaceError, NotFoundError
from sandbox.marketplace.records import Party
from sandbox.marketplace.service import Marketplace
from sandbox.webhooks import WebhookSender

log = logging.getLogger("sandbox.control")

LOOPBACK_ADDRESSES = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}
LIFECYCLE_ACTIONS = ("suspend", "reinstate", "unsubscribe", "renew")

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)

# The page has one inline style block and no script at all.
_PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"

Baseline = Callable[[], tuple[dict[str, Offer], Any]]  # start-up catalog and settings, for reset


def _url_map() -> Map:
    subscription = "/control/subscriptions/<subscription_id>"
    return Map(
        [
            Rule("/control/health", methods=["GET"], endpoint="health"),
            Rule("/control/identities", methods=["GET"], endpoint="identities"),
            Rule("/control/offers", methods=["GET"], endpoint="offers"),
            Rule("/control/offers/<offer_id>", methods=["PUT"], endpoint="put_offer"),
            Rule("/control/offers/<offer_id>/plans/<plan_id>", methods=["PUT"], endpoint="put_plan"),
            Rule(
                "/control/offers/<offer_id>/plans/<plan_id>/stop-sell", methods=["POST"], endpoint="stop_sell"
            ),
            Rule("/control/purchases", methods=["POST"], endpoint="purchase"),
            Rule("/control/subscriptions", methods=["GET"], endpoint="subscriptions"),
            Rule(subscription, methods=["GET"], endpoint="subscription"),
            Rule(f"{subscription}/token", methods=["POST"], endpoint="token"),
            Rule(f"{subscription}/change-plan", methods=["POST"], endpoint="change_plan"),
            Rule(f"{subscription}/change-quantity", methods=["POST"], endpoint="change_quantity"),
            Rule(
                f"{subscription}/<any({','.join(LIFECYCLE_ACTIONS)}):action>",
                methods=["POST"],
                endpoint="lifecycle",
            ),
            Rule("/control/operations/<operation_id>", methods=["GET"], endpoint="operation"),
            Rule("/control/webhooks/deliveries", methods=["GET"], endpoint="deliveries"),
            Rule("/control/settings", methods=["GET"], endpoint="settings"),
            Rule("/control/settings", methods=["PATCH"], endpoint="patch_settings"),
            Rule("/control/faults", methods=["GET"], endpoint="faults"),
            Rule("/control/faults", methods=["POST"], endpoint="add_fault"),
            Rule("/control/faults", methods=["DELETE"], endpoint="clear_faults"),
            Rule("/control/faults/<rule_id>", methods=["DELETE"], endpoint="remove_fault"),
            Rule("/control/reset", methods=["POST"], endpoint="reset"),
            Rule("/", methods=["GET"], endpoint="page"),
            Rule("/page/purchase", methods=["POST"], endpoint="page_purchase"),
            Rule("/page/subscriptions/<subscription_id>/<action>", methods=["POST"], endpoint="page_action"),
            Rule(
                "/page/offers/<offer_id>/plans/<plan_id>/stop-sell",
                methods=["POST"],
                endpoint="page_stop_sell",
            ),
            Rule("/page/settings", methods=["POST"], endpoint="page_settings"),
            Rule("/page/faults", methods=["POST"], endpoint="page_add_fault"),
            Rule("/page/faults/clear", methods=["POST"], endpoint="page_clear_faults"),
            Rule("/page/reset", methods=["POST"], endpoint="page_reset"),
        ],
        strict_slashes=False,
    )


class _ControlError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _json(document: Any, status: int = 200) -> Response:
    return Response(json.dumps(document, indent=1), status=status, mimetype="application/json")


def _error(status: int, code: str, message: str) -> Response:
    return _json({"error": {"code": code, "message": message}}, status)


def _json_body(request: Request) -> dict[str, Any]:
    raw = request.get_data(cache=True)
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _ControlError(400, "BadRequest", f"the body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise _ControlError(400, "BadRequest", "the body must be a JSON object")
    return body


def party_of(user: TestUser) -> Party:
    """How Microsoft names a user in `purchaser`/`beneficiary`; users without a mailbox show their UPN."""
    puid = uuid.uuid5(uuid.NAMESPACE_OID, user.object_id).hex[:16].upper()
    return Party(
        email_id=user.mail or user.username, object_id=user.object_id, tenant_id=user.tenant_id, puid=puid
    )


@dataclass(frozen=True)
class ControlContext:
    """Everything the control surface acts on."""

    marketplace: Marketplace
    identities: Identities
    webhooks: WebhookSender
    faults: Faults
    baseline: Baseline


class ControlApi:
    """Serves /control/* (JSON) and / plus /page/* (HTML); `dispatch` returns None for other paths."""

    def __init__(self, context: ControlContext) -> None:
        self._ctx = context
        self._urls = _url_map()

    def dispatch(self, request: Request) -> Response | None:
        if not (request.path == "/" or request.path.startswith(("/control/", "/page/"))):
            return None
        if request.remote_addr not in LOOPBACK_ADDRESSES:
            log.warning("control call from %s refused: loopback only", request.remote_addr)
            return _error(403, "Forbidden", "the control API answers loopback callers only")
        if request.method != "GET" and _cross_site(request):
            log.warning("control call refused: Origin %s is another site", request.headers.get("Origin"))
            return _error(403, "Forbidden", "cross-site requests are refused")
        return self._route(request)

    def _route(self, request: Request) -> Response:
        try:
            endpoint, arguments = self._urls.bind_to_environ(request.environ).match()
        except NotFound:
            return _error(404, "NotFound", f"nothing at {request.path}")
        except MethodNotAllowed:
            return _error(405, "MethodNotAllowed", f"{request.method} is not allowed on {request.path}")
        except HTTPException as exc:
            return _error(exc.code or 400, "BadRequest", str(exc.description))
        handler: Callable[..., Response] = getattr(self, f"_{endpoint}")
        try:
            return handler(request, **arguments)
        except (_ControlError, MarketplaceError) as exc:
            log.warning("control %s refused with %d: %s", endpoint, exc.status, exc.message)
            if endpoint.startswith("page"):
                return _back_to_page(f"Refused: {exc.message}")
            return _error(exc.status, exc.code, exc.message)

    # --- JSON: catalog, identities ------------------------------------------------------------------------

    def _health(self, request: Request) -> Response:
        return _json({"status": "ok"})

    def _identities(self, request: Request) -> Response:
        identities = self._ctx.identities
        return _json(
            {
                "publisher": {
                    "tenantId": identities.publisher.tenant_id,
                    "clientId": identities.publisher.client_id,
                },
                "tenants": [
                    {"tenantId": t.tenant_id, "displayName": t.display_name} for t in identities.tenants
                ],
                "users": [_user_json(user) for user in identities.users],
            }
        )

    def _offers(self, request: Request) -> Response:
        return _json({"offers": [offer.to_json() for offer in self._ctx.marketplace.offers()]})

    def _put_offer(self, request: Request, offer_id: str) -> Response:
        body = {**_json_body(request), "offerId": offer_id}
        offer = _catalog_call(lambda: offer_from_json(body))
        self._ctx.marketplace.put_offer(offer)
        return _json(offer.to_json())

    def _put_plan(self, request: Request, offer_id: str, plan_id: str) -> Response:
        body = {**_json_body(request), "planId": plan_id}
        plan = _catalog_call(lambda: plan_from_json(body, offer_id))
        self._ctx.marketplace.put_plan(offer_id, plan)
        return _json(self._ctx.marketplace.offer(offer_id).to_json())

    def _stop_sell(self, request: Request, offer_id: str, plan_id: str) -> Response:
        flag = _json_body(request).get("isStopSell", True)
        if not isinstance(flag, bool):
            raise _ControlError(400, "BadRequest", "isStopSell must be true or false")
        return _json(self._ctx.marketplace.set_stop_sell(offer_id, plan_id, flag).to_json())

    # --- JSON: purchases and subscriptions ----------------------------------------------------------------

    def _purchase(self, request: Request) -> Response:
        return _json(self.buy(_json_body(request)), 201)

    def buy(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """A direct purchase (`buyer`) or a CSP purchase (`partner` + `customerTenantId`)."""
        marketplace = self._ctx.marketplace
        offer_id = body.get("offerId") or _default_offer_id(marketplace)
        if "partner" in body:
            purchaser = party_of(self._user(body["partner"]))
            beneficiary = self._customer(body.get("customerTenantId"), body.get("customerUser"))
        else:
            purchaser = beneficiary = party_of(self._user(body.get("buyer")))
        purchase = marketplace.purchase(
            offer_id=str(offer_id),
            plan_id=_required_text(body, "planId"),
            quantity=body.get("quantity"),
            purchaser=purchaser,
            beneficiary=beneficiary,
            csp="partner" in body,
            name=body.get("name"),
            is_test=bool(body.get("isTest", False)),
            auto_renew=bool(body.get("autoRenew", True)),
        )
        return _token_answer(marketplace, purchase.subscription_id, purchase.token)

    def _subscriptions(self, request: Request) -> Response:
        marketplace = self._ctx.marketplace
        return _json({"subscriptions": [marketplace.subscription(i) for i in marketplace.subscription_ids()]})

    def _subscription(self, request: Request, subscription_id: str) -> Response:
        marketplace = self._ctx.marketplace
        return _json(
            {
                "subscription": marketplace.subscription(subscription_id),
                "operations": marketplace.all_operations(subscription_id),
            }
        )

    def _token(self, request: Request, subscription_id: str) -> Response:
        token = self._ctx.marketplace.issue_token(subscription_id)
        return _json(_token_answer(self._ctx.marketplace, subscription_id, token))

    def _change_plan(self, request: Request, subscription_id: str) -> Response:
        plan_id = _json_body(request).get("planId")
        return _json({"operationId": self._ctx.marketplace.customer_change_plan(subscription_id, plan_id)})

    def _change_quantity(self, request: Request, subscription_id: str) -> Response:
        quantity = _json_body(request).get("quantity")
        operation_id = self._ctx.marketplace.customer_change_quantity(subscription_id, quantity)
        return _json({"operationId": operation_id})

    def _lifecycle(self, request: Request, subscription_id: str, action: str) -> Response:
        act: Callable[[str], str] = getattr(self._ctx.marketplace, action)
        return _json({"operationId": act(subscription_id)})

    def _operation(self, request: Request, operation_id: str) -> Response:
        marketplace = self._ctx.marketplace
        record = marketplace.operation_record(operation_id)
        operations = marketplace.all_operations(record.subscription_id)
        return _json(next(op for op in operations if op["id"] == operation_id))

    def _deliveries(self, request: Request) -> Response:
        return _json({"deliveries": self._ctx.webhooks.deliveries(request.args.get("operationId"))})

    # --- JSON: settings, faults, reset ----------------------------------------------------------------------

    def _settings(self, request: Request) -> Response:
        return _json(self._ctx.marketplace.settings.to_json())

    def _patch_settings(self, request: Request) -> Response:
        settings = self._ctx.marketplace.update_settings(_json_body(request))
        log.info("settings changed: %s", settings.to_json())
        return _json(settings.to_json())

    def _faults(self, request: Request) -> Response:
        return _json({"faults": self._ctx.faults.rules()})

    def _add_fault(self, request: Request) -> Response:
        try:
            rule = rule_from_json(_json_body(request))
        except FaultRuleError as exc:
            raise _ControlError(400, "BadRequest", str(exc)) from exc
        return _json(self._ctx.faults.add(rule).to_json(), 201)

    def _clear_faults(self, request: Request) -> Response:
        self._ctx.faults.clear()
        return Response(status=204)

    def _remove_fault(self, request: Request, rule_id: str) -> Response:
        if not self._ctx.faults.remove(rule_id):
            raise NotFoundError(f"fault rule {rule_id} does not exist")
        return Response(status=204)

    def _reset(self, request: Request) -> Response:
        self.reset()
        return Response(status=204)

    def reset(self) -> None:
        offers, settings = self._ctx.baseline()
        self._ctx.marketplace.reset(offers, settings)
        self._ctx.webhooks.clear()
        self._ctx.faults.clear()

    # --- HTML page ------------------------------------------------------------------------------------------

    def _page(self, request: Request) -> Response:
        marketplace = self._ctx.marketplace
        subscriptions = [
            {"subscription": marketplace.subscription(i), "operations": marketplace.all_operations(i)}
            for i in marketplace.subscription_ids()
        ]
        html = _TEMPLATES.get_template("control.html").render(
            message=request.args.get("message", ""),
            landing_url=_safe_link(request.args.get("landing", "")),
            offers=marketplace.offers(),
            users=self._ctx.identities.users,
            tenants=self._ctx.identities.tenants,
            subscriptions=list(reversed(subscriptions)),
            deliveries=list(reversed(self._ctx.webhooks.deliveries()))[:50],
            settings=marketplace.settings,
            faults=self._ctx.faults.rules(),
            fault_kinds=FAULT_KINDS,
            operation_ids=FULFILLMENT_OPERATION_IDS,
        )
        return Response(
            html,
            mimetype="text/html",
            headers={
                "Content-Security-Policy": _PAGE_POLICY,
                "X-Frame-Options": "DENY",
            },
        )

    def _page_purchase(self, request: Request) -> Response:
        form = request.form
        body: dict[str, Any] = {"offerId": form.get("offerId"), "planId": form.get("planId")}
        if form.get("quantity", "").strip():
            body["quantity"] = _form_int(form["quantity"], "quantity")
        if form.get("mode") == "csp":
            body.update(partner=form.get("user"), customerTenantId=form.get("customerTenantId"))
        else:
            body["buyer"] = form.get("user")
        answer = self.buy(body)
        return _back_to_page(f"Bought subscription {answer['subscriptionId']}", answer["landingUrl"])

    def _page_action(self, request: Request, subscription_id: str, action: str) -> Response:
        marketplace = self._ctx.marketplace
        if action == "token":
            answer = _token_answer(marketplace, subscription_id, marketplace.issue_token(subscription_id))
            return _back_to_page("New landing page link", answer["landingUrl"])
        if action == "change-plan":
            operation_id = marketplace.customer_change_plan(subscription_id, request.form.get("planId"))
        elif action == "change-quantity":
            quantity = _form_int(request.form.get("quantity", ""), "quantity")
            operation_id = marketplace.customer_change_quantity(subscription_id, quantity)
        elif action in LIFECYCLE_ACTIONS:
            operation_id = getattr(marketplace, action)(subscription_id)
        else:
            raise _ControlError(404, "NotFound", f"unknown action {action!r}")
        return _back_to_page(f"{action}: operation {operation_id}")

    def _page_stop_sell(self, request: Request, offer_id: str, plan_id: str) -> Response:
        plan = self._ctx.marketplace.set_stop_sell(
            offer_id, plan_id, request.form.get("isStopSell") == "true"
        )
        return _back_to_page(f"Plan {plan.plan_id} stop-sell: {plan.is_stop_sell}")

    def _page_settings(self, request: Request) -> Response:
        form = request.form
        changes = {
            "webhookUrl": form.get("webhookUrl", ""),
            "landingUrl": form.get("landingUrl", ""),
            "autoAcceptSeconds": _form_number(form.get("autoAcceptSeconds", ""), "autoAcceptSeconds"),
            "ignoreRejections": form.get("ignoreRejections") == "on",
        }
        self._ctx.marketplace.update_settings(changes)
        return _back_to_page("Settings saved")

    def _page_add_fault(self, request: Request) -> Response:
        form = request.form
        raw: dict[str, Any] = {
            "operation": form.get("operation", "*"),
            "kind": form.get("kind", ""),
            "share": _form_number(form.get("share", "1"), "share"),
            "retryAfter": int(_form_number(form.get("retryAfter", "1") or "1", "retryAfter")),
            "hangSeconds": _form_number(form.get("hangSeconds", "1") or "1", "hangSeconds"),
        }
        try:
            rule = self._ctx.faults.add(rule_from_json(raw))
        except FaultRuleError as exc:
            raise _ControlError(400, "BadRequest", str(exc)) from exc
        return _back_to_page(f"Fault {rule.kind} added on {rule.operation}")

    def _page_clear_faults(self, request: Request) -> Response:
        self._ctx.faults.clear()
        return _back_to_page("Faults cleared")

    def _page_reset(self, request: Request) -> Response:
        self.reset()
        return _back_to_page("Sandbox reset")

    # --- helpers -------------------------------------------------------------------------------------------

    def _user(self, reference: Any) -> TestUser:
        """A test user by object id or username (case-insensitive)."""
        wanted = str(reference or "").strip().lower()
        for user in self._ctx.identities.users:
            if wanted in {user.object_id.lower(), user.username.lower()}:
                return user
        raise _ControlError(400, "BadRequest", f"no test user {reference!r} in the identities file")

    def _customer(self, tenant_id: Any, user_reference: Any) -> Party:
        """The CSP customer: a named user, else the tenant's first user, else a stand-in admin."""
        tenant = self._ctx.identities.tenant(str(tenant_id or ""))
        if tenant is None:
            raise _ControlError(400, "BadRequest", f"customerTenantId {tenant_id!r} is not a known tenant")
        if user_reference:
            user = self._user(user_reference)
            if user.tenant_id != tenant.tenant_id:
                raise _ControlError(400, "BadRequest", f"{user.username} is not in tenant {tenant.tenant_id}")
            return party_of(user)
        users = [u for u in self._ctx.identities.users if u.tenant_id == tenant.tenant_id]
        if users:
            return party_of(users[0])
        admin = str(uuid.uuid5(uuid.NAMESPACE_OID, f"{tenant.tenant_id}/admin"))
        return Party(
            f"admin@{tenant.tenant_id}.example", admin, tenant.tenant_id, admin.replace("-", "")[:16]
        )


def _cross_site(request: Request) -> bool:
    # The page sends no referrer, so browsers post with `Origin: null`; Sec-Fetch-Site still tells.
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site:
        return fetch_site not in {"same-origin", "none"}
    origin = request.headers.get("Origin")
    return bool(origin) and origin != "null" and urlsplit(origin).netloc != request.host


def _default_offer_id(marketplace: Marketplace) -> str:
    offers = marketplace.offers()
    if len(offers) != 1:
        raise _ControlError(400, "BadRequest", "offerId is required when the catalog has several offers")
    return offers[0].offer_id


def _required_text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _ControlError(400, "BadRequest", f"'{key}' is required")
    return value


def _token_answer(marketplace: Marketplace, subscription_id: str, token: str) -> dict[str, Any]:
    return {"subscriptionId": subscription_id, "token": token, "landingUrl": marketplace.landing_url(token)}


def _catalog_call(parse: Callable[[], Any]) -> Any:
    try:
        return parse()
    except CatalogError as exc:
        raise _ControlError(400, "BadRequest", str(exc)) from exc


def _user_json(user: TestUser) -> dict[str, Any]:
    return {
        "objectId": user.object_id,
        "tenantId": user.tenant_id,
        "username": user.username,
        "displayName": user.display_name,
        "mail": user.mail,
        "accountKind": user.account_kind,
    }


def _form_int(raw: str, name: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise BadRequestError(f"{name} must be a whole number, got {raw!r}") from None


def _form_number(raw: str, name: str) -> float:
    try:
        return float(raw.strip())
    except ValueError:
        raise BadRequestError(f"{name} must be a number, got {raw!r}") from None


def _safe_link(url: str) -> str:
    """Only http(s) links reach an href: a `javascript:` URL in the query must not become clickable."""
    return url if urlsplit(url).scheme in {"http", "https"} else ""


def _back_to_page(message: str, landing_url: str = "") -> Response:
    query = {"message": message, **({"landing": landing_url} if landing_url else {})}
    return redirect(f"/?{urlencode(query)}", code=303)
