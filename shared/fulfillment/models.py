"""JSON from the Fulfillment API into the domain dataclasses: lenient on form, strict on meaning.

Microsoft extends payloads without notice and its samples differ from the spec (`" Subscribed "` padded,
quantities as strings, the .NET `0001-01-01T00:00:00` placeholder for "no date"), so unknown fields are
ignored, unknown actions and operation statuses become UNKNOWN, and spelling is normalised. What the
publisher acts on must not be guessed: a subscription without an id or with a status outside R30, an
operation without an id, or a quantity that is not a whole number raise `MalformedResponseError`. In a
ListSubscriptions page such an item becomes an `UnreadableSubscription` instead, so one bad item never costs
the rest of the page or the pages after it.

Where Microsoft's documentation, its tools and its OpenAPI description spell the same thing differently,
every documented spelling is read; docs/wire-variants.md lists each one and where it comes from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from shared.domain.status import UnknownStatusError, parse_action, parse_operation_status, parse_status
from shared.domain.subscription import (
    MicrosoftSubscription,
    Operation,
    Party,
    Plan,
    ResolvedPurchase,
    Term,
    UnreadableSubscription,
)
from shared.fulfillment.errors import MalformedResponseError
from shared.logs import get_logger

__all__ = [
    "REQUEST_SOURCE_KEYS",
    "MalformedResponseError",
    "announced_action",
    "parse_datetime",
    "parse_operation",
    "parse_operation_list",
    "parse_plan",
    "parse_plan_list",
    "parse_quantity",
    "parse_resolved",
    "parse_subscription",
    "parse_subscription_page",
    "request_source",
]

_log = get_logger(__name__)

# Enum-like strings, kept in Microsoft's spelling whatever case the API sent them in.
_CANONICAL_MODES = {"none": "None", "csp": "Csp", "dryrun": "DryRun"}


def _text(value: object) -> str:
    if value is None:
        return ""
    return str(value).strip()


def _flag(value: object, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    return default


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MalformedResponseError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _optional_mapping(value: object, what: str) -> Mapping[str, Any]:
    return {} if value is None else _mapping(value, what)


def _required_id(data: Mapping[str, Any], key: str, what: str) -> str:
    value = _text(data.get(key))
    if not value:
        raise MalformedResponseError(f"{what} has no {key!r}")
    return value


def _whole_number(value: object) -> int | None:
    if isinstance(value, bool):
        return None  # JSON true is not one seat
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def parse_quantity(value: object) -> int | None:
    """A seat count: int, whole float, or a (padded) numeric string; null, missing or "" mean flat rate."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number = _whole_number(value)
    if number is None or number < 0:
        raise MalformedResponseError(f"quantity must be a whole number >= 0, got {value!r}")
    return number


def parse_datetime(value: object) -> datetime | None:
    """ISO 8601 with or without `Z`/offset/fraction (UTC assumed when naive); placeholders become None."""
    text = _text(value)
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        # Dates are informational (term display, ordering hints); a strange one must not block the flow.
        _log.warning("unparseable date from the Fulfillment API", extra={"value": text[:40]})
        return None
    if parsed.year <= 1:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _mode(value: object) -> str:
    text = _text(value)
    return _CANONICAL_MODES.get(text.lower(), text) if text else "None"


def _party(value: object) -> Party:
    data = _optional_mapping(value, "purchaser/beneficiary")
    return Party(
        email=_text(data.get("emailId")),
        object_id=_text(data.get("objectId")),
        tenant_id=_text(data.get("tenantId")),
        puid=_text(data.get("puid")),
    )


def _term(value: object) -> Term:
    data = _optional_mapping(value, "term")
    return Term(
        unit=_text(data.get("termUnit")),
        start=parse_datetime(data.get("startDate")),
        end=parse_datetime(data.get("endDate")),
        charge_duration=_text(data.get("chargeDuration")),
    )


def _operations_allowed(value: object) -> frozenset[str]:
    if not isinstance(value, Iterable) or isinstance(value, str | bytes | Mapping):
        return frozenset()
    return frozenset(text for text in (_text(item) for item in value) if text)


def parse_subscription(data: object) -> MicrosoftSubscription:
    """The `Subscription` schema; raises MalformedResponseError without an id or with an unknown status."""
    body = _mapping(data, "subscription")
    subscription_id = _required_id(body, "id", "subscription")
    try:
        status = parse_status(body.get("saasSubscriptionStatus"))
    except UnknownStatusError as exc:
        raise MalformedResponseError(f"subscription {subscription_id}: {exc}") from exc
    return MicrosoftSubscription(
        id=subscription_id,
        name=_text(body.get("name")),
        offer_id=_text(body.get("offerId")),
        plan_id=_text(body.get("planId")),
        quantity=parse_quantity(body.get("quantity")),
        status=status,
        purchaser=_party(body.get("purchaser")),
        beneficiary=_party(body.get("beneficiary")),
        term=_term(body.get("term")),
        auto_renew=_flag(body.get("autoRenew"), default=True),
        is_test=_flag(body.get("isTest"), default=False),
        is_free_trial=_flag(body.get("isFreeTrial"), default=False),
        allowed_customer_operations=_operations_allowed(body.get("allowedCustomerOperations")),
        sandbox_type=_mode(body.get("sandboxType")),
        session_mode=_mode(body.get("sessionMode")),
        publisher_id=_text(body.get("publisherId")),
        created=parse_datetime(body.get("created")),
        last_modified=parse_datetime(body.get("lastModified")),
    )


def parse_resolved(data: object) -> ResolvedPurchase:
    """The `ResolvedSubscription` answer to Resolve (R6); the embedded subscription is required."""
    body = _mapping(data, "resolve response")
    subscription_id = _required_id(body, "id", "resolve response")
    embedded = dict(_mapping(body.get("subscription"), "resolve response 'subscription'"))
    # Some answers omit the id inside `subscription`; the top-level id is the same subscription.
    embedded.setdefault("id", subscription_id)
    subscription = parse_subscription(embedded)
    if subscription.id.lower() != subscription_id.lower():
        raise MalformedResponseError(
            f"resolve response names two subscriptions: {subscription_id} and {subscription.id}"
        )
    quantity = parse_quantity(body.get("quantity"))
    return ResolvedPurchase(
        subscription_id=subscription_id,
        subscription_name=_text(body.get("subscriptionName")) or subscription.name,
        offer_id=_text(body.get("offerId")) or subscription.offer_id,
        plan_id=_text(body.get("planId")) or subscription.plan_id,
        quantity=quantity if quantity is not None else subscription.quantity,
        subscription=subscription,
    )


# The operation's source (R42): the docs' webhook and operation samples say `operationRequestSource`,
# Microsoft's SaaS API emulator (and the payloads it was modelled on) `operationRequestedSource`.
REQUEST_SOURCE_KEYS = ("operationRequestSource", "operationRequestedSource")


def _first_text(body: Mapping[str, Any], keys: Iterable[str]) -> str:
    """The first non-blank value among `keys`: one field that is spelled in more than one way."""
    for key in keys:
        value = _text(body.get(key))
        if value:
            return value
    return ""


def _trimmed_keys(body: Mapping[str, Any]) -> dict[str, Any]:
    # The GetOperation sample in the docs has `"id  "`: a padded key must not hide the operation id.
    return {key.strip() if isinstance(key, str) else key: value for key, value in body.items()}


def request_source(body: Mapping[str, Any]) -> str:
    """Who asked for an operation ("Azure" or "Partner"), in whichever documented spelling it came."""
    return _first_text(_trimmed_keys(body), REQUEST_SOURCE_KEYS)


def announced_action(payload: Mapping[str, Any]) -> str:
    """A webhook body's action: `action`, or `operationType` as in the docs' Reinstate sample."""
    return _first_text(_trimmed_keys(payload), ("action", "operationType"))


def parse_operation(data: object, *, subscription_id: str = "") -> Operation:
    """The `SaaSOperation` schema (R27); `subscription_id` fills in when the body omits it."""
    body = _trimmed_keys(_mapping(data, "operation"))
    operation_id = _required_id(body, "id", "operation")
    owner = _text(body.get("subscriptionId")) or subscription_id
    if not owner:
        raise MalformedResponseError(f"operation {operation_id} has no 'subscriptionId'")
    action_raw = _text(body.get("action"))
    return Operation(
        id=operation_id,
        subscription_id=owner,
        action=parse_action(action_raw),
        status=parse_operation_status(body.get("status")),
        action_raw=action_raw,
        activity_id=_text(body.get("activityId")),
        offer_id=_text(body.get("offerId")),
        publisher_id=_text(body.get("publisherId")),
        plan_id=_text(body.get("planId")),
        quantity=parse_quantity(body.get("quantity")),
        timestamp=parse_datetime(body.get("timeStamp")),
        request_source=request_source(body),
        error_status_code=_text(body.get("errorStatusCode")),
        error_message=_text(body.get("errorMessage")),
    )


def _term_units(plan: Mapping[str, Any]) -> tuple[str, ...]:
    components = _optional_mapping(plan.get("planComponents"), "planComponents")
    terms = components.get("recurrentBillingTerms") or []
    units = (_text(term.get("termUnit")) for term in terms if isinstance(term, Mapping))
    return tuple(unit for unit in units if unit)


def parse_plan(data: object) -> Plan:
    """One entry of ListAvailablePlans (R23); a plan without `planId` cannot be offered and raises."""
    body = _mapping(data, "plan")
    return Plan(
        plan_id=_required_id(body, "planId", "plan"),
        display_name=_text(body.get("displayName")),
        description=_text(body.get("description")),
        is_private=_flag(body.get("isPrivate"), default=False),
        is_price_per_seat=_flag(body.get("isPricePerSeat"), default=False),
        has_free_trials=_flag(body.get("hasFreeTrials"), default=False),
        is_stop_sell=_flag(body.get("isStopSell"), default=False),
        min_quantity=parse_quantity(body.get("minQuantity")),
        max_quantity=parse_quantity(body.get("maxQuantity")),
        term_units=_term_units(body),
    )


def _items(data: object, key: str, what: str) -> list[Any]:
    """The array under `key`; an empty body (None) or a missing/null array means no items (R21, R28)."""
    if data is None:
        return []
    items = _mapping(data, what).get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        raise MalformedResponseError(f"{what} {key!r} must be a JSON array")
    return items


def parse_subscription_page(
    data: object,
) -> tuple[list[MicrosoftSubscription | UnreadableSubscription], str]:
    """One ListSubscriptions page: its subscriptions and the `@nextLink` ("" on the last page). Items are
    read one by one: one that `parse_subscription` refuses is an `UnreadableSubscription` (its id if it has
    one, and why); a page that is not a page at all still raises."""
    items = _items(data, "subscriptions", "subscription page")
    next_link = _text(data.get("@nextLink")) if isinstance(data, Mapping) else ""
    return [_page_item(item) for item in items], next_link


def _page_item(item: object) -> MicrosoftSubscription | UnreadableSubscription:
    try:
        return parse_subscription(item)
    except MalformedResponseError as exc:
        subscription_id = _text(item.get("id")) if isinstance(item, Mapping) else ""
        return UnreadableSubscription(id=subscription_id, error=str(exc))


def parse_plan_list(data: object) -> list[Plan]:
    """ListAvailablePlans: `{"plans": [...]}`; an empty body (unknown plan id) means no plans."""
    return [parse_plan(item) for item in _items(data, "plans", "plan list")]


def parse_operation_list(data: object, *, subscription_id: str = "") -> list[Operation]:
    """ListOperations: `{"operations": [...]}` (docs, spec), a bare array (Microsoft's emulator), or an
    empty body / `{}` ("returns empty json if no operations are pending"): nothing pending (R28)."""
    items = data if isinstance(data, list) else _items(data, "operations", "operation list")
    return [parse_operation(item, subscription_id=subscription_id) for item in items]
