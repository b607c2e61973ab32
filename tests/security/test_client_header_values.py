"""The Fulfillment client never puts CR/LF, control characters or non-Latin-1 text into a header (issue 7).

Before, a CR/LF in the purchase token became a transport error that was retried five times, and U+202E an
unhandled UnicodeEncodeError. Now either is the caller's typed mistake (a ValueError), refused before the
first attempt: nothing reaches the server, nothing waits, nothing is retried.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from shared.fulfillment.errors import UnsafeHeaderValueError
from tests.fulfillment import RecordingSleep, make_client
from tests.support.scripted_server import ScriptedResponse, ScriptedServer
from tests.support.spec import example_body

UNSAFE_TOKENS = {
    "CR LF": "abc\r\nX-Injected: 1",
    "line feed": "abc\ndef",
    "carriage return": "abc\rdef",
    "NUL": "abc\x00def",
    "DEL": "abc\x7fdef",
    "right-to-left override": "X\u202e",
    "emoji": "abc\U0001f600",
}


def resolved() -> ScriptedResponse:
    body = example_body("FulfillmentOperations_Resolve")
    body["subscription"]["id"] = body["id"]
    return ScriptedResponse(200, body=body)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as running:
        yield running


@pytest.mark.parametrize("token", UNSAFE_TOKENS.values(), ids=UNSAFE_TOKENS.keys())
def test_an_unsafe_header_value_is_a_typed_refusal_not_a_retry(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture, token: str
) -> None:
    server.script(*[resolved()] * 5)
    sleep = RecordingSleep()
    client, _ = make_client(server, sleep=sleep)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(UnsafeHeaderValueError) as refused:
        client.resolve(token)

    assert isinstance(refused.value, ValueError)
    assert refused.value.header == "x-ms-marketplace-token"
    assert server.requests == [], "nothing may reach the server"
    assert sleep.waits == [], "nothing is retried"
    assert token not in str(refused.value)
    assert [r.levelname for r in caplog.records if r.levelno >= logging.WARNING] == ["WARNING"]


def test_a_latin_1_clean_token_still_goes_out_unchanged(server: ScriptedServer) -> None:
    server.script(resolved())
    client, _ = make_client(server)

    client.resolve("ab+cd/ef==")

    [request] = server.requests
    assert request.headers["x-ms-marketplace-token"] == "ab+cd/ef=="
