"""The console's overview figures and its subscription list: search, filters, paging, CSV, hostile input."""

from __future__ import annotations

import csv
import io
import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.app_context import services
from shared.domain.audit import AuditAction, AuditEntry, AuditSource
from shared.domain.identity import MSA_TENANT_ID
from shared.domain.inbox import InboxRecord, InboxState
from shared.domain.status import SubscriptionStatus
from shared.domain.subscription import Party, Subscription
from shared.workflows.subscription_views import SummaryIndex
from tests.console import BUYER, CONSOLE, OLIVIA, RAVI
from tests.portal import Portal
from tests.support.sandbox import wait_until

LIST = f"{CONSOLE}/subscriptions"
MARK = "zq" + uuid.uuid4().hex[:6]  # in every name seeded here, so the searches ignore other rows
XSS = '<img src=x onerror=alert(1)><script>alert("owned")</script>'


def _subscription(n: int, **fields: object) -> Subscription:
    created = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=n)
    values: dict[str, object] = {
        "id": str(uuid.UUID(int=0xC0501E << 96 | n)),
        "name": f"{MARK} Subscription {n:03}",
        "offer_id": "analytics" if n % 2 else "backup",
        "plan_id": "pro" if n % 3 else "basic",
        "quantity": n,
        "status": SubscriptionStatus.SUBSCRIBED if n % 5 else SubscriptionStatus.SUSPENDED,
        "purchaser": Party(email=f"buyer{n}@{MARK}.example", tenant_id=f"tenant-{n % 4}"),
        "beneficiary": Party(email=f"user{n}@{MARK}.example", tenant_id=f"tenant-{n % 4}"),
        "created_at": created,
        "updated_at": created,
    }
    values.update(fields)
    return Subscription(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def seeded(portal: Portal) -> list[Subscription]:
    app = services()
    subs = [_subscription(n) for n in range(1, 121)]
    subs.append(_subscription(200, name=f"{MARK} {XSS}"))
    subs.append(_subscription(201, name=f'=HYPERLINK("http://evil.example","{MARK}")'))
    personal = Party(email=f"pat@{MARK}.example", object_id="pat-oid", tenant_id=MSA_TENANT_ID)
    subs.append(_subscription(202, name=f"{MARK} personal", purchaser=personal, beneficiary=personal))
    for sub in subs:
        app.subscriptions.insert(sub)
    now = datetime.now(UTC)
    first = subs[0]
    app.audit.append(
        AuditEntry(
            first.id,
            now,
            AuditAction.ACTIVATE,
            AuditSource.LANDING,
            changes={"status": ("PendingFulfillmentStart", "Subscribed")},
        )
    )
    app.audit.append(
        AuditEntry(
            first.id, now, AuditAction.CHANGE_PLAN, AuditSource.AZURE, changes={"plan_id": ("basic", "pro")}
        )
    )
    for n, seconds in enumerate((1.0, 2.0, 4.0)):
        app.operations.put_new(
            InboxRecord(
                first.id,
                f"op-{MARK}-{n}",
                "ChangePlan",
                InboxState.ACKNOWLEDGED,
                received_at=now,
                answered_at=now + timedelta(seconds=seconds),
            )
        )
    app.operations.put_new(InboxRecord(first.id, f"op-{MARK}-pending", "Suspend", InboxState.RECEIVED))
    app.subscription_index.forget()
    app.subscription_index.snapshot()  # read now: a slow machine must not turn pages into "still reading"
    return subs


def _ids(html: str) -> list[str]:
    return re.findall(r'data-subscription="([^"]+)"', html)


def _total(html: str) -> int:
    match = re.search(r"data-total-matched>(\d+)<", html)
    assert match, html
    return int(match.group(1))


def test_a_buyer_is_refused_the_list_and_its_export(portal: Portal) -> None:
    browser = portal.browser(BUYER)
    for url in (LIST, f"{LIST}?format=csv"):
        answer = browser.get(f"{portal.url}{url}", allow_redirects=False)
        assert answer.status_code == 403
        assert MARK not in answer.text


@pytest.mark.parametrize("operator", [RAVI, OLIVIA])
def test_readers_and_admins_see_the_list(
    portal: Portal, seeded: list[Subscription], operator: object
) -> None:
    answer = portal.browser(operator).get(f"{portal.url}{LIST}?q={MARK}")  # type: ignore[arg-type]
    assert answer.status_code == 200, answer.text
    assert _total(answer.text) == len(seeded)
    assert len(_ids(answer.text)) == 50
    assert f'href="/api/console/subscriptions/{seeded[0].id}"' in answer.text or seeded[0].id not in _ids(
        answer.text
    )


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"id": "00c0501e-0000-0000-0000-000000000007"}, {7}),
        ({"name": f"{MARK} Subscription 011"}, {11}),
        ({"buyer": f"user42@{MARK}"}, {42}),
        ({"q": f"buyer13@{MARK}"}, {13}),
        (
            {"tenant": "tenant-3", "q": MARK, "status": "suspended"},
            {n for n in range(1, 121) if n % 4 == 3 and n % 5 == 0},
        ),
        (
            {"offer": "backup", "plan": "basic", "q": MARK},
            {n for n in range(1, 121) if n % 2 == 0 and n % 3 == 0},
        ),
    ],
)
def test_search_finds_by_each_field(
    portal: Portal, seeded: list[Subscription], params: dict[str, str], expected: set[int]
) -> None:
    answer = portal.browser(RAVI).get(f"{portal.url}{LIST}", params=params)
    assert answer.status_code == 200, answer.text
    wanted = {str(uuid.UUID(int=0xC0501E << 96 | n)) for n in expected}
    assert set(_ids(answer.text)) == wanted
    assert _total(answer.text) == len(wanted)


def test_paging_keeps_the_filters(portal: Portal, seeded: list[Subscription]) -> None:
    browser = portal.browser(RAVI)
    first = browser.get(f"{portal.url}{LIST}", params={"q": MARK, "status": "Subscribed"})
    total = _total(first.text)
    assert total == sum(1 for s in seeded if s.status is SubscriptionStatus.SUBSCRIBED)
    next_link = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert next_link
    assert 'rel="prev"' not in first.text
    url = next_link.group(1).replace("&amp;", "&")
    assert f"q={MARK}" in url
    assert "status=Subscribed" in url
    assert "page=2" in url
    second = browser.get(f"{portal.url}{url}")
    assert not set(_ids(first.text)) & set(_ids(second.text))
    assert 'rel="prev"' in second.text
    third = browser.get(f"{portal.url}{LIST}", params={"q": MARK, "status": "Subscribed", "page": "2"})
    seen = set(_ids(first.text)) | set(_ids(second.text)) | set(_ids(third.text))
    assert len(seen) == total


def test_the_csv_export_has_every_match_and_no_formula(portal: Portal, seeded: list[Subscription]) -> None:
    answer = portal.browser(RAVI).get(f"{portal.url}{LIST}", params={"q": MARK, "format": "csv"})
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/csv")
    assert re.fullmatch(
        r'attachment; filename="subscriptions-\d{8}-\d{6}\.csv"', answer.headers["Content-Disposition"]
    )
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == len(seeded)
    hostile = next(row for row in rows if "HYPERLINK" in row["name"])
    assert hostile["name"].startswith("'=HYPERLINK")
    assert all(not row["name"].startswith(("=", "+", "-", "@")) for row in rows)
    filtered = portal.browser(RAVI).get(
        f"{portal.url}{LIST}", params={"q": MARK, "plan": "basic", "format": "csv"}
    )
    assert {row["plan"] for row in csv.DictReader(io.StringIO(filtered.text))} == {"basic"}


def test_a_personal_account_is_listed_as_one_not_as_a_customer_tenant(
    portal: Portal, seeded: list[Subscription]
) -> None:
    answer = portal.browser(RAVI).get(f"{portal.url}{LIST}", params={"q": f"{MARK} personal"})

    assert answer.status_code == 200
    assert f'data-tenant="{MSA_TENANT_ID}">Personal Microsoft account</td>' in answer.text


def test_a_hostile_name_is_shown_as_text(portal: Portal, seeded: list[Subscription]) -> None:
    answer = portal.browser(RAVI).get(f"{portal.url}{LIST}", params={"name": "onerror"})
    assert answer.status_code == 200
    assert "<script>alert" not in answer.text
    assert "<img src=x" not in answer.text
    assert "&lt;script&gt;" in answer.text


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"page": "abc"}, "page number"),
        ({"page": "-3"}, "page number"),
        ({"page": "99999999999999999999999"}, "page number"),
        ({"status": "Subscribd"}, "no status"),
        ({"q": "x" * 10_240}, "10,240 characters"),
        ({"q": "<script>alert(1)</script>", "status": "<b>bold</b>"}, "no status"),
    ],
)
def test_hostile_queries_get_a_clear_answer(portal: Portal, params: dict[str, str], words: str) -> None:
    for extra in ({}, {"format": "csv"}):
        answer = portal.browser(RAVI).get(f"{portal.url}{LIST}", params={**params, **extra})
        assert answer.status_code == 400
        assert words in answer.text
        said = (
            " ".join(re.findall(r"data-problem>(.*?)</p>", answer.text, re.S)) if not extra else answer.text
        )
        assert "PendingFulfillmentStart" not in said, "statuses in words, as the list offers them"
        if extra:
            assert answer.headers["Content-Type"].startswith("text/plain")
            assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'")
        else:
            assert "<script>alert(1)" not in answer.text
            assert "<b>bold" not in answer.text
        assert len(answer.text) < 40_000


def test_a_page_past_the_end_says_so(portal: Portal, seeded: list[Subscription]) -> None:
    answer = portal.browser(RAVI).get(f"{portal.url}{LIST}", params={"q": MARK, "page": "500"})
    assert answer.status_code == 200
    assert "Page 500 is past the last page (3)" in answer.text
    assert _ids(answer.text) == []
    assert re.search(r'href="[^"]*page=3[^"]*" rel="prev"', answer.text), "back to the last page, not to 499"


def test_a_page_past_the_end_of_no_matches_says_so_too(portal: Portal, seeded: list[Subscription]) -> None:
    answer = portal.browser(RAVI).get(
        f"{portal.url}{LIST}", params={"q": "no such thing at all", "page": "3"}
    )
    assert answer.status_code == 200
    assert "Page 3 is past the last page (1)" in answer.text


def test_the_overview_counts_and_links(portal: Portal, seeded: list[Subscription]) -> None:
    answer = portal.browser(RAVI).get(f"{portal.url}{CONSOLE}")
    assert answer.status_code == 200, answer.text
    html = answer.text
    suspended = sum(1 for s in seeded if s.status is SubscriptionStatus.SUSPENDED)
    assert re.search(rf'data-status-count="Suspended">{suspended}<', html)
    assert 'href="/api/console/subscriptions?status=Suspended"' in html
    assert 'href="/api/console/subscriptions?offer=backup"' in html
    assert 'href="/api/console/subscriptions?plan=basic"' in html
    today = datetime.now(UTC).date().isoformat()
    row = re.search(rf'<tr data-day="{today}">(.*?)</tr>', html, re.S)
    assert row, html
    assert re.search(r'data-activity="activation">1<', row.group(1))
    assert re.search(r'data-activity="plan change">1<', row.group(1))
    assert "2.00 s" in row.group(1)
    assert "4.00 s" in row.group(1)
    assert re.search(r"data-pending-operations>1<", html)
    assert html.count('role="img"') >= 7
    svgs = re.findall(r"<svg.*?</svg>", html, re.S)
    assert svgs
    assert all("<script" not in svg and "style=" not in svg for svg in svgs)
    # People read statuses in words, pictures included.
    assert "PendingFulfillmentStart" not in "".join(svgs)
    assert "Waiting for activation" in svgs[0]


def test_while_an_instance_first_reads_the_list_the_page_says_so_and_reloads(
    portal: Portal, seeded: list[Subscription], monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    store = services().subscriptions

    class Slow:
        def list_summaries(self, *, unreadable: list[str] | None = None) -> list[object]:
            gate.wait(10)
            return list(store.list_summaries(unreadable=unreadable))

    monkeypatch.setitem(services().__dict__, "subscription_index", SummaryIndex(Slow()))  # type: ignore[arg-type]
    started = time.monotonic()
    answer = portal.browser(RAVI).get(f"{portal.url}{LIST}", params={"q": MARK})
    assert time.monotonic() - started < 3
    assert answer.status_code == 200
    assert "still being read" in answer.text
    assert '<meta http-equiv="refresh" content="2">' in answer.text
    gate.set()
    wait_until(
        lambda: (
            _total(portal.browser(RAVI).get(f"{portal.url}{LIST}", params={"q": MARK}).text) == len(seeded)
        ),
        10,
    )
