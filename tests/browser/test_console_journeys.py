"""The console's journeys in headless Debian chromium, everyone signed in through the sandbox's Entra pages.

The whole local stack runs (sandbox, Azurite, dev host, the worker on the local queue). Microsoft's webhook
is lost on purpose (the sandbox posts it to a dead port, once), so the service never hears of a suspension
or a seat change: an administrator sees the drift on the one-subscription page and reconciles it, and
refuses a seat change while Microsoft's window is still open; a reader sees the same pages without a button
and every post he forges is refused and changes nothing; a buyer and a customer's admin who gave themselves
the publisher's role are refused the console. Screenshots land in test-artifacts/console-journeys/
(git-ignored).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from shared.app_context import services
from shared.domain.audit import AuditAction
from shared.domain.status import SubscriptionStatus
from shared.domain.subscription import Party, Subscription
from tests.browser.conftest import pick_account, signed_in
from tests.support.ports import free_port
from tests.support.sandbox import wait_until
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console-journeys"
OLIVIA = "olivia.ops@publisher.onmicrosoft.com"
RAVI = "ravi.reader@publisher.onmicrosoft.com"
ADELE = "adele.vance@contoso.onmicrosoft.com"
SELF_PROMOTED = "self.promoted@contoso.onmicrosoft.com"
CONSOLE = "/api/console"
READ_ONLY = "Your role can look, not act"
NOT_STAFF = "This area is for the publisher's staff"


@pytest.fixture
def stack(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, azurite_connection_string: str, table_prefix: str
) -> Iterator[Stack]:
    # Microsoft's window for a buyer's change stays open a minute: long enough to be seen and refused.
    with running_stack(
        monkeypatch,
        tmp_path,
        connection_string=azurite_connection_string,
        table_prefix=table_prefix,
        auto_accept_seconds=60.0,
    ) as running:
        yield running


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def page_of(subscription_id: str) -> str:
    return f"{CONSOLE}/subscriptions/{subscription_id}"


def webhook_lost(stack: Stack, change: str, subscription_id: str, *args: object) -> str:
    """Makes a change at Microsoft whose one webhook goes to a dead port; the URL is restored after."""
    settings = stack.control.settings()
    stack.control.settings(webhookUrl=f"http://127.0.0.1:{free_port()}/api/webhook", webhookMaxAttempts=1)
    try:
        operation_id = str(getattr(stack.control, change)(subscription_id, *args)["operationId"])
        wait_until(lambda: stack.control.deliveries(operation_id), 10)
    finally:
        stack.control.settings(
            webhookUrl=settings["webhookUrl"], webhookMaxAttempts=settings["webhookMaxAttempts"]
        )
    assert all(delivery["status"] is None for delivery in stack.control.deliveries(operation_id))
    return operation_id


def forge(page: Page, path: str, fields: dict[str, str]) -> int:
    """Posts a form from inside the page, as a person who edits the page would; returns the status."""
    with page.expect_navigation() as navigation:
        page.evaluate(
            """([action, fields]) => {
                const form = document.createElement("form");
                form.method = "post";
                form.action = action;
                for (const [name, value] of Object.entries(fields)) {
                    const input = document.createElement("input");
                    input.type = "hidden";
                    input.name = name;
                    input.value = value;
                    form.appendChild(input);
                }
                document.body.appendChild(form);
                form.submit();
            }""",
            [path, fields],
        )
    answer = navigation.value
    assert answer is not None
    return answer.status


def test_an_admin_sees_the_drift_a_lost_webhook_left_and_reconciles_it_a_reader_cannot(
    new_page: Callable[[], Page], stack: Stack
) -> None:
    subscription_id = stack.buy_and_activate("basic")
    webhook_lost(stack, "suspend", subscription_id)
    assert stack.stored(subscription_id).status.value == "Subscribed"
    url = page_of(subscription_id)

    reader = signed_in(new_page, stack, RAVI, url)
    expect(reader.locator("tr[data-differs]")).to_have_count(1)
    expect(reader.locator("form")).to_have_count(0)
    expect(reader.get_by_role("button")).to_have_count(0)
    shot(reader, "01-reader-sees-the-drift")

    admin = signed_in(new_page, stack, OLIVIA, url)
    token = admin.locator('#reconcile-form input[name="csrf_token"]').get_attribute("value") or ""
    for action, fields in {
        "reconcile": {"confirm": "yes"},
        "activation-retry": {"confirm": "yes"},
        "cancel": {"confirm_name": subscription_id},
    }.items():
        # A token lifted from an administrator's page, and none at all: the role is refused first.
        assert forge(reader, f"{url}/{action}", {**fields, "csrf_token": token}) == 403
        expect(reader.get_by_role("heading", name=READ_ONLY)).to_be_visible()
        assert forge(reader, f"{url}/{action}", fields) == 403
    expect(reader.get_by_role("link", name="Back to the operations console")).to_be_visible()
    expect(reader.get_by_role("link", name="Your subscriptions")).to_have_count(0)
    shot(reader, "02-reader-forged-a-post")
    assert stack.microsoft(subscription_id)["saasSubscriptionStatus"] == "Suspended"
    stack.settled()
    assert stack.stored(subscription_id).status.value == "Subscribed"
    assert not {AuditAction.RECONCILE_REQUESTED, AuditAction.CANCEL_REQUESTED} & set(
        stack.audit_actions(subscription_id)
    )

    status_row = admin.locator('tr[data-field="status"]')
    expect(status_row).to_have_attribute("data-differs", "")
    expect(status_row).to_contain_text("Active")
    expect(status_row).to_contain_text("Suspended")
    expect(admin.locator("#drift-summary")).to_contain_text("1 field differs")
    shot(admin, "03-admin-sees-the-drift")
    admin.click("#reconcile-form button")  # the confirmation box is required: the browser keeps the form
    expect(admin).to_have_url(f"{stack.app_url}{url}")
    admin.check('#reconcile-form input[name="confirm"]')
    admin.click("#reconcile-form button")
    expect(admin.locator("#notice")).to_contain_text("Reconcile queued")
    shot(admin, "04-reconcile-queued")

    wait_until(lambda: stack.stored(subscription_id).status.value == "Suspended", 20)
    admin.goto(f"{stack.app_url}{url}")
    expect(admin.locator("tr[data-differs]")).to_have_count(0)
    expect(admin.locator("#drift-summary")).to_have_text("The stored copy matches Microsoft's view.")
    requested = admin.locator(f'#audit tr[data-audit="{AuditAction.RECONCILE_REQUESTED.value}"]')
    expect(requested.locator("[data-actor]")).to_contain_text(OLIVIA)
    repaired = admin.locator(f'#audit tr[data-audit="{AuditAction.RECONCILE.value}"]')
    expect(repaired).to_contain_text("The service, comparing with Microsoft")
    expect(repaired).to_contain_text("Status: Active → Suspended (payment issue)")
    expect(admin.locator("#audit")).not_to_contain_text("PendingFulfillmentStart")
    expect(admin.locator("#audit")).not_to_contain_text("Other change")
    expect(admin.locator(f'#audit tr[data-audit="{AuditAction.RESOLVE.value}"]')).to_contain_text(
        "Purchase recorded"
    )
    shot(admin, "05-reconciled")


def test_an_admin_refuses_a_seat_change_inside_microsofts_window_a_reader_cannot(
    new_page: Callable[[], Page], stack: Stack
) -> None:
    subscription_id = stack.buy_and_activate("team-seats", quantity=5)
    operation_id = webhook_lost(stack, "change_quantity", subscription_id, 8)
    url = page_of(subscription_id)

    reader = signed_in(new_page, stack, RAVI, url)
    expect(reader.locator(f'#microsoft-operations tr[data-operation="{operation_id}"]')).to_be_visible()
    expect(reader.locator("form")).to_have_count(0)
    decision = {"operation_id": operation_id, "verdict": "accept", "confirm": "yes"}
    assert forge(reader, f"{url}/decide", decision) == 403
    expect(reader.get_by_role("heading", name=READ_ONLY)).to_be_visible()
    assert stack.control.operation(operation_id)["status"] == "InProgress"

    admin = signed_in(new_page, stack, OLIVIA, url)
    row = admin.locator(f'#microsoft-operations tr[data-operation="{operation_id}"]')
    expect(row).to_contain_text("In progress")
    expect(row).to_contain_text("8")
    form = admin.locator(f'form[data-decide="{operation_id}"]')
    expect(form.get_by_role("heading")).to_have_text("Answer the seat quantity change to 8 seats")
    expect(form.get_by_label("Accept the change")).to_be_visible()
    expect(form.get_by_label("Refuse the change")).to_be_visible()
    shot(admin, "06-admin-sees-the-pending-change")
    form.get_by_label("Refuse the change").check()
    form.get_by_label("Reason (kept in the audit trail)").fill("8 seats exceed the contract; call sales")
    form.get_by_label("I confirm this answer goes to Microsoft").check()
    form.get_by_role("button", name="Send the answer").click()
    expect(admin.locator("#notice")).to_contain_text("Change refused")

    assert stack.control.operation(operation_id)["status"] == "Failed"
    inbox = admin.locator(f'#inbox tr[data-operation="{operation_id}"]')
    expect(inbox).to_have_attribute("data-decision", "refuse")
    expect(inbox).to_contain_text("call sales")
    expect(inbox).to_contain_text(OLIVIA)
    expect(inbox).not_to_contain_text("Not known yet")
    expect(admin.locator(f'form[data-decide="{operation_id}"]')).to_have_count(0)
    shot(admin, "07-change-refused")
    assert stack.microsoft(subscription_id)["quantity"] == 5
    assert stack.stored(subscription_id).quantity == 5


@pytest.mark.parametrize("username", [ADELE, SELF_PROMOTED], ids=["buyer", "self-promoted-admin"])
def test_people_outside_the_publisher_are_refused_the_console(
    new_page: Callable[[], Page], stack: Stack, username: str
) -> None:
    page = new_page()
    page.goto(f"{stack.app_url}{CONSOLE}")
    pick_account(page, username)
    expect(page.get_by_role("heading", name=NOT_STAFF)).to_be_visible()
    answer = page.goto(f"{stack.app_url}{CONSOLE}")
    assert answer is not None
    assert answer.status == 403
    expect(page.get_by_role("heading", name=NOT_STAFF)).to_be_visible()
    shot(page, f"08-refused-{username.split('@')[0]}")


def seed_others(count: int) -> None:
    """`count` other subscriptions, written straight to the store: the crowd the operator searches."""
    store = services().subscriptions
    for n in range(count):
        store.insert(
            Subscription(
                id=str(uuid.uuid4()),
                name=f"Workspace {n:04}",
                offer_id="contoso-saas",
                plan_id=("basic", "team-seats")[n % 2],
                quantity=1 + n % 9,
                status=SubscriptionStatus.SUBSCRIBED,
                purchaser=Party(email=f"buyer{n}@example.com", tenant_id=str(uuid.uuid4())),
                beneficiary=Party(email=f"buyer{n}@example.com", tenant_id=str(uuid.uuid4())),
            )
        )


def test_an_admin_finds_one_subscription_among_many_and_opens_it(
    new_page: Callable[[], Page], stack: Stack
) -> None:
    wanted = stack.buy_and_activate("basic", name="Northwind field sales")
    seed_others(300)

    admin = signed_in(new_page, stack, OLIVIA, f"{CONSOLE}/subscriptions")
    # An instance's first read of the list may still be under way: the page says so and reloads itself.
    expect(admin.locator("[data-total-matched]")).to_have_text("301", timeout=20_000)
    shot(admin, "06-list-of-many")
    admin.get_by_label("Search anything").fill("northwind field")
    admin.get_by_role("button", name="Find").click()
    expect(admin.locator("[data-total-matched]")).to_have_text("1")
    shot(admin, "07-found-one")
    admin.get_by_role("link", name="Northwind field sales").click()

    expect(admin).to_have_url(f"{stack.app_url}{page_of(wanted)}")
    expect(admin.get_by_role("heading", level=1)).to_contain_text("Northwind field sales")
    expect(admin.locator("#drift-summary")).to_have_text("The stored copy matches Microsoft's view.")
    shot(admin, "08-opened")
