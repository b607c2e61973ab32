"""A signed-in session as the server records it (pure value): whose it is and until when it may be used.

It lives in the domain because two adapters speak of it: `shared.web.current_user` starts and checks
sessions, `shared.storage.sessions` keeps them, and adapters do not import one another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.domain.identity import Person


@dataclass(frozen=True)
class StoredSession:
    """What the server knows of a live session: whose it is and until when it may be used."""

    tenant_id: str
    object_id: str
    issued_at: datetime
    expires_at: datetime

    @property
    def person(self) -> Person:
        """Who this is, as every identity check compares it: tenant id + object id."""
        return Person.of(self.tenant_id, self.object_id)
