"""Many subscriptions at once, for benchmarks and load tests: what thousands of purchases would leave behind,
written in one step instead of one purchase (and one journal line under the lock) at a time.

Each seeded subscription is a regular record made by `rules.new_subscription` (same checks, same fields),
then activated the way `Marketplace.activate` does when asked for Subscribed. No purchase token is issued
and no webhook is sent: seeding stands for history, not for events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sandbox.catalog import Offer, Plan
from sandbox.marketplace import rules
from sandbox.marketplace.errors import MarketplaceBadRequestError
from sandbox.marketplace.ledger import Ledger
from sandbox.marketplace.records import PENDING, SUBSCRIBED, SubscriptionRecord, WireParty

SEEDABLE_STATUSES = (PENDING, SUBSCRIBED)
MAX_SEED = 100_000


@dataclass(frozen=True)
class SeedRequest:
    offer_id: str
    plan_id: str
    count: int
    quantity: int | None
    status: str
    party: WireParty


def check_seed(request: SeedRequest) -> None:
    count = request.count
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_SEED:
        raise MarketplaceBadRequestError(f"count must be a whole number from 1 to {MAX_SEED}")
    if request.status not in SEEDABLE_STATUSES:
        raise MarketplaceBadRequestError(f"status must be one of {', '.join(SEEDABLE_STATUSES)}")


def seed(ledger: Ledger, request: SeedRequest, today: date) -> list[str]:
    """Adds `request.count` subscriptions under the ledger's lock and persists them in one journal write."""
    check_seed(request)
    with ledger.lock:
        offer = ledger.offer(request.offer_id)
        plan = ledger.plan(request.offer_id, request.plan_id)
        records = [_record(ledger, offer, plan, request, today) for _ in range(request.count)]
        for record in records:
            ledger.state.subscriptions[record.id] = record
        ledger.changed(*records)
    return [record.id for record in records]


def _record(
    ledger: Ledger, offer: Offer, plan: Plan, request: SeedRequest, today: date
) -> SubscriptionRecord:
    record = rules.new_subscription(
        offer,
        plan,
        quantity=request.quantity,
        purchaser=request.party,
        beneficiary=request.party,
        csp=False,
        name=None,
        is_test=True,
        auto_renew=True,
        publisher_id=ledger.settings.publisher_id,
    )
    if request.status == SUBSCRIBED:
        record.status = SUBSCRIBED
        rules.start_term(record, today)
    return record
