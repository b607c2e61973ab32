"""Offers and plans as Partner Center would publish them, and their Fulfillment API (`Plan`) shape.

A catalog file is JSON: `{"offers": [{"offerId", "displayName", "plans": [{...}]}]}` with plan keys
`planId, displayName, description, isPrivate, audienceTenants, isPricePerSeat, minQuantity, maxQuantity,
hasFreeTrials, isStopSell, termUnit, price, currency, market`. See `catalog.example.json`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

log = logging.getLogger("sandbox.catalog")

TERM_UNITS = ("P1M", "P1Y", "P2Y", "P3Y", "P4Y", "P5Y")


class CatalogError(ValueError):
    """A catalog definition is malformed; the message names the offer, plan and field."""


@dataclass(frozen=True)
class Plan:
    """One plan of an offer. Flat-rate plans have no quantity; per-seat plans bound it with min/max."""

    plan_id: str
    display_name: str
    description: str = ""
    is_private: bool = False
    audience_tenants: tuple[str, ...] = ()
    is_price_per_seat: bool = False
    min_quantity: int = 0
    max_quantity: int = 0
    has_free_trials: bool = False
    is_stop_sell: bool = False
    term_unit: str = "P1M"
    price: float = 0.0
    currency: str = "USD"
    market: str = "US"

    def visible_to(self, tenant_id: str) -> bool:
        """Private plans exist only for the tenants in their audience (R23, R51)."""
        return not self.is_private or tenant_id.lower() in {t.lower() for t in self.audience_tenants}

    def allows_quantity(self, quantity: int) -> bool:
        return self.min_quantity <= quantity <= self.max_quantity

    def to_api(self) -> dict[str, Any]:
        """The plan as ListAvailablePlans returns it (S1 `Plan`)."""
        body: dict[str, Any] = {
            "planId": self.plan_id,
            "displayName": self.display_name,
            "isPrivate": self.is_private,
            "description": self.description,
            "isPricePerSeat": self.is_price_per_seat,
            "hasFreeTrials": self.has_free_trials,
            "isStopSell": self.is_stop_sell,
            "market": self.market,
            "planComponents": {
                "recurrentBillingTerms": [
                    {
                        "currency": self.currency,
                        "price": self.price,
                        "termUnit": self.term_unit,
                        "termDescription": _term_description(self.term_unit),
                        "meteredQuantityIncluded": [],
                    }
                ],
                "meteringDimensions": [],
            },
        }
        if self.is_price_per_seat:
            body["minQuantity"] = self.min_quantity
            body["maxQuantity"] = self.max_quantity
        return body

    def to_json(self) -> dict[str, Any]:
        """The plan in catalog-file form (round-trips through `plan_from_json`)."""
        return {
            "planId": self.plan_id,
            "displayName": self.display_name,
            "description": self.description,
            "isPrivate": self.is_private,
            "audienceTenants": list(self.audience_tenants),
            "isPricePerSeat": self.is_price_per_seat,
            "minQuantity": self.min_quantity,
            "maxQuantity": self.max_quantity,
            "hasFreeTrials": self.has_free_trials,
            "isStopSell": self.is_stop_sell,
            "termUnit": self.term_unit,
            "price": self.price,
            "currency": self.currency,
            "market": self.market,
        }


@dataclass(frozen=True)
class Offer:
    offer_id: str
    display_name: str
    plans: tuple[Plan, ...] = field(default_factory=tuple)

    def plan(self, plan_id: str) -> Plan | None:
        return next((plan for plan in self.plans if plan.plan_id == plan_id), None)

    def with_plan(self, plan: Plan) -> Offer:
        """This offer with `plan` added, or replacing the plan with the same id."""
        others = tuple(p for p in self.plans if p.plan_id != plan.plan_id)
        return replace(self, plans=(*others, plan))

    def to_json(self) -> dict[str, Any]:
        return {
            "offerId": self.offer_id,
            "displayName": self.display_name,
            "plans": [plan.to_json() for plan in self.plans],
        }


def _term_description(term_unit: str) -> str:
    return {"P1M": "1 month subscription", "P1Y": "1 year subscription"}.get(term_unit, f"{term_unit} term")


def _text(raw: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise CatalogError(f"{where}: '{key}' must be a non-empty string")
    return value.strip()


def _flag(raw: dict[str, Any], key: str, where: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise CatalogError(f"{where}: '{key}' must be true or false")
    return value


def _whole(raw: dict[str, Any], key: str, where: str, default: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CatalogError(f"{where}: '{key}' must be a whole number >= 0")
    return value


def _quantity_bounds(raw: dict[str, Any], where: str, per_seat: bool) -> tuple[int, int]:
    if not per_seat:
        return 0, 0
    low = _whole(raw, "minQuantity", where, 1)
    high = _whole(raw, "maxQuantity", where, 10000)
    if low < 1 or high < low:
        raise CatalogError(f"{where}: need 1 <= minQuantity <= maxQuantity, got {low}..{high}")
    return low, high


def plan_from_json(raw: Any, offer_id: str = "?") -> Plan:
    """Parses one plan definition; raises `CatalogError` naming the faulty field."""
    if not isinstance(raw, dict):
        raise CatalogError(f"offer {offer_id}: each plan must be a JSON object")
    where = f"offer {offer_id} plan {raw.get('planId', '?')}"
    per_seat = _flag(raw, "isPricePerSeat", where)
    low, high = _quantity_bounds(raw, where, per_seat)
    term_unit = raw.get("termUnit", "P1M")
    if term_unit not in TERM_UNITS:
        raise CatalogError(f"{where}: 'termUnit' must be one of {', '.join(TERM_UNITS)}")
    audience = raw.get("audienceTenants", [])
    if not isinstance(audience, list) or not all(isinstance(t, str) for t in audience):
        raise CatalogError(f"{where}: 'audienceTenants' must be a list of tenant ids")
    price = raw.get("price", 0)
    if isinstance(price, bool) or not isinstance(price, int | float) or price < 0:
        raise CatalogError(f"{where}: 'price' must be a number >= 0")
    return Plan(
        plan_id=_text(raw, "planId", where),
        display_name=_text(raw, "displayName", where, raw.get("planId")),
        description=str(raw.get("description", "")),
        is_private=_flag(raw, "isPrivate", where),
        audience_tenants=tuple(audience),
        is_price_per_seat=per_seat,
        min_quantity=low,
        max_quantity=high,
        has_free_trials=_flag(raw, "hasFreeTrials", where),
        is_stop_sell=_flag(raw, "isStopSell", where),
        term_unit=term_unit,
        price=float(price),
        currency=_text(raw, "currency", where, "USD"),
        market=_text(raw, "market", where, "US"),
    )


def offer_from_json(raw: Any) -> Offer:
    """Parses one offer definition with its plans; plan ids must be unique within the offer."""
    if not isinstance(raw, dict):
        raise CatalogError("each offer must be a JSON object")
    offer_id = _text(raw, "offerId", "offer")
    plans_raw = raw.get("plans", [])
    if not isinstance(plans_raw, list):
        raise CatalogError(f"offer {offer_id}: 'plans' must be a list")
    plans = tuple(plan_from_json(plan, offer_id) for plan in plans_raw)
    ids = [plan.plan_id for plan in plans]
    if len(ids) != len(set(ids)):
        raise CatalogError(f"offer {offer_id}: plan ids must be unique, got {ids}")
    return Offer(offer_id=offer_id, display_name=_text(raw, "displayName", offer_id, offer_id), plans=plans)


def offers_from_json(raw: Any) -> dict[str, Offer]:
    """Parses a whole catalog document into offers keyed by offer id."""
    if not isinstance(raw, dict) or not isinstance(raw.get("offers"), list):
        raise CatalogError("a catalog is a JSON object with an 'offers' list")
    offers = [offer_from_json(item) for item in raw["offers"]]
    return {offer.offer_id: offer for offer in offers}


def load_catalog(path: Path) -> dict[str, Offer]:
    """Reads a catalog file; a bad file fails loudly at start rather than on the first purchase."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        log.error("cannot read catalog %s: %s", path, exc)
        raise CatalogError(f"cannot read catalog {path}: {exc}") from exc
    return offers_from_json(raw)
