"""Every Fulfillment API operation over a real socket: the request matches the spec and carries the R18-R19
headers, and every response shape the spec describes (plus Microsoft's looser variants) parses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.domain.status import Action, OperationStatus, SubscriptionStatus
from shared.domain.subscription import UnreadableSubscription
from shared.fulfillment.client import FulfillmentClient
from shared.fulfillment.errors import FulfillmentNotFoundError, MalformedResponseError
from tests.fulfillment import (
    BASE_PATH,
    OPERATION_ID,
    SUBSCRIPTION_ID,
    assert_valid_request,
    docs_operation,
    docs_subscription,
    make_client,
    operation_location,
)
from tests.support.scripted_server import RecordedRequest, ScriptedResponse, ScriptedServer
from tests.support.spec import example_body, validate_response

SUBSCRIPTIONS = f"{BASE_PATH}/saas/subscriptions"
JSON = {"content-type": "application/json; charset=utf-8"}


@pytest.fixture
def server() -> Any:
    with ScriptedServer() as running:
        yield running


@pytest.fixture
def client(server: ScriptedServer) -> Any:
    made, _ = make_client(server)
    with made:
        yield made


def _answer(server: ScriptedServer, request: RecordedRequest, reply: ScriptedResponse) -> None:
    """The scripted answer, checked against the spec for the request it answered."""
    validate_response(request.method, request.url, reply.status, reply.all_headers(), reply.body_bytes())


def _only_request(server: ScriptedServer) -> RecordedRequest:
    [request] = server.requests
    assert_valid_request(request)
    return request


def test_resolve_sends_the_token_as_is_and_parses_the_spec_shape(
    server: ScriptedServer, client: FulfillmentClient
) -> None:
    body = example_body("FulfillmentOperations_Resolve")
    body["subscription"]["id"] = body["id"]  # one subscription, as Microsoft sends it
    reply = ScriptedResponse(200, body=body)
    server.script(reply)
    token = "ab+c/d== %2B"  # already URL-decoded once by the landing page (R2); must not change

    resolved = client.resolve(token)

    request = _only_request(server)
    _answer(server, request, reply)
    assert (request.method, request.path) == ("POST", f"{SUBSCRIPTIONS}/resolve")
    assert request.headers["x-ms-marketplace-token"] == token
    assert request.body == b""
    assert resolved.subscription_id == body["id"]
    assert resolved.subscription_name == body["subscriptionName"]
    assert (resolved.offer_id, resolved.plan_id, resolved.quantity) == (body["offerId"], body["planId"], 5)
    assert resolved.subscription.status is SubscriptionStatus.PENDING_FULFILLMENT_START  # spec's NotStarted


def test_resolve_parses_the_docs_shape_with_padded_status(
    server: ScriptedServer, client: FulfillmentClient
) -> None:
    reply = ScriptedResponse(
        200,
        body={
            "id": SUBSCRIPTION_ID,
            "subscriptionName": "Contoso Cloud Solution",
            "offerId": "offer1",
            "planId": "silver",
            "quantity": "20",
            "subscription": docs_subscription(
                saasSubscriptionStatus=" PendingFulfillmentStart ", quantity="20"
            ),
        },
    )
    server.script(reply)

    resolved = client.resolve("token")

    assert resolved.quantity == 20
    assert resolved.subscription.status is SubscriptionStatus.PENDING_FULFILLMENT_START
    assert resolved.subscription.quantity == 20


def test_resolve_refuses_an_empty_token_without_calling(
    server: ScriptedServer, client: FulfillmentClient
) -> None:
    with pytest.raises(ValueError, match="marketplace_token"):
        client.resolve("  ")
    assert server.requests == []


def test_list_subscriptions_follows_next_link_over_three_pages(
    server: ScriptedServer, client: FulfillmentClient
) -> None:
    ids = [f"00000000-0000-4000-8000-00000000000{n}" for n in range(5)]
    page_url = f"{server.base_url}{SUBSCRIPTIONS}/?continuationToken={{}}&api-version=2018-08-31"
    replies = [
        ScriptedResponse(
            200,
            body={
                "subscriptions": [docs_subscription(id=ids[0]), docs_subscription(id=ids[1])],
                "@nextLink": page_url.format("p2"),
            },
        ),
        ScriptedResponse(
            200,
            body={
                "subscriptions": [docs_subscription(id=ids[2]), docs_subscription(id=ids[3])],
                "@nextLink": page_url.format("p3"),
            },
        ),
        ScriptedResponse(200, body={"subscriptions": [docs_subscription(id=ids[4])], "@nextLink": ""}),
    ]
    server.script(*replies)

    listed = list(client.list_subscriptions(correlation_id="11111111-2222-4333-8444-555555555555"))

    assert [subscription.id for subscription in listed] == ids
    requests = server.requests
    assert len(requests) == 3
    for request, reply in zip(requests, replies, strict=True):
        assert_valid_request(request)
        _answer(server, request, reply)
        assert request.path == f"{SUBSCRIPTIONS}/"
    assert [r.query.get("continuationToken") for r in requests] == [None, ["p2"], ["p3"]]
    assert {r.headers["x-ms-correlationid"] for r in requests} == {"11111111-2222-4333-8444-555555555555"}
    assert len({r.headers["x-ms-requestid"] for r in requests}) == 3


def test_one_unreadable_item_does_not_cost_the_page_or_the_pages_after_it(
    server: ScriptedServer, client: FulfillmentClient
) -> None:
    ids = [f"00000000-0000-4000-8000-00000000000{n}" for n in range(3)]
    page_url = f"{server.base_url}{SUBSCRIPTIONS}/?continuationToken=p2&api-version=2018-08-31"
    no_id = docs_subscription()
    del no_id["id"]
    server.script(
        ScriptedResponse(
            200,
            body={
                "subscriptions": [
                    docs_subscription(id=ids[0]),
                    docs_subscription(id=ids[1], saasSubscriptionStatus="Frozen"),
                    no_id,
                    "not an object",
                ],
                "@nextLink": page_url,
            },
        ),
        ScriptedResponse(200, body={"subscriptions": [docs_subscription(id=ids[2])]}),
    )

    listed = list(client.list_subscriptions())

    assert [(type(item).__name__, item.id) for item in listed] == [
        ("MicrosoftSubscription", ids[0]),
        ("UnreadableSubscription", ids[1]),
        ("UnreadableSubscription", ""),
        ("UnreadableSubscription", ""),
        ("MicrosoftSubscription", ids[2]),
    ]
    unreadable = [item for item in listed if isinstance(item, UnreadableSubscription)]
    assert "Frozen" in unreadable[0].error
    assert "'id'" in unreadable[1].error
    assert len(server.requests) == 2


def test_list_subscriptions_parses_the_spec_shape(server: ScriptedServer, client: FulfillmentClient) -> None:
    body = example_body("FulfillmentOperations_ListSubscriptions")
    del body["@nextLink"]
    reply = ScriptedResponse(200, body=body)
    server.script(reply)

    [listed] = list(client.list_subscriptions())

    _answer(server, _only_request(server), reply)
    assert listed.id == body["subscriptions"][0]["id"]
    assert listed.term.unit == "P1M"


@pytest.mark.parametrize("reply", [ScriptedResponse(200), ScriptedResponse(200, body={"subscriptions": []})])
def test_list_subscriptions_empty_body_means_none(
    server: ScriptedServer, client: FulfillmentClient, reply: ScriptedResponse
) -> None:
    server.script(reply)
    assert list(client.list_subscriptions()) == []
    assert len(server.requests) == 1


def test_list_subscriptions_refuses_a_next_link_to_another_host(
    server: ScriptedServer, client: FulfillmentClient
) -> None:
    # Following it would hand our bearer token to whoever runs that host.
    server.script(
        ScriptedResponse(
            200, body={"subscriptions": [], "@nextLink": "https://elsewhere.example/api/saas/subscriptions/"}
        )
    )
    with pytest.raises(MalformedResponseError, match="leaves the API host"):
        list(client.list_subscriptions())
    assert len(server.requests) == 1


def test_get_subscription(server: ScriptedServer, client: FulfillmentClient) -> None:
    reply = ScriptedResponse(
        200, body=docs_subscription(unknownField=True, saasSubscriptionStatus="Suspended")
    )
    server.script(reply)

    subscription = client.get_subscription(SUBSCRIPTION_ID)

    request = _only_request(server)
    _answer(server, request, reply)
    assert (request.method, request.path) == ("GET", f"{SUBSCRIPTIONS}/{SUBSCRIPTION_ID}")
    assert subscription.status is SubscriptionStatus.SUSPENDED
    assert subscription.plan_id == "silver"


def test_get_subscription_with_unknown_status_is_a_typed_error_with_ids(
    server: ScriptedServer, client: FulfillmentClient
) -> None:
    server.script(
        ScriptedResponse(
            200, body=docs_subscription(saasSubscriptionStatus="Frozen"), headers={"x-ms-requestid": "ms-1"}
        )
    )
    with pytest.raises(MalformedResponseError, match="Frozen") as caught:
        client.get_subscription(SUBSCRIPTION_ID)
    assert caught.value.request_id == "ms-1"
    assert caught.value.correlation_id == server.requests[0].headers["x-ms-correlationid"]


def test_non_json_success_body_is_a_typed_error(server: ScriptedServer, client: FulfillmentClient) -> None:
    server.script(
        ScriptedResponse(200, body="<html>proxy says hi</html>", headers={"content-type": "text/html"})
    )
    with pytest.raises(MalformedResponseError, match="unusable response body"):
        client.get_subscription(SUBSCRIPTION_ID)


@pytest.mark.parametrize("plan_id", [None, "gold"])
def test_list_available_plans(server: ScriptedServer, client: FulfillmentClient, plan_id: str | None) -> None:
    body = example_body("FulfillmentOperations_ListAvailablePlans")
    body["plans"].append({"planId": "gold", "displayName": "Gold", "minQuantity": " 1 ", "newThing": []})
    reply = ScriptedResponse(200, body=body)
    server.script(reply)

    plans = client.list_available_plans(SUBSCRIPTION_ID, plan_id)

    request = _only_request(server)
    assert (request.method, request.path) == ("GET", f"{SUBSCRIPTIONS}/{SUBSCRIPTION_ID}/listAvailablePlans")
    assert request.query.get("planId") == ([plan_id] if plan_id else None)
    _answer(
        server, request, ScriptedResponse(200, body=example_body("FulfillmentOperations_ListAvailablePlans"))
    )
    assert [plan.plan_id for plan in plans] == [body["plans"][0]["planId"], "gold"]
    assert plans[0].term_units == ("P1M",)
    assert plans[1].min_quantity == 1


def test_list_available_plans_empty_body_for_an_unknown_plan(
    server: ScriptedServer, client: FulfillmentClient
) -> None:
    server.script(ScriptedResponse(200))
    assert client.list_available_plans(SUBSCRIPTION_ID, "nope") == []


@pytest.mark.parametrize(
    ("quantity", "expected_body"), [(None, {"planId": "silver"}), (5, {"planId": "silver", "quantity": 5})]
)
def test_activate(
    server: ScriptedServer, client: FulfillmentClient, quantity: int | None, expected_body: dict[str, Any]
) -> None:
    reply = ScriptedResponse(200)
    server.script(reply)

    assert client.activate(SUBSCRIPTION_ID, "silver", quantity) is None

    request = _only_request(server)
    _answer(server, request, reply)
    assert (request.method, request.path) == ("POST", f"{SUBSCRIPTIONS}/{SUBSCRIPTION_ID}/activate")
    assert request.json() == expected_body


def test_change_plan_sends_only_the_plan_and_returns_the_operation_id(
    server: ScriptedServer, client: FulfillmentClient
) -> None:
    reply = ScriptedResponse(
        202, headers={"Operation-Location": operation_location(SUBSCRIPTION_ID, OPERATION_ID)}
    )
    server.script(reply)

    assert client.change_plan(SUBSCRIPTION_ID, "gold") == OPERATION_ID

    request = _only_request(server)
    _answer(server, request, reply)
    assert (request.method, request.path) == ("PATCH", f"{SUBSCRIPTIONS}/{SUBSCRIPTION_ID}")
    assert request.json() == {"planId": "gold"}


def test_change_quantity_sends_only_the_quantity(server: ScriptedServer, client: FulfillmentClient) -> None:
    reply = ScriptedResponse(
        202, headers={"Operation-Location": operation_location(SUBSCRIPTION_ID, OPERATION_ID)}
    )
    server.script(reply)

    assert client.change_quantity(SUBSCRIPTION_ID, 12) == OPERATION_ID

    request = _only_request(server)
    _answer(server, request, reply)
    assert request.json() == {"quantity": 12}


@pytest.mark.parametrize("options", [{"plan_id": "gold", "quantity": 3}, {}], ids=["both", "neither"])
def test_update_refuses_plan_and_quantity_together(
    server: ScriptedServer, client: FulfillmentClient, options: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        client._update(SUBSCRIPTION_ID, **options)  # the guard behind change_plan / change_quantity
    assert server.requests == []


@pytest.mark.parametrize("bad", [0, -2, True, "5"])
def test_change_quantity_refuses_a_bad_count(
    server: ScriptedServer, client: FulfillmentClient, bad: Any
) -> None:
    with pytest.raises(ValueError, match="quantity"):
        client.change_quantity(SUBSCRIPTION_ID, bad)
    assert server.requests == []


def test_update_without_operation_location_is_a_typed_error(
    server: ScriptedServer, client: FulfillmentClient
) -> None:
    server.script(ScriptedResponse(202))
    with pytest.raises(MalformedResponseError, match="Operation-Location"):
        client.change_plan(SUBSCRIPTION_ID, "gold")


def test_delete_subscription_returns_the_operation_id(
    server: ScriptedServer, client: FulfillmentClient
) -> None:
    reply = ScriptedResponse(
        202, headers={"Operation-Location": operation_location(SUBSCRIPTION_ID, OPERATION_ID)}
    )
    server.script(reply)

    assert client.delete_subscription(SUBSCRIPTION_ID) == OPERATION_ID

    request = _only_request(server)
    _answer(server, request, reply)
    assert (request.method, request.path, request.body) == (
        "DELETE",
        f"{SUBSCRIPTIONS}/{SUBSCRIPTION_ID}",
        b"",
    )


def test_list_operations(server: ScriptedServer, client: FulfillmentClient) -> None:
    spec_body = example_body("SubscriptionOperations_ListOperations")
    spec_reply = ScriptedResponse(200, body=spec_body)
    lenient = {
        "operations": [docs_operation(action="Transfer", quantity=" 4 ", status="inprogress ", extra=1)]
    }
    server.script(spec_reply, ScriptedResponse(200, body=lenient), ScriptedResponse(200))

    from_spec = client.list_operations(SUBSCRIPTION_ID)
    [odd] = client.list_operations(SUBSCRIPTION_ID)
    none = client.list_operations(SUBSCRIPTION_ID)

    first = server.requests[0]
    assert_valid_request(first)
    _answer(server, first, spec_reply)
    assert (first.method, first.path) == ("GET", f"{SUBSCRIPTIONS}/{SUBSCRIPTION_ID}/operations")
    assert [op.id for op in from_spec] == [spec_body["operations"][0]["id"]]
    assert from_spec[0].action is Action.UNSUBSCRIBE
    assert (odd.action, odd.action_raw, odd.quantity, odd.status) == (
        Action.UNKNOWN,
        "Transfer",
        4,
        OperationStatus.IN_PROGRESS,
    )
    assert none == []


def test_get_operation(server: ScriptedServer, client: FulfillmentClient) -> None:
    spec_body = example_body("SubscriptionOperations_GetOperationStatus")
    reply = ScriptedResponse(200, body=spec_body)
    server.script(reply)

    operation = client.get_operation(SUBSCRIPTION_ID, OPERATION_ID)

    request = _only_request(server)
    _answer(server, request, reply)
    assert (request.method, request.path) == (
        "GET",
        f"{SUBSCRIPTIONS}/{SUBSCRIPTION_ID}/operations/{OPERATION_ID}",
    )
    assert operation.id == spec_body["id"]
    assert operation.subscription_id == spec_body["subscriptionId"]
    assert operation.status is OperationStatus.NOT_STARTED


@pytest.mark.parametrize(
    ("success", "options", "expected"),
    [
        (True, {}, {"status": "Success"}),
        (False, {}, {"status": "Failure"}),
        (True, {"plan_id": "gold", "quantity": 9}, {"status": "Success", "planId": "gold", "quantity": 9}),
    ],
)
def test_update_operation(
    server: ScriptedServer,
    client: FulfillmentClient,
    success: bool,
    options: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    reply = ScriptedResponse(200)
    server.script(reply)

    assert client.update_operation(SUBSCRIPTION_ID, OPERATION_ID, success, **options) is None

    request = _only_request(server)
    _answer(server, request, reply)
    assert (request.method, request.path) == (
        "PATCH",
        f"{SUBSCRIPTIONS}/{SUBSCRIPTION_ID}/operations/{OPERATION_ID}",
    )
    assert json.loads(request.body) == expected


def test_one_connection_serves_consecutive_calls(server: ScriptedServer, client: FulfillmentClient) -> None:
    server.script(
        ScriptedResponse(200, body=docs_subscription()), ScriptedResponse(200, body=docs_subscription())
    )
    client.get_subscription(SUBSCRIPTION_ID)
    client.get_subscription(SUBSCRIPTION_ID)
    first, second = server.requests
    assert first.client_port == second.client_port


def test_each_call_gets_its_own_correlation_id_unless_given(
    server: ScriptedServer, client: FulfillmentClient
) -> None:
    server.script(*[ScriptedResponse(200, body=docs_subscription()) for _ in range(3)])
    client.get_subscription(SUBSCRIPTION_ID)
    client.get_subscription(SUBSCRIPTION_ID)
    client.get_subscription(SUBSCRIPTION_ID, correlation_id="c0ffee00-0000-4000-8000-000000000001")
    first, second, third = (r.headers["x-ms-correlationid"] for r in server.requests)
    assert first != second
    assert third == "c0ffee00-0000-4000-8000-000000000001"


def test_a_non_guid_correlation_id_maps_to_a_stable_guid(
    server: ScriptedServer, client: FulfillmentClient
) -> None:
    server.script(
        ScriptedResponse(200, body=docs_subscription()), ScriptedResponse(200, body=docs_subscription())
    )
    client.get_subscription(SUBSCRIPTION_ID, correlation_id="message-42")
    client.get_subscription(SUBSCRIPTION_ID, correlation_id="message-42")
    for request in server.requests:
        assert_valid_request(request)
    assert len({r.headers["x-ms-correlationid"] for r in server.requests}) == 1


def test_every_attempt_asks_the_credential_for_the_marketplace_scope(server: ScriptedServer) -> None:
    client, credential = make_client(server)
    server.script(ScriptedResponse(200, body=docs_subscription()))
    client.get_subscription(SUBSCRIPTION_ID)
    assert credential.scopes_requested == [("20e940b3-4c77-4b0b-9a53-9e16a1b010a7/.default",)]
    assert server.requests[0].headers["authorization"] == "Bearer test-token-1"


def test_ids_in_paths_are_escaped(server: ScriptedServer, client: FulfillmentClient) -> None:
    server.script(ScriptedResponse(404))
    with pytest.raises(FulfillmentNotFoundError):
        client.get_subscription("../../resolve")  # outside-path-ok: a traversal attempt
    assert server.requests[0].path == f"{SUBSCRIPTIONS}/..%2F..%2Fresolve"


def test_a_next_link_without_api_version_still_sends_exactly_one(
    server: ScriptedServer, client: FulfillmentClient
) -> None:
    next_link = f"{server.base_url}{SUBSCRIPTIONS}/?continuationToken=p2"
    server.script(
        ScriptedResponse(200, body={"subscriptions": [docs_subscription()], "@nextLink": next_link}),
        ScriptedResponse(200, body={"subscriptions": []}),
    )

    assert len(list(client.list_subscriptions())) == 1

    second = server.requests[1]
    assert_valid_request(second)
    assert second.query == {"continuationToken": ["p2"], "api-version": ["2018-08-31"]}


def test_a_next_link_that_repeats_stops_paging(server: ScriptedServer, client: FulfillmentClient) -> None:
    next_link = f"{server.base_url}{SUBSCRIPTIONS}/?continuationToken=same&api-version=2018-08-31"
    page = {"subscriptions": [docs_subscription()], "@nextLink": next_link}
    server.script(ScriptedResponse(200, body=page), ScriptedResponse(200, body=page))

    with pytest.raises(MalformedResponseError, match="repeats"):
        list(client.list_subscriptions())
    assert len(server.requests) == 2
