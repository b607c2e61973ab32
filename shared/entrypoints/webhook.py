"""Microsoft's connection webhook (R32-R42): authenticate, check the body, enqueue, answer 200.

Nothing here calls the Fulfillment API (R82): the answer depends only on the token and on the queue having
durably accepted the event, so Microsoft gets its 200 in milliseconds (R35). The worker verifies the event
against the API before acting (R38), so the body is only checked for what the queue needs: the operation
id (duplicate detection, R37) and the subscription id (the session that keeps one subscription in order).
Unknown actions are enqueued like any other; the worker logs and reconciles them (R33, C5).
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import azure.functions as func

from shared import telemetry
from shared.app_context import services
from shared.entrypoints.http import error_response, json_response
from shared.identity.signing_keys import SigningKeysUnavailableError
from shared.identity.tokens import InvalidTokenError, bearer_token
from shared.logs import get_logger, log_context
from shared.queueing.messages import QueueUnavailableError, webhook_message

log = get_logger(__name__)

CORRELATION_HEADER = "x-ms-correlationid"
REQUEST_HEADER = "x-ms-requestid"
SPAN_NAME = "POST /api/webhook"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Microsoft retries a failed webhook for hours (R37); a short hint keeps the event close to real time.
RETRY_AFTER_SECONDS = "10"
# Microsoft's notification is flat, with one level of objects at most; 16 leaves room and bounds the work.
MAX_BODY_DEPTH = 16
_INT64 = 2**63
# ASCII digits only, and few enough for int(): str.isdigit() also accepts "²" (which int() refuses) and any
# number of digits (int() refuses more than 4,300), and either ValueError was a 500.
_CONTENT_LENGTH = re.compile(r"[0-9]{1,19}")


class _RefusedError(Exception):
    """A request we answer with an error; carries everything the answer and the log line need."""

    def __init__(self, status: int, error: str, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.error = error
        self.reason = reason
        self.headers = headers or {}


def handle_webhook(req: func.HttpRequest) -> func.HttpResponse:
    correlation_id = _correlation_id(req.headers.get(CORRELATION_HEADER))
    request_id = _request_id(req.headers.get(REQUEST_HEADER))
    services()  # the composition root turns telemetry on (or not) before the first span
    with (
        log_context(correlation_id=correlation_id, request_id=request_id),
        telemetry.span(SPAN_NAME, kind="server", parent=req.headers, attributes=_SPAN_ATTRIBUTES) as span,
    ):
        try:
            response_body = _accept(req, correlation_id)
        except _RefusedError as refusal:
            _log_refusal(refusal)
            span.set_attributes({"http.response.status_code": refusal.status})
            if refusal.status >= 500:
                span.fail(refusal.error)
            headers = {CORRELATION_HEADER: correlation_id, **refusal.headers}
            return error_response(refusal.status, refusal.error, refusal.reason, headers=headers)
        except Exception:
            # The host answers 500 and Microsoft retries for hours: a line alert rules can match (R37).
            log.exception("webhook failed", extra={"event": telemetry.EVENT_WEBHOOK_5XX, "status": 500})
            span.set_attributes({"http.response.status_code": 500})
            raise
        span.set_attributes({"http.response.status_code": 200})
        return json_response(response_body, headers={CORRELATION_HEADER: correlation_id})


# Application Insights names the request row "<method> <route>": "POST /api/webhook".
_SPAN_ATTRIBUTES = {"http.request.method": "POST", "url.path": "/api/webhook", "http.route": "/api/webhook"}


def _log_refusal(refusal: _RefusedError) -> None:
    if refusal.status >= 500:
        # Microsoft retries a 5xx; alert rules match this line's event (docs/observability.md).
        extra = {"status": refusal.status, "event": telemetry.EVENT_WEBHOOK_5XX, "error": refusal.error}
        log.error("webhook refused: %s", refusal.reason, extra=extra)
    else:
        log.warning("webhook refused: %s", refusal.reason, extra={"status": refusal.status})


def _accept(req: func.HttpRequest, correlation_id: str) -> dict[str, str]:
    _authenticate(req.headers.get("Authorization"))
    payload = _payload(req, services().settings.webhook_max_body_bytes)
    operation_id, subscription_id = _ids(payload)
    action = str(payload.get("action", ""))[:64]
    telemetry.annotate(
        {
            telemetry.SUBSCRIPTION_ID: subscription_id,
            telemetry.OPERATION_ID: operation_id,
            telemetry.ACTION: action,
            telemetry.ACTIVITY_ID: _optional_guid(payload.get("activityId")),
        }
    )
    with log_context(operation_id=operation_id, subscription_id=subscription_id):
        _enqueue(payload, correlation_id)
        log.info("webhook accepted", extra={"action": action})
    return {"status": "accepted", "operationId": operation_id}


def _correlation_id(header: str | None) -> str:
    candidate = (header or "").strip()
    return candidate.lower() if _GUID.match(candidate) else str(uuid.uuid4())


def _request_id(header: str | None) -> str | None:
    """Microsoft's x-ms-requestid when it is a GUID; anything else is not logged or traced (caller text)."""
    return _optional_guid(header)


def _optional_guid(value: object) -> str | None:
    candidate = value.strip() if isinstance(value, str) else ""
    return candidate.lower() if _GUID.match(candidate) else None


def _authenticate(authorization: str | None) -> None:
    try:
        services().webhook_validator.validate(bearer_token(authorization))
    except InvalidTokenError as exc:
        raise _RefusedError(
            401, "invalid_token", exc.reason, {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        ) from exc
    except SigningKeysUnavailableError as exc:
        log.error("webhook signing keys unavailable: %s", exc)
        raise _RefusedError(
            503,
            "keys_unavailable",
            "token signing keys are unavailable",
            {"Retry-After": RETRY_AFTER_SECONDS},
        ) from exc


def _payload(req: func.HttpRequest, max_bytes: int) -> dict[str, Any]:
    declared = (req.headers.get("Content-Length") or "").strip()
    if declared and not _CONTENT_LENGTH.fullmatch(declared):
        raise _RefusedError(400, "invalid_body", "Content-Length header is not a whole number")
    if declared and int(declared) > max_bytes:
        raise _RefusedError(413, "payload_too_large", f"body is larger than {max_bytes} bytes")
    body = req.get_body() or b""
    if len(body) > max_bytes:
        raise _RefusedError(413, "payload_too_large", f"body is larger than {max_bytes} bytes")
    try:
        return parse_webhook_body(body)
    except InvalidWebhookBodyError as exc:
        raise _RefusedError(400, "invalid_body", exc.reason) from exc


class InvalidWebhookBodyError(ValueError):
    """The body cannot be the JSON object Microsoft sends; `reason` says why without quoting the body."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_webhook_body(raw: bytes) -> dict[str, Any]:
    """The webhook body as a JSON object, or InvalidWebhookBodyError: never any other exception.

    Stricter than `json.loads`, because whatever is accepted is queued, logged and read by the worker:
    duplicate keys (which value would the worker see?), NaN and infinities (not JSON, and not encodable
    again by strict parsers), integers outside 64 bits, lone surrogates and nesting deeper than
    MAX_BODY_DEPTH are refused. A body nested deeply enough to exhaust the parser's recursion raised
    RecursionError, which the host answered with 500, and Microsoft retries a 500 for hours.
    """
    try:
        # What json.loads does with bytes, with the decoder built once instead of on every call.
        payload = _DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
    except InvalidWebhookBodyError:
        raise
    except RecursionError as exc:
        raise InvalidWebhookBodyError("body is nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise InvalidWebhookBodyError("body is not valid JSON") from exc
    if not isinstance(payload, dict):
        raise InvalidWebhookBodyError("body must be a JSON object")
    _check_shape(payload)
    return payload


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):  # a repeated key kept one entry for two pairs
        raise InvalidWebhookBodyError("body has duplicate keys")
    return obj


def _refuse_constant(name: str) -> Any:
    raise InvalidWebhookBodyError(f"body has {name}, which is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise InvalidWebhookBodyError("body has a number out of range")
    return value


def _int64(text: str) -> int:
    # Bounded before int(): a number with tens of thousands of digits is slow to convert, and Python's own
    # limit answers with a ValueError only after the work.
    if len(text.lstrip("-")) > 19 or not -_INT64 <= int(text) < _INT64:
        raise InvalidWebhookBodyError("body has a number out of range")
    return int(text)


# Built once (json.loads with hooks builds a decoder and its scanner per call); decoding keeps no state
# between calls, so the threads of the host share it.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_without_duplicates,
    parse_constant=_refuse_constant,
    parse_float=_finite_float,
    parse_int=_int64,
)


def _check_shape(payload: dict[str, Any]) -> None:
    """Depth and text checks without recursion, so a hostile body cannot exhaust the stack here either."""
    pending: list[tuple[Any, int]] = [(payload, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_BODY_DEPTH:
            raise InvalidWebhookBodyError("body is nested too deeply")
        if isinstance(value, dict):
            for key, item in value.items():
                _check_text(key)
                pending.append((item, depth + 1))
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            _check_text(value)


def _check_text(text: str) -> None:
    if text.isascii():  # no surrogate is ASCII; most of Microsoft's text is
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidWebhookBodyError("body has text that is not valid Unicode") from exc


def _ids(payload: dict[str, Any]) -> tuple[str, str]:
    return _guid_field(payload, "id"), _guid_field(payload, "subscriptionId")


def _guid_field(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not _GUID.match(value.strip()):
        raise _RefusedError(400, "invalid_body", f"'{name}' must be a GUID")
    return value.strip()


def _enqueue(payload: dict[str, Any], correlation_id: str) -> None:
    received_at = datetime.now(UTC).isoformat(timespec="milliseconds")
    try:
        services().queue.send(
            webhook_message(payload, received_at=received_at, correlation_id=correlation_id)
        )
    except QueueUnavailableError as exc:
        log.error("webhook not enqueued, Microsoft will retry: %s", exc)
        raise _RefusedError(
            503,
            "queue_unavailable",
            "the event could not be queued; retry later",
            {"Retry-After": RETRY_AFTER_SECONDS},
        ) from exc
