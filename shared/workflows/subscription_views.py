"""What an operator reads about subscriptions: a filtered list, and one subscription with its history.

Read-only; the stored mirror is shown as stored (Microsoft's live view is the console's to add). The list
walks the stored rows page by page and stops at the limit, so memory stays bounded by what is shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING

from shared.domain.subscription_query import SubscriptionQuery

if TYPE_CHECKING:
    from shared.domain.audit import AuditEntry
    from shared.domain.inbox import InboxRecord
    from shared.domain.subscription import Subscription
    from shared.workflows.ports import AuditHistory, Inbox, SubscriptionCatalog


@dataclass(frozen=True)
class SubscriptionViewPorts:
    subscriptions: SubscriptionCatalog
    inbox: Inbox
    audit: AuditHistory


@dataclass(frozen=True)
class SubscriptionDetail:
    subscription: Subscription
    operations: list[InboxRecord]
    audit: list[AuditEntry]


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
    return SubscriptionDetail(stored, operations, ports.audit.list(subscription_id))
