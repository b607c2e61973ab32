"""The sandbox's state on disk: a change appends a journal line instead of rewriting everything, the journal
folds into a snapshot, and a restart (also after a crash mid-write) reads back exactly what was saved."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from sandbox.catalog import load_catalog
from sandbox.marketplace.records import WireParty
from sandbox.marketplace.service import Marketplace
from sandbox.marketplace.state_file import JOURNAL_FILE, STATE_FILE, MarketplaceState, StateFile
from sandbox.server import DEFAULT_CATALOG

BUYER = WireParty("adele@contoso.example", "o-1", "11111111-0000-4000-8000-000000000000", "p-1")


def marketplace(state_dir: Path) -> Marketplace:
    # No webhook sink: changes stay pending; a long window so no timer decides anything meanwhile.
    opened = Marketplace(offers=load_catalog(DEFAULT_CATALOG), state_dir=state_dir)
    opened.replace_settings(opened.settings.with_changes({"auto_accept_seconds": 600.0}))
    return opened


def everything(market: Marketplace) -> dict[str, object]:
    """The whole state as plain data, to compare a restarted marketplace with the one that wrote it."""
    state: MarketplaceState = market._ledger.state
    return {
        "subscriptions": {k: asdict(v) for k, v in state.subscriptions.items()},
        "operations": {k: asdict(v) for k, v in state.operations.items()},
        "tokens": dict(state.tokens),
        "settings": asdict(state.settings),
    }


def busy(market: Marketplace, subscriptions: int = 3) -> list[str]:
    """Purchases, activations, changes decided both ways, a suspension: every kind of record change."""
    ids = []
    for n in range(subscriptions):
        bought = market.purchase(
            offer_id="contoso-analytics", plan_id="team-seats", quantity=5, purchaser=BUYER, beneficiary=BUYER
        )
        market.activate(bought.subscription_id, {"planId": "team-seats", "quantity": 5})
        accepted = market.customer_change_quantity(bought.subscription_id, 6 + n)
        market.update_operation(bought.subscription_id, accepted, {"status": "Success"})
        refused = market.customer_change_quantity(bought.subscription_id, 20)
        market.update_operation(bought.subscription_id, refused, {"status": "Failure"})
        ids.append(bought.subscription_id)
    market.customer_change_quantity(ids[-1], 30)  # left pending
    market.suspend(ids[0])
    return ids


def test_a_change_appends_to_the_journal_and_leaves_the_snapshot_alone(tmp_path: Path) -> None:
    market = marketplace(tmp_path)
    busy(market)
    snapshot = (tmp_path / STATE_FILE).stat()
    journal_size = (tmp_path / JOURNAL_FILE).stat().st_size
    subscription_id = busy(market, subscriptions=1)[0]
    assert (tmp_path / STATE_FILE).stat().st_mtime_ns == snapshot.st_mtime_ns, "no rewrite per change"
    assert (tmp_path / JOURNAL_FILE).stat().st_size > journal_size
    written = everything(market)
    market.close()

    restarted = marketplace(tmp_path)
    assert everything(restarted) == {**written, "settings": everything(restarted)["settings"]}
    assert restarted.subscription(subscription_id)["quantity"] == 6
    restarted.close()


def test_the_journal_folds_into_a_snapshot_and_reloads_the_same(tmp_path: Path) -> None:
    market = marketplace(tmp_path)
    market._ledger._state_file._compact_after = 10  # type: ignore[union-attr]
    busy(market, subscriptions=4)
    lines = (tmp_path / JOURNAL_FILE).read_text().splitlines()
    assert len(lines) <= 1 + 10, "the journal was folded, not left to grow"
    written = everything(market)
    market.close()
    reloaded = StateFile(tmp_path / STATE_FILE).load()
    assert {k: asdict(v) for k, v in reloaded.operations.items()} == written["operations"]
    assert {k: asdict(v) for k, v in reloaded.subscriptions.items()} == written["subscriptions"]
    assert reloaded.tokens == written["tokens"]


def test_a_change_cut_off_by_a_crash_is_skipped_and_the_rest_kept(tmp_path: Path) -> None:
    market = marketplace(tmp_path)
    ids = busy(market)
    written = everything(market)
    market.close()
    with (tmp_path / JOURNAL_FILE).open("ab") as journal:
        journal.write(b'{"operation":{"id":"half-writ')  # the process died inside a write

    restarted = marketplace(tmp_path)
    assert everything(restarted)["operations"] == written["operations"]
    assert everything(restarted)["subscriptions"] == written["subscriptions"]
    # Appending after the cut-off line would glue the next change to it: the next change starts afresh.
    restarted.customer_change_quantity(ids[1], 40)
    after = everything(restarted)
    restarted.close()
    again = marketplace(tmp_path)
    assert everything(again)["operations"] == after["operations"]
    again.close()


def test_a_journal_older_than_the_snapshot_is_ignored(tmp_path: Path) -> None:
    # A crash after the new snapshot was renamed into place but before its journal was started: the old
    # journal's changes are in that snapshot already, and replaying them would roll records back.
    market = marketplace(tmp_path)
    ids = busy(market)
    market.close()
    stale = (tmp_path / JOURNAL_FILE).read_bytes()
    market = marketplace(tmp_path)
    market._ledger.save()  # a new snapshot (next generation), with a fresh journal
    market.close()
    (tmp_path / JOURNAL_FILE).write_bytes(stale)
    restarted = marketplace(tmp_path)
    assert restarted.subscription(ids[0])["saasSubscriptionStatus"] == "Suspended"
    restarted.close()
