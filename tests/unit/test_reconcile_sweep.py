"""The sweep streams Microsoft's list a batch at a time, queues the subscriptions that are unknown here,
drifted or waiting for their activation, and counts what it saw."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from shared.domain.status import SubscriptionStatus
from shared.domain.subscription import (
    MicrosoftSubscription,
    Party,
    Subscription,
    Term,
    UnreadableSubscription,
)
from shared.queueing.messages import MalformedMessageError, decode_body, listed_snapshot, reconcile_message
from shared.workflows.reconcile import sweep

SUBSCRIBED = SubscriptionStatus.SUBSCRIBED
UNSUBSCRIBED = SubscriptionStatus.UNSUBSCRIBED
SUSPENDED = SubscriptionStatus.SUSPENDED
PENDING = SubscriptionStatus.PENDING_FULFILLMENT_START


class Listing:
    """Microsoft's list as a generator that remembers how far it has been read."""

    def __init__(self, statuses: list[SubscriptionStatus]) -> None:
        self.statuses = statuses
        self.pulled = 0

    def list_subscriptions(self, *, correlation_id: str | None = None) -> Iterator[MicrosoftSubscription]:
        for number, status in enumerate(self.statuses):
            self.pulled += 1
            yield MicrosoftSubscription(id=f"sub-{number}", status=status)


class Rows:
    def __init__(self, rows: dict[str, Subscription]) -> None:
        self.rows = rows

    def get(self, subscription_id: str) -> Subscription | None:
        return self.rows.get(subscription_id)


class Sent:
    def __init__(self, listing: Listing) -> None:
        self.listing = listing
        self.messages: list[Any] = []
        self.pulled_when_sent: list[int] = []

    def send(self, message: Any) -> None:
        self.messages.append(message)
        self.pulled_when_sent.append(self.listing.pulled)

    def send_many(self, messages: list[Any]) -> None:
        for message in messages:
            self.send(message)


def test_only_unknown_drifted_or_unactivated_subscriptions_are_queued() -> None:
    statuses = [SUBSCRIBED] * 250 + [UNSUBSCRIBED] * 2 + [PENDING] * 2
    listing = Listing(statuses)
    rows = Rows(
        {
            **{f"sub-{n}": Subscription(id=f"sub-{n}", status=SUBSCRIBED) for n in range(0, 190)},  # in step
            **{f"sub-{n}": Subscription(id=f"sub-{n}", status=SUSPENDED) for n in range(190, 200)},  # drifted
            "sub-250": Subscription(id="sub-250", status=UNSUBSCRIBED),  # finished on both sides
            "sub-252": Subscription(id="sub-252", status=PENDING),  # confirmed here, never activated
        }
    )
    sent = Sent(listing)
    report = sweep("c", marketplace=listing, subscriptions=rows, events=sent, batch=100)  # type: ignore[arg-type]
    assert report.listed == 254
    assert report.unknown_locally == 52  # sub-200..249, sub-251 (Unsubscribed, never seen), sub-253
    assert report.in_step == 191  # sub-0..189 and sub-250
    assert report.queued == 63
    expected = {f"sub-{n}" for n in range(190, 250)} | {"sub-251", "sub-252", "sub-253"}
    assert {m.session_id for m in sent.messages} == expected
    assert all(m.body["kind"] == "reconcile" for m in sent.messages)


def test_a_plan_quantity_or_term_that_differs_is_drift() -> None:
    from datetime import UTC, datetime

    from shared.domain.subscription import Term, needs_reconcile

    listed = MicrosoftSubscription(id="s", status=SUBSCRIBED, plan_id="pro", quantity=5)
    stored = Subscription(id="s", status=SUBSCRIBED, plan_id="pro", quantity=5)
    assert not needs_reconcile(stored, listed)
    assert needs_reconcile(Subscription(id="s", status=SUBSCRIBED, plan_id="basic", quantity=5), listed)
    assert needs_reconcile(Subscription(id="s", status=SUBSCRIBED, plan_id="pro", quantity=4), listed)
    renewed = Term(unit="P1M", start=datetime(2026, 12, 1, tzinfo=UTC))
    assert needs_reconcile(
        stored, MicrosoftSubscription(id="s", status=SUBSCRIBED, plan_id="pro", quantity=5, term=renewed)
    )
    assert needs_reconcile(None, listed)


def test_the_sweep_holds_one_batch_at_a_time() -> None:
    listing = Listing([SUBSCRIBED] * 1000)
    sent = Sent(listing)
    sweep("c", marketplace=listing, subscriptions=Rows({}), events=sent, batch=100)  # type: ignore[arg-type]
    # The first message goes out once the first batch is read, not after the whole list.
    assert sent.pulled_when_sent[0] == 100
    assert all(pulled <= (index // 100 + 1) * 100 for index, pulled in enumerate(sent.pulled_when_sent))


class ListingWithUnreadable(Listing):
    """Microsoft's list with unreadable items in its first batch: one with an id, one without."""

    def list_subscriptions(
        self, *, correlation_id: str | None = None
    ) -> Iterator[MicrosoftSubscription | UnreadableSubscription]:
        for number, item in enumerate(super().list_subscriptions(correlation_id=correlation_id)):
            if number == 3:
                yield UnreadableSubscription(
                    id="sub-odd", error="subscription sub-odd: unknown status 'Frozen'"
                )
            if number == 4:
                yield UnreadableSubscription(id="", error="subscription has no 'id'")
            yield item


def test_an_unreadable_item_is_counted_and_the_sweep_goes_on(caplog: Any) -> None:
    listing = ListingWithUnreadable([SUBSCRIBED] * 150)
    rows = Rows({f"sub-{n}": Subscription(id=f"sub-{n}", status=SUBSCRIBED) for n in range(150)})
    sent = Sent(listing)

    with caplog.at_level("INFO"):
        report = sweep("c", marketplace=listing, subscriptions=rows, events=sent, batch=100)  # type: ignore[arg-type]

    assert listing.pulled == 150  # the pages after the bad items were read too
    assert (report.listed, report.malformed, report.in_step) == (152, 2, 150)
    # The one with an id is still reconciled: GetSubscription fails on it and parks it for an operator.
    assert [m.session_id for m in sent.messages] == ["sub-odd"]
    assert report.queued == 1
    [summary] = [r for r in caplog.records if r.getMessage() == "reconciliation sweep queued"]
    assert summary.malformed == 2
    assert sum(r.getMessage() == "unreadable subscription in Microsoft's list" for r in caplog.records) == 2


def test_only_a_subscription_unknown_here_travels_with_its_listed_record() -> None:
    # A known one may have been mirrored from a newer GetSubscription than the list: its worker asks again.
    listing = Listing([SUBSCRIBED, SUSPENDED])
    rows = Rows({"sub-0": Subscription(id="sub-0", status=SUSPENDED)})
    sent = Sent(listing)
    sweep("c", marketplace=listing, subscriptions=rows, events=sent)  # type: ignore[arg-type]
    assert [m.session_id for m in sent.messages] == ["sub-0", "sub-1"]
    assert listed_snapshot(sent.messages[0].body) is None  # drifted: known here
    assert listed_snapshot(sent.messages[1].body) == MicrosoftSubscription(id="sub-1", status=SUSPENDED)


def test_a_listed_record_reads_back_unchanged_from_a_message_body() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    snapshot = MicrosoftSubscription(
        id="sub-9",
        name="Contoso's seats",
        offer_id="offer",
        plan_id="pro",
        quantity=12,
        status=SUSPENDED,
        purchaser=Party(email="a@contoso.com", object_id="o1", tenant_id="t1", puid="p1"),
        beneficiary=Party(email="b@fabrikam.com", object_id="o2", tenant_id="t2", puid="p2"),
        term=Term(
            unit="P1Y",
            start=datetime(2026, 1, 1, tzinfo=UTC),
            end=datetime(2026, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=1))),
            charge_duration="P1M",
        ),
        auto_renew=False,
        is_test=True,
        is_free_trial=True,
        allowed_customer_operations=frozenset({"Read", "Update"}),
        sandbox_type="Csp",
        session_mode="DryRun",
        publisher_id="contoso",
        created=datetime(2025, 12, 1, 8, 0, tzinfo=UTC),
        last_modified=None,
    )
    message = reconcile_message("sub-9", "sweep", "c", listed=snapshot)
    # Through the queue as bytes, as the worker receives it.
    assert listed_snapshot(decode_body(message.encode())) == snapshot
    assert listed_snapshot(reconcile_message("sub-9", "operator", "c").body) is None


def test_a_listed_record_that_does_not_read_back_is_a_malformed_message() -> None:
    body = reconcile_message("sub-9", "sweep", "c", listed=MicrosoftSubscription(id="sub-9")).body
    body["listed"]["status"] = "Paused"
    with pytest.raises(MalformedMessageError):
        listed_snapshot(body)
    del body["listed"]["term"]
    with pytest.raises(MalformedMessageError):
        listed_snapshot(body)
