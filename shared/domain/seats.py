"""Seat licensing rules: how many users a subscription's quantity lets the buyer assign (pure, no I/O).

Per-seat plans carry a `quantity` (R6); the buyer's admin assigns at most that many users (R66, when ISV app
license management is off). Flat-rate plans carry no quantity (None): Microsoft does not limit their users,
and this app offers no seat assignment for them, so `free_seats` is 0, `check_can_assign` refuses with a
message saying why, and `over_assignment` is 0 (there is no quantity to exceed).

A `Seat` is one assigned seat as the seat store (`shared.storage.seats`) keeps it and hands it to workflows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.domain.identity import Person


@dataclass(frozen=True)
class Seat:
    """One assigned seat: to an email/UPN until its holder first signs in, then to their tid+oid."""

    subscription_id: str
    key: str  # "u:<address>" until the holder signs in, then "oid:<tid>:<oid>"; the store keys rows on it
    user_key: str  # normalized email or UPN the seat was assigned to
    display_name: str = ""
    tenant_id: str = ""
    object_id: str = ""
    assigned_by: str = ""
    assigned_at: datetime | None = None
    bound_at: datetime | None = None

    @property
    def is_bound(self) -> bool:
        return bool(self.tenant_id and self.object_id and self.key.startswith("oid:"))

    @property
    def holder(self) -> Person:
        """Who holds the seat (tenant id + object id); empty ids until it is bound."""
        return Person.of(self.tenant_id, self.object_id)


class SeatNotFoundError(LookupError):
    """No seat is assigned to that user in that subscription."""


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
            f"{_free_words(free)} ({assigned} of {quantity} assigned): free a seat or buy more to add "
            f"{count} more user{'s' if count > 1 else ''}.",
            quantity=quantity,
            assigned=assigned,
            requested=count,
        )


def seats_are(count: int) -> str:
    """ "1 seat is" / "3 seats are": the start of a sentence about seats in use."""
    return "1 seat is" if count == 1 else f"{count} seats are"


def _free_words(free: int) -> str:
    if free <= 0:
        return "Every seat is in use"
    return "Only 1 seat is free" if free == 1 else f"Only {free} seats are free"


def over_assignment(quantity: int | None, assigned: int) -> int:
    """How many seats must be revoked to fit the quantity (after Microsoft lowered it); 0 when it fits."""
    _check_counts(quantity, assigned)
    if quantity is None:
        return 0
    return max(0, assigned - quantity)


# --- seat cuts in progress ----------------------------------------------------------------------------------

# How long a cut's hold counts at most: operations finish in seconds to minutes, and a hold whose release was
# lost (a crash, a parked message) must not keep the seats low for longer than this.
HOLD_FOR = timedelta(hours=1)


@dataclass(frozen=True)
class SeatHolds:
    """The seat cuts in progress on one subscription: each holder (an operation id, or the portal request's
    correlation id) with the lower limit it holds and until when. Several may be in progress at once (a cut
    from Azure and one asked for in the portal); each is placed and released by its own holder, and the
    lowest live one counts."""

    held: tuple[tuple[str, int, datetime], ...] = ()

    def limit(self, quantity: int | None, now: datetime) -> int | None:
        """The seats that may be assigned: the quantity, or lower while a cut holds less. A plan without a
        quantity has no seats to assign, held or not."""
        if quantity is None:
            return None
        live = [limit for _, limit, until in self.held if until > now]
        return min([quantity, *live])

    def with_hold(self, holder: str, limit: int, now: datetime) -> SeatHolds:
        """These holds (expired ones dropped) with `holder`'s set to `limit` for `HOLD_FOR` from `now`."""
        kept = tuple(hold for hold in self.held if hold[0] != holder and hold[2] > now)
        return SeatHolds((*kept, (holder, limit, now + HOLD_FOR)))

    def without(self, *holders: str) -> SeatHolds:
        return SeatHolds(tuple(hold for hold in self.held if hold[0] not in holders))

    def holds(self, holder: str, now: datetime | None = None) -> bool:
        """Whether `holder` holds (a live hold, when `now` is given)."""
        return any(hold[0] == holder and (now is None or hold[2] > now) for hold in self.held)

    def to_json(self) -> str:
        return json.dumps([[holder, limit, until.isoformat()] for holder, limit, until in self.held])

    @classmethod
    def from_json(cls, text: str | None) -> SeatHolds:
        """What `to_json` wrote; anything unreadable reads as no holds (a hold only ever lowers a limit)."""
        try:
            rows = json.loads(text or "[]")
            return cls(tuple((str(h), int(n), datetime.fromisoformat(str(u))) for h, n, u in rows))
        except (ValueError, TypeError):
            return cls()
