"""The control API's JSON routes under /control (the table is in `sandbox.control`): catalog, purchases,
subscriptions and their lifecycle, webhook deliveries, settings, reset."""

from __future__ import annotations

import logging
from collections.abc import Callable

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from sandbox.catalog import offer_from_json, plan_from_json
from sandbox.control.answers import ControlError, catalog_call, json_answer, json_body
from sandbox.control.context import LIFECYCLE_ACTIONS, ControlContext, reset
from sandbox.control.purchases import buy, seed_request, token_answer
from sandbox.identities import TestUser

log = logging.getLogger("sandbox.control")

_SUBSCRIPTION = "/control/subscriptions/<subscription_id>"

RULES = [
    Rule("/control/health", methods=["GET"], endpoint="health"),
    Rule("/control/identities", methods=["GET"], endpoint="identities"),
    Rule("/control/offers", methods=["GET"], endpoint="offers"),
    Rule("/control/offers/<offer_id>", methods=["PUT"], endpoint="put_offer"),
    Rule("/control/offers/<offer_id>/plans/<plan_id>", methods=["PUT"], endpoint="put_plan"),
    Rule("/control/offers/<offer_id>/plans/<plan_id>/stop-sell", methods=["POST"], endpoint="stop_sell"),
    Rule("/control/purchases", methods=["POST"], endpoint="purchase"),
    Rule("/control/subscriptions", methods=["GET"], endpoint="subscriptions"),
    Rule("/control/subscriptions/seed", methods=["POST"], endpoint="seed"),
    Rule(_SUBSCRIPTION, methods=["GET"], endpoint="subscription"),
    Rule(f"{_SUBSCRIPTION}/token", methods=["POST"], endpoint="token"),
    Rule(f"{_SUBSCRIPTION}/change-plan", methods=["POST"], endpoint="change_plan"),
    Rule(f"{_SUBSCRIPTION}/change-quantity", methods=["POST"], endpoint="change_quantity"),
    Rule(
        f"{_SUBSCRIPTION}/<any({','.join(LIFECYCLE_ACTIONS)}):action>", methods=["POST"], endpoint="lifecycle"
    ),
    Rule("/control/operations/<operation_id>", methods=["GET"], endpoint="operation"),
    Rule("/control/webhooks/deliveries", methods=["GET"], endpoint="deliveries"),
    Rule("/control/settings", methods=["GET"], endpoint="settings"),
    Rule("/control/settings", methods=["PATCH"], endpoint="patch_settings"),
    Rule("/control/reset", methods=["POST"], endpoint="reset"),
]


class JsonRoutes:
    def __init__(self, context: ControlContext) -> None:
        self._ctx = context

    def handlers(self) -> dict[str, Callable[..., Response]]:
        return {rule.endpoint: getattr(self, rule.endpoint) for rule in RULES}

    # --- catalog, identities ----------------------------------------------------------------------------

    def health(self, request: Request) -> Response:
        return json_answer({"status": "ok"})

    def identities(self, request: Request) -> Response:
        identities = self._ctx.identities
        return json_answer(
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

    def offers(self, request: Request) -> Response:
        return json_answer({"offers": [offer.to_json() for offer in self._ctx.marketplace.offers()]})

    def put_offer(self, request: Request, offer_id: str) -> Response:
        body = {**json_body(request), "offerId": offer_id}
        offer = catalog_call(lambda: offer_from_json(body))
        self._ctx.marketplace.put_offer(offer)
        return json_answer(offer.to_json())

    def put_plan(self, request: Request, offer_id: str, plan_id: str) -> Response:
        body = {**json_body(request), "planId": plan_id}
        plan = catalog_call(lambda: plan_from_json(body, offer_id))
        self._ctx.marketplace.put_plan(offer_id, plan)
        return json_answer(self._ctx.marketplace.offer(offer_id).to_json())

    def stop_sell(self, request: Request, offer_id: str, plan_id: str) -> Response:
        flag = json_body(request).get("isStopSell", True)
        if not isinstance(flag, bool):
            raise ControlError(400, "BadRequest", "isStopSell must be true or false")
        return json_answer(self._ctx.marketplace.set_stop_sell(offer_id, plan_id, flag).to_json())

    # --- purchases and subscriptions --------------------------------------------------------------------

    def purchase(self, request: Request) -> Response:
        return json_answer(buy(self._ctx, json_body(request)), 201)

    def seed(self, request: Request) -> Response:
        ids = self._ctx.marketplace.seed(seed_request(self._ctx, json_body(request)))
        return json_answer({"seeded": len(ids), "first": ids[0], "last": ids[-1]}, 201)

    def subscriptions(self, request: Request) -> Response:
        marketplace = self._ctx.marketplace
        ids = marketplace.subscription_ids()
        return json_answer({"subscriptions": [marketplace.subscription(i) for i in ids]})

    def subscription(self, request: Request, subscription_id: str) -> Response:
        marketplace = self._ctx.marketplace
        return json_answer(
            {
                "subscription": marketplace.subscription(subscription_id),
                "operations": marketplace.all_operations(subscription_id),
            }
        )

    def token(self, request: Request, subscription_id: str) -> Response:
        token = self._ctx.marketplace.issue_token(subscription_id)
        return json_answer(token_answer(self._ctx.marketplace, subscription_id, token))

    def change_plan(self, request: Request, subscription_id: str) -> Response:
        plan_id = json_body(request).get("planId")
        return json_answer(
            {"operationId": self._ctx.marketplace.customer_change_plan(subscription_id, plan_id)}
        )

    def change_quantity(self, request: Request, subscription_id: str) -> Response:
        quantity = json_body(request).get("quantity")
        operation_id = self._ctx.marketplace.customer_change_quantity(subscription_id, quantity)
        return json_answer({"operationId": operation_id})

    def lifecycle(self, request: Request, subscription_id: str, action: str) -> Response:
        act: Callable[[str], str] = getattr(self._ctx.marketplace, action)
        return json_answer({"operationId": act(subscription_id)})

    def operation(self, request: Request, operation_id: str) -> Response:
        marketplace = self._ctx.marketplace
        record = marketplace.operation_record(operation_id)
        operations = marketplace.all_operations(record.subscription_id)
        return json_answer(next(op for op in operations if op["id"] == operation_id))

    def deliveries(self, request: Request) -> Response:
        return json_answer({"deliveries": self._ctx.webhooks.deliveries(request.args.get("operationId"))})

    # --- settings, reset --------------------------------------------------------------------------------

    def settings(self, request: Request) -> Response:
        return json_answer(self._ctx.marketplace.settings.to_json())

    def patch_settings(self, request: Request) -> Response:
        settings = self._ctx.marketplace.update_settings(json_body(request))
        log.info("settings changed: %s", settings.to_json())
        return json_answer(settings.to_json())

    def reset(self, request: Request) -> Response:
        reset(self._ctx)
        return Response(status=204)


def _user_json(user: TestUser) -> dict[str, object]:
    return {
        "objectId": user.object_id,
        "tenantId": user.tenant_id,
        "username": user.username,
        "displayName": user.display_name,
        "mail": user.mail,
        "accountKind": user.account_kind,
    }
