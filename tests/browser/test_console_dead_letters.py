"""The console's dead letters in headless Debian chromium, staff signed in through the sandbox's Entra pages.

The whole local stack runs (sandbox, Azurite, dev host, the worker on the local queue). A forged operation is
parked by the worker and a suspension whose every delivery fails lands in the dead-letter sub-queue; a reader
sees both and no buttons; an administrator replays the suspension once Microsoft answers again (the worker
then suspends the subscription) and discards the forged one, which the browser will not send without a
reason. Screenshots land in test-artifacts/console-dead-letters/ (git-ignored).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from shared.app_context import services
from shared.domain.audit import AuditAction
from tests.browser.conftest import NewPage, signed_in
from tests.cli.test_cli import forge_webhook
from tests.support.sandbox import wait_until
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console-dead-letters"
OLIVIA = "olivia.ops@publisher.onmicrosoft.com"
RAVI = "ravi.reader@publisher.onmicrosoft.com"
PAGE = "/api/console/dead-letters"


@pytest.fixture
def stack(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, azurite_connection_string: str, table_prefix: str
) -> Iterator[Stack]:
    # One quick failure per delivery, three deliveries: the failing suspension reaches the sub-queue soon.
    with running_stack(
        monkeypatch,
        tmp_path,
        connection_string=azurite_connection_string,
        table_prefix=table_prefix,
        env={"FULFILLMENT_MAX_ATTEMPTS": "1"},
        max_delivery_count=3,
    ) as running:
        yield running


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_an_admin_replays_after_the_fix_and_discards_with_a_reason_a_reader_only_looks(
    new_page: NewPage, stack: Stack
) -> None:
    subscription_id = stack.buy_and_activate("basic")
    forged_id = forge_webhook(stack, subscription_id)
    wait_until(lambda: len(stack.queue.dead_letters()) == 1, 15)
    stack.control.add_fault(operation="SubscriptionOperations_GetOperationStatus", kind="500", share=1.0)
    stack.control.suspend(subscription_id)
    wait_until(lambda: len(stack.queue.dead_letters()) == 2, 30)

    reader = signed_in(new_page, stack, RAVI, PAGE)
    expect(reader.locator("article.dead-letter")).to_have_count(2)
    expect(reader.locator("[data-row-action], [data-bulk]")).to_have_count(0)
    shot(reader, "01-reader")

    stack.control.clear_faults()
    admin = signed_in(new_page, stack, OLIVIA, PAGE)
    admin.click('article[data-source="deadletter"] [data-row-action="replay"]')
    expect(admin.get_by_role("heading", name="Replay 1 message?")).to_be_visible()
    shot(admin, "02-confirm-replay")
    admin.click('[data-confirm="replay"]')
    expect(admin.locator("[data-notice]")).to_contain_text("1 message replayed.")
    wait_until(lambda: stack.stored(subscription_id).status.value == "Suspended", 20)
    shot(admin, "03-replayed")

    admin.click('article[data-source="parking"] [data-row-action="discard"]')
    expect(admin.get_by_role("heading", name="Discard 1 message?")).to_be_visible()
    admin.click('[data-confirm="discard"]')  # the reason is required: the browser keeps the form
    expect(admin.get_by_role("heading", name="Discard 1 message?")).to_be_visible()
    admin.fill("#why", "forged, checked with Microsoft")
    shot(admin, "04-confirm-discard")
    admin.click('[data-confirm="discard"]')
    expect(admin.locator("[data-notice]")).to_contain_text("1 message discarded.")
    expect(admin.locator("article.dead-letter")).to_have_count(0)
    shot(admin, "05-discarded")

    trail = services().audit.list(subscription_id)
    actors = {entry.action: entry.actor for entry in trail}
    assert OLIVIA in actors[AuditAction.DEAD_LETTER_REPLAYED]
    assert OLIVIA in actors[AuditAction.DEAD_LETTER_DISCARDED]
    assert not stack.queue.dead_letters()
    # The forged Unsubscribe was thrown away, never applied: the subscription is only suspended.
    assert stack.stored(subscription_id).status.value == "Suspended"
    discard = {AuditAction.DEAD_LETTER_DISCARD_REQUESTED, AuditAction.DEAD_LETTER_DISCARDED}
    assert forged_id not in {entry.operation_id for entry in trail if entry.action not in discard}
