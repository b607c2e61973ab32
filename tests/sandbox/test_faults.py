"""Injected Fulfillment API faults: 429 with Retry-After, 500, hangs; share, seed, max count, clearing."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from sandbox.server import RunningSandbox
from tests.support.sandbox import ApiCaller, ControlClient, ControlError, running_sandbox

GET_SUBSCRIPTION = "FulfillmentOperations_GetSubscription"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox() as sb:
        yield sb


@pytest.fixture
def subscription_path(control: ControlClient) -> str:
    return f"/subscriptions/{control.buy('basic')['subscriptionId']}"


def statuses(api: ApiCaller, path: str, count: int) -> list[int]:
    return [api.call("GET", path).status_code for _ in range(count)]


def test_throttling_answers_429_with_retry_after_on_the_chosen_operation_only(
    control: ControlClient, api: ApiCaller, subscription_path: str
) -> None:
    control.add_fault(operation=GET_SUBSCRIPTION, kind="429", share=1, retryAfter=3)
    throttled = api.call("GET", subscription_path)
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "3"
    assert throttled.headers["x-ms-requestid"]
    assert api.call("GET", "/subscriptions/").status_code == 200


def test_server_errors_on_every_operation(
    control: ControlClient, api: ApiCaller, subscription_path: str
) -> None:
    control.add_fault(operation="*", kind="500", share=1)
    assert api.call("GET", subscription_path).status_code == 500
    assert api.call("GET", "/subscriptions/").status_code == 500
    assert api.call("POST", "/subscriptions/resolve").status_code == 500


def test_hang_delays_then_answers_normally(
    control: ControlClient, api: ApiCaller, subscription_path: str
) -> None:
    control.add_fault(operation=GET_SUBSCRIPTION, kind="hang", share=1, hangSeconds=0.4)
    started = time.monotonic()
    response = api.call("GET", subscription_path)
    assert time.monotonic() - started >= 0.4
    assert response.status_code == 200


def test_share_hits_about_that_fraction_of_calls(
    control: ControlClient, api: ApiCaller, subscription_path: str
) -> None:
    control.add_fault(operation=GET_SUBSCRIPTION, kind="500", share=0.3, seed=11)
    failures = statuses(api, subscription_path, 100).count(500)
    assert 15 <= failures <= 45
    assert control.request("GET", "/faults")["faults"][0]["hits"] == failures


def test_the_same_seed_gives_the_same_sequence(
    control: ControlClient, api: ApiCaller, subscription_path: str
) -> None:
    control.add_fault(operation=GET_SUBSCRIPTION, kind="500", share=0.5, seed=42)
    first = statuses(api, subscription_path, 30)
    control.clear_faults()
    control.add_fault(operation=GET_SUBSCRIPTION, kind="500", share=0.5, seed=42)
    assert statuses(api, subscription_path, 30) == first
    assert 0 < first.count(500) < 30


def test_max_count_bounds_the_failures(
    control: ControlClient, api: ApiCaller, subscription_path: str
) -> None:
    control.add_fault(operation="*", kind="429", share=1, maxCount=2)
    assert statuses(api, subscription_path, 4) == [429, 429, 200, 200]


def test_clearing_and_removing_rules(control: ControlClient, api: ApiCaller, subscription_path: str) -> None:
    rule = control.add_fault(operation="*", kind="500", share=1)
    control.request("DELETE", f"/faults/{rule['id']}")
    assert api.call("GET", subscription_path).status_code == 200
    control.add_fault(operation="*", kind="500", share=1)
    control.clear_faults()
    assert api.call("GET", subscription_path).status_code == 200
    with pytest.raises(ControlError) as missing:
        control.request("DELETE", f"/faults/{uuid.uuid4()}")
    assert missing.value.status == 404


@pytest.mark.parametrize(
    "rule",
    [
        {"operation": "Nope", "kind": "500"},
        {"kind": "503"},
        {"kind": "500", "share": 1.5},
        {"kind": "429", "retryAfter": -1},
        {"kind": "hang", "hangSeconds": "long"},
        {"kind": "500", "maxCount": 0},
        {"kind": "500", "seed": "x"},
    ],
)
def test_bad_rules_are_refused_with_a_reason(control: ControlClient, rule: dict[str, object]) -> None:
    with pytest.raises(ControlError) as refused:
        control.add_fault(**rule)
    assert refused.value.status == 400
    assert refused.value.body["error"]["message"]
