"""Seat licenses of each subscription in Table Storage, never more assigned than the quantity bought.

Layout (one partition per subscription, PartitionKey = SaaS subscription id):
- one counter row (RowKey "counter") holding `assigned`; its ETag is the partition's concurrency token;
- one row per assigned user: RowKey "u:<normalized email/UPN, percent-encoded>" until the user first signs in,
  then "oid:<tenant id>:<object id>" (`bind_identity`), so later checks key on tid+oid, not on an email
  that can change (R10).

Every change to the set of seats is one entity-group transaction that also rewrites the counter under its
ETag (If-Match). Two concurrent assignments cannot both commit against the same counter version, so the
loser re-reads, re-checks the limit and retries: assigned seats never exceed the quantity, and no undo step
is ever needed because the counter and the seat row commit or fail together.

A seat cut is held on the counter too (`hold_limit`): the stored quantity changes only once Microsoft has
applied the cut, seconds or minutes after it was asked for, and an assignment checked against the old
quantity meanwhile would license more people than are paid for. The hold checks the seats assigned and sets
the lower limit in one conditional write of the counter, so a cut and an assignment racing each other
cannot both pass; assignments count against the lowest live hold (`shared.domain.seats.SeatHolds`) until
the holder releases it (`release_limit`, once the operation is final and mirrored) or it expires
(`HOLD_FOR`), whichever comes first. Each holder places and releases only its own.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Final, Literal, TypeVar
from urllib.parse import quote

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, TableTransactionError, UpdateMode

from shared.domain.addresses import normalize_user_key
from shared.domain.seats import (
    Seat,
    SeatHolds,
    SeatLimitError,
    SeatNotFoundError,
    check_can_assign,
    seats_are,
)
from shared.logs import get_logger, log_context

log = get_logger(__name__)

COUNTER_ROW = "counter"
MAX_ATTEMPTS = 40
# Operations one entity-group transaction may hold.
_BATCH_LIMIT = 100
# Codes of a transaction that lost a race: counter changed (412), row created meanwhile (409), row gone (404).
_RACE_CODES = {"UpdateConditionNotSatisfied", "EntityAlreadyExists", "ResourceNotFound", "ConditionNotMet"}
_ID_PART = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class _Race(Enum):
    LOST = "lost"


# Returned by an attempt that lost a race against a concurrent writer: the caller re-reads and retries.
_LOST_RACE: Final = _Race.LOST
_LostRace = Literal[_Race.LOST]
_T = TypeVar("_T")

Operation = tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], dict[str, Any]]
# Spelled here because, inside SeatStore, `list` names its method.
_Operations = list[Operation]


class SeatContentionError(RuntimeError):
    """Too many concurrent changes to one subscription's seats; the caller may try again later."""


@dataclass(frozen=True)
class _Counter:
    assigned: int
    etag: str | None  # None: the counter row does not exist yet
    holds: SeatHolds = field(default_factory=SeatHolds)  # cuts asked for and not yet applied (`hold_limit`)


def _id_part(value: str, what: str) -> str:
    cleaned = (value or "").strip().lower()
    if not _ID_PART.match(cleaned):
        raise ValueError(f"{what} must be an Entra id (letters, digits, '-', '.', '_'), got {value!r}")
    return cleaned


def email_row_key(user_key: str) -> str:
    # Table keys forbid '/', '\\', '#', '?' and control characters; guest UPNs contain '#EXT#'.
    return "u:" + quote(user_key, safe="@.-_+")


def identity_row_key(tenant_id: str, object_id: str) -> str:
    return f"oid:{_id_part(tenant_id, 'tenant id')}:{_id_part(object_id, 'object id')}"


def _seat_from_entity(entity: dict[str, Any]) -> Seat:
    return Seat(
        subscription_id=entity["PartitionKey"],
        key=entity["RowKey"],
        user_key=entity.get("user_key", ""),
        display_name=entity.get("display_name", ""),
        tenant_id=entity.get("tenant_id", ""),
        object_id=entity.get("object_id", ""),
        assigned_by=entity.get("assigned_by", ""),
        assigned_at=entity.get("assigned_at"),
        bound_at=entity.get("bound_at"),
    )


def _seat_entity(seat: Seat) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": seat.subscription_id,
        "RowKey": seat.key,
        "kind": "seat",
        "user_key": seat.user_key,
        "display_name": seat.display_name,
        "tenant_id": seat.tenant_id,
        "object_id": seat.object_id,
        "assigned_by": seat.assigned_by,
    }
    for name in ("assigned_at", "bound_at"):
        if getattr(seat, name) is not None:
            entity[name] = getattr(seat, name)
    return entity


def _error_code(exc: Exception) -> str:
    code = getattr(exc, "error_code", None)
    return str(getattr(code, "value", code) or "")


def _if_match(etag: str) -> dict[str, Any]:
    return {"etag": etag, "match_condition": MatchConditions.IfNotModified}


class SeatStore:
    """Seats of subscriptions; every method takes the SaaS subscription id first."""

    def __init__(self, table_client: TableClient) -> None:
        self._table = table_client

    # --- reads -------------------------------------------------------------------------------------------

    def count(self, subscription_id: str) -> int:
        return self._read_counter(subscription_id).assigned

    def holds(self, subscription_id: str) -> SeatHolds:
        """The seat cuts holding a lower limit now (expired ones included until the next write drops them)."""
        return self._read_counter(subscription_id).holds

    def list(self, subscription_id: str) -> list[Seat]:
        entities = self._table.query_entities(
            "PartitionKey eq @pk and kind eq 'seat'", parameters={"pk": subscription_id}
        )
        return sorted((_seat_from_entity(e) for e in entities), key=lambda seat: seat.user_key)

    def find(
        self,
        subscription_id: str,
        *,
        user_key: str | None = None,
        tenant_id: str | None = None,
        object_id: str | None = None,
    ) -> Seat | None:
        """The seat held by tid+oid (preferred, once known) or assigned to an email/UPN or seat key."""
        entity = self._locate(subscription_id, user_key=user_key, tenant_id=tenant_id, object_id=object_id)
        return _seat_from_entity(entity) if entity else None

    # --- changes -----------------------------------------------------------------------------------------

    def assign(
        self,
        subscription_id: str,
        user_key: str,
        *,
        quantity: int | None,
        assigned_by: str,
        display_name: str = "",
        tenant_id: str = "",
        object_id: str = "",
    ) -> Seat:
        """Gives `user_key` a seat; returns the existing seat if the user has one (no second seat).

        Raises SeatLimitError when the seats bought are all in use (or the plan has none), ValueError on
        a malformed email/UPN or id.
        """
        key = normalize_user_key(user_key)
        known = bool(tenant_id and object_id)
        row_key = identity_row_key(tenant_id, object_id) if known else email_row_key(key)
        seat = Seat(
            subscription_id=subscription_id,
            key=row_key,
            user_key=key,
            display_name=display_name.strip(),
            tenant_id=tenant_id.strip().lower() if known else "",
            object_id=object_id.strip().lower() if known else "",
            assigned_by=assigned_by,
        )
        with log_context(subscription_id=subscription_id):
            return self._retry(lambda: self._try_assign(seat, quantity))

    def revoke(self, subscription_id: str, user_key: str) -> bool:
        """Frees the seat of an email/UPN or seat key ("oid:..."); False when there was none."""
        with log_context(subscription_id=subscription_id):
            return self._retry(lambda: self._try_revoke(subscription_id, user_key))

    def bind_identity(self, subscription_id: str, user_key: str, tenant_id: str, object_id: str) -> Seat:
        """Re-keys the seat of `user_key` to the holder's tid+oid on their first sign-in.

        If that identity already holds a seat (assigned once by email and once by UPN), the duplicate is
        revoked and the existing seat returned. Raises SeatNotFoundError when `user_key` has no seat and
        ValueError when its seat is bound to someone else.
        """
        target = identity_row_key(tenant_id, object_id)
        with log_context(subscription_id=subscription_id):
            return self._retry(lambda: self._try_bind(subscription_id, normalize_user_key(user_key), target))

    def remove_all(self, subscription_id: str) -> int:
        """Deletes every seat of the subscription and its counter (the retention purge); returns how many
        seats there were. A batch holds at most 100 deletes, the most one transaction takes."""
        rows = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": subscription_id})
        removed = 0
        batch: _Operations = []
        for entity in rows:
            removed += entity.get("kind") == "seat"
            batch.append(("delete", entity))
            if len(batch) == _BATCH_LIMIT:
                self._table.submit_transaction(batch)
                batch = []
        if batch:
            self._table.submit_transaction(batch)
        with log_context(subscription_id=subscription_id):
            log.info("seats removed", extra={"seats": removed})
        return removed

    def hold_limit(self, subscription_id: str, limit: int, held_by: str) -> bool:
        """Holds `limit` as the most seats that may be assigned while the cut `held_by` names (an operation
        or request id) is in progress; True when `held_by` held already (renewed), False when the hold is new.
        Raises SeatLimitError when more than `limit` seats are assigned now: checked and held in one
        conditional write, so no assignment can slip in between."""
        with log_context(subscription_id=subscription_id):
            return self._retry(lambda: self._try_hold(subscription_id, limit, held_by))

    def release_limit(self, subscription_id: str, *held_by: str) -> bool:
        """Ends the holds these holders placed (their operation ended, or was never sent), in one write;
        False when none of them holds (released already, or expired)."""
        with log_context(subscription_id=subscription_id):
            return self._retry(lambda: self._try_release(subscription_id, held_by))

    # --- internals ---------------------------------------------------------------------------------------

    def _try_hold(self, subscription_id: str, limit: int, held_by: str) -> bool | _LostRace:
        counter = self._read_counter(subscription_id)
        if counter.assigned > limit:
            raise SeatLimitError(
                f"{seats_are(counter.assigned)} assigned, more than {limit}: free some seats first, then"
                " lower the quantity.",
                quantity=limit,
                assigned=counter.assigned,
                requested=0,
            )
        now = datetime.now(UTC)
        renewed = counter.holds.holds(held_by, now)
        holds = counter.holds.with_hold(held_by, limit, now)
        if not self._commit([self._counter_write(subscription_id, counter, counter.assigned, holds=holds)]):
            return _LOST_RACE
        log.info(
            "seat limit held for a cut in progress",
            extra={"limit": limit, "assigned": counter.assigned, "renewed": renewed},
        )
        return renewed

    def _try_release(self, subscription_id: str, held_by: tuple[str, ...]) -> bool | _LostRace:
        counter = self._read_counter(subscription_id)
        if not any(counter.holds.holds(holder) for holder in held_by):
            return False
        holds = counter.holds.without(*held_by)
        if not self._commit([self._counter_write(subscription_id, counter, counter.assigned, holds=holds)]):
            return _LOST_RACE
        log.info("seat limit released")
        return True

    def _retry(self, attempt: Callable[[], _T | _LostRace]) -> _T:
        for number in range(MAX_ATTEMPTS):
            result = attempt()
            if result is not _LOST_RACE:
                return result
            # Jittered backoff so racing writers spread out instead of colliding again in lockstep.
            time.sleep(random.uniform(0, min(0.2, 0.005 * 2**number)))  # noqa: S311 - jitter, not a secret
        log.warning("seat change gave up after repeated conflicts", extra={"attempts": MAX_ATTEMPTS})
        raise SeatContentionError("too many concurrent changes to this subscription's seats; try again")

    def _try_assign(self, seat: Seat, quantity: int | None) -> Seat | _LostRace:
        counter = self._read_counter(seat.subscription_id)
        existing = self._locate(
            seat.subscription_id, user_key=seat.user_key, tenant_id=seat.tenant_id, object_id=seat.object_id
        )
        if existing is not None:
            return _seat_from_entity(existing)
        check_can_assign(counter.holds.limit(quantity, datetime.now(UTC)), counter.assigned)
        stored = Seat(**{**seat.__dict__, "assigned_at": datetime.now(UTC)})
        operations = [
            self._counter_write(seat.subscription_id, counter, counter.assigned + 1),
            ("create", _seat_entity(stored)),
        ]
        if not self._commit(operations):
            return _LOST_RACE
        log.info("seat assigned", extra={"assigned": counter.assigned + 1, "quantity": quantity})
        return stored

    def _try_revoke(self, subscription_id: str, user_key: str) -> bool | _LostRace:
        counter = self._read_counter(subscription_id)
        entity = self._locate(subscription_id, user_key=user_key)
        if entity is None:
            return False
        operations = [
            self._counter_write(subscription_id, counter, max(0, counter.assigned - 1)),
            ("delete", entity, _if_match(entity.metadata["etag"])),
        ]
        if not self._commit(operations):
            return _LOST_RACE
        log.info("seat revoked", extra={"assigned": max(0, counter.assigned - 1)})
        return True

    def _try_bind(self, subscription_id: str, user_key: str, target_key: str) -> Seat | _LostRace:
        counter = self._read_counter(subscription_id)
        entity = self._locate(subscription_id, user_key=user_key)
        if entity is None:
            raise SeatNotFoundError("no seat is assigned to that user in this subscription")
        if entity["RowKey"] == target_key:
            return _seat_from_entity(entity)
        if entity["RowKey"].startswith("oid:"):
            log.warning("seat refused to bind: already held by another identity")
            raise ValueError("this seat already belongs to another signed-in user")
        holder = self._get(subscription_id, target_key)
        if holder is not None:
            return self._drop_duplicate(subscription_id, counter, entity, holder)
        _, tenant_id, object_id = target_key.split(":")
        bound = Seat(
            **{
                **_seat_from_entity(entity).__dict__,
                "key": target_key,
                "tenant_id": tenant_id,
                "object_id": object_id,
                "bound_at": datetime.now(UTC),
            }
        )
        operations = [
            # Rewriting the counter unchanged makes a bind conflict with a concurrent assign or revoke.
            self._counter_write(subscription_id, counter, counter.assigned),
            ("delete", entity, _if_match(entity.metadata["etag"])),
            ("create", _seat_entity(bound)),
        ]
        if not self._commit(operations):
            return _LOST_RACE
        log.info("seat bound to the holder's identity")
        return bound

    def _drop_duplicate(
        self, subscription_id: str, counter: _Counter, duplicate: Any, holder: dict[str, Any]
    ) -> Seat | _LostRace:
        operations = [
            self._counter_write(subscription_id, counter, max(0, counter.assigned - 1)),
            ("delete", duplicate, _if_match(duplicate.metadata["etag"])),
        ]
        if not self._commit(operations):
            return _LOST_RACE
        log.info("duplicate seat of an already seated identity revoked")
        return _seat_from_entity(holder)

    def _locate(
        self,
        subscription_id: str,
        *,
        user_key: str | None = None,
        tenant_id: str | None = None,
        object_id: str | None = None,
    ) -> Any | None:
        if tenant_id and object_id:
            entity = self._get(subscription_id, identity_row_key(tenant_id, object_id))
            if entity is not None or not user_key:
                return entity
        if not user_key:
            raise ValueError("find a seat by user_key or by tenant_id and object_id")
        if user_key.startswith("oid:"):
            # Rebuilt from its parts: a key typed into a form with '/', '#' or '?' never reaches storage.
            _, tenant_part, object_part = [*user_key.split(":", 2), "", ""][:3]
            return self._get(subscription_id, identity_row_key(tenant_part, object_part))
        key = normalize_user_key(user_key)
        entity = self._get(subscription_id, email_row_key(key))
        return entity if entity is not None else self._query_by_user_key(subscription_id, key)

    def _query_by_user_key(self, subscription_id: str, key: str) -> Any | None:
        matches = self._table.query_entities(
            "PartitionKey eq @pk and kind eq 'seat' and user_key eq @key",
            parameters={"pk": subscription_id, "key": key},
        )
        return next(iter(matches), None)

    def _get(self, subscription_id: str, row_key: str) -> Any | None:
        try:
            return self._table.get_entity(subscription_id, row_key)
        except ResourceNotFoundError as exc:
            if _error_code(exc) == "TableNotFound":
                raise
            return None

    def _read_counter(self, subscription_id: str) -> _Counter:
        entity = self._get(subscription_id, COUNTER_ROW)
        if entity is None:
            return _Counter(assigned=0, etag=None)
        return _Counter(
            assigned=int(entity.get("assigned", 0)),
            etag=entity.metadata["etag"],
            holds=SeatHolds.from_json(entity.get("holds")),
        )

    def _counter_write(
        self, subscription_id: str, counter: _Counter, assigned: int, *, holds: SeatHolds | None = None
    ) -> Operation:
        """The counter rewritten under its ETag with `assigned` seats, keeping its holds (or writing `holds`):
        the row is replaced whole."""
        kept = counter.holds if holds is None else holds
        entity: dict[str, Any] = {
            "PartitionKey": subscription_id,
            "RowKey": COUNTER_ROW,
            "kind": "counter",
            "assigned": assigned,
        }
        if kept.held:
            entity["holds"] = kept.to_json()
        if counter.etag is None:
            return ("create", entity)
        return ("update", entity, {"mode": UpdateMode.REPLACE, **_if_match(counter.etag)})

    def _commit(self, operations: _Operations) -> bool:
        """True when the transaction committed, False when it lost a race (the caller retries)."""
        try:
            self._table.submit_transaction(operations)
        except TableTransactionError as exc:
            if _error_code(exc) in _RACE_CODES:
                return False
            raise
        return True
