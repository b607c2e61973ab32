"""The console's list and overview when the stored subscriptions are partly or wholly unreadable, when the
list's copy cannot be read again, and with a long history of sweeps: each said in words, never a 500."""

from __future__ import annotations

import csv
import io
import logging
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableClient, TableServiceClient

from shared.app_context import services
from shared.domain.audit import AuditAction, AuditEntry, AuditSource
from shared.domain.status import SubscriptionStatus
from shared.domain.subscription import Party, Subscription
from shared.storage.subscriptions import SubscriptionStore
from shared.workflows.console_overview import OverviewPorts
from shared.workflows.reconcile import SWEEPS_PARTITION
from shared.workflows.subscription_views import SummaryIndex
from tests.console import CONSOLE, RAVI
from tests.portal import Portal
from tests.support.sandbox import wait_until

LIST = f"{CONSOLE}/subscriptions"
REFRESH = '<meta http-equiv="refresh"'
SECRET = "private-buyer@robust.example"


def _subscription(n: int) -> Subscription:
    created = datetime(2026, 2, 1, tzinfo=UTC) + timedelta(minutes=n)
    return Subscription(
        id=str(uuid.UUID(int=0xB0B << 96 | n)),
        name=f"Robust {n}",
        offer_id="analytics",
        plan_id="pro",
        quantity=n,
        status=SubscriptionStatus.SUBSCRIBED,
        purchaser=Party(email=f"buyer{n}@robust.example", tenant_id="tenant-r"),
        created_at=created,
        updated_at=created,
    )


@pytest.fixture
def service(azurite_connection_string: str) -> TableServiceClient:
    return TableServiceClient.from_connection_string(azurite_connection_string)


@pytest.fixture
def scratch_table(service: TableServiceClient) -> Iterator[TableClient]:
    """A table of its own, so a test may break it without touching the portal's."""
    name = "robust" + uuid.uuid4().hex[:10]
    client = service.create_table(name)
    yield client
    service.delete_table(name)


def _use_index(monkeypatch: pytest.MonkeyPatch, index: SummaryIndex) -> None:
    """The list and the overview both answer from `index` (each takes it from the app once)."""
    app = services()
    monkeypatch.setitem(app.__dict__, "subscription_index", index)
    ports = OverviewPorts(index, app.audit, app.operations, lambda: app.dead_letter_ports, app.audit)
    monkeypatch.setitem(app.__dict__, "overview_ports", ports)


def _settle(index: SummaryIndex) -> None:
    with index._lock:  # a background read holds it while it runs
        pass


def test_an_unreadable_row_is_left_out_counted_and_logged_by_its_id_only(
    portal: Portal, service: TableServiceClient, caplog: pytest.LogCaptureFixture
) -> None:
    app = services()
    for n in (1, 2, 3):
        app.subscriptions.insert(_subscription(n))
    bad_id = str(uuid.uuid4())
    table = service.get_table_client(app.settings.table_subscriptions)
    table.create_entity(
        {"PartitionKey": bad_id, "RowKey": "subscription", "status": "Bogus", "purchaser_email": SECRET}
    )
    app.subscription_index.forget()
    browser = portal.browser(RAVI)
    with caplog.at_level(logging.INFO):
        listed = browser.get(f"{portal.url}{LIST}", params={"q": "Robust"})
    assert listed.status_code == 200, listed.text
    assert len(re.findall(r'data-subscription="', listed.text)) == 3
    assert "1 stored subscription row could not be read" in listed.text
    logged = [r for r in caplog.records if getattr(r, "partition_key", None) == bad_id]
    assert logged, "the unreadable row is named in the log"
    assert SECRET not in caplog.text
    exported = browser.get(f"{portal.url}{LIST}", params={"q": "Robust", "format": "csv"})
    assert exported.status_code == 200
    assert len(list(csv.DictReader(io.StringIO(exported.text)))) == 3
    overview = browser.get(f"{portal.url}{CONSOLE}")
    assert overview.status_code == 200
    assert re.search(r"data-total>3<", overview.text)
    assert "1 stored subscription row could not be read" in overview.text
    assert REFRESH not in overview.text
    assert "still being counted" not in overview.text


def test_a_list_that_cannot_be_read_is_reported_on_every_load(
    portal: Portal, service: TableServiceClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not "still being read" and a reload every 2 s for ever, nor a 500 every other load.
    missing = service.get_table_client("nosuch" + uuid.uuid4().hex[:10])
    _use_index(monkeypatch, SummaryIndex(SubscriptionStore(missing)))
    browser = portal.browser(RAVI)
    for _ in range(3):
        listed = browser.get(f"{portal.url}{LIST}")
        assert listed.status_code == 503, listed.text
        assert "could not be read just now" in listed.text
        assert REFRESH not in listed.text
        exported = browser.get(f"{portal.url}{LIST}", params={"format": "csv"})
        assert exported.status_code == 503
        assert "could not be read just now" in exported.text
        overview = browser.get(f"{portal.url}{CONSOLE}")
        assert overview.status_code == 200
        assert "could not be read just now" in overview.text
        assert "still being counted" not in overview.text
        assert REFRESH not in overview.text


def test_a_copy_that_cannot_be_read_again_says_since_when(
    portal: Portal, service: TableServiceClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "gone" + uuid.uuid4().hex[:10]
    table = service.create_table(name)
    store = SubscriptionStore(table)
    store.insert(_subscription(7))
    index = SummaryIndex(store)
    taken_at = index.snapshot().taken_at
    _use_index(monkeypatch, index)
    service.delete_table(name)  # every read from now on fails
    index.expire()
    browser = portal.browser(RAVI)
    stamp = f"could not be refreshed since {taken_at:%Y-%m-%d %H:%M:%S} UTC"

    def said() -> bool:
        return stamp in browser.get(f"{portal.url}{LIST}").text

    wait_until(said, 10)
    listed = browser.get(f"{portal.url}{LIST}")
    assert listed.status_code == 200
    assert 'data-subscription="' in listed.text, "the old copy is still shown"
    assert stamp in browser.get(f"{portal.url}{CONSOLE}").text


def test_a_thread_that_cannot_start_does_not_stop_every_later_read(
    portal: Portal, scratch_table: TableClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SubscriptionStore(scratch_table)
    store.insert(_subscription(8))
    index = SummaryIndex(store)
    assert len(index.snapshot().rows) == 1
    index.expire()

    def no_thread(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    with monkeypatch.context() as patched:
        patched.setattr(threading.Thread, "start", no_thread)
        assert len(index.snapshot().rows) == 1, "the old copy still answers"
    assert index.failed_since is not None, "and a page can say it is not refreshed"
    store.insert(_subscription(9))
    index.snapshot()  # the copy is still past max_age: this starts a read, if the lock was released
    _settle(index)
    assert len(index.snapshot().rows) == 2
    assert index.failed_since is None


def test_the_overview_reads_only_recent_sweeps(portal: Portal, service: TableServiceClient) -> None:
    app = services()
    now = datetime.now(UTC)
    ages = [timedelta(minutes=m) for m in (1, 31, 61)] + [timedelta(days=d) for d in (2, 3, 4, 5)]
    for n, age in enumerate(ages):
        app.audit.append(
            AuditEntry(
                SWEEPS_PARTITION, now - age, AuditAction.SWEEP, AuditSource.RECONCILIATION, actor=f"op{n}"
            )
        )
    # Sixty days old and unreadable: reading it, as reading the whole partition would, fails the page.
    old = now - timedelta(days=60)
    table = service.get_table_client(app.settings.table_subscriptions)
    table.create_entity(
        {
            "PartitionKey": SWEEPS_PARTITION,
            "RowKey": f"audit-{old:%Y%m%dT%H%M%S.%fZ}-{uuid.uuid4().hex}",
            "at": old,
            "action": "Sweep",
            "changes": "{not json",
        }
    )
    answer = portal.browser(RAVI).get(f"{portal.url}{CONSOLE}")
    assert answer.status_code == 200, answer.text
    section = re.search(r'<table class="figures" id="recent-sweeps">(.*?)</table>', answer.text, re.S)
    assert section, answer.text
    shown = re.findall(r"op(\d)", section.group(1))
    assert shown == ["0", "1", "2", "3", "4"], "the newest five, newest first, from two windows"


def test_an_unreadable_recent_sweep_leaves_the_rest_of_the_overview_standing(
    portal: Portal, service: TableServiceClient
) -> None:
    app = services()
    now = datetime.now(UTC)
    table = service.get_table_client(app.settings.table_subscriptions)
    table.create_entity(
        {
            "PartitionKey": SWEEPS_PARTITION,
            "RowKey": f"audit-{now:%Y%m%dT%H%M%S.%fZ}-{uuid.uuid4().hex}",
            "at": now,
            "action": "Sweep",
            "changes": "{not json",
        }
    )
    answer = portal.browser(RAVI).get(f"{portal.url}{CONSOLE}")
    assert answer.status_code == 200, answer.text
    assert "The record of recent sweeps could not be read" in answer.text
    assert "Subscriptions by status" in answer.text
