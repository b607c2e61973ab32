"""Server-side record of each signed-in session, so that sign-out really ends it.

The session cookie is signed, not stored, so without a record a copy of it would keep working after the
buyer signed out. Each sign-in writes one row here; sign-out (or the next sign-in in the same browser)
deletes it; every request that carries a signed-in session reads it back with one point read.

Keys: PartitionKey = SHA-256 of the session id (known from the cookie, so the check is a point read and
each session is its own partition), RowKey "session". Only the hash is stored: a leaked table names no
usable session. The id carries 256 random bits, so an unsalted hash is enough.

Rows of sessions nobody signed out of stay behind after `expires_at`; they are harmless (the cookie's
absolute lifetime has ended too) and carry `expires_at` so a cleanup job can find them.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient

from shared.domain.sessions import StoredSession
from shared.logs import get_logger
from shared.storage.errors import AlreadyExistsError, InvalidEntityError

log = get_logger(__name__)

_ROW = "session"


def session_key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _check(session_id: str) -> None:
    if not isinstance(session_id, str) or len(session_id) < 32:
        raise InvalidEntityError("a session id is a random string of at least 32 characters")


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise InvalidEntityError("session times must carry a time zone")
    return moment


class SessionStore:
    """Starts, reads and ends sessions; each method is exactly one Table Storage request."""

    def __init__(self, table_client: TableClient) -> None:
        self._table = table_client

    def start(self, session_id: str, session: StoredSession) -> None:
        """Records a new session; raises AlreadyExistsError if the id was ever used (never overwrites)."""
        _check(session_id)
        entity = {
            "PartitionKey": session_key(session_id),
            "RowKey": _ROW,
            "tenant_id": session.tenant_id,
            "object_id": session.object_id,
            "issued_at": _aware(session.issued_at),
            "expires_at": _aware(session.expires_at),
        }
        try:
            self._table.create_entity(entity)
        except ResourceExistsError:
            raise AlreadyExistsError("session id already used") from None

    def get(self, session_id: str) -> StoredSession | None:
        """The live record of `session_id`, or None once it was ended (one point read)."""
        if not isinstance(session_id, str) or len(session_id) < 32:
            return None
        try:
            entity = self._table.get_entity(session_key(session_id), _ROW)
        except ResourceNotFoundError:
            return None
        return StoredSession(
            tenant_id=entity["tenant_id"],
            object_id=entity["object_id"],
            issued_at=entity["issued_at"],
            expires_at=entity["expires_at"],
        )

    def end(self, session_id: str) -> None:
        """Ends the session for every copy of its cookie; ending an unknown session is not an error."""
        if isinstance(session_id, str) and len(session_id) >= 32:
            self._table.delete_entity(session_key(session_id), _ROW)
            log.info("session ended")

    def end_all_for(self, tenant_id: str, object_id: str) -> int:
        """Deletes every session record of one person (the retention purge forgets them); returns how many.
        Sessions are keyed by the id's hash, so this filters the table; purges are rare."""
        rows = self._table.query_entities(
            "tenant_id eq @tid and object_id eq @oid", parameters={"tid": tenant_id, "oid": object_id}
        )
        removed = 0
        for row in rows:
            self._table.delete_entity(row["PartitionKey"], row["RowKey"])
            removed += 1
        return removed


def session_table_name(table_users: str) -> str:
    """Beside the users table: a session belongs to one of its users."""
    return f"{table_users}sessions"
