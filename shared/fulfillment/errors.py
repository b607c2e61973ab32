"""Typed errors of the Fulfillment API client, one class per HTTP outcome the caller must treat differently.

Callers decide on the class, never on a number: 403 is a configuration problem (R20, pitfall P1), 409 on an
operation means "stop and re-read" (R29), 429/5xx/transport failures are worth another try later (R80).
Every error carries the ids Microsoft support asks for: the request id (Microsoft's echo when present) and
the correlation id of the logical call.
"""

from __future__ import annotations


class FulfillmentError(Exception):
    """A Fulfillment API call failed. `status_code` is None when no HTTP answer arrived."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str = "",
        correlation_id: str = "",
        detail: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.request_id = request_id
        self.correlation_id = correlation_id
        self.detail = detail
        # Seconds Microsoft asked us to wait (Retry-After); only throttling and 5xx answers carry one.
        self.retry_after = retry_after

    def __str__(self) -> str:
        parts = [super().__str__()]
        if self.status_code is not None:
            parts.append(f"status={self.status_code}")
        if self.detail:
            parts.append(f"detail={self.detail!r}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        if self.correlation_id:
            parts.append(f"correlation_id={self.correlation_id}")
        return " ".join(parts)


class FulfillmentBadRequestError(FulfillmentError):
    """400: the request is invalid for Microsoft (expired token, plan not available, same quantity ...)."""


class FulfillmentUnauthorizedError(FulfillmentError):
    """401: no or unreadable bearer token."""


class FulfillmentForbiddenError(FulfillmentError):
    """403: wrong app id, expired secret, or a subscription of another publisher app (R20: configuration)."""


class FulfillmentNotFoundError(FulfillmentError):
    """404: unknown subscription or operation."""


class FulfillmentConflictError(FulfillmentError):
    """409: a newer update is already fulfilled; re-read the subscription instead of retrying (R29)."""


class FulfillmentThrottledError(FulfillmentError):
    """429: too many requests; `retry_after` holds Microsoft's requested wait in seconds, if it sent one."""


class FulfillmentServerError(FulfillmentError):
    """5xx: Microsoft failed; retryable (R20)."""


class FulfillmentTransportError(FulfillmentError):
    """No HTTP answer: connection refused or reset, DNS, TLS, connect or read timeout."""


class UnsafeHeaderValueError(ValueError):
    """A value the client will not put into an HTTP header: CR, LF or another control character, or text
    outside Latin-1. It is the caller's input that is wrong, so it is never retried; the message names the
    header, never the value (it may be a purchase token)."""

    def __init__(self, header: str) -> None:
        super().__init__(f"{header}: value has control characters or characters outside Latin-1")
        self.header = header


class MalformedResponseError(FulfillmentError):
    """A 2xx body we refuse to guess about: not JSON, no subscription id, unknown status, ..."""


_BY_STATUS: dict[int, type[FulfillmentError]] = {
    400: FulfillmentBadRequestError,
    401: FulfillmentUnauthorizedError,
    403: FulfillmentForbiddenError,
    404: FulfillmentNotFoundError,
    409: FulfillmentConflictError,
    429: FulfillmentThrottledError,
}


def error_class_for_status(status_code: int) -> type[FulfillmentError]:
    """The error class for an HTTP status; unexpected 4xx fall back to the base class (not transient)."""
    if status_code >= 500:
        return FulfillmentServerError
    return _BY_STATUS.get(status_code, FulfillmentError)


def is_transient(exc: BaseException) -> bool:
    """True when trying again later may succeed: throttling, server errors and transport failures (R80)."""
    return isinstance(exc, FulfillmentThrottledError | FulfillmentServerError | FulfillmentTransportError)
