"""Seeding many subscriptions through the control API: regular records, listed page by page, persisted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.server import RunningSandbox
from tests.support.sandbox import ApiCaller, ControlClient, ControlError, running_sandbox


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    state = tmp_path_factory.mktemp("seeded")
    with running_sandbox(webhook_url="http://127.0.0.1:9/never", state_dir=state) as sb:
        yield sb


def test_seeded_subscriptions_are_active_and_listed_page_by_page(
    control: ControlClient, api: ApiCaller
) -> None:
    control.settings(pageSize=7)
    seeded = control.request(
        "POST", "/subscriptions/seed", {"planId": "team-seats", "count": 20, "quantity": 3}
    )
    assert seeded["seeded"] == 20
    one = control.subscription(seeded["first"])["subscription"]
    assert one["saasSubscriptionStatus"] == "Subscribed"
    assert one["quantity"] == 3
    assert one["term"]["startDate"]
    ids: list[str] = []
    response = api.call("GET", "/subscriptions/")
    pages = 0
    while True:
        pages += 1
        body = response.json()
        ids += [subscription["id"] for subscription in body["subscriptions"]]
        if not body.get("@nextLink"):
            break
        response = api.call("GET", "", url=body["@nextLink"])
    assert pages == 3
    assert len(ids) == 20
    assert seeded["last"] in ids


def test_pending_seeds_and_bad_requests(control: ControlClient) -> None:
    pending = control.request(
        "POST", "/subscriptions/seed", {"planId": "basic", "count": 2, "status": "PendingFulfillmentStart"}
    )
    assert control.subscription(pending["first"])["subscription"]["saasSubscriptionStatus"] == (
        "PendingFulfillmentStart"
    )
    for bad in ({"planId": "basic", "count": 0}, {"planId": "basic", "count": 1, "status": "Suspended"}):
        with pytest.raises(ControlError) as refused:
            control.request("POST", "/subscriptions/seed", bad)
        assert refused.value.status == 400


def test_seeds_survive_a_restart(tmp_path: Path) -> None:
    with running_sandbox(webhook_url="http://127.0.0.1:9/never", state_dir=tmp_path) as first:
        seeded = ControlClient(first.http_url).request(
            "POST", "/subscriptions/seed", {"planId": "basic", "count": 5}
        )
    with running_sandbox(webhook_url="http://127.0.0.1:9/never", state_dir=tmp_path) as second:
        assert len(ControlClient(second.http_url).request("GET", "/subscriptions")["subscriptions"]) == 5
        assert ControlClient(second.http_url).subscription(seeded["last"])
