"""The marketplace's state behind one re-entrant lock, with the lookups every part needs.

One lock for everything keeps the rules simple: a purchase, a PATCH and a closing change window never see
each other half done. Callers hold `lock` around a read-modify-`save()`; the lookups raise the Fulfillment
API's refusals (404 for an unknown subscription or operation, 400 for an unknown plan). A change to records
is persisted with `changed(...)` (one journal line each); `save()` writes the whole state, for the rare
changes that touch it as a whole (settings, offers, reset).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path

from sandbox.catalog import Offer, Plan
from sandbox.marketplace.errors import MarketplaceNotFoundError
from sandbox.marketplace.records import OperationRecord, SubscriptionRecord
from sandbox.marketplace.rules import plan_in
from sandbox.marketplace.settings import SandboxSettings
from sandbox.marketplace.state_file import (
    STATE_FILE,
    MarketplaceState,
    StateFile,
    operation_entry,
    subscription_entry,
    token_entry,
)

log = logging.getLogger("sandbox.marketplace")


class Ledger:
    """The state, its lock and its file (None: kept in memory only)."""

    def __init__(self, state: MarketplaceState, state_dir: Path | None) -> None:
        self.lock = threading.RLock()
        self._state_file = StateFile(state_dir / STATE_FILE) if state_dir else None
        self.state = state
        if self._state_file and self._state_file.exists():
            self.state = self._state_file.load()
            log.info("marketplace state loaded from %s", self._state_file.path)

    def save(self) -> None:
        """Persists the whole state (settings, offers, reset); record changes use `changed`."""
        if self._state_file is not None:
            self._state_file.save(self.state)

    def changed(
        self,
        *records: SubscriptionRecord | OperationRecord | None,
        tokens: Iterable[str] = (),
    ) -> None:
        """Persists these records as they are now, and these purchase tokens (issued, or gone when absent)."""
        if self._state_file is None:
            return
        entries = [
            subscription_entry(record) if isinstance(record, SubscriptionRecord) else operation_entry(record)
            for record in records
            if record is not None
        ]
        entries += [token_entry(token, self.state.tokens.get(token)) for token in tokens]
        self._state_file.change(self.state, entries)

    def close(self) -> None:
        if self._state_file is not None:
            self._state_file.close()

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
