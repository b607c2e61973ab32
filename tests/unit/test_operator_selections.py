"""What an operator's filters select: dead letters by key, id, reason and source; subscriptions by query."""

from __future__ import annotations

import pytest

from shared.domain.dead_letters import (
    DeadLetterEntry,
    DeadLetterSelection,
    DeadLetterSource,
    replay_message_id,
    replay_properties,
)
from shared.domain.status import SubscriptionStatus
from shared.domain.subscription import Party, Subscription
from shared.domain.subscription_query import SubscriptionQuery


def entry(
    number: int,
    *,
    reason: str = "UnknownOperation",
    source: DeadLetterSource = DeadLetterSource.PARKING,
    message_id: str = "",
    **properties: str,
) -> DeadLetterEntry:
    return DeadLetterEntry(
        source=source,
        sequence_number=number,
        message_id=message_id or f"m-{number}",
        session_id="",
        reason=reason,
        description="",
        body={"kind": "webhook", "payload": {"id": f"op-{number}", "subscriptionId": "SUB-1"}},
        application_properties=properties,
    )


def test_an_empty_selection_selects_nothing_rather_than_everything() -> None:
    assert DeadLetterSelection().pick([entry(1), entry(2)]) == []


@pytest.mark.parametrize("name", ["parking:1", "m-1", "original-1"])
def test_an_entry_answers_to_its_key_its_message_id_and_its_original_id(name: str) -> None:
    replayed = entry(1, originalMessageId="original-1")
    assert DeadLetterSelection(ids=frozenset({name})).pick([replayed, entry(2)]) == [replayed]


def test_filters_combine_and_reason_and_subscription_ignore_case() -> None:
    parked = entry(1)
    exhausted = entry(2, reason="MaxDeliveryCountExceeded", source=DeadLetterSource.DEAD_LETTER)
    entries = [parked, exhausted]

    assert DeadLetterSelection(reason="maxdeliverycountexceeded").pick(entries) == [exhausted]
    assert DeadLetterSelection(everything=True, source=DeadLetterSource.PARKING).pick(entries) == [parked]
    assert DeadLetterSelection(subscription_id="sub-1").pick(entries) == entries
    assert DeadLetterSelection(ids=frozenset({"m-1"}), reason="MaxDeliveryCountExceeded").pick(entries) == []


def test_the_subscription_and_operation_come_from_the_body_when_the_session_is_empty() -> None:
    assert (entry(1).subscription_id, entry(1).operation_id, entry(1).kind) == ("SUB-1", "op-1", "webhook")


def test_a_replay_keeps_the_original_id_counts_replays_and_drops_what_parking_added() -> None:
    parked = entry(
        3,
        deadLetterReason="UnknownOperation",
        deliveryCount="2",
        traceparent="00-abc",
        firstEnqueuedTimeUtc="2026-12-01T00:00:00+00:00",
    )
    first = replay_properties(parked, "alice")
    again = replay_properties(entry(4, message_id="replay-x", **first), "bob")

    assert first == {
        "traceparent": "00-abc",
        "originalMessageId": "m-3",
        "replayedBy": "alice",
        "replayCount": "1",
    }
    assert (again["originalMessageId"], again["replayedBy"], again["replayCount"]) == ("m-3", "bob", "2")


def subscription(**fields: object) -> Subscription:
    defaults: dict[str, object] = {
        "id": "0d3c-1",
        "name": "Contoso Analytics",
        "offer_id": "analytics",
        "plan_id": "pro",
        "status": SubscriptionStatus.SUBSCRIBED,
        "purchaser": Party(email="buyer@contoso.example", tenant_id="t-buyer"),
        "beneficiary": Party(email="user@fabrikam.example", tenant_id="t-user"),
    }
    return Subscription(**{**defaults, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "matches"),
    [
        (SubscriptionQuery(), True),
        (SubscriptionQuery(status="subscribed", plan="PRO", offer="analytics"), True),
        (SubscriptionQuery(status="Suspended"), False),
        (SubscriptionQuery(tenant="T-USER"), True),
        (SubscriptionQuery(tenant="t-other"), False),
        (SubscriptionQuery(search="fabrikam"), True),
        (SubscriptionQuery(search="0D3C"), True),
        (SubscriptionQuery(search="nowhere"), False),
    ],
)
def test_subscription_query(query: SubscriptionQuery, matches: bool) -> None:
    assert query.matches(subscription()) is matches


def test_a_status_microsoft_never_sends_is_caught_before_it_quietly_matches_nothing() -> None:
    assert SubscriptionQuery(status="suspended").status_is_known()
    assert not SubscriptionQuery(status="Subscribd").status_is_known()


def test_a_replay_id_names_the_original_and_stays_within_service_bus_limit() -> None:
    replayed_once = entry(9, source=DeadLetterSource.DEAD_LETTER, originalMessageId="op-1")
    assert replay_message_id(replayed_once) == "replay-op-1-deadletter-9"
    assert replay_message_id(replayed_once) == replay_message_id(replayed_once)

    long_one = entry(2**62, message_id="x" * 200)
    long_other = entry(2**62, message_id="x" * 199 + "y")
    assert len(replay_message_id(long_one)) <= 128
    assert replay_message_id(long_one) != replay_message_id(long_other)
