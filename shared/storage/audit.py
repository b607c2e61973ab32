"""The audit trail: an append-only history of what happened to each subscription, and why.

Rows are only ever created, never updated or upserted, so a bug or a replayed message cannot rewrite
history. The one exception is the retention purge (`rewrite_changes`): once a subscription's retention
period ended, personal values in its entries' `changes` are redacted in place, under each row's ETag; what
happened, when, why and by whom stays.

Rows live in the subscriptions table, in the subscription's own partition, so that a change to the
subscription and the entry that records it are written in one entity-group transaction
(`SubscriptionStore.update` with a `Change` carrying an `AuditEntry`): a crash can never leave a change
without its record. RowKey is `audit-` + the UTC time of the event + a random suffix, so key order is
chronological, two events in the same microsecond both stay, and audit rows never mix with the
subscription row (RowKey `subscription`). This module is the only place that knows the row layout of an
`AuditEntry` (shared/domain/audit.py).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient, UpdateMode

from shared.domain.audit import AuditAction, AuditEntry, AuditSource
from shared.logs import get_logger, log_context
from shared.storage.entities import check_key, check_string, etag_of, get_datetime, get_str, to_utc
from shared.storage.errors import AlreadyExistsError

_log = get_logger(__name__)


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
# Rows always carry `at`; this stands in only if one was written by hand without it.
_NO_TIME = datetime.min.replace(tzinfo=UTC)


def _row_key(at: datetime) -> str:
    # Fixed-width UTC time sorts as text in time order; the uuid keeps same-instant rows apart.
    return f"{_key_from(at, 'at')}-{uuid.uuid4().hex}"


def _key_from(at: datetime, name: str) -> str:
    """The lowest RowKey of an entry at or after `at`."""
    return f"{ROW_PREFIX}{to_utc(at, name):%Y%m%dT%H%M%S.%fZ}"


Changes = Mapping[str, tuple[Any, Any]]


def _changes_json(changes: Changes) -> str:
    return check_string("changes", to_json({name: [old, new] for name, (old, new) in changes.items()}))


def to_entity(entry: AuditEntry) -> dict[str, Any]:
    """The row for `entry` (a new RowKey each time: entries are never rewritten), not yet written."""
    changes_json = _changes_json(entry.changes)
    return {
        "PartitionKey": check_key(entry.subscription_id, "subscription id"),
        "RowKey": _row_key(entry.at),
        "at": to_utc(entry.at, "at"),
        # StrEnum values, stored as the plain strings older rows hold too.
        "action": str(entry.action.value),
        "source": str(entry.source.value),
        "operation_id": entry.operation_id,
        "changes": changes_json,
        "correlation_id": entry.correlation_id,
        # Only operators' entries name a person; the app's own rows stay as they always were.
        **({"actor": check_string("actor", entry.actor)} if entry.actor else {}),
    }


def from_entity(entity: Mapping[str, Any]) -> AuditEntry:
    """The entry a row holds; an action or source this version does not know reads as UNKNOWN."""
    at = get_datetime(entity, "at")
    changes = json.loads(get_str(entity, "changes", "{}"))
    return AuditEntry(
        subscription_id=get_str(entity, "PartitionKey"),
        at=at if at is not None else _NO_TIME,
        action=AuditAction.parse(get_str(entity, "action")),
        source=AuditSource.parse(get_str(entity, "source")),
        operation_id=get_str(entity, "operation_id"),
        changes={name: _pair(value) for name, value in changes.items()},
        correlation_id=get_str(entity, "correlation_id"),
        entry_id=get_str(entity, "RowKey"),
        actor=get_str(entity, "actor"),
    )


def _pair(value: object) -> tuple[Any, Any]:
    # Stored as a JSON [old, new]; anything else (a hand-written row) keeps its value as the new one.
    if isinstance(value, list) and len(value) == 2:
        return (value[0], value[1])
    return (None, value)


class AuditTrail:
    """Appends and lists audit entries in one table.

    :param table_client: the subscriptions table (see `TableSet.audit`).
    """

    def __init__(self, table_client: TableClient) -> None:
        self._table = table_client

    def append(self, entry: AuditEntry) -> AuditEntry:
        """Adds one event that changed nothing stored (decisions); returns it as it reads back."""
        entity = to_entity(entry)
        row_key = entity["RowKey"]
        try:
            self._table.create_entity(entity=entity)
        except ResourceExistsError as exc:
            # Only a uuid4 collision gets here; refusing beats overwriting history.
            with log_context(subscription_id=entry.subscription_id):
                _log.error("audit row key collided", extra={"row_key": row_key})
            raise AlreadyExistsError(f"audit entry {row_key} already exists") from exc
        # What was sent is what is stored: no read back.
        return from_entity(entity)

    def list_since(self, subscription_id: str, cutoff: datetime) -> list[AuditEntry]:
        """A subscription's entries from `cutoff` on, oldest first. Table Storage returns a partition in
        ascending key order only, so "the newest N" is read as "since a time": the key starts with the
        entry's time, so the service filters and only those rows travel."""
        rows = self._table.query_entities(
            query_filter="PartitionKey eq @pk and RowKey ge @first and RowKey lt @end",
            parameters={
                "pk": check_key(subscription_id, "subscription id"),
                "first": _key_from(cutoff, "cutoff"),
                "end": _ROW_END,
            },
        )
        return [from_entity(entity) for entity in rows]

    def list(self, subscription_id: str) -> list[AuditEntry]:
        """A subscription's history, oldest first (the table returns rows in RowKey order)."""
        return [from_entity(entity) for entity in self._rows(subscription_id)]

    def rewrite_changes(self, subscription_id: str, rewrite: Callable[[Changes], Changes]) -> int:
        """Replaces each entry's `changes` with `rewrite(changes)` where that differs (the retention purge's
        redaction); returns how many rows were rewritten. Rows stream a page at a time; each write is
        guarded by the row's ETag, and nothing else in the row changes."""
        rewritten = 0
        for entity in self._rows(subscription_id):
            new_json = _changes_json(rewrite(from_entity(entity).changes))
            if new_json == get_str(entity, "changes", "{}"):
                continue
            self._table.update_entity(
                entity={
                    "PartitionKey": entity["PartitionKey"],
                    "RowKey": entity["RowKey"],
                    "changes": new_json,
                },
                mode=UpdateMode.MERGE,
                etag=etag_of(entity),
                match_condition=MatchConditions.IfNotModified,
            )
            rewritten += 1
        return rewritten

    def since(self, cutoff: datetime) -> Iterator[AuditEntry]:
        """Every subscription's entries from `cutoff` on, in no particular order (the console's per-day
        counts). RowKey starts with the entry's UTC time, so the service filters on the key: only the
        recent rows travel, and only the columns the counts read."""
        rows = self._table.query_entities(
            query_filter="RowKey ge @first and RowKey lt @end",
            parameters={
                "first": _key_from(cutoff, "cutoff"),
                "end": _ROW_END,
            },
            select=["PartitionKey", "RowKey", "at", "action", "source", "changes"],
            results_per_page=1000,
        )
        for entity in rows:
            yield from_entity(entity)

    def _rows(self, subscription_id: str) -> Any:
        return self._table.query_entities(
            query_filter="PartitionKey eq @pk and RowKey ge @first and RowKey lt @end",
            parameters={
                "pk": check_key(subscription_id, "subscription id"),
                "first": ROW_PREFIX,
                "end": _ROW_END,
            },
        )
