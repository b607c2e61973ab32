"""Which stored subscriptions an operator asks for: exact filters plus a free-text search, pure."""

from __future__ import annotations

from dataclasses import dataclass

from shared.domain.status import SubscriptionStatus
from shared.domain.subscription import Subscription


@dataclass(frozen=True)
class SubscriptionQuery:
    """Empty fields filter nothing. `status` is read as Microsoft spells it, any case; `tenant` matches the
    purchaser's or the beneficiary's tenant; `search` is a case-insensitive part of the id, name, offer,
    plan, either tenant or either e-mail address."""

    status: str = ""
    plan: str = ""
    offer: str = ""
    tenant: str = ""
    search: str = ""
    limit: int | None = None

    def matches(self, subscription: Subscription) -> bool:
        return (
            _same(self.status, subscription.status.value)
            and _same(self.plan, subscription.plan_id)
            and _same(self.offer, subscription.offer_id)
            and (
                not self.tenant
                or self.tenant.lower()
                in {subscription.purchaser.tenant_id.lower(), subscription.beneficiary.tenant_id.lower()}
            )
            and (not self.search or self.search.lower() in _haystack(subscription))
        )

    def status_is_known(self) -> bool:
        """False for a status Microsoft never sends (a typo would otherwise quietly match nothing)."""
        return not self.status or self.status.lower() in {s.value.lower() for s in SubscriptionStatus}


def _same(wanted: str, value: str) -> bool:
    return not wanted or wanted.lower() == value.lower()


def _haystack(subscription: Subscription) -> str:
    parts = (
        subscription.id,
        subscription.name,
        subscription.offer_id,
        subscription.plan_id,
        subscription.purchaser.tenant_id,
        subscription.purchaser.email,
        subscription.beneficiary.tenant_id,
        subscription.beneficiary.email,
    )
    return "\n".join(parts).lower()
