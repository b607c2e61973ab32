"""What travels on the events queue, and the contract every queue adapter fulfils.

One message is one piece of work for the worker. Its `message_id` makes Service Bus drop duplicates inside
the detection window; its `session_id` (always the SaaS subscription id) keeps the work of one subscription
in order and on one worker at a time. The body is JSON with a `kind`:

- `activate`: the landing page resolved a purchase; provision, then call Activate (R14, R15).
- `webhook`: Microsoft announced an operation; verify it against the API and apply it (R33-R38).
- `track`: the publisher started an operation (PATCH or DELETE from the portal); follow it to its end (R25).
- `reconcile`: bring one subscription in line with GetSubscription and its pending operations (R83). The
  sweep adds `listed` for a subscription it found unknown locally: Microsoft's record as ListSubscriptions
  gave it (`listed_body` / `listed_snapshot`), so the worker can create the mirror without asking again.
- `sweep`: run the reconciliation sweep now, in the app's own identity (an operator asked, from the CLI or
  the console); its session is `SWEEP_SESSION`, so two requests never sweep at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from shared import telemetry
from shared.domain.status import parse_status
from shared.domain.subscription import SWEEP_SESSION, MicrosoftSubscription, Party, Term

if TYPE_CHECKING:
    from shared.domain.dead_letters import DeadLetterEntry

CONTENT_TYPE = "application/json"


class MessageKind(StrEnum):
    """The body's `kind`: which piece of work a message is (the module docstring says what each does)."""

    ACTIVATE = "activate"
    WEBHOOK = "webhook"
    TRACK = "track"
    RECONCILE = "reconcile"
    SWEEP = "sweep"

    @classmethod
    def parse(cls, value: object) -> MessageKind | None:
        """The kind a body names, None for anything else (exact spelling: the app wrote it)."""
        return next((kind for kind in cls if kind.value == value), None) if isinstance(value, str) else None


class QueueUnavailableError(RuntimeError):
    """The message was not accepted by the queue; the caller must not acknowledge its own input."""


class MalformedMessageError(ValueError):
    """A message body that no retry can make valid; it is dead-lettered with this reason."""


@dataclass(frozen=True)
class QueueMessage:
    message_id: str
    session_id: str
    body: dict[str, Any]
    content_type: str = CONTENT_TYPE
    correlation_id: str = ""
    application_properties: dict[str, str] = field(default_factory=dict)
    # Not delivered before this moment (Service Bus scheduled messages): used to poll an operation again.
    scheduled_at: datetime | None = None

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    def encode(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":"), sort_keys=True).encode()


def decode_body(raw: bytes | str) -> dict[str, Any]:
    """Parses a message body; anything but a JSON object of a known kind is malformed."""
    try:
        body = json.loads(raw)
    except RecursionError as exc:  # not a ValueError: it would otherwise be retried until dead-lettered
        raise MalformedMessageError("message body is nested too deeply") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedMessageError(f"message body is not JSON: {exc}") from exc
    if not isinstance(body, dict) or MessageKind.parse(body.get("kind")) is None:
        raise MalformedMessageError("message body is not an object with a known 'kind'")
    return body


def activation_message(
    subscription_id: str, plan_id: str, quantity: int | None, correlation_id: str
) -> QueueMessage:
    # One activation per subscription: a refreshed landing page inside the detection window is dropped
    # by Service Bus, and after it the worker sees the subscription is already active.
    return QueueMessage(
        message_id=f"activate-{subscription_id}",
        session_id=subscription_id,
        body={
            "kind": MessageKind.ACTIVATE,
            "subscriptionId": subscription_id,
            "planId": plan_id,
            "quantity": quantity,
            "correlationId": correlation_id,
        },
        correlation_id=correlation_id,
    )


def webhook_message(payload: dict[str, Any], received_at: str, correlation_id: str) -> QueueMessage:
    operation_id = str(payload.get("id", "")).strip()
    subscription_id = str(payload.get("subscriptionId", "")).strip()
    return QueueMessage(
        message_id=operation_id,
        session_id=subscription_id,
        body={
            "kind": MessageKind.WEBHOOK,
            "payload": payload,
            "receivedAt": received_at,
            "correlationId": correlation_id,
        },
        correlation_id=correlation_id,
    )


def received_at(body: dict[str, Any]) -> datetime | None:
    """When the webhook took a message in (its body's `receivedAt`), for the worker (how far into
    Microsoft's answer window it is) and for telemetry (answer latency) alike. None when absent, unreadable
    or without an offset: the webhook always writes one (UTC), so a naive time did not come from it and
    is treated as not known rather than guessed to be UTC."""
    value = body.get("receivedAt")
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def track_message(
    subscription_id: str,
    operation_id: str,
    correlation_id: str,
    *,
    attempt: int = 0,
    scheduled_at: datetime | None = None,
) -> QueueMessage:
    return QueueMessage(
        message_id=f"track-{operation_id}-{attempt}",
        session_id=subscription_id,
        body={
            "kind": MessageKind.TRACK,
            "subscriptionId": subscription_id,
            "operationId": operation_id,
            "attempt": attempt,
            "correlationId": correlation_id,
        },
        correlation_id=correlation_id,
        scheduled_at=scheduled_at,
    )


def reconcile_message(
    subscription_id: str, reason: str, correlation_id: str, *, listed: MicrosoftSubscription | None = None
) -> QueueMessage:
    """`listed`: Microsoft's record from ListSubscriptions, for one the sweep found unknown here."""
    body: dict[str, Any] = {
        "kind": MessageKind.RECONCILE,
        "subscriptionId": subscription_id,
        "reason": reason,
        "correlationId": correlation_id,
    }
    if listed is not None:
        body["listed"] = listed_body(listed)
    return QueueMessage(
        message_id=f"reconcile-{subscription_id}-{correlation_id}",
        session_id=subscription_id,
        body=body,
        correlation_id=correlation_id,
    )


def sweep_message(requested_by: str, correlation_id: str) -> QueueMessage:
    """A request to sweep now; the worker runs it with the app's Fulfillment API identity."""
    return QueueMessage(
        message_id=f"sweep-{correlation_id}",
        session_id=SWEEP_SESSION,
        body={"kind": MessageKind.SWEEP, "requestedBy": requested_by, "correlationId": correlation_id},
        correlation_id=correlation_id,
    )


def listed_body(snapshot: MicrosoftSubscription) -> dict[str, Any]:
    """A listed subscription as JSON for a message body; `listed_snapshot` reads it back unchanged."""
    return {
        "id": snapshot.id,
        "name": snapshot.name,
        "offerId": snapshot.offer_id,
        "planId": snapshot.plan_id,
        "quantity": snapshot.quantity,
        "status": snapshot.status.value,
        "purchaser": _party_body(snapshot.purchaser),
        "beneficiary": _party_body(snapshot.beneficiary),
        "term": {
            "unit": snapshot.term.unit,
            "start": _time_body(snapshot.term.start),
            "end": _time_body(snapshot.term.end),
            "chargeDuration": snapshot.term.charge_duration,
        },
        "autoRenew": snapshot.auto_renew,
        "isTest": snapshot.is_test,
        "isFreeTrial": snapshot.is_free_trial,
        "allowedCustomerOperations": sorted(snapshot.allowed_customer_operations),
        "sandboxType": snapshot.sandbox_type,
        "sessionMode": snapshot.session_mode,
        "publisherId": snapshot.publisher_id,
        "created": _time_body(snapshot.created),
        "lastModified": _time_body(snapshot.last_modified),
    }


def listed_snapshot(body: dict[str, Any]) -> MicrosoftSubscription | None:
    """The listed record a reconcile message carries; None when it carries none. A `listed` field that
    does not read back raises MalformedMessageError: the app wrote it, so no retry can mend it."""
    listed = body.get("listed")
    if listed is None:
        return None
    try:
        term = listed["term"]
        return MicrosoftSubscription(
            id=str(listed["id"]),
            name=str(listed["name"]),
            offer_id=str(listed["offerId"]),
            plan_id=str(listed["planId"]),
            quantity=None if listed["quantity"] is None else int(listed["quantity"]),
            status=parse_status(listed["status"]),
            purchaser=Party(**listed["purchaser"]),
            beneficiary=Party(**listed["beneficiary"]),
            term=Term(
                unit=str(term["unit"]),
                start=_time(term["start"]),
                end=_time(term["end"]),
                charge_duration=str(term["chargeDuration"]),
            ),
            auto_renew=bool(listed["autoRenew"]),
            is_test=bool(listed["isTest"]),
            is_free_trial=bool(listed["isFreeTrial"]),
            allowed_customer_operations=frozenset(str(op) for op in listed["allowedCustomerOperations"]),
            sandbox_type=str(listed["sandboxType"]),
            session_mode=str(listed["sessionMode"]),
            publisher_id=str(listed["publisherId"]),
            created=_time(listed["created"]),
            last_modified=_time(listed["lastModified"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedMessageError(f"reconcile message's listed subscription is unreadable: {exc}") from exc


def _party_body(party: Party) -> dict[str, str]:
    return {
        "email": party.email,
        "object_id": party.object_id,
        "tenant_id": party.tenant_id,
        "puid": party.puid,
    }


def _time_body(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: object) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def send_traced(message: QueueMessage, destination: str, send: Callable[[QueueMessage], None]) -> None:
    """Sends `message` with `send`; with telemetry on, inside a producer span whose W3C trace context
    (`traceparent`, `tracestate`) rides in the message's application properties, so the worker that receives
    it continues the same trace. Every `EventQueue` backend sends through this."""
    if not telemetry.enabled():
        send(message)
        return
    attributes = {
        telemetry.MESSAGE_ID: message.message_id,
        telemetry.MESSAGE_KIND: message.kind,
        telemetry.SUBSCRIPTION_ID: message.session_id,
        "messaging.destination.name": destination,
        "messaging.operation.type": "send",
    }
    with telemetry.span(f"enqueue {message.kind}", kind="producer", attributes=attributes):
        properties = {**message.application_properties, **telemetry.trace_context()}
        send(replace(message, application_properties=properties))


class EventQueue(Protocol):
    """Sends work to the worker. Implementations: Service Bus (Azure) and the dev host's local queue."""

    def send(self, message: QueueMessage) -> None:
        """Returns only once the queue has durably accepted the message; else QueueUnavailableError."""
        ...

    def send_many(self, messages: Sequence[QueueMessage]) -> None:
        """`send` for a page of messages in as few round trips (or transactions) as the queue allows.
        QueueUnavailableError may leave some of them sent: their message ids make sending again harmless
        within the duplicate detection window."""
        ...

    def dead_letter(self, message: QueueMessage, reason: str, description: str) -> None:
        """Parks a message that can never succeed, with the reason, for a person to look at."""
        ...


class DeadLetterQueues(Protocol):
    """What each queue backend offers an operator (`shared.workflows.ports.DeadLetterBox`): the parking queue
    and the events queue's dead-letter sub-queue, listed, replayed and discarded alike."""

    def list(self, *, limit: int | None = None) -> list[DeadLetterEntry]: ...

    def replay(self, entry: DeadLetterEntry, message: QueueMessage) -> bool: ...

    def discard(self, entry: DeadLetterEntry) -> bool: ...
