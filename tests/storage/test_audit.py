"""AuditTrail against Azurite: rows are only ever added, listed oldest first, changes survive as JSON."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from azure.data.tables import TableClient

from shared.config import Settings
from shared.domain.audit import AuditAction, AuditEntry, AuditSource
from shared.domain.status import SubscriptionStatus
from shared.domain.subscription import Party
from shared.storage.audit import AuditTrail
from shared.storage.errors import AlreadyExistsError, InvalidEntityError
from shared.storage.tables import TableSet

AT = datetime(2024, 6, 1, 10, 0, 0, 500000, tzinfo=UTC)
A = AuditAction
S = AuditSource


def entry(subscription_id: str, action: AuditAction, source: AuditSource, **fields: object) -> AuditEntry:
    fields.setdefault("at", AT)
    return AuditEntry(subscription_id=subscription_id, action=action, source=source, **fields)  # type: ignore[arg-type]


@pytest.fixture
def trail(azurite_connection_string: str, table_prefix: str) -> AuditTrail:
    settings = Settings(
        storage_connection_string=azurite_connection_string, table_subscriptions=f"{table_prefix}s"
    )
    return TableSet.from_settings(settings).audit


def test_changes_round_trip_as_json(trail: AuditTrail) -> None:
    appended = trail.append(
        entry(
            "sub-1",
            A.CHANGE_PLAN,
            S.AZURE,
            operation_id="op-1",
            changes={
                "plan_id": ("silver", "gold"),
                "quantity": (None, 5),
                "status": (SubscriptionStatus.PENDING_FULFILLMENT_START, SubscriptionStatus.SUBSCRIBED),
                "activated_at": (None, AT),
                "allowed_customer_operations": (frozenset(), frozenset({"Update", "Read"})),
                "purchaser": (Party(), Party(email="a@b.c", tenant_id="t")),
            },
            correlation_id="corr-1",
            at=AT,
        )
    )

    [listed] = trail.list("sub-1")

    assert listed == appended
    assert listed.changes == {
        "plan_id": ("silver", "gold"),
        "quantity": (None, 5),
        "status": ("PendingFulfillmentStart", "Subscribed"),
        "activated_at": (None, "2024-06-01T10:00:00.500000+00:00"),
        "allowed_customer_operations": ([], ["Read", "Update"]),
        "purchaser": (
            {"email": "", "object_id": "", "tenant_id": "", "puid": ""},
            {"email": "a@b.c", "object_id": "", "tenant_id": "t", "puid": ""},
        ),
    }
    assert (listed.action, listed.source, listed.operation_id, listed.correlation_id) == (
        AuditAction.CHANGE_PLAN,
        AuditSource.AZURE,
        "op-1",
        "corr-1",
    )
    assert listed.at == AT
    assert listed.entry_id


def test_actions_and_sources_are_read_back_as_enums(trail: AuditTrail) -> None:
    trail.append(entry("sub-1", A.CHANGE_QUANTITY_DECISION, S.PUBLISHER_POLICY))

    [listed] = trail.list("sub-1")

    assert listed.action is AuditAction.CHANGE_QUANTITY_DECISION
    assert listed.source is AuditSource.PUBLISHER_POLICY


def test_rows_written_as_free_strings_still_read(
    trail: AuditTrail, azurite_connection_string: str, table_prefix: str
) -> None:
    # Rows from before the enums: known strings in any spelling, and strings no member names.
    table = TableClient.from_connection_string(azurite_connection_string, f"{table_prefix}s")
    for suffix, action, source in [
        ("1", "changeQuantity", "publisher-policy"),
        ("2", "SomethingNew", "webhook"),
        ("3", "Confirm", ""),
    ]:
        table.create_entity(
            {
                "PartitionKey": "sub-1",
                "RowKey": f"audit-20240601T100000.00000{suffix}Z-x",
                "at": AT,
                "action": action,
                "source": source,
                "changes": '{"quantity": [1, 2]}',
            }
        )

    listed = trail.list("sub-1")

    assert [(e.action, e.source) for e in listed] == [
        (A.CHANGE_QUANTITY, S.PUBLISHER_POLICY),
        (A.UNKNOWN, S.UNKNOWN),
        (A.CONFIRM, S.UNKNOWN),
    ]
    assert listed[0].changes == {"quantity": (1, 2)}


def test_entries_come_back_oldest_first_whatever_the_append_order(trail: AuditTrail) -> None:
    trail.append(entry("sub-1", A.RENEW, S.RECONCILIATION, at=AT + timedelta(hours=1)))
    trail.append(entry("sub-1", A.SUSPEND, S.RECONCILIATION, at=AT - timedelta(hours=2)))
    # 10:00 UTC written as 02:00 at UTC-8: sorting by its local digits would put it before 'first' (08:00).
    trail.append(
        entry("sub-1", A.REINSTATE, S.RECONCILIATION, at=AT.astimezone(timezone(timedelta(hours=-8))))
    )
    trail.append(entry("sub-2", A.UNSUBSCRIBE, S.RECONCILIATION, at=AT))

    assert [e.action for e in trail.list("sub-1")] == [A.SUSPEND, A.REINSTATE, A.RENEW]
    assert [e.action for e in trail.list("sub-2")] == [A.UNSUBSCRIBE]


def test_entries_at_the_same_instant_never_overwrite_each_other(trail: AuditTrail) -> None:
    first = trail.append(entry("sub-1", A.SUSPEND, S.AZURE, changes={"quantity": (1, 2)}, at=AT))
    second = trail.append(entry("sub-1", A.SUSPEND, S.AZURE, changes={"quantity": (2, 3)}, at=AT))

    listed = trail.list("sub-1")

    assert first.entry_id != second.entry_id
    assert len(listed) == 2
    assert sorted(e.changes["quantity"] for e in listed) == [(1, 2), (2, 3)]


def test_entry_without_changes_stores_an_empty_object(trail: AuditTrail) -> None:
    trail.append(entry("sub-1", A.RENEW, S.RECONCILIATION, at=AT))

    [listed] = trail.list("sub-1")

    assert listed.changes == {}
    assert listed.operation_id == ""


def test_naive_time_is_refused(trail: AuditTrail) -> None:
    with pytest.raises(InvalidEntityError, match="naive"):
        trail.append(entry("sub-1", A.RENEW, S.RECONCILIATION, at=datetime(2024, 1, 1)))

    assert trail.list("sub-1") == []


def test_oversized_changes_are_refused(trail: AuditTrail) -> None:
    with pytest.raises(InvalidEntityError, match="changes"):
        trail.append(entry("sub-1", A.RENEW, S.RECONCILIATION, changes={"name": ("", "x" * 40_000)}, at=AT))

    assert trail.list("sub-1") == []


def test_a_colliding_row_key_is_refused_not_overwritten(
    trail: AuditTrail, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Force the one-in-2^122 case: the same instant and the same random suffix.
    fixed = uuid.UUID("00000000-0000-4000-8000-000000000001")
    monkeypatch.setattr(uuid, "uuid4", lambda: fixed)
    trail.append(entry("sub-1", A.SUSPEND, S.AZURE, changes={"status": ("a", "b")}, at=AT))

    with pytest.raises(AlreadyExistsError):
        trail.append(entry("sub-1", A.UNSUBSCRIBE, S.AZURE, changes={"status": ("b", "c")}, at=AT))

    [kept] = trail.list("sub-1")
    assert kept.action is AuditAction.SUSPEND
    assert kept.changes == {"status": ("a", "b")}


def test_since_reads_every_subscriptions_recent_entries_and_no_subscription_row(trail: AuditTrail) -> None:
    trail.append(
        entry("sub-a", AuditAction.ACTIVATE, AuditSource.LANDING, at=AT, changes={"status": ("a", "b")})
    )
    trail.append(entry("sub-b", AuditAction.CHANGE_PLAN, AuditSource.AZURE, at=AT + timedelta(days=1)))
    trail.append(entry("sub-a", AuditAction.RENEW, AuditSource.AZURE, at=AT - timedelta(days=20)))
    trail._table.upsert_entity({"PartitionKey": "sub-a", "RowKey": "subscription", "status": "Subscribed"})
    recent = sorted(trail.since(AT - timedelta(days=1)), key=lambda e: e.at)
    assert [(e.subscription_id, e.action) for e in recent] == [
        ("sub-a", AuditAction.ACTIVATE),
        ("sub-b", AuditAction.CHANGE_PLAN),
    ]
    assert recent[0].changes == {"status": ("a", "b")}
