"""The subscriptions table: one row per SaaS subscription, the publisher's mirror of Microsoft's record.

PartitionKey is the SaaS subscription id and RowKey the constant "subscription", so every read is a point
read and every write is guarded by the row's ETag. `update` is the read-modify-write loop the worker uses:
two messages about the same subscription may be processed at once on different instances, and the ETag
makes the slower one start again from the newer row instead of overwriting it. Callers see only domain
values (`Subscription`, `AuditEntry`, and `Change` / `Updated` from `shared.domain.changes`); the row layout
(`to_entity` / `from_entity`) stays in this module.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity, TableTransactionError, UpdateMode

from shared.domain.audit import AuditEntry
from shared.domain.changes import Change, ChangeFunction, Updated
from shared.domain.status import SubscriptionStatus, parse_status
from shared.domain.subscription import Party, Subscription, Term
from shared.domain.subscription_query import SubscriptionSummary
from shared.logs import get_logger, log_context
from shared.storage import audit as audit_rows
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
from shared.storage.errors import AlreadyExistsError, ConcurrencyError, InvalidEntityError

ROW_KEY = "subscription"
# Transaction failures that mean another writer got there first: re-read and try again.
_RACE_CODES = {"UpdateConditionNotSatisfied", "EntityAlreadyExists", "ResourceNotFound", "ConditionNotMet"}
# Bumped when the row layout changes, so a reader can recognise rows written by an older version.
# 2: `personal_data_purged` (bool) on every row, so the purge's query leaves purged rows out.
SCHEMA_VERSION = 2
# Rows of this layout or newer carry `personal_data_purged`.
PURGE_MARKER_SINCE = 2
_PARTIES = ("purchaser", "beneficiary")
_TEXT_FIELDS = (
    "name",
    "offer_id",
    "plan_id",
    "sandbox_type",
    "session_mode",
    "last_operation_id",
    "last_operation_action",
)
_BOOL_FIELDS = ("auto_renew", "is_test", "is_free_trial", "provisioned")
_DATETIME_FIELDS = (
    "activation_requested_at",
    "activated_at",
    "last_operation_at",
    "last_synced_at",
    "unsubscribed_at",
    "personal_data_purged_at",
    "created_at",
    "updated_at",
)
# What the operator's list reads of each row (`list_summaries`).
_SUMMARY_COLUMNS = (
    "PartitionKey",
    "name",
    "offer_id",
    "plan_id",
    "quantity",
    "status",
    "purchaser_email",
    "purchaser_tenant_id",
    "beneficiary_email",
    "beneficiary_tenant_id",
    "created_at",
    "last_synced_at",
)
_BACKOFF_BASE_SECONDS = 0.02
_BACKOFF_CAP_SECONDS = 0.5
_jitter = random.SystemRandom()

_log = get_logger(__name__)


def to_entity(sub: Subscription) -> dict[str, Any]:
    """Flattens a Subscription into typed Table properties (parties and term become prefixed columns)."""
    entity: dict[str, Any] = {
        "PartitionKey": check_key(sub.id, "subscription id"),
        "RowKey": ROW_KEY,
        "schema_version": SCHEMA_VERSION,
        "status": str(sub.status.value),
        "allowed_customer_operations": ",".join(sorted(sub.allowed_customer_operations)),
        "term_unit": sub.term.unit,
        "term_charge_duration": sub.term.charge_duration,
        # Table Storage cannot filter on a property a row lacks, so the marker is written on every row.
        "personal_data_purged": sub.personal_data_purged_at is not None,
    }
    for name in _TEXT_FIELDS:
        entity[name] = check_string(name, getattr(sub, name))
    for name in _BOOL_FIELDS:
        entity[name] = bool(getattr(sub, name))
    for name in _DATETIME_FIELDS:
        put_datetime(entity, name, getattr(sub, name))
    for role in _PARTIES:
        entity.update(_party_properties(role, getattr(sub, role)))
    put_datetime(entity, "term_start", sub.term.start)
    put_datetime(entity, "term_end", sub.term.end)
    put_optional(entity, "quantity", sub.quantity)
    return entity


def from_entity(entity: Mapping[str, Any], etag: str = "") -> Subscription:
    """The Subscription a row holds; `etag` is the row's concurrency token from the read."""
    return Subscription(
        id=get_str(entity, "PartitionKey"),
        name=get_str(entity, "name"),
        offer_id=get_str(entity, "offer_id"),
        plan_id=get_str(entity, "plan_id"),
        quantity=get_int(entity, "quantity"),
        status=parse_status(get_str(entity, "status")),
        purchaser=_party(entity, "purchaser"),
        beneficiary=_party(entity, "beneficiary"),
        term=Term(
            unit=get_str(entity, "term_unit"),
            start=get_datetime(entity, "term_start"),
            end=get_datetime(entity, "term_end"),
            charge_duration=get_str(entity, "term_charge_duration"),
        ),
        auto_renew=get_bool(entity, "auto_renew", default=True),
        is_test=get_bool(entity, "is_test"),
        is_free_trial=get_bool(entity, "is_free_trial"),
        allowed_customer_operations=frozenset(
            op for op in get_str(entity, "allowed_customer_operations").split(",") if op
        ),
        sandbox_type=get_str(entity, "sandbox_type", "None"),
        session_mode=get_str(entity, "session_mode", "None"),
        activation_requested_at=get_datetime(entity, "activation_requested_at"),
        activated_at=get_datetime(entity, "activated_at"),
        provisioned=get_bool(entity, "provisioned"),
        last_operation_id=get_str(entity, "last_operation_id"),
        last_operation_action=get_str(entity, "last_operation_action"),
        last_operation_at=get_datetime(entity, "last_operation_at"),
        last_synced_at=get_datetime(entity, "last_synced_at"),
        unsubscribed_at=get_datetime(entity, "unsubscribed_at"),
        personal_data_purged_at=get_datetime(entity, "personal_data_purged_at"),
        created_at=get_datetime(entity, "created_at"),
        updated_at=get_datetime(entity, "updated_at"),
        etag=etag,
    )


def _party_properties(role: str, party: Party) -> dict[str, str]:
    return {
        f"{role}_email": party.email,
        f"{role}_object_id": party.object_id,
        f"{role}_tenant_id": party.tenant_id,
        f"{role}_puid": party.puid,
    }


def _party(entity: Mapping[str, Any], role: str) -> Party:
    return Party(
        email=get_str(entity, f"{role}_email"),
        object_id=get_str(entity, f"{role}_object_id"),
        tenant_id=get_str(entity, f"{role}_tenant_id"),
        puid=get_str(entity, f"{role}_puid"),
    )


def _read(entity: TableEntity) -> Subscription:
    return from_entity(entity, etag_of(entity))


class SubscriptionStore:
    """Reads and writes Subscription rows in one table.

    :param table_client: the client of an existing table (see `TableSet.subscriptions`).
    """

    def __init__(self, table_client: TableClient) -> None:
        self._table = table_client

    def get(self, subscription_id: str) -> Subscription | None:
        """The stored subscription, or None if there is none."""
        key = check_key(subscription_id, "subscription id")
        try:
            return _read(self._table.get_entity(partition_key=key, row_key=ROW_KEY))
        except ResourceNotFoundError:
            return None

    def insert(self, sub: Subscription) -> Subscription:
        """Stores a new subscription; raises AlreadyExistsError if one with this id is stored."""
        entity = to_entity(sub)
        try:
            written = self._table.create_entity(entity=entity)
        except ResourceExistsError as exc:
            with log_context(subscription_id=sub.id):
                _log.info("subscription insert found an existing row")
            raise AlreadyExistsError(f"subscription {sub.id} is already stored") from exc
        return dataclasses.replace(sub, etag=str(written["etag"]))

    def replace(self, sub: Subscription) -> Subscription:
        """Overwrites the stored row if it is still the one `sub.etag` was read from.

        Raises ConcurrencyError when the row changed or was deleted since, InvalidEntityError without an etag.
        """
        if not sub.etag:
            raise InvalidEntityError(f"replace needs the etag read with subscription {sub.id}; use insert")
        try:
            written = self._table.update_entity(
                entity=to_entity(sub),
                mode=UpdateMode.REPLACE,
                etag=sub.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            with log_context(subscription_id=sub.id):
                _log.info("subscription changed since it was read", extra={"error": type(exc).__name__})
            raise ConcurrencyError(f"subscription {sub.id} changed since it was read") from exc
        return dataclasses.replace(sub, etag=str(written["etag"]))

    def update(
        self,
        subscription_id: str,
        change: ChangeFunction,
        *,
        current: Subscription | None = None,
        absent: bool = False,
        attempts: int = 8,
    ) -> Updated:
        """Applies `change` to the stored subscription (None if absent) and stores its result atomically.

        `current`, when given, is the row as the caller read it (with its ETag): the first attempt starts
        from it instead of reading it again. It is safe because the write is guarded by that ETag; a row
        changed since fails the write and the next attempt reads. `absent=True` says the caller knows of no
        row: the first attempt starts from None without reading, which is as safe, since that write is an
        insert and a row stored meanwhile makes it fail and the next attempt read.

        On an ETag conflict the whole read-change-write starts again, so `change` may run several times and
        must not have side effects: whatever a caller needs from its decision comes back in the result
        (`before`, `after`, `audit`), never through variables the function sets. Raises ConcurrencyError
        when every attempt lost a race.
        """
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts}")
        known = current if current is not None and current.etag and current.id == subscription_id else None
        assumed_absent = absent and known is None
        for attempt in range(attempts):
            try:
                first = attempt == 0
                return self._update_once(
                    subscription_id, change, known if first else None, absent=first and assumed_absent
                )
            except (ConcurrencyError, AlreadyExistsError):
                if attempt + 1 < attempts:
                    time.sleep(_backoff(attempt))
        with log_context(subscription_id=subscription_id):
            _log.warning("subscription update gave up after repeated conflicts", extra={"attempts": attempts})
        raise ConcurrencyError(
            f"subscription {subscription_id} kept changing; gave up after {attempts} attempts"
        )

    def _update_once(
        self,
        subscription_id: str,
        change: ChangeFunction,
        known: Subscription | None,
        *,
        absent: bool = False,
    ) -> Updated:
        current = known if known is not None or absent else self.get(subscription_id)
        decided = change(current)
        if decided is None:
            return Updated(before=current, after=None)
        if isinstance(decided, Subscription):
            decided = Change(decided)
        result, entry = decided.subscription, decided.audit
        if result.id != subscription_id:
            raise InvalidEntityError(f"update of {subscription_id} returned subscription {result.id}")
        if entry is not None:
            if entry.subscription_id != subscription_id:
                raise InvalidEntityError(f"update of {subscription_id} audited {entry.subscription_id}")
            return self._write_with(current, result, entry)
        if current is None:
            return Updated(before=None, after=self.insert(dataclasses.replace(result, etag="")))
        # The etag is the one we read, whatever `change` put there: that is what makes the write safe.
        return Updated(before=current, after=self.replace(dataclasses.replace(result, etag=current.etag)))

    def _write_with(self, current: Subscription | None, result: Subscription, entry: AuditEntry) -> Updated:
        """The subscription row and its audit row in one entity-group transaction (same partition)."""
        entity = to_entity(result)
        if current is None:
            operations: list[Any] = [("create", entity)]
        else:
            guard = {
                "mode": UpdateMode.REPLACE,
                "etag": current.etag,
                "match_condition": MatchConditions.IfNotModified,
            }
            operations = [("update", entity, guard)]
        audit_entity = audit_rows.to_entity(entry)
        operations.append(("create", audit_entity))
        try:
            written = self._table.submit_transaction(operations)
        except TableTransactionError as exc:
            # azure-data-tables sets error_code while decoding the error; the class does not declare it.
            error_code = getattr(exc, "error_code", None)
            code = str(getattr(error_code, "value", error_code) or "")
            if code in _RACE_CODES:
                with log_context(subscription_id=result.id):
                    _log.info("subscription changed since it was read", extra={"error": code})
                raise ConcurrencyError(f"subscription {result.id} changed since it was read") from exc
            raise
        # The transaction's answer carries the new ETag, and the audit row is what was sent: no read back.
        return Updated(
            before=current,
            after=dataclasses.replace(result, etag=str(written[0]["etag"])),
            audit=audit_rows.from_entity(audit_entity),
        )

    def list_all(self, *, unreadable: list[str] | None = None) -> Iterator[Subscription]:
        """Every stored subscription, page by page (for the operator's subscription list); a row that cannot
        be read is left out as in `list_summaries`."""
        rows = self._table.query_entities(query_filter="RowKey eq @row", parameters={"row": ROW_KEY})
        yield from _readable(rows, _read, unreadable)

    def list_summaries(
        self, *, page_size: int = 1000, unreadable: list[str] | None = None
    ) -> Iterator[SubscriptionSummary]:
        """Every stored subscription as the operator's list shows it, page by page.

        Only the list's columns travel ($select): on Azurite, 10,000 rows come back about 2.4 times faster
        than whole rows (bench/console_search.py), most of a row being fields the list never shows. A row
        that cannot be read (an unknown status, a field of the wrong type) is left out, logged by its keys
        and its id added to `unreadable`: one bad row must not take the whole list down with it.
        """
        rows = self._table.query_entities(
            query_filter="RowKey eq @row",
            parameters={"row": ROW_KEY},
            select=list(_SUMMARY_COLUMNS),
            results_per_page=page_size,
        )
        yield from _readable(rows, _summary, unreadable)

    def unsubscribed_before(self, cutoff: datetime, *, page_size: int = 100) -> Iterator[Subscription]:
        """Subscriptions Unsubscribed at or before `cutoff` whose personal data is not purged yet, for the
        retention purge; a row written before the purge marker existed (`PURGE_MARKER_SINCE`) comes back
        purged or not, until it is stored again.

        The service applies the filter and hands them back `page_size` at a time; the generator holds one
        page, never the table.
        """
        rows = self._table.query_entities(
            query_filter=(
                "RowKey eq @row and status eq @status and unsubscribed_at le @cutoff "
                # Spaces around @marked: the SDK substitutes a parameter only where it stands alone.
                "and (personal_data_purged eq false or schema_version lt @marked )"
            ),
            parameters={
                "row": ROW_KEY,
                "status": SubscriptionStatus.UNSUBSCRIBED.value,
                "cutoff": to_utc(cutoff, "cutoff"),
                "marked": PURGE_MARKER_SINCE,
            },
            results_per_page=page_size,
        )
        for entity in rows:
            yield _read(entity)

    def list_for_tenant(self, tenant_id: str) -> list[Subscription]:
        """Subscriptions whose purchaser or beneficiary belongs to `tenant_id` (an Entra tenant id)."""
        if not isinstance(tenant_id, str) or not tenant_id.strip():
            _log.warning("refused to list subscriptions for an empty tenant id")
            raise InvalidEntityError("tenant_id must be a non-empty string")
        # The SDK substitutes @-parameters only where they stand alone between spaces, and escapes quotes.
        rows = self._table.query_entities(
            query_filter="purchaser_tenant_id eq @tenant or beneficiary_tenant_id eq @tenant",
            parameters={"tenant": tenant_id},
        )
        return [_read(entity) for entity in rows if entity.get("RowKey") == ROW_KEY]


def _summary(entity: Mapping[str, Any]) -> SubscriptionSummary:
    return SubscriptionSummary(
        id=get_str(entity, "PartitionKey"),
        name=get_str(entity, "name"),
        offer_id=get_str(entity, "offer_id"),
        plan_id=get_str(entity, "plan_id"),
        quantity=get_int(entity, "quantity"),
        status=parse_status(get_str(entity, "status")),
        # The projection selects only the address and tenant of each party; the rest reads as empty.
        purchaser=_party(entity, "purchaser"),
        beneficiary=_party(entity, "beneficiary"),
        created_at=get_datetime(entity, "created_at"),
        last_synced_at=get_datetime(entity, "last_synced_at"),
    )


def _backoff(attempt: int) -> float:
    # Full jitter: racing writers spread out instead of colliding again in lockstep.
    return _jitter.uniform(0, min(_BACKOFF_CAP_SECONDS, _BACKOFF_BASE_SECONDS * 2**attempt))


T = TypeVar("T")
E = TypeVar("E", bound=Mapping[str, Any])


def _readable(rows: Iterable[E], parse: Callable[[E], T], unreadable: list[str] | None) -> Iterator[T]:
    """Each row `parse` can read; one it cannot (an unknown status, a field of the wrong type) is logged by
    its keys and the error's type only (the message may quote a field, and the row holds personal data), its
    id added to `unreadable`, and left out: one bad row must not take a whole list down with it."""
    for entity in rows:
        try:
            parsed = parse(entity)
        except (InvalidEntityError, ValueError, TypeError) as exc:
            _log.warning(
                "subscription row unreadable; left out of the list",
                extra={
                    "partition_key": entity.get("PartitionKey"),
                    "row_key": ROW_KEY,
                    "error": type(exc).__name__,
                },
            )
            if unreadable is not None:
                unreadable.append(str(entity.get("PartitionKey")))
            continue
        yield parsed
