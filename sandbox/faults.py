"""Injected failures of the Fulfillment API: throttling (429 + Retry-After), 500s and hangs, at a share.

A rule applies to one Fulfillment API operationId (or "*" for all), fires on a share (0..1) of matching calls,
optionally from a seeded random generator (the same seed gives the same sequence of hits) and at most
`max_count` times. Rules live in memory only: a restarted sandbox starts without faults.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

log = logging.getLogger("sandbox.faults")

ALL_OPERATIONS = "*"
FULFILLMENT_OPERATION_IDS = (
    "FulfillmentOperations_Resolve",
    "FulfillmentOperations_ListSubscriptions",
    "FulfillmentOperations_GetSubscription",
    "FulfillmentOperations_UpdateSubscription",
    "FulfillmentOperations_DeleteSubscription",
    "FulfillmentOperations_ListAvailablePlans",
    "FulfillmentOperations_ActivateSubscription",
    "SubscriptionOperations_ListOperations",
    "SubscriptionOperations_GetOperationStatus",
    "SubscriptionOperations_UpdateOperationStatus",
)
FAULT_KINDS = ("429", "500", "hang")


class FaultRuleError(ValueError):
    """A fault rule definition is malformed; the message names the field."""


@dataclass
class FaultRule:
    """One rule. `hits` counts the calls it has failed so far."""

    operation: str
    kind: str
    share: float
    retry_after_seconds: int = 1
    hang_seconds: float = 0.0
    max_count: int | None = None
    seed: int | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    hits: int = 0
    _random: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.seed is not None:
            self._random = random.Random(self.seed)

    def matches(self, operation_id: str) -> bool:
        exhausted = self.max_count is not None and self.hits >= self.max_count
        return not exhausted and self.operation in (ALL_OPERATIONS, operation_id)

    def draw(self) -> bool:
        """One throw of the dice; a share of 1 always fires, 0 never."""
        return self._random.random() < self.share

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "operation": self.operation,
            "kind": self.kind,
            "share": self.share,
            "retryAfter": self.retry_after_seconds,
            "hangSeconds": self.hang_seconds,
            "maxCount": self.max_count,
            "seed": self.seed,
            "hits": self.hits,
        }


def _number(raw: dict[str, Any], key: str, default: float, low: float, high: float | None = None) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultRuleError(f"'{key}' must be a number, got {value!r}")
    if value < low or (high is not None and value > high):
        raise FaultRuleError(f"'{key}' must be between {low} and {high if high is not None else 'any'}")
    return float(value)


def _optional_whole(raw: dict[str, Any], key: str) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise FaultRuleError(f"'{key}' must be a whole number or null, got {value!r}")
    return value


def rule_from_json(raw: Any) -> FaultRule:
    """Parses `{"operation", "kind": "429"|"500"|"hang", "share", "retryAfter", "hangSeconds", "seed",
    "maxCount"}`; raises FaultRuleError naming the faulty field."""
    if not isinstance(raw, dict):
        raise FaultRuleError("a fault rule is a JSON object")
    operation = raw.get("operation", ALL_OPERATIONS)
    if operation != ALL_OPERATIONS and operation not in FULFILLMENT_OPERATION_IDS:
        raise FaultRuleError(f"'operation' must be '*' or one of {', '.join(FULFILLMENT_OPERATION_IDS)}")
    kind = str(raw.get("kind", ""))
    if kind not in FAULT_KINDS:
        raise FaultRuleError(f"'kind' must be one of {', '.join(FAULT_KINDS)}, got {raw.get('kind')!r}")
    max_count = _optional_whole(raw, "maxCount")
    if max_count is not None and max_count < 1:
        raise FaultRuleError("'maxCount' must be at least 1 (or null for no limit)")
    return FaultRule(
        operation=operation,
        kind=kind,
        share=_number(raw, "share", 1.0, 0.0, 1.0),
        retry_after_seconds=int(_number(raw, "retryAfter", 1, 0)),
        hang_seconds=_number(raw, "hangSeconds", 1.0 if kind == "hang" else 0.0, 0.0, 600.0),
        max_count=max_count,
        seed=_optional_whole(raw, "seed"),
    )


class Faults:
    """The active rules; `pick` is called once per Fulfillment API call, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
        log.info("fault rule added: %s", rule.to_json())
        return rule

    def remove(self, rule_id: str) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [rule for rule in self._rules if rule.id != rule_id]
            return len(self._rules) != before

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
        log.info("fault rules cleared")

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.to_json() for rule in self._rules]

    def pick(self, operation_id: str) -> FaultRule | None:
        """The first matching rule whose draw fires (counted as a hit), as a copy; None to answer normally."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(operation_id) and rule.draw():
                    rule.hits += 1
                    log.info("fault %s injected into %s (hit %d)", rule.kind, operation_id, rule.hits)
                    return replace(rule)
        return None
