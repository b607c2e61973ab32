"""What the landing page uses from a buyer's validated ID token (R8, R10, R11).

The token itself is validated by `shared.identity.tokens.TokenValidator` under
`shared.identity.token_policies.id_token_policy`; this is the view of its claims the rest of the app reads.
Users are keyed by `tid` + `oid`, never by email.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.domain.identity import Person, entra_addresses


@dataclass(frozen=True)
class IdTokenClaims:
    """What the landing page uses from a validated ID token."""

    tenant_id: str
    object_id: str
    name: str = ""
    email: str = ""  # as the token says: a contact suggestion, identifying only if listed in `addresses`
    preferred_username: str = ""
    # The addresses Entra ID vouches for (UPN / sign-in name, `email` when `xms_edov` is true, the
    # verified_*_email optional claims): the only ones a seat assigned by address may bind through.
    addresses: tuple[str, ...] = ()
    # The app roles assigned to this person in *their* tenant (`roles`): which ones count is the console's
    # decision (`shared.domain.operators`), as any tenant can assign our role names to its own users.
    roles: tuple[str, ...] = ()

    @property
    def person(self) -> Person:
        """Who this is, as every identity check compares it: tenant id + object id."""
        return Person.of(self.tenant_id, self.object_id)


def claims_of(payload: dict[str, Any]) -> IdTokenClaims:
    """The claims of a token that `TokenValidator` has already verified."""
    return IdTokenClaims(
        tenant_id=str(payload["tid"]).strip().lower(),
        object_id=str(payload["oid"]).strip().lower(),
        name=str(payload.get("name") or ""),
        email=str(payload.get("email") or ""),
        preferred_username=str(payload.get("preferred_username") or ""),
        addresses=entra_addresses(payload),
        roles=_roles(payload.get("roles")),
    )


def _roles(value: Any) -> tuple[str, ...]:
    """The `roles` claim as strings; anything else (a string, a number) is no roles at all."""
    if not isinstance(value, list):
        return ()
    return tuple(role for role in value if isinstance(role, str))
