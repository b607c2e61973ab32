"""The `marketplace_webhook` function as function_app.py registers it, with real tokens and JWKS server.

Each test sets the environment the way the Functions host would, rebuilds the composition root, and calls
the registered function with a real `azure.functions.HttpRequest`; the queue is the in-memory adapter, read
back through `services().queue`, except where a real Service Bus client meets a closed port.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import azure.functions as func
import pytest

import function_app
from devhost import registered_functions
from shared.app_context import reset_services, services
from tests.support.oidc_server import OidcServer
from tests.support.ports import free_port
from tests.support.tokens import marketplace_claims, mint

PATH_TRAVERSAL = "../../etc"  # outside-path-ok: an attack input, not a path we use

TENANT = str(uuid.uuid4())
CLIENT_ID = str(uuid.uuid4())
MAX_BODY_BYTES = 2048

Webhook = Callable[[func.HttpRequest], func.HttpResponse]


@pytest.fixture(scope="module")
def oidc() -> Iterator[OidcServer]:
    with OidcServer() as server:
        yield server


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, oidc: OidcServer) -> Iterator[pytest.MonkeyPatch]:
    for name, value in {
        "QUEUE_BACKEND": "memory",
        "PUBLISHER_TENANT_ID": TENANT,
        "PUBLISHER_CLIENT_ID": CLIENT_ID,
        "WEBHOOK_OPENID_CONFIG_URL": oidc.metadata_url(TENANT),
        "WEBHOOK_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        "STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("WEBHOOK_AUDIENCE", raising=False)
    reset_services()
    yield monkeypatch
    reset_services()


@pytest.fixture
def webhook(environment: pytest.MonkeyPatch) -> Webhook:
    # The shared lookup: get_functions() refuses to run twice on one app, and other tests index it too.
    functions = registered_functions(function_app.app)
    [function] = [f for f in functions if f.get_function_name() == "marketplace_webhook"]
    return function.get_user_function()


def good_token(oidc: OidcServer, **overrides: Any) -> str:
    return mint(marketplace_claims(TENANT, CLIENT_ID, authority=oidc.base_url, **overrides), oidc.signing_key)


def a_payload(**fields: Any) -> dict[str, Any]:
    payload = {
        "id": str(uuid.uuid4()),
        "activityId": str(uuid.uuid4()),
        "publisherId": "contoso",
        "offerId": "offer1",
        "planId": "gold",
        "quantity": 5,
        "subscriptionId": str(uuid.uuid4()),
        "timeStamp": "2024-05-01T10:00:00.000Z",
        "action": "ChangePlan",
        "status": "InProgress",
        "operationRequestSource": "Azure",
        "purchaseToken": None,
    }
    payload.update(fields)
    return payload


def post(
    webhook: Webhook,
    body: bytes,
    token: str | None = None,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> func.HttpResponse:
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    request = func.HttpRequest(
        method="POST",
        url="http://127.0.0.1:7071/api/webhook",
        headers=all_headers,
        params=params or {},
        body=body,
    )
    return webhook(request)


def answer(response: func.HttpResponse) -> dict[str, Any]:
    return json.loads(response.get_body())


def queued() -> list[Any]:
    return services().queue.messages  # type: ignore[attr-defined]


def test_a_genuine_notification_is_queued_once_and_acknowledged(webhook: Webhook, oidc: OidcServer):
    payload = a_payload()
    correlation_id = str(uuid.uuid4())

    response = post(
        webhook, json.dumps(payload).encode(), good_token(oidc), {"x-ms-correlationid": correlation_id}
    )

    assert response.status_code == 200
    assert answer(response) == {"status": "accepted", "operationId": payload["id"]}
    assert response.headers["x-ms-correlationid"] == correlation_id
    [message] = queued()
    assert message.message_id == payload["id"]
    assert message.session_id == payload["subscriptionId"]
    assert message.correlation_id == correlation_id
    assert message.body["kind"] == "webhook"
    assert message.body["payload"] == payload
    assert message.body["receivedAt"]


def test_a_v1_token_is_accepted_too(webhook: Webhook, oidc: OidcServer):
    response = post(webhook, json.dumps(a_payload()).encode(), good_token(oidc, version="v1"))

    assert response.status_code == 200
    assert len(queued()) == 1


def test_the_answer_does_not_wait_for_anything_but_the_queue(webhook: Webhook, oidc: OidcServer):
    post(webhook, json.dumps(a_payload()).encode(), good_token(oidc))
    started = time.monotonic()

    response = post(webhook, json.dumps(a_payload()).encode(), good_token(oidc))

    assert response.status_code == 200
    assert time.monotonic() - started < 2


def test_an_unknown_action_with_unknown_fields_is_still_queued(webhook: Webhook, oidc: OidcServer):
    payload = a_payload(action="Transfer", brandNewField={"nested": [1, 2]}, quantity="7 ")

    response = post(webhook, json.dumps(payload).encode(), good_token(oidc))

    assert response.status_code == 200
    [message] = queued()
    assert message.body["payload"] == payload


def test_ids_with_stray_spaces_are_trimmed_for_the_queue(webhook: Webhook, oidc: OidcServer):
    operation_id, subscription_id = str(uuid.uuid4()), str(uuid.uuid4())
    payload = a_payload(id=f" {operation_id} ", subscriptionId=f"{subscription_id}  ")

    response = post(webhook, json.dumps(payload).encode(), good_token(oidc))

    assert answer(response)["operationId"] == operation_id
    [message] = queued()
    assert (message.message_id, message.session_id) == (operation_id, subscription_id)


def test_a_correlation_header_that_is_not_a_guid_is_replaced(webhook: Webhook, oidc: OidcServer):
    response = post(
        webhook,
        json.dumps(a_payload()).encode(),
        good_token(oidc),
        {"x-ms-correlationid": "<script>x</script>"},
    )

    issued = response.headers["x-ms-correlationid"]
    assert issued != "<script>x</script>"
    assert str(uuid.UUID(issued)) == issued
    assert queued()[0].correlation_id == issued


@pytest.mark.parametrize(
    ("make_token", "reason"),
    [
        (lambda oidc: None, "missing bearer token"),
        (lambda oidc: good_token(oidc, aud=str(uuid.uuid4())), "token is for another audience (aud)"),
        (lambda oidc: good_token(oidc, tid=str(uuid.uuid4())), "token is for another tenant (tid)"),
        (lambda oidc: good_token(oidc, now=time.time() - 7200), "token has expired"),
        (
            lambda oidc: good_token(oidc, azp=str(uuid.uuid4())),
            "token was issued to an application that is not the marketplace",
        ),
    ],
    ids=["missing", "audience", "tenant", "expired", "caller-app"],
)
def test_an_unauthenticated_call_gets_401_with_its_reason_and_queues_nothing(
    webhook: Webhook,
    oidc: OidcServer,
    caplog: pytest.LogCaptureFixture,
    make_token: Callable[[OidcServer], str | None],
    reason: str,
):
    token = make_token(oidc)
    caplog.set_level(logging.INFO)

    response = post(webhook, json.dumps(a_payload()).encode(), token)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert answer(response) == {"error": "invalid_token", "reason": reason}
    assert queued() == []
    logged = [record.getMessage() for record in caplog.records]
    assert any(reason in line for line in logged)
    assert token is None or not any(token in line for line in logged)


def test_a_url_secret_without_a_token_is_refused(webhook: Webhook):
    """R40(a): a shared secret in the query string is not a credential, whatever its value."""
    response = post(
        webhook, json.dumps(a_payload()).encode(), None, params={"secret": "s3cr3t", "code": "abc"}
    )

    assert response.status_code == 401
    assert queued() == []


def test_a_declared_length_over_the_limit_is_refused_with_413(webhook: Webhook, oidc: OidcServer):
    response = post(
        webhook,
        json.dumps(a_payload()).encode(),
        good_token(oidc),
        {"Content-Length": str(MAX_BODY_BYTES + 1)},
    )

    assert response.status_code == 413
    assert answer(response)["error"] == "payload_too_large"
    assert queued() == []


def test_a_garbled_content_length_is_refused_with_400(webhook: Webhook, oidc: OidcServer):
    response = post(webhook, json.dumps(a_payload()).encode(), good_token(oidc), {"Content-Length": "-1"})

    assert response.status_code == 400
    assert answer(response)["reason"] == "Content-Length header is not a whole number"
    assert queued() == []


def test_a_body_over_the_limit_is_refused_with_413_even_without_a_length(webhook: Webhook, oidc: OidcServer):
    payload = a_payload(padding="x" * MAX_BODY_BYTES)

    response = post(webhook, json.dumps(payload).encode(), good_token(oidc))

    assert response.status_code == 413
    assert queued() == []


def test_size_is_checked_only_after_authentication(webhook: Webhook):
    response = post(webhook, b"x" * (MAX_BODY_BYTES + 1), None)

    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "body is not valid JSON"),
        (b"\xff\xfe\x00", "body is not valid JSON"),
        (b"", "body is not valid JSON"),
        (b"[1, 2]", "body must be a JSON object"),
        (json.dumps({k: v for k, v in a_payload().items() if k != "id"}).encode(), "'id' must be a GUID"),
        (json.dumps(a_payload(id=42)).encode(), "'id' must be a GUID"),
        (json.dumps(a_payload(id="op-1")).encode(), "'id' must be a GUID"),
        (json.dumps(a_payload(subscriptionId=None)).encode(), "'subscriptionId' must be a GUID"),
        (json.dumps(a_payload(subscriptionId=PATH_TRAVERSAL)).encode(), "'subscriptionId' must be a GUID"),
    ],
    ids=[
        "garbled",
        "not-utf8",
        "empty",
        "array",
        "no-id",
        "numeric-id",
        "non-guid-id",
        "null-sub",
        "path-sub",
    ],
)
def test_a_body_the_queue_cannot_use_is_refused_with_400(
    webhook: Webhook, oidc: OidcServer, caplog: pytest.LogCaptureFixture, body: bytes, reason: str
):
    caplog.set_level(logging.INFO)

    response = post(webhook, body, good_token(oidc))

    assert response.status_code == 400
    assert answer(response) == {"error": "invalid_body", "reason": reason}
    assert queued() == []
    assert any(reason in record.getMessage() for record in caplog.records)


def test_responses_carry_security_headers(webhook: Webhook, oidc: OidcServer):
    for token in (good_token(oidc), None):
        response = post(webhook, json.dumps(a_payload()).encode(), token)

        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.mimetype == "application/json"


def test_a_queue_that_refuses_turns_into_503_quickly(
    webhook: Webhook, oidc: OidcServer, environment: pytest.MonkeyPatch
):
    environment.setenv("QUEUE_BACKEND", "servicebus")
    environment.setenv(
        "ServiceBusConnection",
        f"Endpoint=sb://127.0.0.1:{free_port()}/;SharedAccessKeyName=RootManageSharedAccessKey;"
        "SharedAccessKey=bm90LWEtcmVhbC1rZXk=;UseDevelopmentEmulator=true",
    )
    reset_services()
    started = time.monotonic()

    response = post(webhook, json.dumps(a_payload()).encode(), good_token(oidc))

    assert response.status_code == 503
    assert answer(response)["error"] == "queue_unavailable"
    assert response.headers["Retry-After"]
    assert time.monotonic() - started < 5


def test_unreachable_signing_keys_turn_into_503_not_401(
    webhook: Webhook, oidc: OidcServer, environment: pytest.MonkeyPatch
):
    environment.setenv(
        "WEBHOOK_OPENID_CONFIG_URL",
        f"http://127.0.0.1:{free_port()}/{TENANT}/v2.0/.well-known/openid-configuration",
    )
    reset_services()

    response = post(webhook, json.dumps(a_payload()).encode(), good_token(oidc))

    assert response.status_code == 503
    assert answer(response)["error"] == "keys_unavailable"
    assert queued() == []


@pytest.mark.parametrize(
    "declared", ["\u00b2", "\u0663", "9" * 5000], ids=["superscript", "arabic-digit", "huge"]
)
def test_a_content_length_of_anything_but_ascii_digits_is_400(
    webhook: Webhook, oidc: OidcServer, declared: str
) -> None:
    # str.isdigit() accepts "²" and "٣", and int() of 5,000 digits raises: each was a 500 (hostile pass).
    response = post(webhook, b"{}", token=good_token(oidc), headers={"Content-Length": declared})

    assert response.status_code == 400
