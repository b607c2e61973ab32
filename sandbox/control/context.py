"""What every control route acts on (`ControlContext`), and the reset both the API and the page offer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.catalog import Offer
from sandbox.faults import Faults
from sandbox.identities import Identities
from sandbox.marketplace.service import Marketplace
from sandbox.webhooks import WebhookSender

Baseline = Callable[[], tuple[dict[str, Offer], Any]]  # start-up catalog and settings, for reset

LIFECYCLE_ACTIONS = ("suspend", "reinstate", "unsubscribe", "renew")


@dataclass(frozen=True)
class ControlContext:
    """Everything the control surface acts on."""

    marketplace: Marketplace
    identities: Identities
    webhooks: WebhookSender
    faults: Faults
    baseline: Baseline


def reset(context: ControlContext) -> None:
    """Forgets subscriptions, operations, tokens, deliveries and faults; catalog and settings as at start."""
    offers, settings = context.baseline()
    context.marketplace.reset(offers, settings)
    context.webhooks.clear()
    context.faults.clear()
