"""OperationInbox against Azurite: first sight wins, saves are ETag-guarded, listing is oldest first."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableClient

from shared.config import Settings
from shared.domain.inbox import IN_PROGRESS, InboxRecord, InboxState
from shared.storage.errors import ConcurrencyError, InvalidEntityError
from shared.storage.inbox import OperationInbox
from shared.storage.tables import TableSet

AT = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def inbox(azurite_connection_string: str, table_prefix: str) -> OperationInbox:
    settings = Settings(
        storage_connection_string=azurite_connection_string, table_operations=f"{table_prefix}o"
    )
    return TableSet.from_settings(settings).operations


def received(operation_id: str = "op-1", **overrides: object) -> InboxRecord:
    fields: dict[str, object] = {
        "subscription_id": "sub-1",
        "operation_id": operation_id,
        "action": "ChangePlan",
        "state": InboxState.RECEIVED,
        "created_at": AT,
        "updated_at": AT,
    }
    return InboxRecord(**{**fields, **overrides})  # type: ignore[arg-type]


def test_full_record_round_trips(inbox: OperationInbox) -> None:
    record = received(
        source="webhook",
        decision="refuse",
        reason="downgrade blocked",
        plan_id="silver",
        quantity=7,
        initiated_by_publisher=True,
        correlation_id="corr-1",
        received_at=AT - timedelta(seconds=2),
        answered_at=AT + timedelta(seconds=1),
    )

    written = inbox.put_new(record)
    stored = inbox.get("sub-1", "op-1")

    assert stored is not None
    assert stored.etag
    assert stored == replace(record, etag=stored.etag)
    # What put_new hands back is what a read would: the ETag included, so nobody needs to read it back.
    assert written == stored


def test_the_record_put_new_returns_can_be_saved_without_a_read(inbox: OperationInbox) -> None:
    written = inbox.put_new(received())
    assert written is not None

    saved = inbox.save(replace(written, state=InboxState.ACKNOWLEDGED))

    assert inbox.get("sub-1", "op-1") == saved


def test_put_new_is_idempotent_and_never_overwrites(inbox: OperationInbox) -> None:
    assert inbox.put_new(received(plan_id="gold")) is not None
    assert inbox.put_new(received(plan_id="silver", state=InboxState.DONE)) is None

    stored = inbox.get("sub-1", "op-1")
    assert stored is not None
    assert stored.plan_id == "gold"
    assert stored.state == InboxState.RECEIVED


def test_put_new_stamps_missing_times(inbox: OperationInbox) -> None:
    before = datetime.now(UTC)

    inbox.put_new(received(created_at=None, updated_at=None))

    stored = inbox.get("sub-1", "op-1")
    assert stored is not None
    assert stored.quantity is None
    assert stored.created_at is not None
    assert stored.created_at >= before - timedelta(seconds=1)
    assert stored.updated_at == stored.created_at


def test_save_moves_the_record_on_and_returns_the_new_etag(inbox: OperationInbox) -> None:
    inbox.put_new(received())
    current = inbox.get("sub-1", "op-1")
    assert current is not None

    saved = inbox.save(replace(current, state=InboxState.TRACKING, updated_at=AT + timedelta(seconds=3)))

    assert saved.etag != current.etag
    assert inbox.get("sub-1", "op-1") == saved


def test_save_with_stale_etag_raises_concurrency_error(inbox: OperationInbox) -> None:
    inbox.put_new(received())
    first_reader = inbox.get("sub-1", "op-1")
    second_reader = inbox.get("sub-1", "op-1")
    assert first_reader is not None
    assert second_reader is not None
    inbox.save(replace(first_reader, state=InboxState.ACKNOWLEDGED))

    with pytest.raises(ConcurrencyError):
        inbox.save(replace(second_reader, state=InboxState.REFUSED))

    stored = inbox.get("sub-1", "op-1")
    assert stored is not None
    assert stored.state == InboxState.ACKNOWLEDGED


def test_save_without_etag_is_refused(inbox: OperationInbox) -> None:
    inbox.put_new(received())

    with pytest.raises(InvalidEntityError):
        inbox.save(received(state=InboxState.DONE))


def test_unknown_state_is_refused(inbox: OperationInbox) -> None:
    with pytest.raises(InvalidEntityError, match="state"):
        inbox.put_new(received(state="finished"))
    assert inbox.get("sub-1", "op-1") is None


def test_get_unknown_operation_returns_none(inbox: OperationInbox) -> None:
    assert inbox.get("sub-1", "missing") is None


def test_list_for_subscription_is_oldest_first_and_scoped(inbox: OperationInbox) -> None:
    # Operation ids sort the other way round, so only created_at can give this order.
    inbox.put_new(received("c-op", created_at=AT))
    inbox.put_new(received("b-op", created_at=AT + timedelta(minutes=1)))
    inbox.put_new(received("a-op", created_at=AT + timedelta(minutes=2)))
    inbox.put_new(received("other-op", subscription_id="sub-2"))

    listed = inbox.list_for_subscription("sub-1")

    assert [r.operation_id for r in listed] == ["c-op", "b-op", "a-op"]
    assert all(r.etag for r in listed)
    assert inbox.list_for_subscription("sub-3") == []


def test_states_are_the_ones_the_worker_and_portal_write() -> None:
    assert {state.value for state in InboxState} == {
        "received",
        "acknowledged",
        "refused",
        "tracking",
        "done",
    }
    assert {InboxState.RECEIVED, InboxState.TRACKING} == IN_PROGRESS


def test_a_stored_state_this_version_does_not_know_reads_as_received(
    inbox: OperationInbox, azurite_connection_string: str, table_prefix: str
) -> None:
    # Older versions declared "applied" and "failed"; a row holding one must still read, and be handled again.
    table = TableClient.from_connection_string(azurite_connection_string, f"{table_prefix}o")
    table.create_entity(
        {"PartitionKey": "sub-1", "RowKey": "op-1", "action": "ChangePlan", "state": "applied"}
    )

    stored = inbox.get("sub-1", "op-1")

    assert stored is not None
    assert stored.state is InboxState.RECEIVED


def test_answer_times_and_the_pending_count_read_across_subscriptions(inbox: OperationInbox) -> None:
    answered = received(
        "op-a", state=InboxState.ACKNOWLEDGED, received_at=AT, answered_at=AT + timedelta(seconds=3)
    )
    inbox.put_new(answered)
    inbox.put_new(
        received("op-old", state=InboxState.REFUSED, received_at=AT - timedelta(days=30), answered_at=AT)
    )
    inbox.put_new(received("op-open", subscription_id="sub-2", received_at=AT))  # taken in, not answered yet
    inbox.put_new(received("op-tracked", subscription_id="sub-3", state=InboxState.TRACKING))
    inbox.put_new(received("op-done", state=InboxState.DONE))
    assert list(inbox.answered_since(AT - timedelta(days=1))) == [(AT, AT + timedelta(seconds=3))]
    assert inbox.count_in_progress() == 2
