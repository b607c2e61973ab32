"""The queue-triggered worker: one message in, Microsoft's truth mirrored, Microsoft answered where due.

Outcomes: return -> the message is completed; raise -> Service Bus delivers it again (transient trouble:
throttling, 5xx, timeouts, storage conflicts, an injected fault); a message that no retry can fix is parked
on the dead-letter queue with its reason and completed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import azure.functions as func

from shared import telemetry
from shared.app_context import services
from shared.domain.dead_letters import (
    DELIVERY_COUNT,
    FIRST_ENQUEUED_AT,
    ORIGINAL_MESSAGE_ID,
    REPLAY_COUNT,
    REPLAYED_BY,
)
from shared.domain.subscription import SWEEP_SESSION
from shared.fulfillment.errors import FulfillmentError, is_transient
from shared.logs import get_logger, log_context
from shared.queueing.messages import (
    MalformedMessageError,
    MessageKind,
    QueueMessage,
    decode_body,
    listed_snapshot,
    received_at,
)
from shared.workflows.activation import activate_purchase
from shared.workflows.errors import PermanentFailureError
from shared.workflows.operations import handle_announced_operation
from shared.workflows.reconcile import reconcile_subscription, sweep_and_record
from shared.workflows.tracking import track_operation

if TYPE_CHECKING:
    from shared.app_context import Services

log = get_logger(__name__)
# One message kind -> the workflow it runs, handed the ports it takes. Parsing the body happens inside the
# call, so a body missing a field fails (and is delivered again) exactly as a failing workflow does.
Workflow = Callable[["Services", dict[str, Any], str], object]


def _workflows() -> dict[str, Workflow]:
    return {
        MessageKind.ACTIVATE: lambda app, body, cid: activate_purchase(
            str(body["subscriptionId"]), cid, ports=app.activation_ports
        ),
        MessageKind.WEBHOOK: lambda app, body, cid: handle_announced_operation(
            body["payload"], cid, ports=app.operation_ports, received_at=received_at(body)
        ),
        MessageKind.TRACK: lambda app, body, cid: track_operation(
            str(body["subscriptionId"]),
            str(body["operationId"]),
            int(body.get("attempt", 0)),
            cid,
            ports=app.tracking_ports,
        ),
        MessageKind.RECONCILE: lambda app, body, cid: reconcile_subscription(
            str(body["subscriptionId"]), cid, ports=app.reconcile_ports, listed=listed_snapshot(body)
        ),
        MessageKind.SWEEP: lambda app, body, cid: sweep_and_record(
            cid, ports=app.sweep_ports, requested_by=str(body.get("requestedBy") or "")
        ),
    }


def handle_message(msg: func.ServiceBusMessage) -> None:

    app = services()
    raw = msg.get_body()
    # A sweep's session names no subscription: its lines carry none rather than "_sweep".
    subscription_id = msg.session_id if msg.session_id and msg.session_id != SWEEP_SESSION else None
    ids = {"message_id": msg.message_id, "subscription_id": subscription_id}
    with (
        log_context(**ids, delivery_count=str(msg.delivery_count or "")),
        # The trace the sender started (webhook, landing, re-check) goes on here: its context rides in the
        # message's application properties (shared.queueing.messages.send_traced).
        telemetry.span("worker", kind="consumer", parent=msg.application_properties or {}) as span,
    ):
        try:
            body = decode_body(raw)
        except MalformedMessageError as exc:
            _park(app, msg, {"raw": raw.decode("utf-8", "replace")}, "MalformedMessage", str(exc))
            return
        correlation_id = str(body.get("correlationId") or msg.correlation_id or uuid.uuid4())
        operation_id = _operation_id(body)
        if telemetry.enabled():
            _observe(span, msg, body, correlation_id, operation_id)
        with (
            log_context(correlation_id=correlation_id, operation_id=operation_id),
            telemetry.webhook_event(received_at(body), _action(body)),
        ):
            _run(app, msg, body, correlation_id)


def _observe(
    span: telemetry.Span,
    msg: func.ServiceBusMessage,
    body: dict[str, Any],
    correlation_id: str,
    operation_id: str | None,
) -> None:
    kind = str(body["kind"])
    span.update_name(f"worker {kind}")
    attributes = {
        telemetry.MESSAGE_KIND: kind,
        telemetry.CORRELATION_ID: correlation_id,
        **({telemetry.OPERATION_ID: operation_id} if operation_id else {}),
        **({telemetry.ACTION: _action(body)} if _action(body) else {}),
    }
    span.set_attributes(attributes)
    telemetry.queue_age(msg.enqueued_time_utc, kind)


def _action(body: dict[str, Any]) -> str:
    payload = body.get("payload")
    return str(payload.get("action") or "")[:64] if isinstance(payload, dict) else ""


def _run(app: Services, msg: func.ServiceBusMessage, body: dict[str, Any], correlation_id: str) -> None:

    kind = body["kind"]
    try:
        _workflows()[kind](app, body, correlation_id)
    except PermanentFailureError as exc:
        _failed_activation(kind, "dead_lettered", exc.reason)
        _park(app, msg, body, exc.reason, exc.description)
    except FulfillmentError as exc:
        if is_transient(exc):
            log.warning("transient Fulfillment API error; message will be delivered again", exc_info=True)
            _failed_activation(kind, "retry", type(exc).__name__)
            raise
        _failed_activation(kind, "dead_lettered", type(exc).__name__)
        _park(app, msg, body, type(exc).__name__, str(exc))
    except Exception as exc:
        log.exception("message failed; it will be delivered again", extra={"kind": kind})
        _failed_activation(kind, "retry", type(exc).__name__)
        raise
    else:
        log.info("message processed", extra={"kind": kind})


def _failed_activation(kind: str, outcome: str, reason: str) -> None:
    """One line (and one count) per failed activation attempt: alert rules match its event name.
    `outcome` is `retry` (delivered again) or `dead_lettered` (parked: no retry can fix it)."""
    if kind != MessageKind.ACTIVATE:
        return
    level = logging.ERROR if outcome == "dead_lettered" else logging.WARNING
    extra = {"event": telemetry.EVENT_ACTIVATION_FAILED, "outcome": outcome, "reason": reason}
    log.log(level, "activation failed", extra=extra)
    telemetry.activation_failed(outcome, reason)


def _operation_id(body: dict[str, Any]) -> str | None:
    if "operationId" in body:
        return str(body["operationId"])
    payload = body.get("payload")
    return str(payload.get("id")) if isinstance(payload, dict) else None


def _park(
    app: Services, msg: func.ServiceBusMessage, body: dict[str, Any], reason: str, description: str
) -> None:
    kind = str(body.get("kind") or "malformed")
    extra = {
        "reason": reason,
        "description": description,
        "event": telemetry.EVENT_DEAD_LETTERED,
        "kind": kind,
    }
    log.error("message dead-lettered", extra=extra)
    telemetry.dead_lettered(reason, kind)
    telemetry.fail(f"dead-lettered: {reason}")
    parked = QueueMessage(
        message_id=msg.message_id,
        session_id=msg.session_id or "",
        body=body,
        correlation_id=msg.correlation_id or "",
        application_properties=_parked_properties(msg),
    )
    app.queue.dead_letter(parked, reason, description)


# Kept on a parked copy: the trace context it came with (so it leads back to the event's trace) and, for a
# replay that failed again, the id the message first had.
_KEPT_PROPERTIES = (
    telemetry.TRACEPARENT,
    telemetry.TRACESTATE,
    ORIGINAL_MESSAGE_ID,
    REPLAYED_BY,
    REPLAY_COUNT,
)


def _parked_properties(msg: func.ServiceBusMessage) -> dict[str, str]:
    """What the parked copy carries: the properties worth keeping, and the delivery the worker saw (the
    copy is a new message; the operator wants the original's first enqueue time and delivery count)."""
    properties = {
        name: value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        for name, value in (msg.application_properties or {}).items()
        if name in _KEPT_PROPERTIES
    }
    if msg.enqueued_time_utc is not None:
        properties[FIRST_ENQUEUED_AT] = msg.enqueued_time_utc.isoformat()
    properties[DELIVERY_COUNT] = str(msg.delivery_count or 1)
    return properties
