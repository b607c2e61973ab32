"""The marketplace's state behind one re-entrant lock, with the lookups every part needs.

One lock for everything keeps the rules simple: a purchase, a PATCH and a closing change window never see
each other half done. Callers hold `lock` around a read-modify-`save()`; the lookups raise the Fulfillment
API's refusals (404 for an unknown subscription or operation, 400 for an unknown plan).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from sandbox.catalog import Offer, Plan
from sandbox.marketplace.errors import MarketplaceNotFoundError
from sandbox.marketplace.records import OperationRecord, SubscriptionRecord
from sandbox.marketplace.rules import plan_in
from sandbox.marketplace.settings import SandboxSettings
from sandbox.marketplace.state_file import STATE_FILE, MarketplaceState, load_state, save_state

log = logging.getLogger("sandbox.marketplace")


class Ledger:
    """The state, its lock and its file (None: kept in memory only)."""

    def __init__(self, state: MarketplaceState, state_dir: Path | None) -> None:
        self.lock = threading.RLock()
        self._state_file = state_dir / STATE_FILE if state_dir else None
        self.state = state
        if self._state_file and self._state_file.exists():
            self.state = load_state(self._state_file)
            log.info("marketplace state loaded from %s", self._state_file)

    def save(self) -> None:
        if self._state_file is not None:
            save_state(self._state_file, self.state)

    @property
    def settings(self) -> SandboxSettings:
        return self.state.settings

    def subscription(self, subscription_id: str) -> SubscriptionRecord:
        record = self.state.subscriptions.get(subscription_id)
        if record is None:
            raise MarketplaceNotFoundError(f"subscription {subscription_id} does not exist")
        return record

    def operation(self, subscription_id: str, operation_id: str) -> OperationRecord:
        operation = self.state.operations.get(operation_id)
        if operation is None or operation.subscription_id != subscription_id:
            raise MarketplaceNotFoundError(
                f"operation {operation_id} does not exist for subscription {subscription_id}"
            )
        return operation

    def operations_of(self, subscription_id: str) -> list[OperationRecord]:
        return [op for op in self.state.operations.values() if op.subscription_id == subscription_id]

    def offer(self, offer_id: str) -> Offer:
        offer = self.state.offers.get(offer_id)
        if offer is None:
            raise MarketplaceNotFoundError(f"offer {offer_id!r} does not exist")
        return offer

    def plan(self, offer_id: str, plan_id: object) -> Plan:
        return plan_in(self.offer(offer_id), plan_id)
