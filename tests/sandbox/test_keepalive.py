"""The sandbox keeps connections alive, as Microsoft's endpoints do: one TLS handshake serves many calls."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from sandbox.server import RunningSandbox
from tests.support.sandbox import ApiCaller, running_sandbox


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox() as running:
        yield running


def _connections_made(session: requests.Session, url: str) -> int:
    """TCP (here TLS) connections the session's pools opened: urllib3 counts each new one."""
    pools = session.get_adapter(url).poolmanager.pools  # type: ignore[attr-defined]
    # urllib3's RecentlyUsedContainer refuses iteration; keys() is its way.
    return sum(int(pools[key].num_connections) for key in pools.keys())  # noqa: SIM118


def test_https_calls_share_one_connection(sandbox: RunningSandbox) -> None:
    api = ApiCaller(sandbox, token=sandbox.entra.mint_publisher_access_token())
    answers = [api.call("GET", "/subscriptions") for _ in range(20)]
    assert {answer.status_code for answer in answers} == {200}
    assert all(answer.headers.get("Connection", "").lower() != "close" for answer in answers)
    assert _connections_made(api._session, api.url("/subscriptions")) == 1


def test_a_client_asking_to_close_gets_its_connection_closed(sandbox: RunningSandbox) -> None:
    answer = requests.get(f"{sandbox.http_url}/control/health", headers={"Connection": "close"}, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["Connection"] == "close"


def _exchange(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(raw)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize(
    "first_body",
    [
        b"Content-Length: 11\r\n\r\nnot-read-by",  # a body the route never reads is skipped, not parsed
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    ],
)
def test_the_next_request_starts_right_after_an_unread_body(
    sandbox: RunningSandbox, first_body: bytes
) -> None:
    port = urlsplit(sandbox.http_url).port
    assert port is not None
    raw = (
        b"GET /control/health HTTP/1.1\r\nHost: x\r\n"
        + first_body
        + b"GET /control/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    received = _exchange(port, raw)
    assert received.count(b"HTTP/1.1 200") == 2, received
    assert b"400" not in received.split(b"\r\n", 1)[0]


def test_answers_are_not_held_back_by_nagle() -> None:
    # Headers and body go out in two writes; with Nagle on, the body waited 40 ms for the client's delayed ACK
    # on every keep-alive call (GetSubscription took 45 ms instead of 3).
    from sandbox.keepalive import KeepAliveRequestHandler
    from tests.support.nodelay import served_with_nodelay

    assert served_with_nodelay(KeepAliveRequestHandler)


def test_only_failed_requests_get_an_access_line(
    sandbox: RunningSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        assert requests.get(f"{sandbox.http_url}/control/health", timeout=10).status_code == 200
        assert requests.get(f"{sandbox.http_url}/control/no-such-page", timeout=10).status_code == 404
    access = [record.getMessage() for record in caplog.records if record.name == "werkzeug"]
    assert not any("/control/health" in line for line in access), access
    assert any("/control/no-such-page" in line and " 404 " in line for line in access), access
