"""Webhook calls: an Entra-signed bearer token checked as a publisher must (R39), retries with backoff."""

from __future__ import annotations

import itertools
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
import requests

from sandbox.marketplace.settings import SandboxSettings
from sandbox.server import RunningSandbox
from sandbox.webhooks import ReusedToken, WebhookSender
from tests.support.ports import refusing_port
from tests.support.sandbox import ControlClient, WebhookReceiver, running_sandbox, wait_until

MARKETPLACE_API_APP_ID = "20e940b3-4c77-4b0b-9a53-9e16a1b010a7"
BASE_DELAY = 0.05
MAX_ATTEMPTS = 4


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(
        auto_accept_seconds=30, webhook_base_delay_seconds=BASE_DELAY, webhook_max_attempts=MAX_ATTEMPTS
    ) as sb:
        yield sb


@pytest.fixture
def receiver(control: ControlClient) -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as webhook_receiver:
        control.settings(webhookUrl=webhook_receiver.url)
        yield webhook_receiver


def subscribed(control: ControlClient, sandbox: RunningSandbox, plan_id: str = "basic") -> str:
    subscription_id = control.buy(plan_id)["subscriptionId"]
    sandbox.marketplace.activate(subscription_id, {"planId": plan_id})
    return subscription_id


def jwks_client(sandbox: RunningSandbox) -> tuple[jwt.PyJWKClient, str]:
    """Finds keys and issuer as a publisher does: its tenant's OpenID metadata -> jwks_uri, over HTTPS."""
    tenant = sandbox.publisher.tenant_id
    session = requests.Session()
    session.trust_env = False
    metadata = session.get(
        f"{sandbox.https_url}/{tenant}/v2.0/.well-known/openid-configuration",
        verify=str(sandbox.ca_bundle),
        timeout=10,
    ).json()
    assert metadata["jwks_uri"].startswith("https://")
    context = ssl.create_default_context(cafile=str(sandbox.ca_bundle))
    return jwt.PyJWKClient(metadata["jwks_uri"], ssl_context=context), metadata["issuer"]


def test_webhook_carries_a_token_that_verifies_against_the_served_jwks(
    sandbox: RunningSandbox, control: ControlClient, receiver: WebhookReceiver
) -> None:
    subscription_id = subscribed(control, sandbox)
    operation_id = control.suspend(subscription_id)["operationId"]
    webhook = receiver.wait_for(1)[0]
    scheme, _, token = webhook.headers["authorization"].partition(" ")
    assert scheme == "Bearer"
    client, issuer = jwks_client(sandbox)
    claims = jwt.decode(
        token,
        client.get_signing_key_from_jwt(token).key,
        algorithms=["RS256"],
        audience=sandbox.publisher.client_id,
        issuer=issuer,
        options={"require": ["exp", "nbf", "iat", "aud", "iss", "tid"]},
    )
    assert claims["tid"] == sandbox.publisher.tenant_id
    assert claims.get("azp", claims.get("appid")) == MARKETPLACE_API_APP_ID
    assert webhook.headers["content-type"] == "application/json"
    assert (webhook.body["id"], webhook.body["action"]) == (operation_id, "Suspend")


def test_a_token_from_another_key_would_not_verify(sandbox: RunningSandbox) -> None:
    """Guards the test above: the JWKS check really refuses a token the sandbox did not sign."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = sandbox.entra.mint_webhook_token(sign_with=stranger)
    client, issuer = jwks_client(sandbox)
    with pytest.raises(jwt.InvalidTokenError):
        jwt.decode(
            forged,
            client.get_signing_key_from_jwt(forged).key,
            algorithms=["RS256"],
            audience=sandbox.publisher.client_id,
            issuer=issuer,
        )


def test_delivery_is_retried_with_growing_delays_until_a_200(
    sandbox: RunningSandbox, control: ControlClient, receiver: WebhookReceiver
) -> None:
    receiver.answer_next(500, 503, 502)
    operation_id = control.suspend(subscribed(control, sandbox))["operationId"]
    arrivals = [w.at for w in receiver.wait_for(4)]
    deliveries = wait_until(lambda: (d := control.deliveries(operation_id)) and len(d) == 4 and d)
    assert [(d["attempt"], d["status"]) for d in deliveries] == [(1, 500), (2, 503), (3, 502), (4, 200)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    for attempt, gap in enumerate(gaps, start=1):
        assert gap >= BASE_DELAY * 2 ** (attempt - 1) * 0.9
    assert all(w.headers["authorization"].startswith("Bearer ") for w in receiver.received)


def test_delivery_gives_up_after_the_configured_attempts(
    sandbox: RunningSandbox, control: ControlClient, receiver: WebhookReceiver
) -> None:
    receiver.answer_next(*([500] * 10))
    operation_id = control.renew(subscribed(control, sandbox))["operationId"]
    receiver.wait_for(MAX_ATTEMPTS)
    wait_until(lambda: sandbox.webhooks.in_flight() == 0)  # the sender has given up: nothing more comes
    assert len(receiver.received) == MAX_ATTEMPTS
    assert [d["status"] for d in control.deliveries(operation_id)] == [500] * MAX_ATTEMPTS


def test_unreachable_publisher_is_logged_and_retried(sandbox: RunningSandbox, control: ControlClient) -> None:
    with refusing_port() as port:  # held, so no other test's server can take it meanwhile
        control.settings(webhookUrl=f"http://127.0.0.1:{port}/api/webhook", webhookMaxAttempts=2)
        operation_id = control.suspend(subscribed(control, sandbox))["operationId"]
        deliveries = wait_until(lambda: (d := control.deliveries(operation_id)) and len(d) == 2 and d)
    assert [d["status"] for d in deliveries] == [None, None]
    assert deliveries[0]["error"] == "ConnectionError"


@pytest.mark.parametrize("status", [500, 429])
def test_answers_that_mean_try_later_do_not_reject_a_change(
    sandbox: RunningSandbox, control: ControlClient, receiver: WebhookReceiver, status: int
) -> None:
    subscription_id = subscribed(control, sandbox, "basic")
    receiver.answer_next(status)
    operation_id = control.change_plan(subscription_id, "pro")["operationId"]
    receiver.wait_for(2)
    # The receiver has the second POST before the sender logs its answer: wait for the log, as above.
    deliveries = wait_until(lambda: (d := control.deliveries(operation_id)) and len(d) == 2 and d)
    assert [d["status"] for d in deliveries] == [status, 200]
    assert control.operation(operation_id)["status"] == "InProgress"


def test_reset_abandons_pending_retries(
    sandbox: RunningSandbox, control: ControlClient, receiver: WebhookReceiver
) -> None:
    # A retry a second later, not 50 ms: on a loaded machine the reset must surely come before it.
    control.settings(webhookBaseDelaySeconds=1.0)
    receiver.answer_next(*([500] * 10))
    control.suspend(subscribed(control, sandbox))
    receiver.wait_for(1)
    control.reset()
    wait_until(lambda: sandbox.webhooks.in_flight() == 0)  # the abandoned retry has woken up and ended
    assert len(receiver.received) == 1
    assert control.deliveries() == []


def test_webhooks_reuse_one_token_as_microsofts_client_does(
    sandbox: RunningSandbox, control: ControlClient, receiver: WebhookReceiver
) -> None:
    subscription_id = subscribed(control, sandbox)
    control.suspend(subscription_id)
    first = receiver.wait_for(1)[0]
    control.reinstate(subscription_id)
    second = receiver.wait_for(2)[1]
    assert first.headers["authorization"] == second.headers["authorization"]


def test_a_reused_token_is_renewed_before_it_expires_and_when_its_claims_change() -> None:
    now = [1_000_000.0]
    claims = {"aud": "app-1", "tid": "tenant-1"}
    minted: list[str] = []

    def mint() -> str:
        token = jwt.encode(
            {**claims, "exp": int(now[0]) + 3600, "n": len(minted)}, "k" * 32, algorithm="HS256"
        )
        minted.append(token)
        return token

    token = ReusedToken(
        mint, lambda: {**claims, "iat": int(now[0]), "exp": int(now[0]) + 3600}, lambda: now[0]
    )
    assert token() == token() == minted[0]
    now[0] += 3600 - ReusedToken.RENEW_BEFORE_SECONDS - 1
    assert token() == minted[0], "still more than the margin left"
    now[0] += 2
    assert token() == minted[1], "renewed inside the margin before expiry"
    claims["aud"] = "app-2"
    assert token() == minted[2], "another app registration: another token"
    assert len(minted) == 3


class _QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def _serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A publisher stand-in on a free loopback port for the block; yields its webhook URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/webhook"
    finally:
        server.shutdown()
        server.server_close()


def test_deliveries_keep_their_connection_open_between_webhooks(
    sandbox: RunningSandbox, control: ControlClient
) -> None:
    ports: list[int] = []

    class KeepAlive(_QuietHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            ports.append(self.client_address[1])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    with _serving(KeepAlive) as url:
        control.settings(webhookUrl=url)
        subscription_id = subscribed(control, sandbox)
        # Each waits until the sandbox has recorded the delivery, which is after its answer was read and the
        # connection went back to the pool; a request merely received (`ports`) may still hold its connection,
        # and the next delivery would open another.
        before = len(control.deliveries())
        for round_ in range(3):
            control.suspend(subscription_id)
            wait_until(lambda expected=before + 2 * round_ + 1: len(control.deliveries()) >= expected, 5)
            control.reinstate(subscription_id)
            wait_until(lambda expected=before + 2 * round_ + 2: len(control.deliveries()) >= expected, 5)
    assert len(ports) == 6
    assert len(set(ports)) == 1, ports


def test_a_kept_open_connection_the_publisher_dropped_costs_no_attempt() -> None:
    # The server answers the first request on a connection and closes it when the next one arrives on it,
    # as a server whose idle timeout fires just then does: the second webhook goes again at once.
    answered: list[str] = []

    def handle(connection: socket.socket) -> None:
        with connection:
            for number in itertools.count(1):
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    head += chunk
                if number > 1:
                    return  # closed without an answer
                answered.append("200")
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # closed at the end of the test
                return
            threading.Thread(target=handle, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/api/webhook"
    try:
        deliveries = _two_webhooks(
            {"webhook_url": url, "webhook_max_attempts": 3, "webhook_base_delay_seconds": 5.0}
        )
    finally:
        listener.close()
    attempts = [(d["operationId"], d["attempt"], d["status"]) for d in deliveries]
    assert attempts == [("first", 1, 200), ("second", 1, 200)], attempts


def _two_webhooks(settings_changes: dict[str, object]) -> list[dict[str, object]]:
    """Two webhooks, one after the other, from a sender of their own; its delivery log."""
    settings = SandboxSettings().with_changes(settings_changes)
    token = jwt.encode({"exp": int(time.time()) + 3600}, "k" * 32, algorithm="HS256")
    sender = WebhookSender(
        settings=lambda: settings,
        mint_token=ReusedToken(lambda: token, dict),
        on_answer=lambda operation_id, status: False,
    )
    try:
        for operation_id in ("first", "second"):
            sender.send(operation_id, {"id": operation_id, "action": "Suspend"})
            wait_until(lambda: sender.in_flight() == 0, 4)
    finally:
        sender.stop()
    return sender.deliveries()


def test_the_control_apis_reset_starts_the_next_test_with_a_new_token() -> None:
    minted: list[str] = []

    def mint() -> str:
        minted.append(jwt.encode({"exp": int(time.time()) + 3600, "n": len(minted)}, "k" * 32, "HS256"))
        return minted[-1]

    token = ReusedToken(mint, dict)
    sender = WebhookSender(
        settings=SandboxSettings, mint_token=token, on_answer=lambda operation_id, status: False
    )
    assert token() == token()
    sender.clear()
    assert token() != minted[0]
    assert len(minted) == 2
    sender.stop()


def test_a_cookie_the_publisher_sets_never_comes_back_on_a_later_webhook() -> None:
    # One Session serves every delivery: without a cookie policy, a cookie from one answer (an affinity
    # cookie, say) rode on every later webhook, and across tests.
    cookies: list[str | None] = []

    class SetsCookies(_QuietHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            cookies.append(self.headers.get("Cookie"))
            self.send_response(200)
            self.send_header("Set-Cookie", "ARRAffinity=instance-7; Path=/")
            self.send_header("Content-Length", "0")
            self.end_headers()

    with _serving(SetsCookies) as url:
        _two_webhooks({"webhook_url": url, "webhook_max_attempts": 1})
    assert cookies == [None, None]
