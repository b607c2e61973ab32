"""A change to a stored subscription, as a pure value: what to write, and what the write did.

Workflows decide a change with a pure function (`ChangeFunction`) and hand it to the subscription store's
ETag-guarded read-modify-write loop (`SubscriptionRecords.update`), which may call it more than once; what
the workflow needs from the decision comes back in `Updated`, never through variables the function set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.domain.audit import AuditEntry
from shared.domain.subscription import Subscription


@dataclass(frozen=True)
class Change:
    """What an update decided: the record to store and, if it is worth one, the entry that records it.

    The store writes the entry together with the record, in one transaction, or writes neither.
    """

    subscription: Subscription
    audit: AuditEntry | None = None


# The pure function `update` applies: the stored record (None if absent) -> a Change, a bare Subscription
# (stored without an audit entry), or None (nothing to write).
ChangeFunction = Callable[[Subscription | None], Change | Subscription | None]


@dataclass(frozen=True)
class Updated:
    """The result of `update`: the record as read before the change, and as stored after it.

    `after` is None when the change function declined (nothing written); `audit` is the entry written with
    the change, as stored (None when there was none).
    """

    before: Subscription | None
    after: Subscription | None
    audit: AuditEntry | None = None
