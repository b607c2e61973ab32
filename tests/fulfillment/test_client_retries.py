"""Retries: only throttling, 5xx and transport failures are retried, Retry-After is honoured, attempts and
total time are bounded, and failures surface as typed errors carrying Microsoft's request id."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from shared.fulfillment.client import FulfillmentClient, parse_retry_after
from shared.fulfillment.errors import (
    FulfillmentBadRequestError,
    FulfillmentConflictError,
    FulfillmentError,
    FulfillmentForbiddenError,
    FulfillmentNotFoundError,
    FulfillmentServerError,
    FulfillmentThrottledError,
    FulfillmentTransportError,
    FulfillmentUnauthorizedError,
    is_transient,
)
from tests.fulfillment import (
    BASE_PATH,
    OPERATION_ID,
    SUBSCRIPTION_ID,
    RecordingSleep,
    assert_valid_request,
    docs_subscription,
    make_client,
)
from tests.support.ports import free_port
from tests.support.scripted_server import ScriptedResponse, ScriptedServer

OK = ScriptedResponse(200, body=docs_subscription())


@pytest.fixture
def server() -> Any:
    with ScriptedServer() as running:
        yield running


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


def test_throttled_then_ok_waits_retry_after_with_one_correlation_and_fresh_request_ids(
    server: ScriptedServer, sleep: RecordingSleep
) -> None:
    server.script(ScriptedResponse(429, headers={"Retry-After": "7"}), OK)
    client, credential = make_client(server, sleep=sleep)

    subscription = client.get_subscription(SUBSCRIPTION_ID)

    assert subscription.id == SUBSCRIPTION_ID
    assert sleep.waits == [7.0]
    first, second = server.requests
    for request in (first, second):
        assert_valid_request(request)
    assert first.headers["x-ms-correlationid"] == second.headers["x-ms-correlationid"]
    assert first.headers["x-ms-requestid"] != second.headers["x-ms-requestid"]
    # A token per attempt: the credential (azure-identity) decides whether it is cached or fresh.
    assert len(credential.scopes_requested) == 2
    assert second.headers["authorization"] == "Bearer test-token-2"


def test_retry_after_as_an_http_date_is_honoured(server: ScriptedServer, sleep: RecordingSleep) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    server.script(ScriptedResponse(429, headers={"Retry-After": when}), OK)
    client, _ = make_client(server, sleep=sleep)

    client.get_subscription(SUBSCRIPTION_ID)

    [waited] = sleep.waits
    assert 17.0 <= waited <= 20.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), (" 1.5 ", 1.5), ("-4", 0.0), ("soon", None), ("", None), (None, None)],
)
def test_retry_after_values(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_retry_after_date_in_the_past_means_now() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("Wed, 01 May 2024 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("Wed, 01 May 2024 12:00:30 GMT", now=now) == 30.0


def test_server_error_then_ok_backs_off_with_jitter(server: ScriptedServer, sleep: RecordingSleep) -> None:
    server.script(ScriptedResponse(500, body={"error": {"code": "Internal", "message": "boom"}}), OK)
    client, _ = make_client(server, sleep=sleep)

    client.get_subscription(SUBSCRIPTION_ID)

    assert len(server.requests) == 2
    [waited] = sleep.waits
    assert 0.0 <= waited <= 1.0  # full jitter under 0.5 s * 2^1


def test_backoff_grows_but_is_capped(server: ScriptedServer) -> None:
    server.script(*[ScriptedResponse(503) for _ in range(8)])
    sleep = RecordingSleep()
    client, _ = make_client(server, sleep=sleep, max_attempts=8, max_retry_seconds=1000)

    with pytest.raises(FulfillmentServerError):
        client.get_subscription(SUBSCRIPTION_ID)

    assert len(sleep.waits) == 7
    assert all(0.0 <= waited <= 10.0 for waited in sleep.waits)


def test_connection_refused_is_retried_then_a_transport_error(sleep: RecordingSleep) -> None:
    port = free_port()  # nothing listens here
    client = FulfillmentClient(
        f"http://127.0.0.1:{port}{BASE_PATH}", _Tokens(), sleep=sleep, max_attempts=3, connect_timeout=1
    )

    with pytest.raises(FulfillmentTransportError) as caught:
        client.get_subscription(SUBSCRIPTION_ID)

    assert len(sleep.waits) == 2
    assert caught.value.status_code is None
    assert caught.value.correlation_id
    assert is_transient(caught.value)


def test_connection_refused_then_the_server_comes_up() -> None:
    port = free_port()
    late_server = ScriptedServer(port=port)
    late_server.script(OK)

    def start_server_instead_of_sleeping(_: float) -> None:
        late_server.start()

    client = FulfillmentClient(
        f"http://127.0.0.1:{port}{BASE_PATH}",
        _Tokens(),
        sleep=start_server_instead_of_sleeping,
        max_attempts=3,
    )
    try:
        assert client.get_subscription(SUBSCRIPTION_ID).id == SUBSCRIPTION_ID
    finally:
        late_server.stop()
    [request] = late_server.requests
    assert_valid_request(request)


def test_read_timeout_is_retried(server: ScriptedServer, sleep: RecordingSleep) -> None:
    server.script(ScriptedResponse(200, body=docs_subscription(), delay=1.5), OK)
    client, _ = make_client(server, sleep=sleep, read_timeout=0.3)

    assert client.get_subscription(SUBSCRIPTION_ID).id == SUBSCRIPTION_ID

    assert len(server.requests) == 2
    assert len(sleep.waits) == 1


def test_read_timeouts_exhaust_into_a_transport_error(server: ScriptedServer, sleep: RecordingSleep) -> None:
    server.script(*[ScriptedResponse(200, delay=1.0) for _ in range(2)])
    client, _ = make_client(server, sleep=sleep, read_timeout=0.2, max_attempts=2)

    with pytest.raises(FulfillmentTransportError, match="ReadTimeout"):
        client.get_subscription(SUBSCRIPTION_ID)


def test_attempts_are_bounded(server: ScriptedServer, sleep: RecordingSleep) -> None:
    server.script(*[ScriptedResponse(503, headers={"x-ms-requestid": f"ms-{n}"}) for n in range(5)])
    client, _ = make_client(server, sleep=sleep, max_attempts=3)

    with pytest.raises(FulfillmentServerError) as caught:
        client.get_subscription(SUBSCRIPTION_ID)

    assert len(server.requests) == 3
    assert len(sleep.waits) == 2
    assert caught.value.status_code == 503
    assert caught.value.request_id == "ms-2"  # the last attempt's


def test_total_retry_time_is_bounded(server: ScriptedServer, sleep: RecordingSleep) -> None:
    server.script(*[ScriptedResponse(429, headers={"Retry-After": "4"}) for _ in range(10)])
    client, _ = make_client(server, sleep=sleep, max_attempts=50, max_retry_seconds=10)

    with pytest.raises(FulfillmentThrottledError) as caught:
        client.get_subscription(SUBSCRIPTION_ID)

    assert sleep.waits == [4.0, 4.0]  # a third wait would end after 12 s > 10 s
    assert len(server.requests) == 3
    assert caught.value.retry_after == 4.0


def test_a_retry_after_beyond_the_budget_gives_up_at_once(
    server: ScriptedServer, sleep: RecordingSleep
) -> None:
    server.script(ScriptedResponse(429, headers={"Retry-After": "120"}))
    client, _ = make_client(server, sleep=sleep, max_retry_seconds=30)

    with pytest.raises(FulfillmentThrottledError) as caught:
        client.get_subscription(SUBSCRIPTION_ID)

    assert sleep.waits == []
    assert caught.value.retry_after == 120.0  # so the caller can reschedule the work


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, FulfillmentBadRequestError),
        (401, FulfillmentUnauthorizedError),
        (403, FulfillmentForbiddenError),
        (404, FulfillmentNotFoundError),
        (409, FulfillmentConflictError),
    ],
)
def test_client_errors_are_never_retried_and_carry_microsofts_request_id(
    server: ScriptedServer, sleep: RecordingSleep, status: int, error_class: type[FulfillmentError]
) -> None:
    server.script(
        ScriptedResponse(
            status,
            body={"error": {"code": "Reason", "message": "Plan is not available for this subscription"}},
            headers={"x-ms-requestid": "ms-echo-1"},
        ),
        OK,
    )
    client, _ = make_client(server, sleep=sleep)

    with pytest.raises(error_class) as caught:
        client.update_operation(SUBSCRIPTION_ID, OPERATION_ID, success=True)

    error = caught.value
    assert type(error) is error_class
    assert (error.status_code, error.request_id) == (status, "ms-echo-1")
    assert error.correlation_id == server.requests[0].headers["x-ms-correlationid"]
    assert error.detail == "Plan is not available for this subscription"
    assert not is_transient(error)
    assert len(server.requests) == 1
    assert sleep.waits == []
    assert server.unanswered == 1


def test_without_an_echo_the_error_carries_our_request_id(
    server: ScriptedServer, sleep: RecordingSleep
) -> None:
    server.script(ScriptedResponse(404, body="no such subscription"))
    client, _ = make_client(server, sleep=sleep)

    with pytest.raises(FulfillmentNotFoundError) as caught:
        client.get_subscription(SUBSCRIPTION_ID)

    assert caught.value.request_id == server.requests[0].headers["x-ms-requestid"]
    assert caught.value.detail == "no such subscription"
    assert "request_id=" in str(caught.value)


def test_error_detail_never_carries_a_bearer_token(server: ScriptedServer, sleep: RecordingSleep) -> None:
    server.script(ScriptedResponse(403, body={"message": "token Bearer eyJhbGciOi.eyJzdWIi.c2ln rejected"}))
    client, _ = make_client(server, sleep=sleep)

    with pytest.raises(FulfillmentForbiddenError) as caught:
        client.get_subscription(SUBSCRIPTION_ID)

    assert "eyJ" not in caught.value.detail
    assert "rejected" in caught.value.detail


def test_a_credential_that_cannot_get_a_token_is_an_unauthorized_error(sleep: RecordingSleep) -> None:
    class RefusingCredential:
        def get_token(self, *scopes: str, **_: Any) -> AccessToken:
            raise ClientAuthenticationError("AADSTS7000215: Invalid client secret provided.")

    client = FulfillmentClient("http://127.0.0.1:9/api", RefusingCredential(), sleep=sleep)

    with pytest.raises(FulfillmentUnauthorizedError, match="no token"):
        client.get_subscription(SUBSCRIPTION_ID)
    assert sleep.waits == []


def test_every_attempt_is_logged_with_ids_and_without_the_token(
    server: ScriptedServer, sleep: RecordingSleep, caplog: pytest.LogCaptureFixture
) -> None:
    server.script(ScriptedResponse(500, headers={"x-ms-requestid": "ms-a"}), OK)
    client, _ = make_client(server, sleep=sleep)

    with caplog.at_level(logging.INFO, logger="shared.fulfillment.client"):
        client.get_subscription(SUBSCRIPTION_ID, correlation_id="aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee")

    calls = [r for r in caplog.records if r.getMessage() == "fulfillment api call"]
    assert [(r.status_code, r.attempt) for r in calls] == [(500, 1), (200, 2)]
    for record in calls:
        assert record.http_method == "GET"
        assert record.path_template == "/saas/subscriptions/{subscriptionId}"
        assert record.correlation_id == "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
        assert record.elapsed_ms >= 0
    assert calls[0].request_id == "ms-a"
    assert calls[1].request_id == server.requests[1].headers["x-ms-requestid"]
    assert "test-token" not in caplog.text
    assert SUBSCRIPTION_ID not in " ".join(r.path_template for r in calls)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (FulfillmentThrottledError("x", status_code=429), True),
        (FulfillmentServerError("x", status_code=502), True),
        (FulfillmentTransportError("x"), True),
        (FulfillmentBadRequestError("x", status_code=400), False),
        (FulfillmentConflictError("x", status_code=409), False),
        (FulfillmentError("x", status_code=418), False),
        (ValueError("x"), False),
    ],
)
def test_is_transient(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


class _Tokens:
    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        return AccessToken("test-token-x", 4_102_444_800)
