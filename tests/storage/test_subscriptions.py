"""SubscriptionStore against Azurite: mapping round trips, insert/replace guards, update under contention."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.config import Settings
from shared.domain.audit import AuditAction, AuditEntry, AuditSource
from shared.domain.changes import Change, Updated
from shared.domain.status import SubscriptionStatus
from shared.domain.subscription import Party, Subscription, Term
from shared.storage.errors import AlreadyExistsError, ConcurrencyError, InvalidEntityError
from shared.storage.subscriptions import SubscriptionStore
from shared.storage.tables import TableSet

AT = datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def settings(azurite_connection_string: str, table_prefix: str) -> Settings:
    return Settings(
        storage_connection_string=azurite_connection_string, table_subscriptions=f"{table_prefix}s"
    )


@pytest.fixture
def table_set(settings: Settings) -> TableSet:
    return TableSet.from_settings(settings)


@pytest.fixture
def store(table_set: TableSet) -> SubscriptionStore:
    return table_set.subscriptions


def full_subscription(sub_id: str = "6f7b0b9c-1111-4a5e-9c1e-000000000001") -> Subscription:
    return Subscription(
        id=sub_id,
        name="Contoso analytics",
        offer_id="contoso-offer",
        plan_id="gold",
        quantity=25,
        status=SubscriptionStatus.SUBSCRIBED,
        purchaser=Party(email="buyer@contoso.com", object_id="oid-p", tenant_id="tenant-p", puid="puid-p"),
        beneficiary=Party(email="user@fabrikam.com", object_id="oid-b", tenant_id="tenant-b", puid="puid-b"),
        term=Term(unit="P1M", start=AT, end=AT + timedelta(days=30), charge_duration="P1M"),
        auto_renew=False,
        is_test=True,
        is_free_trial=True,
        allowed_customer_operations=frozenset({"Read", "Update", "Delete"}),
        sandbox_type="Csp",
        session_mode="DryRun",
        activation_requested_at=AT,
        activated_at=AT + timedelta(seconds=1),
        provisioned=True,
        last_operation_id="op-1",
        last_operation_action="ChangePlan",
        # A non-UTC offset must come back as the same instant, in UTC.
        last_operation_at=datetime(2024, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=2))),
        last_synced_at=AT + timedelta(minutes=5),
        unsubscribed_at=AT + timedelta(days=2),
        created_at=AT - timedelta(days=1),
        updated_at=AT + timedelta(minutes=6),
    )


def test_full_subscription_round_trips(store: SubscriptionStore) -> None:
    sub = full_subscription()

    written = store.insert(sub)
    read = store.get(sub.id)

    assert written.etag
    assert read == replace(sub, etag=written.etag)
    assert read is not None
    assert read.last_operation_at is not None
    assert read.last_operation_at.utcoffset() == timedelta(0)
    assert read.last_operation_at == datetime(2024, 3, 2, 7, 0, tzinfo=UTC)


def test_minimal_subscription_round_trips(store: SubscriptionStore) -> None:
    sub = Subscription(id="minimal-1")

    written = store.insert(sub)

    assert store.get("minimal-1") == replace(sub, etag=written.etag)
    assert written.quantity is None
    assert written.term == Term()
    assert written.purchaser == Party()


def test_get_missing_returns_none(store: SubscriptionStore) -> None:
    assert store.get("nobody") is None


def test_insert_twice_raises_already_exists(store: SubscriptionStore) -> None:
    store.insert(Subscription(id="twice", plan_id="first"))

    with pytest.raises(AlreadyExistsError):
        store.insert(Subscription(id="twice", plan_id="second"))

    stored = store.get("twice")
    assert stored is not None
    assert stored.plan_id == "first"


def test_replace_with_current_etag_writes_and_returns_new_etag(store: SubscriptionStore) -> None:
    written = store.insert(Subscription(id="r1", plan_id="silver"))

    replaced = store.replace(replace(written, plan_id="gold"))

    assert replaced.etag
    assert replaced.etag != written.etag
    assert store.get("r1") == replaced


def test_replace_with_stale_etag_raises_concurrency_error(store: SubscriptionStore) -> None:
    stale = store.insert(Subscription(id="r2", plan_id="silver"))
    store.replace(replace(stale, plan_id="gold"))

    with pytest.raises(ConcurrencyError):
        store.replace(replace(stale, plan_id="bronze"))

    stored = store.get("r2")
    assert stored is not None
    assert stored.plan_id == "gold"


def test_replace_without_etag_is_refused(store: SubscriptionStore) -> None:
    store.insert(Subscription(id="r3"))

    with pytest.raises(InvalidEntityError):
        store.replace(Subscription(id="r3", plan_id="gold"))


def test_replace_of_deleted_row_raises_concurrency_error(
    store: SubscriptionStore, table_set: TableSet, settings: Settings
) -> None:
    written = store.insert(Subscription(id="r4"))
    table_set.table(settings.table_subscriptions).delete_entity(partition_key="r4", row_key="subscription")

    with pytest.raises(ConcurrencyError):
        store.replace(written)


def test_update_creates_when_absent_and_changes_when_present(store: SubscriptionStore) -> None:
    created = store.update("u1", lambda current: current or Subscription(id="u1", quantity=1))
    changed = store.update("u1", lambda current: replace(current, quantity=current.quantity + 1))

    assert created.before is None
    assert created.after is not None
    assert created.after.quantity == 1
    assert changed.before == created.after
    assert changed.after is not None
    assert changed.after.quantity == 2
    assert store.get("u1") == changed.after
    assert (created.audit, changed.audit) == (None, None)


def test_update_returning_none_writes_nothing(store: SubscriptionStore) -> None:
    seen: list[Subscription | None] = []

    def look_only(current: Subscription | None) -> Subscription | None:
        seen.append(current)
        return None

    assert store.update("u2", look_only) == Updated(before=None, after=None)
    assert seen == [None]
    assert store.get("u2") is None


def test_update_refuses_a_change_to_another_subscription(store: SubscriptionStore) -> None:
    with pytest.raises(InvalidEntityError):
        store.update("u3", lambda _: Subscription(id="someone-else"))


def test_update_under_contention_loses_no_increment(store: SubscriptionStore) -> None:
    # Checked by hand: with etag/match_condition removed from SubscriptionStore.replace this test fails
    # (quantity ends at start + 1), because the barrier makes all eight writers read the same row first.
    writers = 8
    start = store.insert(Subscription(id="hot", quantity=10))
    everyone_has_read = threading.Barrier(writers, timeout=30)
    first_call = threading.local()

    def increment(current: Subscription | None) -> Subscription | None:
        assert current is not None
        assert current.quantity is not None
        if not getattr(first_call, "done", False):
            first_call.done = True
            everyone_has_read.wait()
        return replace(current, quantity=current.quantity + 1)

    with ThreadPoolExecutor(max_workers=writers) as pool:
        results = list(pool.map(lambda _: store.update("hot", increment), range(writers)))

    final = store.get("hot")
    assert final is not None
    assert start.quantity is not None
    assert final.quantity == start.quantity + writers
    assert sorted(r.after.quantity for r in results if r.after) == list(
        range(start.quantity + 1, start.quantity + writers + 1)
    )


def test_update_gives_up_with_concurrency_error_after_its_attempts(store: SubscriptionStore) -> None:
    store.insert(Subscription(id="busy", quantity=0))

    def change_while_someone_else_writes(current: Subscription | None) -> Subscription | None:
        assert current is not None
        # Another writer gets in between our read and our write, every time.
        other = store.get("busy")
        assert other is not None
        store.replace(replace(other, name=f"{other.name}x"))
        return replace(current, quantity=99)

    with pytest.raises(ConcurrencyError):
        store.update("busy", change_while_someone_else_writes, attempts=3)

    stored = store.get("busy")
    assert stored is not None
    assert stored.quantity == 0
    assert stored.name == "xxx"


def test_list_all_returns_every_subscription(store: SubscriptionStore) -> None:
    for sub_id in ("a1", "a2", "a3"):
        store.insert(Subscription(id=sub_id))

    assert sorted(s.id for s in store.list_all()) == ["a1", "a2", "a3"]


def test_list_all_leaves_out_a_row_it_cannot_read_and_names_it(
    store: SubscriptionStore, table_set: TableSet, settings: Settings
) -> None:
    # The operator's CLI lists through list_all: one bad row must not stop it (as the console's list).
    store.insert(Subscription(id="a1"))
    table_set.table(settings.table_subscriptions).create_entity(
        {"PartitionKey": "bad", "RowKey": "subscription", "status": "Bogus"}
    )
    unreadable: list[str] = []

    assert [s.id for s in store.list_all(unreadable=unreadable)] == ["a1"]
    assert unreadable == ["bad"]


def test_list_for_tenant_matches_purchaser_or_beneficiary_only(store: SubscriptionStore) -> None:
    store.insert(
        Subscription(id="bought", purchaser=Party(tenant_id="t-1"), beneficiary=Party(tenant_id="t-1"))
    )
    store.insert(
        Subscription(id="csp-for-t1", purchaser=Party(tenant_id="csp"), beneficiary=Party(tenant_id="t-1"))
    )
    store.insert(
        Subscription(id="t1-for-other", purchaser=Party(tenant_id="t-1"), beneficiary=Party(tenant_id="t-2"))
    )
    store.insert(
        Subscription(id="other", purchaser=Party(tenant_id="t-2"), beneficiary=Party(tenant_id="t-2"))
    )

    assert sorted(s.id for s in store.list_for_tenant("t-1")) == ["bought", "csp-for-t1", "t1-for-other"]
    assert sorted(s.id for s in store.list_for_tenant("t-2")) == ["other", "t1-for-other"]
    assert store.list_for_tenant("t-3") == []


def test_list_for_tenant_treats_quotes_as_data(store: SubscriptionStore) -> None:
    quoted = "o'brien"
    store.insert(Subscription(id="q1", purchaser=Party(tenant_id=quoted)))
    store.insert(Subscription(id="q2", purchaser=Party(tenant_id="o")))
    store.insert(Subscription(id="q3", beneficiary=Party(tenant_id="x")))

    assert [s.id for s in store.list_for_tenant(quoted)] == ["q1"]
    # An injection attempt matches nothing instead of widening the filter to every row.
    assert store.list_for_tenant("x' or PartitionKey ne '") == []


@pytest.mark.parametrize("tenant_id", ["", "   "])
def test_list_for_tenant_refuses_an_empty_tenant(store: SubscriptionStore, tenant_id: str) -> None:
    store.insert(Subscription(id="no-tenant"))

    with pytest.raises(InvalidEntityError):
        store.list_for_tenant(tenant_id)


@pytest.mark.parametrize("bad_id", ["", "a/b", "a#b", "a?b", "a\\b", "a\nb"])
def test_bad_subscription_ids_are_refused_before_any_request(store: SubscriptionStore, bad_id: str) -> None:
    with pytest.raises(InvalidEntityError):
        store.insert(Subscription(id=bad_id))
    with pytest.raises(InvalidEntityError):
        store.get(bad_id)


def test_naive_datetime_is_refused(store: SubscriptionStore) -> None:
    with pytest.raises(InvalidEntityError, match="activated_at"):
        store.insert(Subscription(id="naive", activated_at=datetime(2024, 1, 1, 12, 0)))
    assert store.get("naive") is None


def _grow(sub_id: str, action: AuditAction, quantity: Callable[[Subscription | None], int]):
    """A change function that sets the quantity and records the change in the same transaction."""

    def change(before: Subscription | None) -> Change:
        after = replace(before or Subscription(id=sub_id), quantity=quantity(before))
        entry = AuditEntry(
            subscription_id=sub_id,
            at=datetime.now(UTC),
            action=action,
            source=AuditSource.RECONCILIATION,
            changes={"quantity": (before and before.quantity, after.quantity)},
        )
        return Change(after, audit=entry)

    return change


def test_a_change_and_its_audit_row_are_written_together(
    store: SubscriptionStore, table_set: TableSet
) -> None:
    sub_id = "6f7b0b9c-1111-4a5e-9c1e-00000000a0d1"
    created = store.update(sub_id, _grow(sub_id, AuditAction.ACTIVATE, lambda _: 1))
    grown = store.update(sub_id, _grow(sub_id, AuditAction.CHANGE_QUANTITY, lambda s: 2))

    assert grown.before == created.after
    assert grown.after is not None
    assert grown.after.quantity == 2
    assert grown.after.etag == store.get(sub_id).etag
    listed = table_set.audit.list(sub_id)
    assert [(e.action, e.changes["quantity"]) for e in listed] == [
        (AuditAction.ACTIVATE, (None, 1)),
        (AuditAction.CHANGE_QUANTITY, (1, 2)),
    ]
    # The entry the update returns is the stored one: its row key included, nothing read back.
    assert [created.audit, grown.audit] == listed


def test_an_audit_entry_for_another_subscription_is_refused(store: SubscriptionStore) -> None:
    sub_id = "6f7b0b9c-1111-4a5e-9c1e-00000000a0d3"
    other = _grow("someone-else", AuditAction.RENEW, lambda _: 1)

    with pytest.raises(InvalidEntityError):
        store.update(sub_id, lambda current: Change(Subscription(id=sub_id), other(current).audit))
    assert store.get(sub_id) is None


def test_an_attempt_that_loses_a_race_leaves_no_audit_row(
    store: SubscriptionStore, table_set: TableSet
) -> None:
    sub_id = "6f7b0b9c-1111-4a5e-9c1e-00000000a0d2"
    store.insert(Subscription(id=sub_id, quantity=1))
    raced = threading.Event()

    def quantity(current: Subscription | None) -> int:
        assert current is not None
        if not raced.is_set():
            raced.set()  # another writer changes the row between our read and our write
            store.replace(replace(current, quantity=10))
        return current.quantity + 1

    result = store.update(sub_id, _grow(sub_id, AuditAction.CHANGE_QUANTITY, quantity))

    assert result.after is not None
    assert result.after.quantity == 11
    assert result.before is not None
    assert result.before.quantity == 10
    # The first attempt's transaction failed as a whole: only the winning attempt's row exists.
    assert [e.changes["quantity"] for e in table_set.audit.list(sub_id)] == [(10, 11)]


def test_update_from_a_known_absence_inserts_without_reading_and_reads_when_a_row_is_there(
    store: SubscriptionStore,
) -> None:
    seen: list[Subscription | None] = []

    def create(current: Subscription | None) -> Change:
        seen.append(current)
        return Change(Subscription(id="fresh", quantity=1 if current is None else current.quantity + 1))

    created = store.update("fresh", create, absent=True)
    assert created.before is None
    assert created.after is not None
    assert created.after.etag
    assert seen == [None]

    # Stored since the caller looked: the insert is refused and the next attempt starts from the row.
    seen.clear()
    again = store.update("fresh", create, absent=True)
    assert seen[0] is None
    assert seen[1] is not None
    assert seen[1].quantity == 1
    assert again.after is not None
    assert again.after.quantity == 2
    stored = store.get("fresh")
    assert stored is not None
    assert stored.quantity == 2
