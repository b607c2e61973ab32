"""Shared pieces of the Fulfillment API client tests: a token credential at the SDK boundary, a recording
sleep, a client factory pointed at a scripted server, and payloads shaped like Microsoft's documentation.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from azure.core.credentials import AccessToken

from shared.fulfillment.client import FulfillmentClient
from tests.support.scripted_server import RecordedRequest, ScriptedServer
from tests.support.spec import validate_request

SUBSCRIPTION_ID = "37f9dea2-4345-438f-b0bd-03d40d28c7e0"
OPERATION_ID = "529f53e7-ed8b-4a6b-9d5e-0f5d6a3f4c11"
BASE_PATH = "/api"  # like Microsoft's base URL, so the spec mapping is exercised with a prefix


class StaticTokenCredential:
    """An azure.core TokenCredential handing out numbered tokens, so tests see one request per attempt."""

    def __init__(self) -> None:
        self.scopes_requested: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes_requested.append(scopes)
        return AccessToken(f"test-token-{len(self.scopes_requested)}", 4_102_444_800)


class RecordingSleep:
    """Stands in for time.sleep: records each requested wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def make_client(
    server: ScriptedServer, *, sleep: RecordingSleep | None = None, **options: Any
) -> tuple[FulfillmentClient, StaticTokenCredential]:
    credential = StaticTokenCredential()
    settings: dict[str, Any] = {"connect_timeout": 2.0, "read_timeout": 2.0, "max_attempts": 4}
    settings.update(options)
    client = FulfillmentClient(
        server.base_url + BASE_PATH, credential, sleep=sleep or RecordingSleep(), **settings
    )
    return client, credential


def assert_valid_request(request: RecordedRequest) -> None:
    """The request matches the spec and carries the R18-R19 headers."""
    validate_request(request.method, request.url, request.headers, request.body)
    assert request.headers["authorization"].startswith("Bearer test-token-")
    assert request.headers["content-type"] == "application/json"
    assert request.query["api-version"] == ["2018-08-31"]
    assert uuid.UUID(request.headers["x-ms-requestid"]).version == 4
    uuid.UUID(request.headers["x-ms-correlationid"])


def operation_location(subscription_id: str, operation_id: str) -> str:
    return (
        "https://marketplaceapi.microsoft.com/api/saas/subscriptions/"
        f"{subscription_id}/operations/{operation_id}?api-version=2018-08-31"
    )


_DOCS_SUBSCRIPTION: dict[str, Any] = {
    "id": SUBSCRIPTION_ID,
    "publisherId": "contoso",
    "offerId": "offer1",
    "name": "Contoso Cloud Solution",
    "saasSubscriptionStatus": "Subscribed",
    "beneficiary": {
        "emailId": "test@test.com",
        "objectId": "9d8ad7a2-8fd0-4e0b-9e6b-0a3b4a1c7e10",
        "tenantId": "7c2bd4f7-8a4d-4bd1-b3a2-61d5e0f8c6a1",
        "puid": "10037FFEAFFC9E45",
    },
    "purchaser": {
        "emailId": "test@contoso.com",
        "objectId": "4a7c1b2d-5e6f-4a8b-9c0d-1e2f3a4b5c6d",
        "tenantId": "7c2bd4f7-8a4d-4bd1-b3a2-61d5e0f8c6a1",
        "puid": "10037FFEAFFC9E46",
    },
    "planId": "silver",
    "term": {
        "termUnit": "P1M",
        "startDate": "2022-03-07T00:00:00Z",
        "endDate": "2022-04-06T00:00:00Z",
        "chargeDuration": "P1M",
    },
    "autoRenew": True,
    "isTest": False,
    "isFreeTrial": False,
    "allowedCustomerOperations": ["Delete", "Update", "Read"],
    "sandboxType": "None",
    "created": "2022-03-01T22:59:45.5468572Z",
    "lastModified": "0001-01-01T00:00:00",
    "quantity": 5,
    "sessionMode": "None",
}


def docs_subscription(**changes: Any) -> dict[str, Any]:
    """A GetSubscription body as Microsoft's docs show it, with `changes` applied on top."""
    return {**copy.deepcopy(_DOCS_SUBSCRIPTION), **changes}


def docs_operation(**changes: Any) -> dict[str, Any]:
    """A GetOperationStatus body as Microsoft's docs show it, with `changes` applied on top."""
    body: dict[str, Any] = {
        "id": OPERATION_ID,
        "activityId": "9f2c5a1e-3b4d-4c6e-8f0a-1b2c3d4e5f60",
        "subscriptionId": SUBSCRIPTION_ID,
        "offerId": "offer1",
        "publisherId": "contoso",
        "planId": "gold",
        "quantity": 20,
        "action": "ChangePlan",
        "timeStamp": "2022-03-12T20:05:20.3712484Z",
        "status": "InProgress",
        "operationRequestSource": "Azure",
    }
    return {**body, **changes}
