"""Client for Microsoft's SaaS Fulfillment API v2 (`docs/specs/saasapi.v2.json`): a method per operation.

Every call carries the headers R18-R19 ask for: a bearer token for the marketplace API app, a fresh
`x-ms-requestid` per HTTP attempt and one `x-ms-correlationid` per logical call. Throttling, 5xx and
transport failures are retried with jittered exponential backoff (honouring `Retry-After`), bounded by
attempts and by total seconds; 4xx answers are never retried (R20, R80) and surface as typed errors from
`shared.fulfillment.errors`. Answers are parsed into the domain dataclasses by `shared.fulfillment.models`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import requests
from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, ClientAuthenticationError
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential
from tenacity.stop import stop_base

from shared import telemetry
from shared.config import FULFILLMENT_API_VERSION, MARKETPLACE_API_SCOPE, Settings
from shared.domain.subscription import (
    MicrosoftSubscription,
    Operation,
    Plan,
    ResolvedPurchase,
    UnreadableSubscription,
)
from shared.fulfillment import models
from shared.fulfillment.credentials import build_credential
from shared.fulfillment.errors import (
    FulfillmentError,
    FulfillmentTransportError,
    FulfillmentUnauthorizedError,
    MalformedResponseError,
    UnsafeHeaderValueError,
    error_class_for_status,
    is_transient,
)
from shared.logs import get_logger, log_context, redact
from shared.tls import configure_session

_log = get_logger(__name__)
_T = TypeVar("_T")

# Correlation ids that are not GUIDs (e.g. a queue message id) map to a stable GUID: the spec wants a uuid.
_CORRELATION_NAMESPACE = uuid.UUID("5b0f7c7e-93e1-4f5e-9a39-2a1d0a6f3c11")
_DETAIL_LIMIT = 300
_BACKOFF_MULTIPLIER_SECONDS = 0.5
_BACKOFF_MAX_SECONDS = 10.0


@dataclass(frozen=True)
class _Call:
    """One logical call: what to send, and the template it is logged under (ids never reach the logs)."""

    method: str
    template: str
    url: str
    correlation_id: str
    query: Mapping[str, str] | None = None
    body: bytes | None = None
    extra_headers: Mapping[str, str] | None = None


@dataclass(frozen=True)
class _Reply:
    response: requests.Response
    request_id: str
    correlation_id: str


class _RetryBudget:
    """Time spent on one logical call, counting the waits asked of `sleep` even when a test fakes it."""

    def __init__(self, sleep: Callable[[float], None]) -> None:
        self._sleep = sleep
        self._started = time.monotonic()
        self._real_sleep = 0.0
        self._asked_sleep = 0.0

    def sleep(self, seconds: float) -> None:
        before = time.monotonic()
        self._sleep(seconds)
        self._real_sleep += time.monotonic() - before
        self._asked_sleep += seconds

    def elapsed(self) -> float:
        return time.monotonic() - self._started - self._real_sleep + self._asked_sleep


class _OutOfTime(stop_base):
    """Stops the retries when the next wait would take the call past its time budget."""

    def __init__(self, budget: _RetryBudget, max_seconds: float) -> None:
        self._budget = budget
        self._max_seconds = max_seconds

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._budget.elapsed() + retry_state.upcoming_sleep > self._max_seconds


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: a number of seconds or an HTTP date; None when absent or unreadable."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _correlation_guid(value: str | None) -> str:
    if value is None or not value.strip():
        return str(uuid.uuid4())
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        derived = str(uuid.uuid5(_CORRELATION_NAMESPACE, value.strip()))
        _log.info(
            "correlation id is not a GUID; sending a derived one", extra={"derived_correlation": derived}
        )
        return derived


def _own_session() -> requests.Session:
    # The CA decision every outbound call shares (requests alone would ignore SSL_CERT_FILE), and no
    # per-request environment scan unless a proxy is configured.
    session: requests.Session = configure_session(requests.Session())
    return session


def _error_detail(response: requests.Response) -> str:
    """A short, secret-free reason from an error body: Microsoft's `error.message`/`message`, else text."""
    text = response.text or ""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else None
        text = str(message or body.get("message") or text)
    return redact(" ".join(text.split()))[:_DETAIL_LIMIT]


def _span_attributes(call: _Call, request_id: str, attempt: int) -> dict[str, str | int]:
    parts = urlsplit(call.url)
    return {
        "http.request.method": call.method,
        "url.full": urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")),
        "url.template": call.template,
        # Application Insights names an HTTP dependency after its path (ids included); this groups calls.
        telemetry.FULFILLMENT_CALL: f"{call.method} {call.template}",
        "server.address": parts.hostname or "",
        telemetry.REQUEST_ID: request_id,
        telemetry.CORRELATION_ID: call.correlation_id,
        "attempt": attempt,
    }


def operation_id_from_location(location: str) -> str:
    """The operation id from Operation-Location (`.../operations/{operationId}?api-version=...`, R25)."""
    segments = [segment for segment in urlsplit(location.strip()).path.split("/") if segment]
    if len(segments) >= 2 and segments[-2].lower() == "operations":
        return segments[-1]
    raise MalformedResponseError(f"Operation-Location has no operation id: {location[:200]!r}")


def _require_text(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        _log.warning("refused a Fulfillment API call with bad input", extra={"argument": what})
        raise ValueError(f"{what} must be a non-empty string")
    return value.strip()


def _require_header_value(header: str, value: str) -> str:
    """`value` when it can travel in a header as is. A CR/LF would split the header (header injection), other
    control characters are refused by servers, and http.client encodes headers as Latin-1: anything outside
    it used to surface as an unhandled UnicodeEncodeError, a CR/LF as a transport error retried five times."""
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or ord(c) > 0xFF for c in value):
        _log.warning("refused a Fulfillment API call with bad input", extra={"argument": header})
        raise UnsafeHeaderValueError(header)
    return value


def _require_quantity(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        _log.warning("refused a Fulfillment API call with bad input", extra={"argument": "quantity"})
        raise ValueError(f"quantity must be a whole number >= 1, got {value!r}")
    return value


class FulfillmentClient:
    """Publisher-side client for the SaaS Fulfillment API v2. One HTTP session (connection reuse) per client.

    `sleep` is what waits between attempts; tests inject one that records instead of sleeping.
    """

    def __init__(
        self,
        base_url: str,
        credential: TokenCredential,
        *,
        session: requests.Session | None = None,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        max_attempts: int = 5,
        max_retry_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(base_url.strip())
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._base_url = base_url.strip().rstrip("/")
        self._origin = (parts.scheme, parts.netloc.lower())
        self._credential = credential
        self._owns_session = session is None
        self._session = session or _own_session()
        self._timeout = (connect_timeout, read_timeout)
        self._max_attempts = max_attempts
        self._max_retry_seconds = max_retry_seconds
        self._sleep = sleep

    @classmethod
    def from_settings(
        cls, settings: Settings, *, credential: TokenCredential | None = None
    ) -> FulfillmentClient:
        """A client for the configured base URL, timeouts and retry bounds, authenticating per settings."""
        return cls(
            settings.fulfillment_base_url,
            credential or build_credential(settings),
            connect_timeout=settings.fulfillment_connect_timeout,
            read_timeout=settings.fulfillment_read_timeout,
            max_attempts=settings.fulfillment_max_attempts,
            max_retry_seconds=settings.fulfillment_max_retry_seconds,
        )

    @property
    def base_url(self) -> str:
        return self._base_url

    def close(self) -> None:
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> FulfillmentClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- Subscription API -----------------------------------------------------------------------------

    def resolve(self, marketplace_token: str, *, correlation_id: str | None = None) -> ResolvedPurchase:
        """Resolve the landing page's purchase token (already URL-decoded once by the caller, R2, R5)."""
        _require_text(marketplace_token, "marketplace_token")
        call = self._call(
            "POST",
            "/saas/subscriptions/resolve",
            correlation_id=correlation_id,
            extra_headers={"x-ms-marketplace-token": marketplace_token},
        )
        return self._parse(self._send(call), models.parse_resolved)

    def list_subscriptions(
        self, *, correlation_id: str | None = None
    ) -> Iterator[MicrosoftSubscription | UnreadableSubscription]:
        """Every subscription of the publisher, page by page along `@nextLink` (R21). An item that cannot be
        read comes as an `UnreadableSubscription`, and the listing goes on."""
        call: _Call | None = self._call("GET", "/saas/subscriptions/", correlation_id=correlation_id)
        seen: set[str] = set()
        while call is not None:
            subscriptions, next_link = self._parse(self._send(call), models.parse_subscription_page)
            yield from subscriptions
            call = self._next_page(call, next_link, seen)

    def get_subscription(
        self, subscription_id: str, *, correlation_id: str | None = None
    ) -> MicrosoftSubscription:
        """Microsoft's current view of one subscription: the source of truth (R22)."""
        call = self._call(
            "GET", "/saas/subscriptions/{subscriptionId}", subscription_id, correlation_id=correlation_id
        )
        return self._parse(self._send(call), models.parse_subscription)

    def list_available_plans(
        self, subscription_id: str, plan_id: str | None = None, *, correlation_id: str | None = None
    ) -> list[Plan]:
        """Plans this subscription may move to, the current one included (R23); one plan with `plan_id`."""
        query = {"planId": _require_text(plan_id, "plan_id")} if plan_id is not None else None
        call = self._call(
            "GET",
            "/saas/subscriptions/{subscriptionId}/listAvailablePlans",
            subscription_id,
            correlation_id=correlation_id,
            query=query,
        )
        return self._parse(self._send(call), models.parse_plan_list)

    def activate(
        self, subscription_id: str, plan_id: str, quantity: int | None, *, correlation_id: str | None = None
    ) -> None:
        """Activate after provisioning (R14); billing starts when this succeeds (R15)."""
        body: dict[str, Any] = {"planId": _require_text(plan_id, "plan_id")}
        if quantity is not None:
            body["quantity"] = _require_quantity(quantity)
        call = self._call(
            "POST",
            "/saas/subscriptions/{subscriptionId}/activate",
            subscription_id,
            correlation_id=correlation_id,
            body=body,
        )
        self._send(call)

    def change_plan(self, subscription_id: str, plan_id: str, *, correlation_id: str | None = None) -> str:
        """Ask Microsoft to move to `plan_id`; returns the operation id to poll (R24-R25)."""
        return self._update(
            subscription_id, plan_id=_require_text(plan_id, "plan_id"), correlation_id=correlation_id
        )

    def change_quantity(
        self, subscription_id: str, quantity: int, *, correlation_id: str | None = None
    ) -> str:
        """Ask Microsoft to change the seat count; returns the operation id to poll (R24-R25)."""
        return self._update(
            subscription_id, quantity=_require_quantity(quantity), correlation_id=correlation_id
        )

    def delete_subscription(self, subscription_id: str, *, correlation_id: str | None = None) -> str:
        """Publisher-side cancel (R26); returns the operation id to poll."""
        call = self._call(
            "DELETE", "/saas/subscriptions/{subscriptionId}", subscription_id, correlation_id=correlation_id
        )
        return self._operation_id(self._send(call))

    # --- Operations API -------------------------------------------------------------------------------

    def list_operations(self, subscription_id: str, *, correlation_id: str | None = None) -> list[Operation]:
        """Operations waiting for the publisher's answer (R28); empty when none."""
        call = self._call(
            "GET",
            "/saas/subscriptions/{subscriptionId}/operations",
            subscription_id,
            correlation_id=correlation_id,
        )
        reply = self._send(call)
        return self._parse(
            reply, lambda body: models.parse_operation_list(body, subscription_id=subscription_id)
        )

    def get_operation(
        self, subscription_id: str, operation_id: str, *, correlation_id: str | None = None
    ) -> Operation:
        """One operation's current status (R25, R38)."""
        call = self._call(
            "GET",
            "/saas/subscriptions/{subscriptionId}/operations/{operationId}",
            subscription_id,
            operation_id,
            correlation_id=correlation_id,
        )
        reply = self._send(call)
        return self._parse(reply, lambda body: models.parse_operation(body, subscription_id=subscription_id))

    def update_operation(
        self,
        subscription_id: str,
        operation_id: str,
        success: bool,
        *,
        plan_id: str | None = None,
        quantity: int | None = None,
        correlation_id: str | None = None,
    ) -> None:
        """Accept (Success) or reject (Failure) an operation Microsoft announced (R29, R52)."""
        body: dict[str, Any] = {"status": "Success" if success else "Failure"}
        if plan_id is not None:
            body["planId"] = _require_text(plan_id, "plan_id")
        if quantity is not None:
            body["quantity"] = _require_quantity(quantity)
        call = self._call(
            "PATCH",
            "/saas/subscriptions/{subscriptionId}/operations/{operationId}",
            subscription_id,
            operation_id,
            correlation_id=correlation_id,
            body=body,
        )
        self._send(call)
        telemetry.answered(success)  # webhook -> answer latency, when a webhook event is being handled

    # --- Internals --------------------------------------------------------------------------------------

    def _update(
        self,
        subscription_id: str,
        *,
        plan_id: str | None = None,
        quantity: int | None = None,
        correlation_id: str | None = None,
    ) -> str:
        """PATCH with exactly one of plan and quantity: Microsoft documents one change per call (R24, C4)."""
        if (plan_id is None) == (quantity is None):
            _log.warning(
                "refused a subscription update", extra={"reason": "need exactly one of plan, quantity"}
            )
            raise ValueError("an update changes either the plan or the quantity, exactly one of them (R24)")
        body = {"planId": plan_id} if plan_id is not None else {"quantity": quantity}
        call = self._call(
            "PATCH",
            "/saas/subscriptions/{subscriptionId}",
            subscription_id,
            correlation_id=correlation_id,
            body=body,
        )
        return self._operation_id(self._send(call))

    def _call(
        self,
        method: str,
        template: str,
        *ids: str,
        correlation_id: str | None,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> _Call:
        headers = {name: _require_header_value(name, value) for name, value in (extra_headers or {}).items()}
        names = ("subscription_id", "operation_id")
        quoted = [quote(_require_text(value, name), safe="") for value, name in zip(ids, names, strict=False)]
        path = template
        for placeholder, value in zip(("{subscriptionId}", "{operationId}"), quoted, strict=False):
            path = path.replace(placeholder, value)
        return _Call(
            method=method,
            template=template,
            url=self._base_url + path,
            correlation_id=_correlation_guid(correlation_id),
            query={"api-version": FULFILLMENT_API_VERSION, **(query or {})},
            body=json.dumps(body).encode("utf-8") if body is not None else None,
            extra_headers=headers,
        )

    def _next_page(self, call: _Call, next_link: str, seen: set[str]) -> _Call | None:
        """The call for `@nextLink`, or None on the last page. The link must stay on our API host, because
        the bearer token goes with it, and must not repeat, or paging would never end."""
        if not next_link:
            return None
        parts = urlsplit(next_link)
        if (parts.scheme, parts.netloc.lower()) != self._origin:
            raise MalformedResponseError(f"@nextLink leaves the API host: {parts.scheme}://{parts.netloc}")
        if next_link in seen:
            raise MalformedResponseError("@nextLink repeats a page already read")
        seen.add(next_link)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        query.setdefault("api-version", FULFILLMENT_API_VERSION)
        url = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
        return _Call(method="GET", template=call.template, url=url, correlation_id=call.correlation_id)

    def _send(self, call: _Call) -> _Reply:
        """Sends `call` until it succeeds, fails for good, or runs out of attempts or seconds."""
        budget = _RetryBudget(self._sleep)
        retrying = Retrying(
            stop=stop_after_attempt(self._max_attempts) | self._out_of_time(budget),
            wait=self._wait,
            retry=retry_if_exception(is_transient),
            sleep=budget.sleep,
            before_sleep=lambda state: self._log_retry(call, state),
            reraise=True,
        )
        with log_context(correlation_id=call.correlation_id):
            for attempt in retrying:
                with attempt:
                    return self._attempt(call, attempt.retry_state.attempt_number)
        raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover

    def _out_of_time(self, budget: _RetryBudget) -> stop_base:
        return _OutOfTime(budget, self._max_retry_seconds)

    @staticmethod
    def _wait(state: RetryCallState) -> float:
        """Microsoft's Retry-After when it sent one, else full-jitter exponential backoff."""
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, FulfillmentError) and exc.retry_after is not None:
            return exc.retry_after
        backoff = wait_random_exponential(multiplier=_BACKOFF_MULTIPLIER_SECONDS, max=_BACKOFF_MAX_SECONDS)
        return float(backoff(state))

    def _headers(self, call: _Call, request_id: str) -> dict[str, str]:
        # A token per attempt: azure-identity serves it from its cache and refreshes it near expiry (R46).
        try:
            token = self._credential.get_token(MARKETPLACE_API_SCOPE).token
        except ClientAuthenticationError as exc:
            raise FulfillmentUnauthorizedError(
                "no token for the marketplace API", request_id=request_id, correlation_id=call.correlation_id
            ) from exc
        except AzureError as exc:
            raise FulfillmentTransportError(
                "token service unreachable", request_id=request_id, correlation_id=call.correlation_id
            ) from exc
        return {
            "authorization": f"Bearer {token}",
            "content-type": "application/json",
            "accept": "application/json",
            "x-ms-requestid": request_id,
            "x-ms-correlationid": call.correlation_id,
            **(call.extra_headers or {}),
        }

    def _attempt(self, call: _Call, attempt: int) -> _Reply:
        request_id = str(uuid.uuid4())
        headers = self._headers(call, request_id)
        # One client span per HTTP attempt (a dependency row in Application Insights), carrying the ids
        # Microsoft support asks for; its trace context goes to Microsoft in `traceparent`.
        attributes = _span_attributes(call, request_id, attempt) if telemetry.enabled() else None
        with telemetry.span(f"{call.method} {call.template}", kind="client", attributes=attributes) as span:
            headers.update(telemetry.trace_context())
            started = time.monotonic()
            try:
                response = self._session.request(
                    call.method,
                    call.url,
                    params=call.query,
                    data=call.body,
                    headers=headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                self._log_attempt(call, attempt, started, request_id, status=None, failure=type(exc).__name__)
                raise FulfillmentTransportError(
                    f"{call.method} {call.template}: {type(exc).__name__}",
                    request_id=request_id,
                    correlation_id=call.correlation_id,
                ) from exc
            echoed = response.headers.get("x-ms-requestid", "").strip() or request_id
            span.set_attributes(
                {"http.response.status_code": response.status_code, telemetry.REQUEST_ID: echoed}
            )
            self._log_attempt(call, attempt, started, echoed, status=response.status_code)
            if not 200 <= response.status_code < 300:
                raise self._error(call, response, echoed)
            return _Reply(response=response, request_id=echoed, correlation_id=call.correlation_id)

    @staticmethod
    def _error(call: _Call, response: requests.Response, request_id: str) -> FulfillmentError:
        error_class = error_class_for_status(response.status_code)
        return error_class(
            f"{call.method} {call.template} failed",
            status_code=response.status_code,
            request_id=request_id,
            correlation_id=call.correlation_id,
            detail=_error_detail(response),
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )

    @staticmethod
    def _log_attempt(
        call: _Call, attempt: int, started: float, request_id: str, *, status: int | None, failure: str = ""
    ) -> None:
        _log.info(
            "fulfillment api call",
            extra={
                "http_method": call.method,
                "path_template": call.template,
                "status_code": status,
                "request_id": request_id,
                "correlation_id": call.correlation_id,
                "attempt": attempt,
                "elapsed_ms": round((time.monotonic() - started) * 1000, 1),
                **({"failure": failure} if failure else {}),
            },
        )

    @staticmethod
    def _log_retry(call: _Call, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        _log.warning(
            "fulfillment api call will be retried",
            extra={
                "http_method": call.method,
                "path_template": call.template,
                "attempt": state.attempt_number,
                "wait_seconds": round(state.upcoming_sleep, 3),
                "error": type(exc).__name__,
            },
        )

    @staticmethod
    def _parse(reply: _Reply, parser: Callable[[Any], _T]) -> _T:
        """Parses the JSON body (empty body -> None); a body we cannot trust carries the call's ids."""
        try:
            body = json.loads(reply.response.content) if reply.response.content.strip() else None
            return parser(body)
        except (ValueError, MalformedResponseError) as exc:
            _log.error(
                "malformed Fulfillment API response",
                extra={"request_id": reply.request_id, "reason": str(exc)[:_DETAIL_LIMIT]},
            )
            raise MalformedResponseError(
                f"unusable response body: {exc}",
                status_code=reply.response.status_code,
                request_id=reply.request_id,
                correlation_id=reply.correlation_id,
            ) from exc

    @staticmethod
    def _operation_id(reply: _Reply) -> str:
        location = reply.response.headers.get("Operation-Location", "")
        try:
            return operation_id_from_location(location)
        except MalformedResponseError as exc:
            raise MalformedResponseError(
                str(exc),
                status_code=reply.response.status_code,
                request_id=reply.request_id,
                correlation_id=reply.correlation_id,
            ) from exc
