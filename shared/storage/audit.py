"""The audit trail: an append-only history of what happened to each subscription, and why.

Rows are only ever created, never updated or upserted, so a bug or a replayed message cannot rewrite
history. They live in the subscriptions table, in the subscription's own partition, so that a change to the
subscription and the row that records it are written in one entity-group transaction (`audit_entity` +
`SubscriptionStore.update(..., audit=...)`): a crash can never leave a change without its record. RowKey is
`audit-` + the UTC time of the event + a random suffix, so key order is chronological, two events in the
same microsecond both stay, and audit rows never mix with the subscription row (RowKey `subscription`).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient

from shared.logs import get_logger, log_context
from shared.storage.entities import check_key, check_string, get_datetime, get_str, to_utc
from shared.storage.errors import AlreadyExistsError

_log = get_logger(__name__)


@dataclass(frozen=True)
class AuditEntry:
    """One event in a subscription's history; `changes` maps a field name to [old, new] as JSON values."""

    subscription_id: str
    at: datetime
    action: str
    source: str = ""
    operation_id: str = ""
    changes: dict[str, list[Any]] = field(default_factory=dict)
    correlation_id: str = ""
    entry_id: str = ""  # the RowKey


def to_json(value: object) -> str:
    """JSON for audit values: datetimes as ISO 8601, enums by value, sets sorted, dataclasses as objects."""
    return json.dumps(value, default=_json_default, sort_keys=True, ensure_ascii=False)


def _json_default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    # A value we cannot describe still deserves a trace rather than a lost audit row.
    return repr(value)


ROW_PREFIX = "audit-"
_ROW_END = "audit."  # the first key after every "audit-..." key ('.' follows '-' in ASCII)


def _row_key(at: datetime) -> str:
    # Fixed-width UTC time sorts as text in time order; the uuid keeps same-instant rows apart.
    return f"{ROW_PREFIX}{to_utc(at, 'at'):%Y%m%dT%H%M%S.%fZ}-{uuid.uuid4().hex}"


def audit_entity(
    subscription_id: str,
    *,
    action: str,
    source: str,
    operation_id: str = "",
    changes: Mapping[str, tuple[object, object]] | None = None,
    correlation_id: str = "",
    at: datetime,
) -> dict[str, Any]:
    """The row for one event (`at` timezone-aware; `changes` maps field -> (old, new)), not yet written."""
    changes_json = check_string(
        "changes", to_json({k: [old, new] for k, (old, new) in (changes or {}).items()})
    )
    return {
        "PartitionKey": check_key(subscription_id, "subscription id"),
        "RowKey": _row_key(at),
        "at": to_utc(at, "at"),
        "action": action,
        "source": source,
        "operation_id": operation_id,
        "changes": changes_json,
        "correlation_id": correlation_id,
    }


def _from_entity(entity: Mapping[str, Any]) -> AuditEntry:
    at = get_datetime(entity, "at")
    return AuditEntry(
        subscription_id=get_str(entity, "PartitionKey"),
        at=at if at is not None else datetime.min,
        action=get_str(entity, "action"),
        source=get_str(entity, "source"),
        operation_id=get_str(entity, "operation_id"),
        changes=json.loads(get_str(entity, "changes", "{}")),
        correlation_id=get_str(entity, "correlation_id"),
        entry_id=get_str(entity, "RowKey"),
    )


class AuditTrail:
    """Appends and lists audit rows in one table.

    :param table_client: the subscriptions table (see `TableSet.audit`).
    """

    def __init__(self, table_client: TableClient) -> None:
        self._table = table_client

    def append(
        self,
        subscription_id: str,
        *,
        action: str,
        source: str,
        operation_id: str = "",
        changes: Mapping[str, tuple[object, object]] | None = None,
        correlation_id: str = "",
        at: datetime,
    ) -> AuditEntry:
        """Adds one event that changed nothing stored (decisions, confirmations, provisioning)."""
        entity = audit_entity(
            subscription_id,
            action=action,
            source=source,
            operation_id=operation_id,
            changes=changes,
            correlation_id=correlation_id,
            at=at,
        )
        row_key = entity["RowKey"]
        try:
            self._table.create_entity(entity=entity)
        except ResourceExistsError as exc:
            # Only a uuid4 collision gets here; refusing beats overwriting history.
            with log_context(subscription_id=subscription_id):
                _log.error("audit row key collided", extra={"row_key": row_key})
            raise AlreadyExistsError(f"audit entry {row_key} already exists") from exc
        return _from_entity(entity)

    def list(self, subscription_id: str) -> list[AuditEntry]:
        """A subscription's history, oldest first (the table returns rows in RowKey order)."""
        rows = self._table.query_entities(
            query_filter="PartitionKey eq @pk and RowKey ge @first and RowKey lt @end",
            parameters={
                "pk": check_key(subscription_id, "subscription id"),
                "first": ROW_PREFIX,
                "end": _ROW_END,
            },
        )
        return [_from_entity(entity) for entity in rows]
