"""The sweep streams Microsoft's list a batch at a time, queues every subscription but the finished ones,
and counts what it saw."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shared.domain.status import SubscriptionStatus
from shared.domain.subscription import MicrosoftSubscription, Subscription
from shared.workflows.reconcile import sweep

SUBSCRIBED = SubscriptionStatus.SUBSCRIBED
UNSUBSCRIBED = SubscriptionStatus.UNSUBSCRIBED


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


def test_every_listed_subscription_is_queued_but_those_finished_on_both_sides() -> None:
    statuses = [SUBSCRIBED] * 250 + [UNSUBSCRIBED] * 2
    listing = Listing(statuses)
    rows = Rows(
        {
            **{f"sub-{n}": Subscription(id=f"sub-{n}", status=SUBSCRIBED) for n in range(0, 200)},
            "sub-250": Subscription(id="sub-250", status=UNSUBSCRIBED),  # finished on both sides
        }
    )
    sent = Sent(listing)
    report = sweep("c", marketplace=listing, subscriptions=rows, events=sent, batch=100)  # type: ignore[arg-type]
    assert report.listed == 252
    assert report.unknown_locally == 51  # sub-200..249 and sub-251 (Unsubscribed, never seen: mirrored once)
    assert report.finished == 1
    assert report.queued == 251
    assert {m.session_id for m in sent.messages} == {f"sub-{n}" for n in range(252)} - {"sub-250"}
    assert all(m.body["kind"] == "reconcile" for m in sent.messages)


def test_the_sweep_holds_one_batch_at_a_time() -> None:
    listing = Listing([SUBSCRIBED] * 1000)
    sent = Sent(listing)
    sweep("c", marketplace=listing, subscriptions=Rows({}), events=sent, batch=100)  # type: ignore[arg-type]
    # The first message goes out once the first batch is read, not after the whole list.
    assert sent.pulled_when_sent[0] == 100
    assert all(pulled <= (index // 100 + 1) * 100 for index, pulled in enumerate(sent.pulled_when_sent))
