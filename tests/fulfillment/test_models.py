"""Parsing Microsoft's JSON: lenient where Microsoft varies the form, strict where a guess would be unsafe."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.domain.status import Action, OperationStatus, SubscriptionStatus
from shared.fulfillment.models import (
    MalformedResponseError,
    parse_datetime,
    parse_operation,
    parse_operation_list,
    parse_plan,
    parse_plan_list,
    parse_quantity,
    parse_resolved,
    parse_subscription,
    parse_subscription_page,
)
from tests.fulfillment import OPERATION_ID, SUBSCRIPTION_ID, docs_operation, docs_subscription


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(5, 5), (" 5 ", 5), ("12", 12), (7.0, 7), (0, 0), (None, None), ("", None), ("  ", None)],
)
def test_quantity_accepts_numbers_numeric_strings_and_null(raw: object, expected: int | None) -> None:
    assert parse_quantity(raw) == expected


@pytest.mark.parametrize("raw", ["five", "5.5", 2.5, -1, True, [5], {"n": 5}])
def test_quantity_refuses_what_is_not_a_seat_count(raw: object) -> None:
    with pytest.raises(MalformedResponseError, match="quantity"):
        parse_quantity(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2022-03-07T00:00:00Z", datetime(2022, 3, 7, tzinfo=UTC)),
        ("2022-03-07T00:00:00", datetime(2022, 3, 7, tzinfo=UTC)),
        ("2022-03-01T22:59:45.5468572Z", datetime(2022, 3, 1, 22, 59, 45, 546857, tzinfo=UTC)),
        ("2022-03-07T02:00:00+02:00", datetime(2022, 3, 7, tzinfo=UTC)),
        ("0001-01-01T00:00:00", None),
        ("0001-01-01T00:00:00Z", None),
        ("", None),
        (None, None),
        ("not a date", None),
    ],
)
def test_dates_in_every_form_microsoft_sends(raw: object, expected: datetime | None) -> None:
    assert parse_datetime(raw) == expected


def test_docs_subscription_parses_every_field() -> None:
    parsed = parse_subscription(docs_subscription())

    assert parsed.id == SUBSCRIPTION_ID
    assert (parsed.name, parsed.offer_id, parsed.plan_id, parsed.publisher_id) == (
        "Contoso Cloud Solution",
        "offer1",
        "silver",
        "contoso",
    )
    assert parsed.quantity == 5
    assert parsed.status is SubscriptionStatus.SUBSCRIBED
    assert parsed.beneficiary.email == "test@test.com"
    assert parsed.beneficiary.puid == "10037FFEAFFC9E45"
    assert parsed.purchaser.email == "test@contoso.com"
    assert parsed.purchaser.tenant_id == "7c2bd4f7-8a4d-4bd1-b3a2-61d5e0f8c6a1"
    assert parsed.term.unit == "P1M"
    assert parsed.term.start == datetime(2022, 3, 7, tzinfo=UTC)
    assert parsed.term.end == datetime(2022, 4, 6, tzinfo=UTC)
    assert parsed.term.charge_duration == "P1M"
    assert parsed.allowed_customer_operations == frozenset({"Read", "Update", "Delete"})
    assert (parsed.auto_renew, parsed.is_test, parsed.is_free_trial) == (True, False, False)
    assert (parsed.sandbox_type, parsed.session_mode) == ("None", "None")
    assert parsed.created == datetime(2022, 3, 1, 22, 59, 45, 546857, tzinfo=UTC)
    assert parsed.last_modified is None  # the 0001-01-01 placeholder


def test_subscription_lenient_variants() -> None:
    body = docs_subscription(
        saasSubscriptionStatus=" subscribed ",
        quantity=" 7 ",
        sessionMode="dryrun",
        sandboxType="CSP",
        futureField={"anything": [1, 2]},
        term=None,
        beneficiary=None,
        allowedCustomerOperations=None,
    )
    del body["autoRenew"]

    parsed = parse_subscription(body)

    assert parsed.status is SubscriptionStatus.SUBSCRIBED
    assert parsed.quantity == 7
    assert (parsed.session_mode, parsed.sandbox_type) == ("DryRun", "Csp")
    assert parsed.term.start is None
    assert parsed.beneficiary.tenant_id == ""
    assert parsed.allowed_customer_operations == frozenset()
    assert parsed.auto_renew is True  # R69: the default when Microsoft leaves it out


def test_flat_rate_subscription_has_no_quantity() -> None:
    body = docs_subscription()
    del body["quantity"]
    assert parse_subscription(body).quantity is None
    assert parse_subscription(docs_subscription(quantity=None)).quantity is None


def test_spec_status_not_started_means_pending() -> None:
    parsed = parse_subscription(docs_subscription(saasSubscriptionStatus="NotStarted"))
    assert parsed.status is SubscriptionStatus.PENDING_FULFILLMENT_START


@pytest.mark.parametrize(
    "body",
    [
        docs_subscription(id=None),
        docs_subscription(id="   "),
        {k: v for k, v in docs_subscription().items() if k != "id"},
        docs_subscription(saasSubscriptionStatus="Frozen"),
        docs_subscription(saasSubscriptionStatus=None),
        docs_subscription(quantity="many"),
        docs_subscription(term="P1M"),
        ["not", "an", "object"],
        None,
    ],
    ids=[
        "id-null",
        "id-blank",
        "id-missing",
        "status-unknown",
        "status-missing",
        "quantity",
        "term",
        "list",
        "none",
    ],
)
def test_subscription_refused_when_unsafe_to_guess(body: object) -> None:
    with pytest.raises(MalformedResponseError):
        parse_subscription(body)


def test_resolved_purchase_fills_gaps_from_the_embedded_subscription() -> None:
    embedded = docs_subscription()
    del embedded["id"]  # some answers omit it inside `subscription`
    parsed = parse_resolved(
        {"id": SUBSCRIPTION_ID, "subscriptionName": "", "quantity": None, "subscription": embedded}
    )

    assert parsed.subscription_id == SUBSCRIPTION_ID
    assert parsed.subscription.id == SUBSCRIPTION_ID
    assert parsed.subscription_name == "Contoso Cloud Solution"
    assert (parsed.offer_id, parsed.plan_id, parsed.quantity) == ("offer1", "silver", 5)


@pytest.mark.parametrize(
    "body",
    [
        {"subscription": docs_subscription()},
        {"id": SUBSCRIPTION_ID},
        {"id": SUBSCRIPTION_ID, "subscription": docs_subscription(id="00000000-0000-0000-0000-000000000001")},
    ],
    ids=["no-id", "no-subscription", "two-ids"],
)
def test_resolved_purchase_refused_when_ambiguous(body: dict[str, object]) -> None:
    with pytest.raises(MalformedResponseError):
        parse_resolved(body)


def test_operation_parses_and_tolerates_unknown_values() -> None:
    parsed = parse_operation(docs_operation())
    assert (parsed.id, parsed.subscription_id) == (OPERATION_ID, SUBSCRIPTION_ID)
    assert (parsed.action, parsed.status) == (Action.CHANGE_PLAN, OperationStatus.IN_PROGRESS)
    assert (parsed.plan_id, parsed.quantity, parsed.request_source) == ("gold", 20, "Azure")
    assert parsed.timestamp == datetime(2022, 3, 12, 20, 5, 20, 371248, tzinfo=UTC)

    odd = parse_operation(docs_operation(action="Transfer", status=" succeeded ", quantity="3", extra=1))
    assert odd.action is Action.UNKNOWN
    assert odd.action_raw == "Transfer"
    assert odd.status is OperationStatus.SUCCEEDED
    assert odd.quantity == 3

    assert parse_operation(docs_operation(status="Paused")).status is OperationStatus.UNKNOWN


def test_operation_takes_the_subscription_id_from_the_caller_when_absent() -> None:
    body = docs_operation()
    del body["subscriptionId"]
    assert parse_operation(body, subscription_id=SUBSCRIPTION_ID).subscription_id == SUBSCRIPTION_ID
    with pytest.raises(MalformedResponseError, match="subscriptionId"):
        parse_operation(body)
    with pytest.raises(MalformedResponseError, match="'id'"):
        parse_operation(docs_operation(id=""))


def test_plan_parses_quantities_and_terms() -> None:
    plan = parse_plan(
        {
            "planId": "gold",
            "displayName": "Gold",
            "isPricePerSeat": True,
            "isStopSell": "false",
            "minQuantity": "1",
            "maxQuantity": 100,
            "planComponents": {"recurrentBillingTerms": [{"termUnit": "P1M"}, {"termUnit": "P1Y"}]},
            "market": "US",
        }
    )
    assert (plan.plan_id, plan.display_name, plan.is_price_per_seat, plan.is_stop_sell) == (
        "gold",
        "Gold",
        True,
        False,
    )
    assert (plan.min_quantity, plan.max_quantity, plan.term_units) == (1, 100, ("P1M", "P1Y"))
    with pytest.raises(MalformedResponseError, match="planId"):
        parse_plan({"displayName": "nameless"})


def test_lists_treat_an_empty_body_as_empty() -> None:
    assert parse_subscription_page(None) == ([], "")
    assert parse_subscription_page({"subscriptions": None, "@nextLink": None}) == ([], "")
    assert parse_plan_list(None) == []
    assert parse_operation_list(None) == []
    assert parse_operation_list({}) == []
    with pytest.raises(MalformedResponseError):
        parse_operation_list({"operations": {"id": OPERATION_ID}})
