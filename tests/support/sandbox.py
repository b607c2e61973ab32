"""Test helpers for the marketplace sandbox: start one, drive its control API, call its Fulfillment API.

with running_sandbox(webhook_url=..., auto_accept_seconds=0.3) as sandbox:
    control = ControlClient(sandbox.http_url)
    bought = control.buy("team-seats", quantity=5)          # {"subscriptionId", "token", "landingUrl"}
    api = ApiCaller(sandbox)                                # bearer token + CA bundle already set
    api.call("POST", "/subscriptions/resolve", headers={"x-ms-marketplace-token": bought["token"]})
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import requests

from sandbox.server import RunningSandbox, start_sandbox
from tests.support.ports import refusing_port

API_VERSION = "2018-08-31"
DEFAULT_BUYER = "adele.vance@contoso.onmicrosoft.com"
CSP_PARTNER = "nestor.wilke@northwindpartners.onmicrosoft.com"
CONTOSO_TENANT = "11111111-0000-4000-8000-000000000000"
FABRIKAM_TENANT = "22222222-0000-4000-8000-000000000000"

T = TypeVar("T")


@contextmanager
def running_sandbox(**kwargs: Any) -> Iterator[RunningSandbox]:
    """A sandbox for the block (arguments as `sandbox.server.start_sandbox`), stopped afterwards.

    A fresh sandbox without a `webhook_url` would call the default http://127.0.0.1:7071, where another
    test worker's app may listen and answer (a 4xx there even rejects a change). It gets a port held
    for the block that refuses every connection instead. A restored state (`state_dir`) keeps its own.
    """
    with ExitStack() as held:
        if "webhook_url" not in kwargs and kwargs.get("state_dir") is None:
            port = held.enter_context(refusing_port())
            kwargs["webhook_url"] = f"http://127.0.0.1:{port}/api/webhook"
        sandbox = start_sandbox(**kwargs)
        try:
            yield sandbox
        finally:
            sandbox.stop()


def wait_until(condition: Callable[[], T], timeout: float = 5.0, interval: float = 0.02) -> T:
    """Polls `condition` until it returns something truthy; raises AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # no proxy between a test and 127.0.0.1
    return session


class ControlError(AssertionError):
    """The control API refused a call; `status` and `body` say why."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"control API answered {status}: {body}")
        self.status = status
        self.body = body


class ControlClient:
    """Small client for /control (see sandbox/control/); every method returns parsed JSON."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._session = _session()

    def request(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self._session.request(
            method, f"{self.base_url}/control{path}", json=body, params=params or None, timeout=self._timeout
        )
        parsed = response.json() if response.content else None
        if response.status_code >= 400:
            raise ControlError(response.status_code, parsed)
        return parsed

    def buy(
        self, plan_id: str, *, buyer: str = DEFAULT_BUYER, quantity: int | None = None, **extra: Any
    ) -> Any:
        body = {"planId": plan_id, "buyer": buyer, **extra}
        if quantity is not None:
            body["quantity"] = quantity
        return self.request("POST", "/purchases", body)

    def buy_as_csp(
        self,
        plan_id: str,
        *,
        customer_tenant_id: str,
        partner: str = CSP_PARTNER,
        quantity: int | None = None,
    ) -> Any:
        body: dict[str, Any] = {"planId": plan_id, "partner": partner, "customerTenantId": customer_tenant_id}
        if quantity is not None:
            body["quantity"] = quantity
        return self.request("POST", "/purchases", body)

    def new_token(self, subscription_id: str) -> Any:
        return self.request("POST", f"/subscriptions/{subscription_id}/token")

    def change_plan(self, subscription_id: str, plan_id: str) -> Any:
        return self.request("POST", f"/subscriptions/{subscription_id}/change-plan", {"planId": plan_id})

    def change_quantity(self, subscription_id: str, quantity: int) -> Any:
        return self.request(
            "POST", f"/subscriptions/{subscription_id}/change-quantity", {"quantity": quantity}
        )

    def suspend(self, subscription_id: str) -> Any:
        return self.request("POST", f"/subscriptions/{subscription_id}/suspend")

    def reinstate(self, subscription_id: str) -> Any:
        return self.request("POST", f"/subscriptions/{subscription_id}/reinstate")

    def unsubscribe(self, subscription_id: str) -> Any:
        return self.request("POST", f"/subscriptions/{subscription_id}/unsubscribe")

    def renew(self, subscription_id: str) -> Any:
        return self.request("POST", f"/subscriptions/{subscription_id}/renew")

    def subscription(self, subscription_id: str) -> Any:
        """`{"subscription": ..., "operations": [...]}` as Microsoft sees it."""
        return self.request("GET", f"/subscriptions/{subscription_id}")

    def operation(self, operation_id: str) -> Any:
        return self.request("GET", f"/operations/{operation_id}")

    def deliveries(self, operation_id: str | None = None) -> list[dict[str, Any]]:
        params = {"operationId": operation_id} if operation_id else {}
        return self.request("GET", "/webhooks/deliveries", **params)["deliveries"]

    def settings(self, **changes: Any) -> Any:
        """Reads the settings, or changes them when camelCase `changes` are given."""
        return self.request("PATCH", "/settings", changes) if changes else self.request("GET", "/settings")

    def add_fault(self, **rule: Any) -> Any:
        return self.request("POST", "/faults", rule)

    def clear_faults(self) -> None:
        self.request("DELETE", "/faults")

    def reset(self) -> None:
        self.request("POST", "/reset")


class ApiCaller:
    """Raw Fulfillment API calls over HTTPS with a valid publisher token; returns `requests.Response`."""

    def __init__(self, sandbox: RunningSandbox, token: str | None = None, timeout: float = 10.0) -> None:
        self.base_url = sandbox.fulfillment_base_url + "/saas"
        self._sandbox = sandbox
        self._token = token
        self._timeout = timeout
        self._session = _session()
        self._session.verify = str(sandbox.ca_bundle)

    def url(self, path: str, **query: str) -> str:
        """Absolute URL of `path` (under /saas) with `query`; api-version=2018-08-31 unless overridden."""
        query = {"api-version": API_VERSION, **query}
        encoded = "&".join(f"{name}={requests.utils.quote(value, safe='')}" for name, value in query.items())
        return f"{self.base_url}{path}?{encoded}"

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        token = self._token or self._sandbox.entra.mint_publisher_access_token()
        return {"Authorization": f"Bearer {token}", "Content-Type": "application/json", **(extra or {})}

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        url: str | None = None,
    ) -> requests.Response:
        data = None if body is None else (body if isinstance(body, bytes) else _json_bytes(body))
        return self._session.request(
            method, url or self.url(path), data=data, headers=self.headers(headers), timeout=self._timeout
        )


def _json_bytes(body: Any) -> bytes:
    return json.dumps(body).encode("utf-8")


@dataclass(frozen=True)
class ReceivedWebhook:
    headers: dict[str, str]
    body: Any
    at: float


class WebhookReceiver:
    """Plays the publisher's webhook endpoint: answers queued statuses first, then `default_status`.

    with WebhookReceiver(answers=[500, 503]) as receiver:   # two failures, then 200s
        ... settings webhookUrl=receiver.url ...
        receiver.wait_for(3)
    """

    def __init__(self, answers: list[int] | None = None, default_status: int = 200) -> None:
        self.received: list[ReceivedWebhook] = []
        self._answers: deque[int] = deque(answers or [])
        self._default_status = default_status
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/api/webhook"

    def answer_next(self, *statuses: int) -> None:
        with self._lock:
            self._answers.extend(statuses)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedWebhook]:
        """The first `count` webhooks, waiting up to `timeout` seconds for them to arrive."""
        wait_until(lambda: len(self.received) >= count, timeout)
        return self.received[:count]

    def _record(self, headers: dict[str, str], raw: bytes) -> int:
        with self._lock:
            self.received.append(ReceivedWebhook(headers, json.loads(raw or b"null"), time.monotonic()))
            return self._answers.popleft() if self._answers else self._default_status

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver._record({k.lower(): v for k, v in self.headers.items()}, raw)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
