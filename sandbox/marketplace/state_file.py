"""The marketplace's whole state as one JSON file, so `make dev` restarts keep subscriptions, operations and
purchase tokens. Written after every change; read once at start."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sandbox.catalog import Offer, offer_from_json
from sandbox.marketplace.records import OperationRecord, SubscriptionRecord
from sandbox.marketplace.settings import SandboxSettings

log = logging.getLogger("sandbox.marketplace")

STATE_FILE = "marketplace.json"
STATE_VERSION = 1


@dataclass
class MarketplaceState:
    """Everything the marketplace knows; what the state file holds."""

    settings: SandboxSettings
    offers: dict[str, Offer]
    subscriptions: dict[str, SubscriptionRecord] = field(default_factory=dict)
    operations: dict[str, OperationRecord] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)  # token -> subscriptionId, expiresAt


def save_state(path: Path, state: MarketplaceState) -> None:
    document = {
        "version": STATE_VERSION,
        "settings": asdict(state.settings),
        "offers": [offer.to_json() for offer in state.offers.values()],
        "subscriptions": [asdict(record) for record in state.subscriptions.values()],
        "operations": [asdict(operation) for operation in state.operations.values()],
        "tokens": state.tokens,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=1), encoding="utf-8")
    # Replace in one step so a crash mid-write never leaves half a state file behind.
    os.replace(temporary, path)


def load_state(path: Path) -> MarketplaceState:
    """The state saved at `path`; RuntimeError (saying what to do) when it cannot be read."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("version") != STATE_VERSION:
            raise ValueError(f"state version {document.get('version')!r}, expected {STATE_VERSION}")
        return MarketplaceState(
            settings=SandboxSettings(**document["settings"]),
            offers={o["offerId"]: offer_from_json(o) for o in document["offers"]},
            subscriptions={s["id"]: SubscriptionRecord.from_json(s) for s in document["subscriptions"]},
            operations={o["id"]: OperationRecord(**o) for o in document["operations"]},
            tokens=dict(document["tokens"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.error("cannot read sandbox state %s: %s (delete it or use another --state-dir)", path, exc)
        raise RuntimeError(f"cannot read sandbox state {path}: {exc}") from exc
