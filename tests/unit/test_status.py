"""Lenient spelling, strict meaning: parsing status, action and operation strings (R27, R30, R33)."""

from __future__ import annotations

import pytest

from shared.domain.status import (
    Action,
    OperationStatus,
    SubscriptionStatus,
    UnknownStatusError,
    parse_action,
    parse_operation_status,
    parse_status,
)


@pytest.mark.parametrize("status", list(SubscriptionStatus))
def test_every_status_parses_from_its_own_value(status: SubscriptionStatus) -> None:
    assert parse_status(status.value) is status


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" Subscribed ", SubscriptionStatus.SUBSCRIBED),  # the docs' own sample pads it (R30)
        ("\tSuspended\n", SubscriptionStatus.SUSPENDED),
        ("subscribed", SubscriptionStatus.SUBSCRIBED),
        ("UNSUBSCRIBED", SubscriptionStatus.UNSUBSCRIBED),
        ("pendingfulfillmentstart", SubscriptionStatus.PENDING_FULFILLMENT_START),
        ("NotStarted", SubscriptionStatus.PENDING_FULFILLMENT_START),
        (" notstarted ", SubscriptionStatus.PENDING_FULFILLMENT_START),
    ],
)
def test_status_parsing_forgives_padding_and_case(raw: str, expected: SubscriptionStatus) -> None:
    assert parse_status(raw) is expected


@pytest.mark.parametrize("raw", ["Active", "Cancelled", "", "   ", None, 3, "Subscribed!", "Sub scribed"])
def test_unknown_status_raises_a_typed_error_naming_the_value(raw: object) -> None:
    with pytest.raises(UnknownStatusError, match="unknown saasSubscriptionStatus") as caught:
        parse_status(raw)
    assert repr(raw) in str(caught.value)


def test_unknown_status_error_is_a_value_error() -> None:
    assert issubclass(UnknownStatusError, ValueError)


@pytest.mark.parametrize("action", list(Action))
def test_every_action_parses_from_its_own_value(action: Action) -> None:
    assert parse_action(action.value) is action


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" ChangePlan ", Action.CHANGE_PLAN),
        ("changequantity", Action.CHANGE_QUANTITY),
        ("SUSPEND", Action.SUSPEND),
        ("reinstate\n", Action.REINSTATE),
        ("Unsubscribe", Action.UNSUBSCRIBE),
        (" renew", Action.RENEW),
    ],
)
def test_action_parsing_forgives_padding_and_case(raw: str, expected: Action) -> None:
    assert parse_action(raw) is expected


@pytest.mark.parametrize("raw", ["Transfer", "Activate", "", None, "Change Plan", 42])
def test_unknown_action_becomes_unknown_instead_of_failing(raw: object) -> None:
    assert parse_action(raw) is Action.UNKNOWN


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("NotStarted", OperationStatus.NOT_STARTED),
        (" InProgress ", OperationStatus.IN_PROGRESS),
        ("succeeded", OperationStatus.SUCCEEDED),
        ("FAILED", OperationStatus.FAILED),
        ("Conflict", OperationStatus.CONFLICT),
        ("Cancelled", OperationStatus.UNKNOWN),
        ("", OperationStatus.UNKNOWN),
        (None, OperationStatus.UNKNOWN),
    ],
)
def test_operation_status_parsing(raw: object, expected: OperationStatus) -> None:
    assert parse_operation_status(raw) is expected


@pytest.mark.parametrize(
    ("status", "terminal"),
    [
        (OperationStatus.NOT_STARTED, False),
        (OperationStatus.IN_PROGRESS, False),
        (OperationStatus.SUCCEEDED, True),
        (OperationStatus.FAILED, True),
        (OperationStatus.CONFLICT, True),
        (OperationStatus.UNKNOWN, False),
    ],
)
def test_only_succeeded_failed_and_conflict_are_terminal(status: OperationStatus, terminal: bool) -> None:
    assert status.is_terminal is terminal


def test_terminal_table_covers_every_operation_status() -> None:
    # A status added to the enum must be classified here, not silently treated as in progress.
    assert {s for s in OperationStatus if s.is_terminal} == {
        OperationStatus.SUCCEEDED,
        OperationStatus.FAILED,
        OperationStatus.CONFLICT,
    }
