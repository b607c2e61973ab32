"""Every Fulfillment API operation of the sandbox, over real HTTPS, checked against Microsoft's spec."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox.server import RunningSandbox
from tests.support.sandbox import (
    CONTOSO_TENANT,
    ApiCaller,
    ControlClient,
    WebhookReceiver,
    running_sandbox,
)
from tests.support.spec import validate_request, validate_response


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as webhook_receiver:
        yield webhook_receiver


@pytest.fixture(scope="module")
def sandbox(receiver: WebhookReceiver) -> Iterator[RunningSandbox]:
    with running_sandbox(
        webhook_url=receiver.url, auto_accept_seconds=30, webhook_base_delay_seconds=0.01
    ) as sb:
        yield sb


def spec_call(
    api: ApiCaller,
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    url: str | None = None,
    request_is_valid: bool = True,
) -> requests.Response:
    """One call whose request (when meant to be valid) and response must both match the spec."""
    url = url or api.url(path)
    sent_headers = api.headers(headers)
    data = None if body is None else json.dumps(body).encode()
    if request_is_valid:
        validate_request(method, url, sent_headers, data)
    response = api.call(method, path, body=body, headers=headers, url=url)
    validate_response(method, url, response.status_code, dict(response.headers), response.content)
    return response


def activated(
    control: ControlClient, api: ApiCaller, plan_id: str = "team-seats", quantity: int | None = 5
) -> str:
    bought = control.buy(plan_id, quantity=quantity)
    body: dict[str, Any] = {"planId": plan_id}
    if quantity is not None:
        body["quantity"] = quantity
    response = api.call("POST", f"/subscriptions/{bought['subscriptionId']}/activate", body=body)
    assert response.status_code == 200, response.text
    return bought["subscriptionId"]


def test_resolve_returns_the_purchase_and_matches_the_spec(control: ControlClient, api: ApiCaller) -> None:
    bought = control.buy("team-seats", quantity=7)
    response = spec_call(
        api, "POST", "/subscriptions/resolve", headers={"x-ms-marketplace-token": bought["token"]}
    )
    assert response.status_code == 200
    resolved = response.json()
    assert resolved["id"] == bought["subscriptionId"]
    assert (resolved["offerId"], resolved["planId"], resolved["quantity"]) == (
        "contoso-analytics",
        "team-seats",
        7,
    )
    assert resolved["subscription"]["saasSubscriptionStatus"] == "PendingFulfillmentStart"
    assert resolved["subscription"]["beneficiary"]["tenantId"] == CONTOSO_TENANT


def test_resolve_unknown_token_is_400_as_the_spec_says(control: ControlClient, api: ApiCaller) -> None:
    response = spec_call(
        api, "POST", "/subscriptions/resolve", headers={"x-ms-marketplace-token": "bm90IGl0"}
    )
    assert response.status_code == 400
    assert "expired" in response.json()["error"]["message"]


def test_resolve_without_token_header_is_400(api: ApiCaller) -> None:
    response = spec_call(api, "POST", "/subscriptions/resolve", request_is_valid=False)
    assert response.status_code == 400


def test_list_subscriptions_matches_the_spec(control: ControlClient, api: ApiCaller) -> None:
    first = control.buy("basic")["subscriptionId"]
    second = control.buy("team-seats", quantity=2)["subscriptionId"]
    response = spec_call(api, "GET", "/subscriptions/")
    assert response.status_code == 200
    assert [s["id"] for s in response.json()["subscriptions"]] == [first, second]
    assert "@nextLink" not in response.json()


def test_get_subscription_and_unknown_is_404(control: ControlClient, api: ApiCaller) -> None:
    subscription_id = activated(control, api)
    found = spec_call(api, "GET", f"/subscriptions/{subscription_id}")
    assert found.status_code == 200
    body = found.json()
    assert body["saasSubscriptionStatus"] == "Subscribed"
    assert body["term"]["termUnit"] == "P1M"
    assert body["term"]["startDate"] < body["term"]["endDate"]
    missing = spec_call(api, "GET", f"/subscriptions/{uuid.uuid4()}")
    assert missing.status_code == 404


def test_flat_rate_subscription_has_no_quantity(control: ControlClient, api: ApiCaller) -> None:
    subscription_id = control.buy("basic")["subscriptionId"]
    body = spec_call(api, "GET", f"/subscriptions/{subscription_id}").json()
    assert "quantity" not in body


def test_list_available_plans_hides_stop_sold_and_foreign_private_plans(
    control: ControlClient, api: ApiCaller
) -> None:
    subscription_id = control.buy("basic")["subscriptionId"]
    response = spec_call(api, "GET", f"/subscriptions/{subscription_id}/listAvailablePlans")
    assert response.status_code == 200
    assert {p["planId"] for p in response.json()["plans"]} == {"basic", "pro", "team-seats"}
    seats = next(p for p in response.json()["plans"] if p["planId"] == "team-seats")
    assert (seats["minQuantity"], seats["maxQuantity"], seats["isPricePerSeat"]) == (1, 50, True)
    assert seats["planComponents"]["recurrentBillingTerms"][0]["termUnit"] == "P1M"


def test_list_available_plans_filters_by_plan_id(control: ControlClient, api: ApiCaller) -> None:
    subscription_id = control.buy("basic")["subscriptionId"]
    url = api.url(f"/subscriptions/{subscription_id}/listAvailablePlans", planId="pro")
    response = spec_call(api, "GET", "", url=url)
    assert [p["planId"] for p in response.json()["plans"]] == ["pro"]
    unknown = api.url(f"/subscriptions/{subscription_id}/listAvailablePlans", planId="gold")
    assert spec_call(api, "GET", "", url=unknown).json() == {"plans": []}
    missing = spec_call(api, "GET", f"/subscriptions/{uuid.uuid4()}/listAvailablePlans")
    assert missing.status_code == 404


def test_activate_matches_the_spec_and_refuses_a_wrong_plan(control: ControlClient, api: ApiCaller) -> None:
    subscription_id = control.buy("team-seats", quantity=3)["subscriptionId"]
    path = f"/subscriptions/{subscription_id}/activate"
    wrong = spec_call(api, "POST", path, body={"planId": "basic", "quantity": 3})
    assert wrong.status_code == 400
    right = spec_call(api, "POST", path, body={"planId": "team-seats", "quantity": 3})
    assert right.status_code == 200
    again = spec_call(api, "POST", path, body={"planId": "team-seats", "quantity": 3})
    assert again.status_code == 400


def test_activate_unsubscribed_is_404(control: ControlClient, api: ApiCaller) -> None:
    subscription_id = control.buy("basic")["subscriptionId"]
    control.unsubscribe(subscription_id)
    response = spec_call(api, "POST", f"/subscriptions/{subscription_id}/activate", body={"planId": "basic"})
    assert response.status_code == 404


def test_update_subscription_answers_202_with_an_absolute_operation_location(
    control: ControlClient, api: ApiCaller, sandbox: RunningSandbox
) -> None:
    subscription_id = activated(control, api)
    response = spec_call(api, "PATCH", f"/subscriptions/{subscription_id}", body={"quantity": 9})
    assert response.status_code == 202
    location = response.headers["Operation-Location"]
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}" == sandbox.https_url
    assert parts.path.startswith(f"/api/saas/subscriptions/{subscription_id}/operations/")
    assert parse_qs(parts.query) == {"api-version": ["2018-08-31"]}
    followed = spec_call(api, "GET", "", url=location)
    assert followed.json()["action"] == "ChangeQuantity"
    assert followed.json()["operationRequestSource"] == "Partner"


def test_update_subscription_errors_match_the_spec(control: ControlClient, api: ApiCaller) -> None:
    subscription_id = activated(control, api)
    both = spec_call(
        api, "PATCH", f"/subscriptions/{subscription_id}", body={"planId": "basic", "quantity": 2}
    )
    assert both.status_code == 400
    missing = spec_call(api, "PATCH", f"/subscriptions/{uuid.uuid4()}", body={"quantity": 2})
    assert missing.status_code == 404


def test_delete_subscription_answers_202_and_unsubscribes(control: ControlClient, api: ApiCaller) -> None:
    subscription_id = activated(control, api)
    response = spec_call(api, "DELETE", f"/subscriptions/{subscription_id}")
    assert response.status_code == 202
    operation = api.call("GET", "", url=response.headers["Operation-Location"]).json()
    assert (operation["action"], operation["status"]) == ("Unsubscribe", "Succeeded")
    after = spec_call(api, "GET", f"/subscriptions/{subscription_id}").json()
    assert after["saasSubscriptionStatus"] == "Unsubscribed"


def test_delete_without_delete_permission_is_400(control: ControlClient, api: ApiCaller) -> None:
    bought = control.buy_as_csp("basic", customer_tenant_id=CONTOSO_TENANT)
    response = spec_call(api, "DELETE", f"/subscriptions/{bought['subscriptionId']}")
    assert response.status_code == 400
    assert "Delete" in response.json()["error"]["message"]


def test_operations_list_get_and_patch_match_the_spec(control: ControlClient, api: ApiCaller) -> None:
    subscription_id = activated(control, api)
    operation_id = control.change_plan(subscription_id, "basic")["operationId"]
    listed = spec_call(api, "GET", f"/subscriptions/{subscription_id}/operations")
    assert [op["id"] for op in listed.json()["operations"]] == [operation_id]
    path = f"/subscriptions/{subscription_id}/operations/{operation_id}"
    got = spec_call(api, "GET", path)
    assert (got.json()["action"], got.json()["status"], got.json()["planId"]) == (
        "ChangePlan",
        "InProgress",
        "basic",
    )
    patched = spec_call(api, "PATCH", path, body={"status": "Success"})
    assert patched.status_code == 200
    assert spec_call(api, "GET", f"/subscriptions/{subscription_id}/operations").json() == {"operations": []}


def test_operation_errors_match_the_spec(control: ControlClient, api: ApiCaller) -> None:
    subscription_id = activated(control, api)
    operation_id = control.change_quantity(subscription_id, 6)["operationId"]
    path = f"/subscriptions/{subscription_id}/operations/{operation_id}"
    assert (
        spec_call(api, "GET", f"/subscriptions/{subscription_id}/operations/{uuid.uuid4()}").status_code
        == 404
    )
    assert spec_call(api, "PATCH", path, body={"status": "Maybe"}, request_is_valid=False).status_code == 400
    assert spec_call(api, "PATCH", path, body={"status": "Failure"}).status_code == 200
    assert spec_call(api, "PATCH", path, body={"status": "Success"}).status_code == 409


def test_a_token_for_another_app_is_403_as_the_spec_says(
    sandbox: RunningSandbox, control: ControlClient
) -> None:
    foreign = sandbox.entra.mint_publisher_access_token(
        overrides={"appid": str(uuid.uuid4()), "azp": str(uuid.uuid4())}
    )
    api = ApiCaller(sandbox, token=foreign)
    response = spec_call(api, "GET", "/subscriptions/")
    assert response.status_code == 403


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic dXNlcjpwYXNz", "Bearer not-a-jwt"],
    ids=["missing", "not-bearer", "garbage"],
)
def test_missing_or_invalid_bearer_token_is_401(sandbox: RunningSandbox, authorization: str | None) -> None:
    session = requests.Session()
    session.trust_env = False
    headers = {"Authorization": authorization} if authorization else {}
    response = session.get(
        f"{sandbox.fulfillment_base_url}/saas/subscriptions/?api-version=2018-08-31",
        headers=headers,
        verify=str(sandbox.ca_bundle),
        timeout=10,
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "Unauthorized"


def test_a_token_signed_by_another_key_is_refused(sandbox: RunningSandbox) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    api = ApiCaller(sandbox, token=sandbox.entra.mint_publisher_access_token(sign_with=stranger))
    assert api.call("GET", "/subscriptions/").status_code == 401


@pytest.mark.parametrize("query", [{}, {"api-version": "2020-01-01"}], ids=["missing", "unknown"])
def test_api_version_other_than_2018_08_31_is_400(api: ApiCaller, query: dict[str, str]) -> None:
    url = f"{api.base_url}/subscriptions/" + (f"?api-version={query['api-version']}" if query else "")
    response = api.call("GET", "", url=url)
    assert response.status_code == 400
    assert "api-version" in response.json()["error"]["message"]


def test_request_and_correlation_ids_are_echoed_or_generated(api: ApiCaller) -> None:
    request_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    echoed = api.call(
        "GET", "/subscriptions/", headers={"x-ms-requestid": request_id, "x-ms-correlationid": correlation_id}
    )
    assert (echoed.headers["x-ms-requestid"], echoed.headers["x-ms-correlationid"]) == (
        request_id,
        correlation_id,
    )
    generated = api.call("GET", "/subscriptions/")
    assert uuid.UUID(generated.headers["x-ms-requestid"]) != uuid.UUID(
        generated.headers["x-ms-correlationid"]
    )
    refused = api.call("GET", f"/subscriptions/{uuid.uuid4()}", headers={"x-ms-requestid": request_id})
    assert refused.headers["x-ms-requestid"] == request_id


def test_plain_http_listener_serves_the_api_too(sandbox: RunningSandbox) -> None:
    token = sandbox.entra.mint_publisher_access_token()
    session = requests.Session()
    session.trust_env = False
    response = session.get(
        f"{sandbox.http_url}/api/saas/subscriptions/?api-version=2018-08-31",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 200
