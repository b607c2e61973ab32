"""The test helpers the client tests rely on can fail: spec validation rejects bad traffic, and the scripted
server answers, records and delays as told."""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from tests.support.scripted_server import ScriptedResponse, ScriptedServer
from tests.support.spec import example_body, spec_path, validate_request, validate_response

SUB = "37f9dea2-4345-438f-b0bd-03d40d28c7e0"
BASE = "http://127.0.0.1:9/some/prefix"


def _headers(**extra: str) -> dict[str, str]:
    return {
        "Authorization": "Bearer abc",
        "Content-Type": "application/json",
        "x-ms-requestid": str(uuid.uuid4()),
        "x-ms-correlationid": str(uuid.uuid4()),
        **extra,
    }


def test_any_base_url_maps_onto_the_spec_paths() -> None:
    assert (
        spec_path(f"{BASE}/saas/subscriptions/{SUB}?api-version=2018-08-31") == f"/saas/subscriptions/{SUB}"
    )
    assert spec_path("/saas/subscriptions/") == "/saas/subscriptions/"
    with pytest.raises(AssertionError, match="/saas/"):
        spec_path("http://127.0.0.1/api/usageEvent")


def test_a_conforming_request_passes() -> None:
    validate_request(
        "PATCH", f"{BASE}/saas/subscriptions/{SUB}?api-version=2018-08-31", _headers(), b'{"planId":"gold"}'
    )
    validate_request(
        "GET", f"{BASE}/saas/subscriptions/?api-version=2018-08-31&continuationToken=x", _headers(), b""
    )


@pytest.mark.parametrize(
    ("method", "target", "headers", "body", "reason"),
    [
        ("GET", f"/saas/subscriptions/{SUB}", _headers(), b"", "api-version"),
        ("GET", f"/saas/subscriptions/{SUB}?api-version=2020-01-01", _headers(), b"", "api-version"),
        ("GET", "/saas/subscriptions/not-a-guid?api-version=2018-08-31", _headers(), b"", "subscriptionId"),
        (
            "GET",
            f"/saas/subscriptions/{SUB}?api-version=2018-08-31",
            _headers(**{"x-ms-requestid": "7"}),
            b"",
            "x-ms",
        ),
        (
            "POST",
            "/saas/subscriptions/resolve?api-version=2018-08-31",
            _headers(),
            b"",
            "x-ms-marketplace-token",
        ),
        (
            "PATCH",
            f"/saas/subscriptions/{SUB}?api-version=2018-08-31",
            _headers(),
            b'{"quantity":"5"}',
            "quantity",
        ),
        ("PUT", f"/saas/subscriptions/{SUB}?api-version=2018-08-31", _headers(), b"", "put"),
        ("GET", "/saas/nowhere?api-version=2018-08-31", _headers(), b"", "nowhere"),
        (
            "GET",
            "/saas/subscriptions/?api-version=2018-08-31&api-version=2018-08-31",
            _headers(),
            b"",
            "repeated",
        ),
        (
            "GET",
            f"/saas/subscriptions/{SUB}?api-version=2018-08-31",
            _headers(Authorization="Basic x"),
            b"",
            "Bearer",
        ),
    ],
    ids=[
        "no-version",
        "bad-version",
        "bad-id",
        "bad-request-id",
        "no-token",
        "quantity-string",
        "unknown-method",
        "unknown-path",
        "repeated-query",
        "no-bearer",
    ],
)
def test_a_nonconforming_request_is_explained(
    method: str, target: str, headers: dict[str, str], body: bytes, reason: str
) -> None:
    with pytest.raises(AssertionError) as caught:
        validate_request(method, BASE + target, headers, body)
    assert reason.lower() in str(caught.value).lower()


def test_responses_are_checked_against_the_operation() -> None:
    url = f"{BASE}/saas/subscriptions/{SUB}?api-version=2018-08-31"
    body = example_body("FulfillmentOperations_GetSubscription")
    validate_response("GET", url, 200, {"content-type": "application/json"}, json.dumps(body).encode())
    validate_response("GET", url, 404, {}, b"")

    body["quantity"] = "5"
    with pytest.raises(AssertionError, match="quantity"):
        validate_response("GET", url, 200, {"content-type": "application/json"}, json.dumps(body).encode())
    with pytest.raises(AssertionError, match="409"):
        validate_response("GET", url, 409, {}, b"")
    with pytest.raises(AssertionError, match="does not match"):
        validate_response("GET", url, 200, {"content-type": "application/json"}, b"")


def test_example_bodies_fill_every_property_and_match_their_schema() -> None:
    body = example_body("FulfillmentOperations_ListSubscriptions")
    subscription = body["subscriptions"][0]
    assert {"id", "saasSubscriptionStatus", "term", "purchaser", "beneficiary", "quantity"} <= set(
        subscription
    )
    assert example_body("SubscriptionOperations_UpdateOperationStatus") is None
    with pytest.raises(AssertionError, match="no operation"):
        example_body("Nope")


def test_scripted_server_answers_in_order_and_records() -> None:
    with ScriptedServer() as server:
        server.script(
            ScriptedResponse(201, body={"a": 1}, headers={"X-Test": "yes"}),
            ScriptedResponse(204),
        )
        with requests.Session() as session:
            first = session.post(server.base_url + "/x/y?q=1&q=2", data=b"hello", headers={"X-Mine": "v"})
            second = session.get(server.base_url + "/z")
            third = session.get(server.base_url + "/again")

    assert (first.status_code, first.json(), first.headers["x-test"]) == (201, {"a": 1}, "yes")
    assert second.status_code == 204
    assert third.status_code == 418
    assert "no response left for GET /again" in third.text
    recorded = server.requests
    assert [(r.method, r.path) for r in recorded] == [("POST", "/x/y"), ("GET", "/z"), ("GET", "/again")]
    assert recorded[0].query == {"q": ["1", "2"]}
    assert recorded[0].headers["x-mine"] == "v"
    assert recorded[0].body == b"hello"
    assert recorded[0].url == server.base_url + "/x/y?q=1&q=2"
    assert recorded[0].client_port == recorded[1].client_port  # keep-alive works, so reuse is observable


def test_scripted_delay_outlasts_a_short_read_timeout() -> None:
    with ScriptedServer() as server:
        server.script(ScriptedResponse(200, delay=1.0))
        with pytest.raises(requests.ReadTimeout):
            requests.get(server.base_url + "/slow", timeout=(1, 0.2))
