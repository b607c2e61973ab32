"""Webhook calls to the publisher, as Microsoft makes them: JSON POST with an Entra bearer token, retried.

Each delivery runs in its own background thread: POST the body to the configured webhook URL with
`Authorization: Bearer <token>`, and retry with exponential backoff (base delay x 2^(attempt-1)) while
the answer is not 200, up to the configured number of attempts. Like Microsoft's own client, the sender keeps
its connections open between calls and reuses one Entra token until shortly before it expires
(`ReusedToken`); a fresh connection and an RSA signature per webhook made the sandbox, not the app, the
bottleneck of a burst. A 4xx answer (except 408/429) to a pending
ChangePlan/ChangeQuantity is the publisher's "no" (R34): the marketplace records the rejection and the
delivery stops. Every attempt is kept in a delivery log the control API shows.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import jwt
import requests
from requests.adapters import HTTPAdapter

from sandbox.marketplace.settings import SandboxSettings

log = logging.getLogger("sandbox.webhooks")

TokenMinter = Callable[[], str]
ClaimsSource = Callable[[], dict[str, Any]]
# Open connections kept to the publisher: as many as the Functions host serves at once (host.json's
# maxConcurrentRequests); a burst's deliveries beyond them use a connection once.
POOL_CONNECTIONS = 100
AnswerHandler = Callable[[str, int | None], bool]  # (operation id, status or None) -> answer settles it
SettingsSource = Callable[[], SandboxSettings]


@dataclass(frozen=True)
class DeliveryAttempt:
    """One POST to the publisher. `status` is None when no HTTP answer came (refused, timed out)."""

    operation_id: str
    action: str
    attempt: int
    url: str
    status: int | None
    error: str
    elapsed_seconds: float
    at: str

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        return {
            "operationId": body["operation_id"],
            "action": body["action"],
            "attempt": body["attempt"],
            "url": body["url"],
            "status": body["status"],
            "error": body["error"],
            "elapsedSeconds": body["elapsed_seconds"],
            "at": body["at"],
        }


class ReusedToken:
    """The webhook's bearer token as a client-credentials token cache hands it out: minted once, reused until
    `RENEW_BEFORE_SECONDS` before it expires, and minted again as soon as the claims it would carry change
    (another publisher tenant or app registration)."""

    RENEW_BEFORE_SECONDS = 300

    def __init__(
        self, mint: TokenMinter, claims: ClaimsSource, clock: Callable[[], float] = time.time
    ) -> None:
        self._mint = mint
        self._claims = claims
        self._clock = clock
        self._lock = threading.Lock()
        self._token = ""
        self._identity: dict[str, Any] = {}
        self._expires = 0.0

    def forget(self) -> None:
        """The next call mints a new token (the control API's reset: a new test starts with a new token)."""
        with self._lock:
            self._token = ""

    def __call__(self) -> str:
        identity = {k: v for k, v in self._claims().items() if k not in _PER_TOKEN}
        with self._lock:
            fresh = self._expires - self._clock() > self.RENEW_BEFORE_SECONDS
            if not (self._token and fresh and identity == self._identity):
                self._token = self._mint()
                self._identity = identity
                self._expires = float(jwt.decode(self._token, options={"verify_signature": False})["exp"])
            return self._token


# What differs between two tokens for the same caller: their times and their unique id.
_PER_TOKEN = frozenset({"iat", "nbf", "exp", "uti"})


class WebhookSender:
    """Delivers webhook bodies in background threads and remembers every attempt."""

    def __init__(
        self,
        *,
        settings: SettingsSource,
        mint_token: ReusedToken,
        on_answer: AnswerHandler,
        verify: str | bool = True,
    ) -> None:
        self._settings = settings
        self._mint_token = mint_token
        self._on_answer = on_answer
        self._verify = verify
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._attempts: list[DeliveryAttempt] = []
        self._threads: list[threading.Thread] = []
        # Bumped by clear(): deliveries started before a reset stop retrying instead of reaching a new test.
        self._generation = 0
        # Shared by every delivery thread (urllib3's pool is thread-safe). Proxy variables of the developer's
        # shell must not divert a loopback call, and no cookie the publisher sets comes back on a later call.
        self._session = requests.Session()
        self._session.trust_env = False
        self._session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_CONNECTIONS)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def send(self, operation_id: str, body: dict[str, Any]) -> None:
        """Starts delivering `body` (the webhook payload of `operation_id`); returns at once."""
        thread = threading.Thread(
            target=self._deliver, args=(operation_id, body), name=f"webhook-{operation_id[:8]}", daemon=True
        )
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def deliveries(self, operation_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [a.to_json() for a in self._attempts if operation_id in (None, a.operation_id)]

    def in_flight(self) -> int:
        """Deliveries still running (posting, or waiting to retry): 0 once every one has ended or given up."""
        with self._lock:
            return sum(1 for thread in self._threads if thread.is_alive())

    def clear(self) -> None:
        """Forgets the delivery log and the token, and abandons retries still pending (the control API's
        reset)."""
        with self._lock:
            self._attempts.clear()
            self._generation += 1
        self._mint_token.forget()

    def _abandoned(self, generation: int) -> bool:
        with self._lock:
            return self._stopping.is_set() or generation != self._generation

    def stop(self, timeout: float = 2.0) -> None:
        """Stops retrying; waits briefly for attempts in flight so nothing posts after the sandbox is gone."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._session.close()

    def _deliver(self, operation_id: str, body: dict[str, Any]) -> None:
        settings = self._settings()
        with self._lock:
            generation = self._generation
        for attempt in range(1, settings.webhook_max_attempts + 1):
            if self._abandoned(generation):
                return
            status = self._attempt(operation_id, body, attempt, settings)
            if status == 200 or self._on_answer(operation_id, status):
                return
            if attempt < settings.webhook_max_attempts:
                self._stopping.wait(settings.webhook_base_delay_seconds * 2 ** (attempt - 1))
        log.warning("webhook for operation %s gave up after %d attempts", operation_id, attempt)

    def _attempt(
        self, operation_id: str, body: dict[str, Any], attempt: int, settings: SandboxSettings
    ) -> int | None:
        started = time.monotonic()
        status, error = self._post(body, settings)
        record = DeliveryAttempt(
            operation_id=operation_id,
            action=str(body.get("action")),
            attempt=attempt,
            url=settings.webhook_url,
            status=status,
            error=error,
            elapsed_seconds=round(time.monotonic() - started, 4),
            at=datetime.now(UTC).isoformat(),
        )
        with self._lock:
            self._attempts.append(record)
        log.info(
            "webhook %s for operation %s attempt %d -> %s %s",
            record.action,
            operation_id,
            attempt,
            status,
            error,
        )
        return status

    def _post(self, body: dict[str, Any], settings: SandboxSettings) -> tuple[int | None, str]:
        headers = {
            "Authorization": f"Bearer {self._mint_token()}",
            "Content-Type": "application/json",
        }
        return self._post_with(self._session, body, headers, settings)

    def _post_with(
        self,
        session: requests.Session,
        body: dict[str, Any],
        headers: dict[str, str],
        settings: SandboxSettings,
    ) -> tuple[int | None, str]:
        data = json.dumps(body).encode("utf-8")
        for last_try in (False, True):
            try:
                response = session.post(
                    settings.webhook_url,
                    data=data,
                    headers=headers,
                    timeout=settings.webhook_timeout_seconds,
                    verify=self._verify,
                    allow_redirects=False,
                )
            except requests.ConnectionError as exc:
                # A kept-open connection the publisher closed just as we reused it (urllib3 then drops it):
                # once more at once, without counting an attempt. A publisher that hangs up after reading
                # the request gets it twice, as Microsoft's own retries would give it.
                if last_try or not _dropped_by_peer(exc):
                    return None, type(exc).__name__
            except requests.RequestException as exc:
                return None, type(exc).__name__
            else:
                return response.status_code, ""
        raise AssertionError("unreachable: the second try always returns")


def _dropped_by_peer(error: BaseException) -> bool:
    """Whether the connection was closed or reset by the other side (not refused, not timed out).

    requests wraps urllib3's ProtocolError, which carries the socket's error as an argument, not as a cause.
    """
    pending, seen = [error], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, _DROPPED):
            return True
        linked = (current.__cause__, current.__context__, *current.args)
        pending.extend(item for item in linked if isinstance(item, BaseException))
    return False


_DROPPED = (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected)
