"""How long an Unsubscribed subscription keeps its personal data, and what a purge leaves behind (pure).

Microsoft unsubscribes a subscription on cancellation or at the end of the 30-day suspension grace (R56);
the publisher must then keep the customer's data for at least 7 days, restorable if asked, and delete it
only after that (R58). The retention period (`RETENTION_DAYS`, default 30) counts from
`unsubscribed_at`, the moment our mirror first saw the subscription Unsubscribed. After it,
`shared.workflows.retention` deletes the people, seats and links of the subscription and anonymises its
row and audit trail; what billing needs (ids, offer, plan, quantity, term, status, dates) stays.

`redact_changes` is the audit side of that rule: an audit entry's `changes` may hold parties (e-mail,
object id, puid), names and addresses; each such value becomes `REDACTED`, everything else is kept as is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from shared.domain.status import SubscriptionStatus
from shared.domain.subscription import Subscription

DEFAULT_RETENTION_DAYS = 30
# R58: data is kept at least 7 days after Unsubscribe; a shorter setting would break Microsoft's rule.
MINIMUM_RETENTION_DAYS = 7
REDACTED = "[redacted]"
# Keys whose values name or identify a person, wherever they appear in an audit entry's changes (the
# subscription's own fields, the parties' fields once stored as objects, a seat's or user's fields).
PERSONAL_KEYS = frozenset(
    {
        "name",
        "display_name",
        "email",
        "contact_email",
        "upn",
        "user_key",
        "object_id",
        "puid",
        "addresses",
        "assigned_by",
        "created_by",
        "used_by",
        "granted_by",
    }
)
# Parties are personal as a whole except their tenant: an organisation, which billing may still need.
_PARTY_KEYS = frozenset({"purchaser", "beneficiary"})
_KEPT_PARTY_KEYS = frozenset({"tenant_id"})
# Any e-mail address left in free text (a reason, an old row's value) is redacted too.
_ADDRESS = re.compile(r"[^\s@\"'<>(),;:]+@[^\s@\"'<>(),;:]+\.[^\s@\"'<>(),;:]+")


def purge_cutoff(now: datetime, retention_days: int) -> datetime:
    """Subscriptions unsubscribed at or before this instant are due for purge."""
    return now - timedelta(days=retention_days)


def due_for_purge(subscription: Subscription, now: datetime, retention_days: int) -> bool:
    """Unsubscribed for the whole retention period and not purged yet.

    Without `unsubscribed_at` the period cannot be counted, so nothing is purged: deleting data too early
    breaks R58, keeping it longer only waits for the next run after the mirror records the moment.
    """
    if retention_days < MINIMUM_RETENTION_DAYS:
        raise ValueError(f"retention must be at least {MINIMUM_RETENTION_DAYS} days (R58)")
    if subscription.status is not SubscriptionStatus.UNSUBSCRIBED:
        return False
    if subscription.personal_data_purged_at is not None or subscription.unsubscribed_at is None:
        return False
    return subscription.unsubscribed_at <= purge_cutoff(now, retention_days)


def redact_changes(changes: Mapping[str, tuple[Any, Any]]) -> dict[str, tuple[Any, Any]]:
    """The same changes with every personal value replaced by `REDACTED` (old and new alike)."""
    return {name: (_redact(name, old), _redact(name, new)) for name, (old, new) in changes.items()}


def _redact(key: str, value: Any) -> Any:
    if key in PERSONAL_KEYS:
        return _blanked(value)
    if key in _PARTY_KEYS and isinstance(value, Mapping):
        return {k: (v if k in _KEPT_PARTY_KEYS else _blanked(v)) for k, v in value.items()}
    return _scrubbed(value)


def _blanked(value: Any) -> Any:
    # An empty value says nothing about anyone: keeping it shows the field was empty, not hidden.
    return value if value in (None, "", [], ()) else REDACTED


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return _ADDRESS.sub(REDACTED, value)
    if isinstance(value, Mapping):
        return {str(k): _redact(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(item) for item in value]
    return value
