"""Buyer-side people in Table Storage: who signed in, and who may manage which subscription.

Users are keyed by Entra tenant id (PartitionKey) and object id (RowKey), never by email (R10). Two kinds
of address are kept apart: `email` is the contact address the buyer chose (R11), contact data only, never used
to find or match anyone; `addresses` are the ones Entra ID vouched for in the user's last ID token
(`shared.domain.identity.entra_addresses`). Each of those also has an index row (PartitionKey
"address:<address, percent-encoded>", RowKey "<tenant id>:<object id>", kind "address"), so "who signed in
with this address?" is one partition read. Admin grants record which (tenant, object id) may manage
which SaaS subscription, with a role: "purchaser" (bought it; for CSP the partner, R60),
"beneficiary-admin" (an admin of the tenant it is for) or "delegated-admin" (granted by one of those; grants
written before that spelling say "delegated" and are read as the same role, `shared.domain.access.Role`).

Both stores may share one table: grant rows live in the grantee's tenant partition under RowKey
"grant:<object id>:<subscription id>:<role>", and every query filters on `kind`, so neither sees the other's
rows. Listing a person's grants is then one partition range query, not a table scan.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.domain.access import Role
from shared.domain.addresses import fold_case
from shared.domain.identity import Person
from shared.domain.users import User
from shared.logs import get_logger, log_context

log = get_logger(__name__)

_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def _id(value: str, what: str) -> str:
    """Ids become table keys: lower case GUID-like values only (no '/', '#', '?', ':' or controls)."""
    cleaned = (value or "").strip().lower()
    if not _ID.match(cleaned):
        raise ValueError(f"{what} must be an id of letters, digits, '-', '.', '_', got {value!r}")
    return cleaned


def _user_from_entity(entity: dict[str, Any]) -> User:
    return User(
        tenant_id=entity["PartitionKey"],
        object_id=entity["RowKey"],
        display_name=entity.get("display_name", ""),
        email=entity.get("email", ""),
        upn=entity.get("upn", ""),
        last_sign_in_at=entity.get("last_sign_in_at"),
        addresses=tuple(str(entity.get("addresses") or "").split()),
    )


ADDRESS_PARTITION_PREFIX = "address:"


def _address_partition(address: str) -> str:
    # Table keys forbid '/', '\\', '#', '?' and control characters; guest UPNs contain '#EXT#'.
    return ADDRESS_PARTITION_PREFIX + quote(fold_case(address), safe="@.-_+")


class UserStore:
    """People who signed in, one row per (tenant id, object id)."""

    def __init__(self, table_client: TableClient) -> None:
        self._table = table_client

    def upsert(self, user: User) -> User:
        """Creates or replaces the user's row; `last_sign_in_at` defaults to now."""
        stored = User(
            tenant_id=_id(user.tenant_id, "tenant id"),
            object_id=_id(user.object_id, "object id"),
            display_name=user.display_name.strip(),
            email=user.email.strip(),
            upn=user.upn.strip(),
            last_sign_in_at=user.last_sign_in_at or datetime.now(UTC),
            addresses=tuple(dict.fromkeys(fold_case(a) for a in user.addresses if a.strip())),
        )
        before = self.get(stored.tenant_id, stored.object_id)
        entity = {
            "PartitionKey": stored.tenant_id,
            "RowKey": stored.object_id,
            "kind": "user",
            "display_name": stored.display_name,
            "email": stored.email,
            "upn": stored.upn,
            "last_sign_in_at": stored.last_sign_in_at,
            "addresses": " ".join(stored.addresses),
        }
        self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        self._index_addresses(stored, before.addresses if before else ())
        return stored

    def set_contact_email(self, tenant_id: str, object_id: str, email: str) -> None:
        """Changes the contact email only: it is contact data and touches no address Entra vouched for."""
        entity = {
            "PartitionKey": _id(tenant_id, "tenant id"),
            "RowKey": _id(object_id, "object id"),
            "kind": "user",
            "email": email.strip(),
        }
        self._table.upsert_entity(entity, mode=UpdateMode.MERGE)

    def holders_of(self, address: str) -> list[Person]:
        """Everyone whose last ID token vouched for `address` (any tenant), in one partition read."""
        rows = self._table.query_entities(
            "PartitionKey eq @pk and kind eq 'address'", parameters={"pk": _address_partition(address)}
        )
        return [Person.of(*str(row["RowKey"]).split(":", 1)) for row in rows]

    def _index_addresses(self, user: User, previous: tuple[str, ...]) -> None:
        row_key = f"{user.tenant_id}:{user.object_id}"
        for gone in set(previous) - set(user.addresses):
            # delete_entity is a no-op for a row already gone.
            self._table.delete_entity(_address_partition(gone), row_key)
        for address in user.addresses:
            self._table.upsert_entity(
                {"PartitionKey": _address_partition(address), "RowKey": row_key, "kind": "address"},
                mode=UpdateMode.REPLACE,
            )

    def delete(self, tenant_id: str, object_id: str) -> bool:
        """Forgets the user: their row and its address index rows (the retention purge). False when
        there was no such user."""
        user = self.get(tenant_id, object_id)
        if user is None:
            return False
        row_key = f"{user.tenant_id}:{user.object_id}"
        for address in user.addresses:
            self._table.delete_entity(_address_partition(address), row_key)
        self._table.delete_entity(user.tenant_id, user.object_id)
        return True

    def get(self, tenant_id: str, object_id: str) -> User | None:
        try:
            entity = self._table.get_entity(_id(tenant_id, "tenant id"), _id(object_id, "object id"))
        except ResourceNotFoundError:
            return None
        return _user_from_entity(entity) if entity.get("kind") == "user" else None

    def list_for_tenant(self, tenant_id: str) -> list[User]:
        entities = self._table.query_entities(
            "PartitionKey eq @tid and kind eq 'user'", parameters={"tid": _id(tenant_id, "tenant id")}
        )
        return sorted(
            (_user_from_entity(e) for e in entities), key=lambda u: (u.display_name.lower(), u.object_id)
        )


def _grant_prefix(object_id: str, subscription_id: str = "") -> str:
    prefix = f"grant:{object_id}:"
    return f"{prefix}{subscription_id}:" if subscription_id else prefix


def _range_filter() -> str:
    return "PartitionKey eq @tid and RowKey ge @low and RowKey lt @high and kind eq 'grant'"


def _role(role: Role | str) -> Role:
    known = Role.parse(role)
    if known is None:
        raise ValueError(f"role must be one of {[r.value for r in Role]}, got {role!r}")
    return known


class AdminStore:
    """Who may manage which subscription: grants of a role to a (tenant id, object id)."""

    def __init__(self, table_client: TableClient) -> None:
        self._table = table_client

    def grant(
        self, subscription_id: str, tenant_id: str, object_id: str, role: Role | str, granted_by: str
    ) -> None:
        """Records the grant; granting a role the person already holds only refreshes who and when."""
        role = _role(role)
        tid, oid, sub = (
            _id(tenant_id, "tenant id"),
            _id(object_id, "object id"),
            _id(subscription_id, "subscription id"),
        )
        entity = {
            "PartitionKey": tid,
            "RowKey": f"{_grant_prefix(oid, sub)}{role.value}",
            "kind": "grant",
            "subscription_id": sub,
            "object_id": oid,
            "role": role.value,
            "granted_by": granted_by,
            "granted_at": datetime.now(UTC),
        }
        self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        with log_context(subscription_id=sub):
            log.info("subscription admin role granted", extra={"role": role.value, "tenant_id": tid})

    def revoke(
        self, subscription_id: str, tenant_id: str, object_id: str, role: Role | str | None = None
    ) -> int:
        """Removes one role, or every role when `role` is None; returns how many grants were removed."""
        wanted = _role(role) if role else None
        tid, oid, sub = (
            _id(tenant_id, "tenant id"),
            _id(object_id, "object id"),
            _id(subscription_id, "subscription id"),
        )
        removed = 0
        # By the rows' own keys: a role granted under an older spelling ("delegated") is its own row.
        for grant in self._grants(tid, _grant_prefix(oid, sub)):
            if wanted is None or Role.parse(grant.get("role")) is wanted:
                self._table.delete_entity(tid, grant["RowKey"])
                removed += 1
        with log_context(subscription_id=sub):
            log.info("subscription admin roles revoked", extra={"removed": removed, "tenant_id": tid})
        return removed

    def roles_for(self, subscription_id: str, tenant_id: str, object_id: str) -> set[Role]:
        """The roles granted, whatever spelling each grant was stored under; unknown names are skipped."""
        oid, sub = _id(object_id, "object id"), _id(subscription_id, "subscription id")
        grants = self._grants(tenant_id, _grant_prefix(oid, sub))
        return {role for role in (Role.parse(e.get("role")) for e in grants) if role is not None}

    def grantees(self, subscription_id: str, tenant_id: str) -> list[Person]:
        """Who in `tenant_id` holds any role on the subscription (one partition query)."""
        rows = self._table.query_entities(
            "PartitionKey eq @tid and kind eq 'grant' and subscription_id eq @sub",
            parameters={"tid": _id(tenant_id, "tenant id"), "sub": _id(subscription_id, "subscription id")},
        )
        return sorted({Person.of(str(row["PartitionKey"]), str(row["object_id"])) for row in rows}, key=str)

    def revoke_subscription(self, subscription_id: str, tenant_id: str) -> int:
        """Removes every grant on the subscription held in `tenant_id` (the retention purge); returns how
        many."""
        tid, sub = _id(tenant_id, "tenant id"), _id(subscription_id, "subscription id")
        rows = self._table.query_entities(
            "PartitionKey eq @tid and kind eq 'grant' and subscription_id eq @sub",
            parameters={"tid": tid, "sub": sub},
        )
        removed = 0
        for row in rows:
            self._table.delete_entity(tid, row["RowKey"])
            removed += 1
        return removed

    def subscriptions_for(self, tenant_id: str, object_id: str) -> list[str]:
        grants = self._grants(tenant_id, _grant_prefix(_id(object_id, "object id")))
        return sorted({e["subscription_id"] for e in grants})

    def _grants(self, tenant_id: str, prefix: str) -> list[dict[str, Any]]:
        # ';' follows ':' in ASCII: every key starting with "...:" sorts in [prefix, prefix with ':' -> ';').
        parameters = {"tid": _id(tenant_id, "tenant id"), "low": prefix, "high": prefix[:-1] + ";"}
        return list(self._table.query_entities(_range_filter(), parameters=parameters))
