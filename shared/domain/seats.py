"""Seat licensing rules: how many users a subscription's quantity lets the buyer assign (pure, no I/O).

Per-seat plans carry a `quantity` (R6); the buyer's admin assigns at most that many users (R66, when ISV app
license management is off). Flat-rate plans carry no quantity (None): Microsoft does not limit their users,
and this app offers no seat assignment for them, so `free_seats` is 0, `check_can_assign` refuses with a
message saying why, and `over_assignment` is 0 (there is no quantity to exceed).
"""

from __future__ import annotations

import re
import string

_DOMAIN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$")
MAX_USER_KEY_LENGTH = 256
# ASCII letters only: str.lower() also maps KELVIN SIGN (U+212A) to "k", so a look-alike address would
# compare equal to another person's ASCII one.
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


class SeatLimitError(ValueError):
    """Assigning would exceed the seats bought, or the plan has no seats at all."""

    def __init__(self, message: str, *, quantity: int | None, assigned: int, requested: int) -> None:
        super().__init__(message)
        self.quantity = quantity
        self.assigned = assigned
        self.requested = requested


def _check_counts(quantity: int | None, assigned: int) -> None:
    if quantity is not None and quantity < 0:
        raise ValueError(f"quantity cannot be negative, got {quantity}")
    if assigned < 0:
        raise ValueError(f"assigned seats cannot be negative, got {assigned}")


def free_seats(quantity: int | None, assigned: int) -> int:
    """Seats still assignable; 0 when full, over-assigned, or the plan is flat-rate (quantity None)."""
    _check_counts(quantity, assigned)
    if quantity is None:
        return 0
    return max(0, quantity - assigned)


def check_can_assign(quantity: int | None, assigned: int, count: int = 1) -> None:
    """Raises SeatLimitError unless `count` more users fit in the seats bought."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    _check_counts(quantity, assigned)
    if quantity is None:
        raise SeatLimitError(
            "This plan is not sold per user, so it has no seats to assign: everyone in your organisation "
            "can use it.",
            quantity=None,
            assigned=assigned,
            requested=count,
        )
    free = free_seats(quantity, assigned)
    if count > free:
        raise SeatLimitError(
            f"All {quantity} seats are in use ({assigned} assigned); free a seat or buy more to add "
            f"{count} more user{'s' if count > 1 else ''}.",
            quantity=quantity,
            assigned=assigned,
            requested=count,
        )


def over_assignment(quantity: int | None, assigned: int) -> int:
    """How many seats must be revoked to fit the quantity (after Microsoft lowered it); 0 when it fits."""
    _check_counts(quantity, assigned)
    if quantity is None:
        return 0
    return max(0, assigned - quantity)


def fold_case(text: str) -> str:
    """`text` trimmed, with ASCII letters in lower case and every other character left as it is."""
    return text.strip().translate(_ASCII_LOWER)


def normalize_user_key(email_or_upn: str) -> str:
    """The comparable form of an email address or UPN: trimmed, ASCII lower case, local@domain, else
    ValueError. Only ASCII letters are folded, so no non-ASCII character ever turns into an ASCII one.

    Guest UPNs such as "ada_fabrikam.com#EXT#@contoso.onmicrosoft.com" are valid keys; storage encodes the
    characters Table Storage forbids in keys.
    """
    key = fold_case(email_or_upn or "")
    if not key or len(key) > MAX_USER_KEY_LENGTH:
        raise ValueError("enter an email address or user principal name such as ada@contoso.com")
    local, at, domain = key.rpartition("@")
    if not at or not local or not _DOMAIN.match(domain):
        raise ValueError(f"{email_or_upn.strip()[:80]!r} is not an email address or user principal name")
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in local) or "@" in local:
        raise ValueError(f"{email_or_upn.strip()[:80]!r} is not an email address or user principal name")
    return key
