"""The marketplace's state on disk, so `make dev` restarts keep subscriptions, operations and purchase tokens.

Two files: a snapshot (`marketplace.json`, the whole state) and a journal beside it (`marketplace.journal`,
one JSON line per changed subscription, operation or purchase token since that snapshot). A change appends
one line, so its cost no longer grows with everything the sandbox ever sold (rewriting the whole state as
indented JSON on every change under the marketplace's one lock was what a burst of changes waited on). The
journal is folded into a new snapshot once it holds `COMPACT_AFTER` lines, and whenever settings, offers
or a reset change the state as a whole.

Crash safety: a snapshot is written to a temporary file and renamed into place, so it is whole or absent.
The snapshot and its journal share a generation number: a journal of another generation (a crash between
writing a new snapshot and starting its journal) is already in the snapshot and is ignored. A journal line
cut short by a crash is the last one, and only that one is skipped when the state is read back.
"""

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
JOURNAL_FILE = "marketplace.journal"
STATE_VERSION = 1
# Lines in the journal before it is folded into a snapshot: reading it back stays quick, writing rarely.
COMPACT_AFTER = 5000


@dataclass
class MarketplaceState:
    """Everything the marketplace knows; what the state files hold."""

    settings: SandboxSettings
    offers: dict[str, Offer]
    subscriptions: dict[str, SubscriptionRecord] = field(default_factory=dict)
    operations: dict[str, OperationRecord] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)  # token -> subscriptionId, expiresAt


def journal_path(path: Path) -> Path:
    return path.with_name(JOURNAL_FILE)


def save_state(path: Path, state: MarketplaceState, generation: int = 0) -> None:
    """Writes the whole state as the snapshot of `generation` (whole or not at all)."""
    document = {
        "version": STATE_VERSION,
        "generation": generation,
        "settings": asdict(state.settings),
        "offers": [offer.to_json() for offer in state.offers.values()],
        "subscriptions": [asdict(record) for record in state.subscriptions.values()],
        "operations": [asdict(operation) for operation in state.operations.values()],
        "tokens": state.tokens,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    with temporary.open("w", encoding="utf-8") as file:
        json.dump(document, file, indent=1)  # read by people now and then; written only on compaction
        file.flush()
        os.fsync(file.fileno())
    # Replace in one step so a crash mid-write never leaves half a state file behind.
    os.replace(temporary, path)


class StateFile:
    """Snapshot plus journal at `path` (the snapshot's name); `load()` once, then `change()` or `save()`."""

    def __init__(self, path: Path, compact_after: int = COMPACT_AFTER) -> None:
        self.path = path
        self.journal = journal_path(path)
        self._compact_after = compact_after
        self._generation = 0
        self._lines = 0
        self._fd: int | None = None
        # False when the journal on disk cannot be appended to (cut-off last line, older generation):
        # the first change then writes a new snapshot and journal instead.
        self._appendable = True

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> MarketplaceState:
        """The saved state with its journal replayed; RuntimeError (saying what to do) when unreadable."""
        state, self._generation = _load_snapshot(self.path)
        self._lines, self._appendable = _replay(self.journal, self._generation, state)
        return state

    def save(self, state: MarketplaceState) -> None:
        """A new snapshot of everything, and an empty journal of its generation."""
        self._close_journal()
        self._generation += 1
        save_state(self.path, state, self._generation)
        self._open_journal(fresh=True)
        self._appendable = True

    def change(self, state: MarketplaceState, entries: list[dict[str, Any]]) -> None:
        """Appends `entries` (each one changed record); folds the journal into a snapshot when it is long."""
        if not entries:
            return
        if self._fd is None:
            if not self._appendable or not self.path.exists():
                self.save(state)  # the state in memory holds these changes already
                return
            self._open_journal(fresh=False)
        assert self._fd is not None
        data = "".join(json.dumps(entry, separators=(",", ":")) + "\n" for entry in entries).encode()
        os.write(self._fd, data)  # one write on an O_APPEND file: lines are never interleaved or reordered
        self._lines += len(entries)
        if self._lines >= self._compact_after:
            self.save(state)

    def close(self) -> None:
        self._close_journal()

    def _open_journal(self, *, fresh: bool) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if fresh else 0)
        self._fd = os.open(self.journal, flags, 0o600)
        if fresh or os.fstat(self._fd).st_size == 0:
            os.write(self._fd, (json.dumps({"generation": self._generation}) + "\n").encode())
            self._lines = 0

    def _close_journal(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def subscription_entry(record: SubscriptionRecord) -> dict[str, Any]:
    return {"subscription": asdict(record)}


def operation_entry(operation: OperationRecord) -> dict[str, Any]:
    return {"operation": asdict(operation)}


def token_entry(token: str, value: dict[str, Any] | None) -> dict[str, Any]:
    """A purchase token issued (`value`) or forgotten (None)."""
    return {"token": token, "value": value}


def _load_snapshot(path: Path) -> tuple[MarketplaceState, int]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("version") != STATE_VERSION:
            raise ValueError(f"state version {document.get('version')!r}, expected {STATE_VERSION}")
        state = MarketplaceState(
            settings=SandboxSettings(**document["settings"]),
            offers={o["offerId"]: offer_from_json(o) for o in document["offers"]},
            subscriptions={s["id"]: SubscriptionRecord.from_json(s) for s in document["subscriptions"]},
            operations={o["id"]: OperationRecord(**o) for o in document["operations"]},
            tokens=dict(document["tokens"]),
        )
        return state, int(document.get("generation", 0))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.error("cannot read sandbox state %s: %s (delete it or use another --state-dir)", path, exc)
        raise RuntimeError(f"cannot read sandbox state {path}: {exc}") from exc


def _replay(journal: Path, generation: int, state: MarketplaceState) -> tuple[int, bool]:
    """Applies the journal of `generation` to `state`: how many changes it held, and whether more may be
    appended to it (not after a cut-off line, nor to another generation's journal)."""
    try:
        lines = journal.read_bytes().split(b"\n")
    except FileNotFoundError:
        return 0, True
    # Every whole line ends with "\n": what follows the last one is a write cut short by a crash.
    whole, torn = lines[:-1], lines[-1]
    if torn:
        log.warning("sandbox state journal %s ends with a cut-off change; it is ignored", journal)
    if not whole:
        return 0, not torn
    try:
        header = json.loads(whole[0])
        if header.get("generation") != generation:
            log.info("journal %s belongs to an older snapshot; ignored", journal)
            return 0, False
        for line in whole[1:]:
            _apply(state, json.loads(line))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        log.error(
            "cannot read sandbox state journal %s: %s (delete it or use another --state-dir)", journal, exc
        )
        raise RuntimeError(f"cannot read sandbox state journal {journal}: {exc}") from exc
    return len(whole) - 1, not torn


def _apply(state: MarketplaceState, entry: dict[str, Any]) -> None:
    if "subscription" in entry:
        record = SubscriptionRecord.from_json(entry["subscription"])
        state.subscriptions[record.id] = record
    elif "operation" in entry:
        operation = OperationRecord(**entry["operation"])
        state.operations[operation.id] = operation
    elif "token" in entry:
        if entry["value"] is None:
            state.tokens.pop(entry["token"], None)
        else:
            state.tokens[entry["token"]] = entry["value"]
    else:
        raise ValueError(f"unknown journal entry {sorted(entry)}")


def load_state(path: Path) -> MarketplaceState:
    """The state saved at `path` (snapshot and journal); RuntimeError when it cannot be read."""
    return StateFile(path).load()
