"""Releasing a seat cut's hold once the operation that placed it is over.

A cut holds the lower limit on the seat counter while Microsoft applies it (`SeatBook.hold_limit`): the
worker under the operation id when it accepts a cut Microsoft announced (or an operator accepts one), the
portal under its request's correlation id when the buyer asks for one (Microsoft names the operation only in
its answer).
Whoever finds the operation final and has mirrored the quantity Microsoft settled on lets go of it: the
re-check (`tracking`), or the worker itself when a delivery finds the operation already final. A release that
is lost (a crash, a parked message) is bounded by the hold's expiry (`shared.domain.seats.HOLD_FOR`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.domain.status import Action

if TYPE_CHECKING:
    from shared.domain.inbox import InboxRecord
    from shared.domain.subscription import Operation
    from shared.workflows.ports import SeatBook


def holder_of(record: InboxRecord) -> str:
    """The name a record's hold was placed under."""
    return record.correlation_id if record.initiated_by_publisher else record.operation_id


def release_seat_hold(
    seats: SeatBook, operation: Operation, record: InboxRecord | None, correlation_id: str = ""
) -> None:
    """Ends every hold a cut of this operation may have placed, once the final quantity is mirrored: the
    worker's or an operator's (the operation id), the portal's (its request's correlation id, which its
    record and its track message carry). Whatever the record says: a hold placed just before a write that
    failed has no record saying so. One read of the seat counter, and one write when something was held."""
    if operation.action is not Action.CHANGE_QUANTITY:
        return
    holders = {operation.id, *((holder_of(record),) if record is not None else ()), correlation_id} - {""}
    seats.release_limit(operation.subscription_id, *sorted(holders))
