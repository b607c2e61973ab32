"""A buyer-side user as the app knows them: Entra identity, names, and two kinds of address (pure).

Keyed by tenant id + object id, never by an address (R10). `email` is the contact address the buyer chose
(R11): contact data only, never used to find or match anyone. `addresses` are the ones Entra ID vouched for
in the user's last ID token (`shared.domain.identity.entra_addresses`). The user store
(`shared.storage.users`) keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.domain.identity import Person


@dataclass(frozen=True)
class User:
    """Someone who signed in, as of their last sign-in."""

    tenant_id: str
    object_id: str
    display_name: str = ""
    email: str = ""  # the contact email the buyer confirmed or chose (R11): contact data only
    upn: str = ""
    last_sign_in_at: datetime | None = None
    addresses: tuple[str, ...] = ()  # what Entra ID vouched for at the last sign-in (normalized)

    @property
    def person(self) -> Person:
        """Who this is, as every identity check compares it: tenant id + object id."""
        return Person.of(self.tenant_id, self.object_id)
