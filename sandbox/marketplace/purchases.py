"""Purchases and their purchase tokens: a new subscription, and the token that takes the buyer to the landing
page and resolves to it (R1-R7).

Tokens live in the marketplace's state (`{token: {"subscriptionId", "expiresAt"}}`) so a restart keeps the
landing links already handed out.
"""

from __future__ import annotations

import base64
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sandbox.marketplace.errors import MarketplaceBadRequestError
from sandbox.marketplace.ledger import Ledger
from sandbox.marketplace.records import WireParty
from sandbox.marketplace.rules import new_subscription

log = logging.getLogger("sandbox.marketplace")


@dataclass(frozen=True)
class Purchase:
    subscription_id: str
    token: str


def new_purchase_token() -> str:
    """A token like Microsoft's: base64 with '+', '/' and '=' so single-decoding mistakes show (R2)."""
    while True:
        token = base64.b64encode(secrets.token_bytes(47)).decode("ascii")
        # The first character is alphanumeric so that a '+' taken for a space gives a wrong token (which
        # Resolve refuses), not a header with leading whitespace (which HTTP clients refuse to send).
        if "+" in token and "/" in token and token[0].isalnum():
            return token


class PurchaseDesk:
    """Sells plans and issues, resolves and expires purchase tokens, under the ledger's lock."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def purchase(
        self,
        *,
        offer_id: str,
        plan_id: str,
        purchaser: WireParty,
        beneficiary: WireParty,
        csp: bool,
        **details: Any,
    ) -> Purchase:
        """A customer (or a CSP for a customer) buys a plan: PendingFulfillmentStart plus a purchase token.

        `details` are `new_subscription`'s `quantity`, `name`, `is_test` and `auto_renew`."""
        with self._ledger.lock:
            record = new_subscription(
                self._ledger.offer(offer_id),
                self._ledger.plan(offer_id, plan_id),
                purchaser=purchaser,
                beneficiary=beneficiary,
                csp=csp,
                publisher_id=self._ledger.settings.publisher_id,
                **details,
            )
            self._ledger.state.subscriptions[record.id] = record
            token = self._issue_locked(record.id)
        log.info("purchase of %s/%s -> subscription %s (csp=%s)", offer_id, plan_id, record.id, csp)
        return Purchase(subscription_id=record.id, token=token)

    def issue_token(self, subscription_id: str) -> str:
        """A fresh purchase token for an existing subscription ("Configure account" opened again, R7)."""
        with self._ledger.lock:
            self._ledger.subscription(subscription_id)
            return self._issue_locked(subscription_id)

    def landing_url(self, token: str) -> str:
        """Where Microsoft sends the buyer: the landing page with the token URL-encoded once (R1, R2)."""
        with self._ledger.lock:
            landing_url = self._ledger.settings.landing_url
        return f"{landing_url}?token={quote(token, safe='')}"

    def resolve(self, token: str | None) -> dict[str, Any]:
        """ResolvedSubscription for a purchase token; 400 when missing, unknown or expired (R4, R5)."""
        with self._ledger.lock:
            entry = self._ledger.state.tokens.get(token or "")
            if entry is None or entry["expiresAt"] < time.time():
                log.warning("resolve refused: marketplace token missing, unknown or expired")
                raise MarketplaceBadRequestError(
                    "x-ms-marketplace-token is missing, malformed, invalid or expired"
                )
            return self._ledger.subscription(entry["subscriptionId"]).to_resolved()

    def _issue_locked(self, subscription_id: str) -> str:
        token = new_purchase_token()
        lifetime = self._ledger.settings.token_lifetime_seconds
        tokens = self._ledger.state.tokens
        tokens[token] = {"subscriptionId": subscription_id, "expiresAt": time.time() + lifetime}
        forgotten = self._forget_expired_tokens()
        # The subscription too: a purchase has just created it.
        self._ledger.changed(self._ledger.subscription(subscription_id), tokens=[token, *forgotten])
        return token

    def _forget_expired_tokens(self) -> list[str]:
        now = time.time()
        tokens = self._ledger.state.tokens
        expired = [token for token, entry in tokens.items() if entry["expiresAt"] < now]
        for token in expired:
            del tokens[token]
        return expired
