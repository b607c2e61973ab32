"""Any webhook body that is not the JSON object Microsoft sends gets 400, never 500 (issue 7, item 5).

Microsoft retries a 500 for hours, so a body that crashes the parser turns into a retry storm. Before the
fix, deeply nested arrays raised RecursionError (500), and duplicate keys, NaN and 1e999 were accepted and
queued. The parser is fuzzed with hypothesis: whatever the bytes, it returns a dict or raises its own
InvalidWebhookBodyError. The registered function, served by the dev host over 127.0.0.1 with a genuine
bearer token, answers 400 for each hostile body and queues nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devhost.http_host import FunctionsWsgiApp, HttpHost
from shared.app_context import reset_services, services
from shared.entrypoints.webhook import InvalidWebhookBodyError, parse_webhook_body
from shared.queueing.messages import MalformedMessageError, decode_body
from tests.support.oidc_server import OidcServer
from tests.support.tokens import marketplace_claims, mint

TENANT = str(uuid.uuid4())
CLIENT_ID = str(uuid.uuid4())
OPERATION = str(uuid.uuid4())
SUBSCRIPTION = str(uuid.uuid4())
IDS = f'"id": "{OPERATION}", "subscriptionId": "{SUBSCRIPTION}"'

HOSTILE_BODIES = {
    "deeply nested arrays": b"[" * 100_000 + b"]" * 100_000,
    "deeply nested objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "nested past the bound inside a valid event": f'{{{IDS}, "x": {"[" * 40}{"]" * 40}}}'.encode(),
    "huge float": f'{{{IDS}, "quantity": 1e999}}'.encode(),
    "huge integer": f'{{{IDS}, "quantity": {"9" * 4000}}}'.encode(),
    "integer past 64 bits": f'{{{IDS}, "quantity": {2**64}}}'.encode(),
    "NaN": f'{{{IDS}, "quantity": NaN}}'.encode(),
    "Infinity": f'{{{IDS}, "quantity": -Infinity}}'.encode(),
    "duplicate id": f'{{{IDS}, "id": "{uuid.uuid4()}"}}'.encode(),
    "lone surrogate": f'{{{IDS}, "action": "\\ud800"}}'.encode(),
    "array": b"[]",
    "string": b'"event"',
    "number": b"42",
    "null": b"null",
    "invalid UTF-8": b'{"id": "\xff\xfe"}',
    "empty": b"",
}

# Valid JSON objects of the wrong shape: the parser returns them, the handler refuses them.
WRONG_SHAPES = {
    "id of the wrong type": f'{{"id": 7, "subscriptionId": "{SUBSCRIPTION}"}}'.encode(),
    "subscription id not a GUID": f'{{"id": "{OPERATION}", "subscriptionId": ["x"]}}'.encode(),
    "UTF-8 byte order mark": b"\xef\xbb\xbf{}",
}

JSON_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text()
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


def parses_or_refuses(raw: bytes) -> None:
    """The property: a dict back, or the parser's own error; any other exception fails the test."""
    try:
        payload = parse_webhook_body(raw)
    except InvalidWebhookBodyError:
        return
    assert isinstance(payload, dict)
    json.dumps(payload, allow_nan=False).encode("utf-8")  # what was accepted can be queued as strict JSON


@given(st.binary(max_size=2048))
@settings(max_examples=400, deadline=None)
def test_arbitrary_bytes_parse_or_are_refused(raw: bytes) -> None:
    parses_or_refuses(raw)


@given(JSON_VALUES)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_arbitrary_json_parses_or_is_refused(value: Any) -> None:
    parses_or_refuses(json.dumps(value).encode())


@given(st.integers(min_value=1, max_value=200_000), st.sampled_from(["[", '{"a":']))
@settings(max_examples=25, deadline=None)
def test_any_nesting_depth_parses_or_is_refused(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    leaf = "" if opener == "[" else "1"
    parses_or_refuses((opener * depth + leaf + closer * depth).encode())


@pytest.mark.parametrize("raw", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_each_hostile_body_is_the_parsers_own_refusal(raw: bytes) -> None:
    with pytest.raises(InvalidWebhookBodyError):
        parse_webhook_body(raw)


def test_microsofts_notification_still_parses() -> None:
    body = {"id": OPERATION, "subscriptionId": SUBSCRIPTION, "quantity": 5, "purchaseToken": None}
    assert parse_webhook_body(json.dumps(body).encode()) == body


def test_a_deeply_nested_queue_message_is_malformed_not_a_crash() -> None:
    with pytest.raises(MalformedMessageError):
        decode_body(b"[" * 100_000 + b"]" * 100_000)


# --- the HTTP handler, over a real socket -----------------------------------------------------------------


@pytest.fixture(scope="module")
def oidc() -> Iterator[OidcServer]:
    with OidcServer() as server:
        yield server


@pytest.fixture
def app_url(monkeypatch: pytest.MonkeyPatch, oidc: OidcServer) -> Iterator[str]:
    import function_app

    for name, value in {
        "QUEUE_BACKEND": "memory",
        "PUBLISHER_TENANT_ID": TENANT,
        "PUBLISHER_CLIENT_ID": CLIENT_ID,
        "WEBHOOK_OPENID_CONFIG_URL": oidc.metadata_url(TENANT),
        "WEBHOOK_MAX_BODY_BYTES": str(1024 * 1024),
        "STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("WEBHOOK_AUDIENCE", raising=False)
    reset_services()
    host = HttpHost(FunctionsWsgiApp(function_app.app), port=0)
    host.start()
    try:
        yield host.url
    finally:
        host.stop()
        reset_services()


def post(app_url: str, oidc: OidcServer, body: bytes) -> requests.Response:
    token = mint(marketplace_claims(TENANT, CLIENT_ID, authority=oidc.base_url), oidc.signing_key)
    return requests.post(
        f"{app_url}/api/webhook",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=30,
    )


@pytest.mark.parametrize(
    "raw", [*HOSTILE_BODIES.values(), *WRONG_SHAPES.values()], ids=[*HOSTILE_BODIES, *WRONG_SHAPES]
)
def test_the_webhook_answers_400_and_queues_nothing(app_url: str, oidc: OidcServer, raw: bytes) -> None:
    answer = post(app_url, oidc, raw)

    assert answer.status_code == 400, answer.text[:200]
    assert answer.json()["error"] == "invalid_body"
    assert services().queue.messages == []  # type: ignore[attr-defined]


def test_the_webhook_still_accepts_microsofts_notification(app_url: str, oidc: OidcServer) -> None:
    body = {"id": OPERATION, "subscriptionId": SUBSCRIPTION, "action": "Suspend", "quantity": 5}

    answer = post(app_url, oidc, json.dumps(body).encode())

    assert answer.status_code == 200
    assert len(services().queue.messages) == 1  # type: ignore[attr-defined]
