"""What an operator reads about subscriptions: a filtered list, and one subscription with its history.

Read-only. The stored mirror is shown as stored; `microsoft_view` adds Microsoft's live view beside it
(GetSubscription and the operations still in progress) for the console, and says in words when Microsoft
does not know the subscription or does not answer, so the mirror is still shown. The list walks the stored
rows page by page and stops at the limit, so memory stays bounded by what is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING

from shared.domain.subscription_query import SubscriptionQuery
from shared.fulfillment.errors import FulfillmentError, FulfillmentNotFoundError
from shared.logs import get_logger

if TYPE_CHECKING:
    from shared.domain.audit import AuditEntry
    from shared.domain.inbox import InboxRecord
    from shared.domain.seats import Seat
    from shared.domain.subscription import MicrosoftSubscription, Operation, Subscription
    from shared.workflows.ports import AuditHistory, Inbox, Marketplace, SeatBook, SubscriptionCatalog

log = get_logger(__name__)
MICROSOFT_UNKNOWN = (
    'Microsoft does not know this subscription (GetSubscription answered "not found"): it may have been '
    "deleted at Microsoft, or it belongs to another publisher or environment. The stored copy is shown alone."
)
MICROSOFT_SILENT = (
    "Microsoft did not answer just now, so its view cannot be compared. The stored copy is shown alone; "
    "reload the page in a minute."
)
OPERATIONS_SILENT = "Microsoft did not list its operations in progress just now; reload the page in a minute."


@dataclass(frozen=True)
class SubscriptionViewPorts:
    subscriptions: SubscriptionCatalog
    inbox: Inbox
    audit: AuditHistory
    seats: SeatBook


@dataclass(frozen=True)
class SubscriptionDetail:
    subscription: Subscription
    operations: list[InboxRecord]
    audit: list[AuditEntry]
    seats: list[Seat]


@dataclass(frozen=True)
class MicrosoftView:
    """What Microsoft says about one subscription now; `problem` (words) when it could not say it."""

    subscription: MicrosoftSubscription | None
    in_progress: list[Operation]
    problem: str = ""
    operations_problem: str = ""


def find_subscriptions(query: SubscriptionQuery, *, ports: SubscriptionViewPorts) -> list[Subscription]:
    matching = (sub for sub in ports.subscriptions.list_all() if query.matches(sub))
    return list(islice(matching, query.limit)) if query.limit is not None else list(matching)


def subscription_detail(subscription_id: str, *, ports: SubscriptionViewPorts) -> SubscriptionDetail | None:
    """The stored mirror, its inbox operations (oldest first) and its audit trail; None if unknown."""
    stored = ports.subscriptions.get(subscription_id)
    if stored is None:
        return None
    operations = sorted(
        ports.inbox.list_for_subscription(subscription_id),
        key=lambda record: (record.created_at is None, record.created_at),
    )
    seats = ports.seats.list(subscription_id)
    return SubscriptionDetail(stored, operations, ports.audit.list(subscription_id), seats)


def microsoft_view(subscription_id: str, *, marketplace: Marketplace, correlation_id: str) -> MicrosoftView:
    """GetSubscription and ListOperations (the operations still in progress) for one subscription."""
    try:
        live = marketplace.get_subscription(subscription_id, correlation_id=correlation_id)
    except FulfillmentNotFoundError:
        log.info("GetSubscription: Microsoft does not know the subscription")
        return MicrosoftView(None, [], MICROSOFT_UNKNOWN)
    except FulfillmentError as exc:
        log.warning("GetSubscription failed for the console", extra={"status": exc.status_code})
        return MicrosoftView(None, [], MICROSOFT_SILENT)
    try:
        in_progress = marketplace.list_operations(subscription_id, correlation_id=correlation_id)
    except FulfillmentError as exc:
        log.warning("ListOperations failed for the console", extra={"status": exc.status_code})
        return MicrosoftView(live, [], operations_problem=OPERATIONS_SILENT)
    return MicrosoftView(live, in_progress)
