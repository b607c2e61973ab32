"""Plan display names for pages, without asking Microsoft on every page view.

Microsoft says what a plan is called only through listAvailablePlans, per subscription, and plan names change
only when the publisher edits the offer in Partner Center. So the names are kept per offer for a few minutes
in each instance: a page listing many subscriptions of one offer asks once, and a subscription whose own
listAvailablePlans answers nothing useful (an ended one, say) still gets its offer's names if another one was
asked recently. Where Microsoft cannot say, pages show the plan id set apart as an id.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from shared.workflows.publisher_changes import plan_names

if TYPE_CHECKING:
    from shared.domain.subscription import Subscription
    from shared.workflows.ports import Marketplace

NAMES_KEPT_SECONDS = 600.0


class PlanCatalog:
    """Plan id -> display name per offer, kept `kept_seconds` per instance (thread-safe)."""

    def __init__(
        self,
        fulfillment: Marketplace,
        *,
        kept_seconds: float = NAMES_KEPT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fulfillment = fulfillment
        self._kept = kept_seconds
        self._clock = clock
        self._names: dict[str, tuple[float, dict[str, str]]] = {}
        self._lock = threading.Lock()

    def names_for(self, subscription: Subscription) -> dict[str, str]:
        """The names of the plans of the subscription's offer (empty when Microsoft could not say).

        Asked at most once per offer per `kept_seconds`, answered or not: an outage or a plan Microsoft no
        longer lists (an ended subscription's) must not cost every page view a call and its retries."""
        now = self._clock()
        with self._lock:
            kept = self._names.get(subscription.offer_id)
        if kept is not None and now - kept[0] < self._kept:
            return dict(kept[1])
        fetched = plan_names(subscription.id, fulfillment=self._fulfillment)
        merged = {**(kept[1] if kept is not None else {}), **fetched}
        with self._lock:
            self._names[subscription.offer_id] = (now, merged)
        return dict(merged)
