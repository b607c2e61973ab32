"""CSP setup links (R65): single-use, expiring codes that let a customer's admin take over one subscription.

The partner who bought for a customer creates a link in the portal and hands it over; the customer's admin
opens it after signing in and becomes "beneficiary-admin" of that one subscription. Only a SHA-256 hash of
the code is stored (PartitionKey = hash, RowKey "link"), so a leaked table does not leak usable links. The
code carries 256 random bits, so hashing without a salt is enough. Claiming is an ETag-guarded write: two
people racing with one code cannot both succeed.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.domain.setup_links import EXPIRED, UNKNOWN, USED, SetupLink, SetupLinkError
from shared.logs import get_logger, log_context

log = get_logger(__name__)

DEFAULT_TTL = timedelta(hours=72)
_ROW = "link"
_CODE = re.compile(r"^[A-Za-z0-9_-]{32,128}$")


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _link(entity: Any) -> SetupLink:
    return SetupLink(
        code_hash=entity["PartitionKey"],
        subscription_id=entity["subscription_id"],
        created_by=entity.get("created_by", ""),
        expires_at=entity["expires_at"],
        used_at=entity.get("used_at"),
        used_by=entity.get("used_by", ""),
        etag=entity.metadata["etag"],
    )


class SetupLinkStore:
    """Creates, checks and claims setup codes."""

    def __init__(self, table_client: TableClient) -> None:
        self._table = table_client

    def create(
        self,
        subscription_id: str,
        created_by: str,
        *,
        ttl: timedelta = DEFAULT_TTL,
        now: datetime | None = None,
    ) -> str:
        """A new code bound to `subscription_id`; the caller shows it once, it is never readable again."""
        code = secrets.token_urlsafe(32)
        issued = now or datetime.now(UTC)
        self._table.create_entity(
            {
                "PartitionKey": code_hash(code),
                "RowKey": _ROW,
                "subscription_id": subscription_id,
                "created_by": created_by,
                "created_at": issued,
                "expires_at": issued + ttl,
            }
        )
        with log_context(subscription_id=subscription_id):
            log.info("setup link created", extra={"expires_in_hours": ttl.total_seconds() / 3600})
        return code

    def check(self, code: str, *, now: datetime | None = None) -> SetupLink:
        """The link behind a usable code; raises SetupLinkError (unknown, expired, used) otherwise."""
        if not isinstance(code, str) or not _CODE.match(code):
            raise SetupLinkError(UNKNOWN)
        try:
            link = _link(self._table.get_entity(code_hash(code), _ROW))
        except ResourceNotFoundError:
            raise SetupLinkError(UNKNOWN) from None
        if link.used_at is not None:
            raise SetupLinkError(USED)
        if (now or datetime.now(UTC)) >= link.expires_at:
            raise SetupLinkError(EXPIRED)
        return link

    def claim(self, link: SetupLink, used_by: str, *, now: datetime | None = None) -> None:
        """Marks the link used, only if nobody claimed it since `check`; raises SetupLinkError(USED) else."""
        entity = {
            "PartitionKey": link.code_hash,
            "RowKey": _ROW,
            "subscription_id": link.subscription_id,
            "created_by": link.created_by,
            "expires_at": link.expires_at,
            "used_at": now or datetime.now(UTC),
            "used_by": used_by,
        }
        try:
            self._table.update_entity(
                entity, mode=UpdateMode.MERGE, etag=link.etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            raise SetupLinkError(USED) from None

    def delete_for(self, subscription_id: str) -> int:
        """Deletes every link of the subscription, used or not (the retention purge: they name who made
        and who used them); returns how many. Links are keyed by code hash, so this filters the table."""
        rows = self._table.query_entities("subscription_id eq @sub", parameters={"sub": subscription_id})
        removed = 0
        for row in rows:
            self._table.delete_entity(row["PartitionKey"], row["RowKey"])
            removed += 1
        return removed


def setup_link_table_name(table_users: str) -> str:
    """Beside the users table whose grants the links lead to."""
    return f"{table_users}setuplinks"
