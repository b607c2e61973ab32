"""The publisher's record of one marketplace operation in the inbox, and the states it moves through.

Microsoft retries webhooks and Service Bus redelivers messages, so the same operation arrives more than once
and sometimes out of order (R37). The worker records each operation on first sight and moves it through
these states; a later duplicate finds the record and sees how far the first delivery got.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class InboxState(StrEnum):
    """How far the handling of one operation got. Every member is written by some path today."""

    RECEIVED = "received"  # verified with GetOperation and recorded; not answered yet
    ACKNOWLEDGED = "acknowledged"  # a change answered with Success
    REFUSED = "refused"  # a change answered with Failure
    TRACKING = "tracking"  # the publisher's own change, followed until Microsoft finishes it (R25)
    DONE = "done"  # handled and mirrored: a redelivery is ignored

    @classmethod
    def parse(cls, value: object) -> InboxState:
        """The state a stored string names; one this version does not know is treated as just received.

        RECEIVED is the only safe reading: the operation is verified and answered again (the answer is the
        recorded decision when there is one), never skipped.
        """
        try:
            return cls(str(value or "").strip().lower())
        except ValueError:
            return cls.RECEIVED


ANSWERED = frozenset({InboxState.ACKNOWLEDGED, InboxState.REFUSED})
IN_PROGRESS = frozenset({InboxState.RECEIVED, InboxState.TRACKING})


@dataclass(frozen=True)
class InboxRecord:
    """What the publisher knows and decided about one marketplace operation."""

    subscription_id: str
    operation_id: str
    action: str  # Microsoft's action as sent (an unknown one is kept verbatim)
    state: InboxState
    source: str = ""  # Microsoft's requestSource ("Azure", "Partner") or "portal"
    decision: str = ""  # accept | refuse for ChangePlan / ChangeQuantity, or Microsoft's final status
    reason: str = ""
    # The operator who decided a change in the console (their audit name); empty when the policy decided.
    decided_by: str = ""
    outcome: str = ""  # how Microsoft's operation ended (Succeeded, Failed, Conflict), once known
    plan_id: str = ""
    quantity: int | None = None
    initiated_by_publisher: bool = False
    # A change answered while the worker was behind: its audit row and mirror are its re-check's to write.
    left_to_recheck: bool = False
    # A seat cut holding the lower limit on the seats while in progress (`SeatBook.hold_limit`, under the
    # operation id, or the correlation id for the publisher's own request): its tracking releases it.
    holds_seats: bool = False
    correlation_id: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # When the webhook took the operation in (its message's `receivedAt`) and when our answer (the PATCH)
    # reached Microsoft: the console's webhook-to-answer latency. None when unknown (older rows, changes
    # Microsoft decided itself, the publisher's own operations).
    received_at: datetime | None = None
    answered_at: datetime | None = None
    etag: str = ""  # the store's concurrency token; empty for a record not yet stored

    @property
    def owes_decision_audit(self) -> bool:
        """Left to the re-check with a decision of ours (accept or refuse) whose audit row is not written yet;
        a change Microsoft decided itself (its final status stands as the decision) owes none."""
        return self.left_to_recheck and self.decision in ("accept", "refuse")
