"""The operations inbox table: one row per marketplace operation, which makes processing idempotent (R37).

The worker records each operation here on first sight (`put_new` never overwrites, so exactly one delivery
wins), then moves it through its states (shared/domain/inbox.py) with ETag-guarded `save`s. Callers see
`InboxRecord`s only; the row layout stays in this module.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.domain.inbox import InboxRecord, InboxState
from shared.logs import get_logger, log_context
from shared.storage.entities import (
    check_key,
    check_string,
    etag_of,
    get_bool,
    get_datetime,
    get_int,
    get_str,
    put_datetime,
    put_optional,
    to_utc,
)
from shared.storage.errors import ConcurrencyError, InvalidEntityError

_TEXT_FIELDS = (
    "action",
    "source",
    "decision",
    "reason",
    "decided_by",
    "outcome",
    "plan_id",
    "correlation_id",
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_log = get_logger(__name__)


def to_entity(record: InboxRecord) -> dict[str, Any]:
    if not isinstance(record.state, InboxState):
        _log.warning("refused an operation record with an unknown state", extra={"state": record.state})
        raise InvalidEntityError(f"state must be an InboxState, got {record.state!r}")
    entity: dict[str, Any] = {
        "PartitionKey": check_key(record.subscription_id, "subscription id"),
        "RowKey": check_key(record.operation_id, "operation id"),
        "state": str(record.state.value),
        "initiated_by_publisher": record.initiated_by_publisher,
        "left_to_recheck": record.left_to_recheck,
        "holds_seats": record.holds_seats,
    }
    for name in _TEXT_FIELDS:
        entity[name] = check_string(name, getattr(record, name))
    put_optional(entity, "quantity", record.quantity)
    put_datetime(entity, "created_at", record.created_at)
    put_datetime(entity, "updated_at", record.updated_at)
    put_datetime(entity, "received_at", record.received_at)
    put_datetime(entity, "answered_at", record.answered_at)
    return entity


def from_entity(entity: Mapping[str, Any], etag: str = "") -> InboxRecord:
    return InboxRecord(
        subscription_id=get_str(entity, "PartitionKey"),
        operation_id=get_str(entity, "RowKey"),
        action=get_str(entity, "action"),
        state=InboxState.parse(get_str(entity, "state")),
        source=get_str(entity, "source"),
        decision=get_str(entity, "decision"),
        reason=get_str(entity, "reason"),
        decided_by=get_str(entity, "decided_by"),
        outcome=get_str(entity, "outcome"),
        plan_id=get_str(entity, "plan_id"),
        quantity=get_int(entity, "quantity"),
        initiated_by_publisher=get_bool(entity, "initiated_by_publisher"),
        left_to_recheck=get_bool(entity, "left_to_recheck"),
        holds_seats=get_bool(entity, "holds_seats"),
        correlation_id=get_str(entity, "correlation_id"),
        created_at=get_datetime(entity, "created_at"),
        updated_at=get_datetime(entity, "updated_at"),
        received_at=get_datetime(entity, "received_at"),
        answered_at=get_datetime(entity, "answered_at"),
        etag=etag,
    )


class OperationInbox:
    """Operation rows in one table: PartitionKey = subscription id, RowKey = operation id.

    :param table_client: the client of an existing table (see `TableSet.operations`).
    """

    def __init__(self, table_client: TableClient) -> None:
        self._table = table_client

    def get(self, subscription_id: str, operation_id: str) -> InboxRecord | None:
        keys = {
            "partition_key": check_key(subscription_id, "subscription id"),
            "row_key": check_key(operation_id, "operation id"),
        }
        try:
            entity = self._table.get_entity(**keys)
        except ResourceNotFoundError:
            return None
        return from_entity(entity, etag_of(entity))

    def put_new(self, record: InboxRecord) -> InboxRecord | None:
        """Records an operation seen for the first time and returns it as stored (with its ETag, so it can
        be saved without reading it back); None (and nothing written) if the operation is already known.

        Missing `created_at` / `updated_at` are stamped with the current time so the inbox stays ordered.
        """
        now = datetime.now(UTC)
        stamped = replace(record, created_at=record.created_at or now, updated_at=record.updated_at or now)
        try:
            written = self._table.create_entity(entity=to_entity(stamped))
        except ResourceExistsError:
            with log_context(subscription_id=record.subscription_id, operation_id=record.operation_id):
                _log.info("operation already in the inbox", extra={"action": record.action})
            return None
        return replace(stamped, etag=str(written["etag"]))

    def save(self, record: InboxRecord) -> InboxRecord:
        """Replaces the row if it is still the one `record.etag` came from; returns it with the new etag.

        Raises ConcurrencyError when someone else saved it (or it vanished) since, InvalidEntityError without
        an etag (new records go through `put_new`).
        """
        if not record.etag:
            raise InvalidEntityError(
                f"save needs the etag read with operation {record.operation_id}; new records use put_new"
            )
        try:
            written = self._table.update_entity(
                entity=to_entity(record),
                mode=UpdateMode.REPLACE,
                etag=record.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            with log_context(subscription_id=record.subscription_id, operation_id=record.operation_id):
                _log.info("operation changed since it was read", extra={"error": type(exc).__name__})
            raise ConcurrencyError(f"operation {record.operation_id} changed since it was read") from exc
        return replace(record, etag=str(written["etag"]))

    def answered_since(self, cutoff: datetime) -> Iterator[tuple[datetime, datetime]]:
        """(received, answered) of every change the webhook took in from `cutoff` on and we answered."""
        rows = self._table.query_entities(
            query_filter="received_at ge @cutoff",
            parameters={"cutoff": to_utc(cutoff, "cutoff")},
            select=["received_at", "answered_at"],
            results_per_page=1000,
        )
        for entity in rows:
            received, answered = get_datetime(entity, "received_at"), get_datetime(entity, "answered_at")
            if received is not None and answered is not None:
                yield received, answered

    def count_in_progress(self) -> int:
        """How many operations are received and not answered, or followed until Microsoft finishes them."""
        rows = self._table.query_entities(
            query_filter="state eq @received or state eq @tracking",
            parameters={"received": InboxState.RECEIVED.value, "tracking": InboxState.TRACKING.value},
            select=["PartitionKey"],
            results_per_page=1000,
        )
        return sum(1 for _ in rows)

    def list_for_subscription(self, subscription_id: str) -> list[InboxRecord]:
        """Every operation recorded for a subscription, oldest first."""
        rows = self._table.query_entities(
            query_filter="PartitionKey eq @pk",
            parameters={"pk": check_key(subscription_id, "subscription id")},
        )
        records = [from_entity(entity, etag_of(entity)) for entity in rows]
        return sorted(records, key=lambda r: (r.created_at or _EPOCH, r.operation_id))
