"""Who may use the publisher's operations console: the publisher's own staff, by app role (issue 11).

Roles come from the `roles` claim of a validated ID token: app roles defined on the sign-in app's
registration and assigned to staff in the publisher's tenant. The sign-in app is multitenant, so any
customer's tenant admin can assign our role names to themselves in their own tenant's copy of the app (its
enterprise application): their tokens then say `Publisher.Admin` too. A role therefore counts only when the
token's tenant (`tid`) is the publisher's. Never an e-mail allow-list: addresses are typed, roles are signed.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class OperatorRole(StrEnum):
    """The app roles on the sign-in app's registration; the values are the roles' `value` in Entra."""

    ADMIN = "Publisher.Admin"  # may look and act
    READER = "Publisher.Reader"  # may only look


def operator_roles(tenant_id: str, token_roles: Iterable[object], publisher_tenant_id: str) -> frozenset[str]:
    """The console roles a signed-in person holds: the token's known roles, only in the publisher's tenant.

    Unknown role names are dropped (a role added in Entra means nothing here until the code knows it), and
    with no publisher tenant configured nobody is an operator.
    """
    home = publisher_tenant_id.strip().lower()
    if not home or tenant_id.strip().lower() != home:
        return frozenset()
    known = {role.value for role in OperatorRole}
    return frozenset(role for role in token_roles if isinstance(role, str) and role in known)


def can_look(roles: Iterable[str]) -> bool:
    """Readers and admins see every page of the console."""
    held = set(roles)
    return OperatorRole.ADMIN.value in held or OperatorRole.READER.value in held


def can_act(roles: Iterable[str]) -> bool:
    """Only admins reconcile, retry, decide, cancel, replay or discard."""
    return OperatorRole.ADMIN.value in set(roles)
