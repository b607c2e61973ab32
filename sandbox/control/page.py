"""The HTML control page at / and its forms under /page/...: each form acts, then comes back to the page
with a message (and, after a purchase or a new token, the landing page link)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from sandbox.control.answers import ControlError, back_to_page, form_int, form_number
from sandbox.control.context import LIFECYCLE_ACTIONS, ControlContext, reset
from sandbox.control.purchases import buy, token_answer
from sandbox.faults import FAULT_KINDS, FULFILLMENT_OPERATION_IDS

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parents[1] / "templates"),
    autoescape=select_autoescape(["html"]),
)

# The page has one inline style block and no script at all.
_PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"

RULES = [
    Rule("/", methods=["GET"], endpoint="page"),
    Rule("/page/purchase", methods=["POST"], endpoint="page_purchase"),
    Rule("/page/subscriptions/<subscription_id>/<action>", methods=["POST"], endpoint="page_action"),
    Rule("/page/offers/<offer_id>/plans/<plan_id>/stop-sell", methods=["POST"], endpoint="page_stop_sell"),
    Rule("/page/settings", methods=["POST"], endpoint="page_settings"),
    Rule("/page/reset", methods=["POST"], endpoint="page_reset"),
]


class ControlPage:
    def __init__(self, context: ControlContext) -> None:
        self._ctx = context

    def handlers(self) -> dict[str, Callable[..., Response]]:
        return {rule.endpoint: getattr(self, rule.endpoint) for rule in RULES}

    def page(self, request: Request) -> Response:
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
            headers={"Content-Security-Policy": _PAGE_POLICY, "X-Frame-Options": "DENY"},
        )

    def page_purchase(self, request: Request) -> Response:
        form = request.form
        body: dict[str, Any] = {"offerId": form.get("offerId"), "planId": form.get("planId")}
        if form.get("quantity", "").strip():
            body["quantity"] = form_int(form["quantity"], "quantity")
        if form.get("mode") == "csp":
            body.update(partner=form.get("user"), customerTenantId=form.get("customerTenantId"))
        else:
            body["buyer"] = form.get("user")
        answer = buy(self._ctx, body)
        return back_to_page(f"Bought subscription {answer['subscriptionId']}", answer["landingUrl"])

    def page_action(self, request: Request, subscription_id: str, action: str) -> Response:
        marketplace = self._ctx.marketplace
        if action == "token":
            answer = token_answer(marketplace, subscription_id, marketplace.issue_token(subscription_id))
            return back_to_page("New landing page link", answer["landingUrl"])
        if action == "change-plan":
            operation_id = marketplace.customer_change_plan(subscription_id, request.form.get("planId"))
        elif action == "change-quantity":
            quantity = form_int(request.form.get("quantity", ""), "quantity")
            operation_id = marketplace.customer_change_quantity(subscription_id, quantity)
        elif action in LIFECYCLE_ACTIONS:
            operation_id = getattr(marketplace, action)(subscription_id)
        else:
            raise ControlError(404, "NotFound", f"unknown action {action!r}")
        return back_to_page(f"{action}: operation {operation_id}")

    def page_stop_sell(self, request: Request, offer_id: str, plan_id: str) -> Response:
        stop_sell = request.form.get("isStopSell") == "true"
        plan = self._ctx.marketplace.set_stop_sell(offer_id, plan_id, stop_sell)
        return back_to_page(f"Plan {plan.plan_id} stop-sell: {plan.is_stop_sell}")

    def page_settings(self, request: Request) -> Response:
        form = request.form
        changes = {
            "webhookUrl": form.get("webhookUrl", ""),
            "landingUrl": form.get("landingUrl", ""),
            "autoAcceptSeconds": form_number(form.get("autoAcceptSeconds", ""), "autoAcceptSeconds"),
            "ignoreRejections": form.get("ignoreRejections") == "on",
        }
        self._ctx.marketplace.update_settings(changes)
        return back_to_page("Settings saved")

    def page_reset(self, request: Request) -> Response:
        reset(self._ctx)
        return back_to_page("Sandbox reset")


def _safe_link(url: str) -> str:
    """Only http(s) links reach an href: a `javascript:` URL in the query must not become clickable."""
    return url if urlsplit(url).scheme in {"http", "https"} else ""
