"""What a validated Entra ID sign-in records about the user (R8-R10).

The user is stored by tenant id + object id with what the ID token vouches for (name, UPN, addresses); the
contact email a user confirmed earlier is kept, as it is only where we write to them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.domain.users import User
from shared.web.current_user import SignedInUser

if TYPE_CHECKING:
    from shared.identity.signin import SignInResult
    from shared.workflows.ports import UserDirectory


def remember_user(result: SignInResult, *, users: UserDirectory) -> SignedInUser:
    """Upserts the user with what this ID token vouches for. The contact email they confirmed earlier is
    kept (it is only where we write to them), else the one derived at this sign-in."""
    claims = result.claims
    known = users.get(claims.tenant_id, claims.object_id)
    contact = (known.email if known else "") or result.contact_email
    stored = users.upsert(
        User(
            tenant_id=claims.tenant_id,
            object_id=claims.object_id,
            display_name=claims.name,
            email=contact,
            upn=claims.preferred_username,
            addresses=claims.addresses,
        )
    )
    return SignedInUser(stored.tenant_id, stored.object_id, stored.display_name, stored.email, stored.upn)
