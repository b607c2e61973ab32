"""Fault control: the rules that make the Fulfillment API answer 429, 500 or hang, from JSON and the page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from sandbox.control.answers import ControlError, back_to_page, form_number, json_answer, json_body
from sandbox.faults import FaultRule, FaultRuleError, Faults, rule_from_json
from sandbox.marketplace.errors import MarketplaceNotFoundError

RULES = [
    Rule("/control/faults", methods=["GET"], endpoint="faults"),
    Rule("/control/faults", methods=["POST"], endpoint="add_fault"),
    Rule("/control/faults", methods=["DELETE"], endpoint="clear_faults"),
    Rule("/control/faults/<rule_id>", methods=["DELETE"], endpoint="remove_fault"),
    Rule("/page/faults", methods=["POST"], endpoint="page_add_fault"),
    Rule("/page/faults/clear", methods=["POST"], endpoint="page_clear_faults"),
]


class FaultRoutes:
    def __init__(self, faults: Faults) -> None:
        self._faults = faults

    def handlers(self) -> dict[str, Callable[..., Response]]:
        return {rule.endpoint: getattr(self, rule.endpoint) for rule in RULES}

    def faults(self, request: Request) -> Response:
        return json_answer({"faults": self._faults.rules()})

    def add_fault(self, request: Request) -> Response:
        return json_answer(self._add(json_body(request)).to_json(), 201)

    def clear_faults(self, request: Request) -> Response:
        self._faults.clear()
        return Response(status=204)

    def remove_fault(self, request: Request, rule_id: str) -> Response:
        if not self._faults.remove(rule_id):
            raise MarketplaceNotFoundError(f"fault rule {rule_id} does not exist")
        return Response(status=204)

    def page_add_fault(self, request: Request) -> Response:
        form = request.form
        raw: dict[str, Any] = {
            "operation": form.get("operation", "*"),
            "kind": form.get("kind", ""),
            "share": form_number(form.get("share", "1"), "share"),
            "retryAfter": int(form_number(form.get("retryAfter", "1") or "1", "retryAfter")),
            "hangSeconds": form_number(form.get("hangSeconds", "1") or "1", "hangSeconds"),
        }
        rule = self._add(raw)
        return back_to_page(f"Fault {rule.kind} added on {rule.operation}")

    def page_clear_faults(self, request: Request) -> Response:
        self._faults.clear()
        return back_to_page("Faults cleared")

    def _add(self, raw: dict[str, Any]) -> FaultRule:
        try:
            return self._faults.add(rule_from_json(raw))
        except FaultRuleError as exc:
            raise ControlError(400, "BadRequest", str(exc)) from exc
