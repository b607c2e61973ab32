"""The whole journey in headless Debian chromium, "Microsoft's side" driven through the sandbox's own page.

Buy on the sandbox page, follow the landing link, sign in, confirm and watch activation finish on both
sides; then change the plan, suspend, reinstate and unsubscribe from the sandbox page and watch the
publisher's portal follow. A second test refuses a blocked downgrade and sees the sandbox keep the plan.
The worker runs in the background from the local queue, as under `make dev`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.sandbox import wait_until
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "journey"
ADELE = "adele.vance@contoso.onmicrosoft.com"
ADELE_OBJECT_ID = "11111111-0000-4000-8000-000000000001"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1200, "height": 900})
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def buy_on_the_sandbox_page(stack: Stack, page: Page, plan_id: str) -> str:
    page.goto(stack.sandbox.http_url + "/")
    page.select_option('select[name="planId"]', plan_id)
    page.select_option('select[name="user"]', ADELE_OBJECT_ID)
    page.click('form[action="/page/purchase"] button[type="submit"]')
    shot(page, f"sandbox-bought-{plan_id}")
    subscriptions = stack.control.request("GET", "/subscriptions")["subscriptions"]
    return subscriptions[-1]["id"]


def land_sign_in_and_confirm(stack: Stack, page: Page, subscription_id: str) -> None:
    landing_url = stack.control.new_token(subscription_id)["landingUrl"]
    page.goto(landing_url)
    page.click(f'button[data-username="{ADELE}"]')
    expect(page).to_have_url(f"{stack.app_url}/api/landing/confirm")
    shot(page, "landing-confirm")
    page.click('[data-testid="confirm"]')
    expect(page.locator('[data-testid="activation-status"]')).to_have_attribute(
        "data-status", "Subscribed", timeout=20_000
    )
    shot(page, "activation-done")


def sandbox_action(stack: Stack, page: Page, subscription_id: str, action: str) -> None:
    page.goto(stack.sandbox.http_url + "/")
    page.click(f'form[action="/page/subscriptions/{subscription_id}/{action}"] button')


def portal_shows(stack: Stack, page: Page, subscription_id: str, text: str) -> None:
    def visible() -> bool:
        page.goto(f"{stack.app_url}/api/portal/subscriptions/{subscription_id}")
        return text in page.content()

    wait_until(visible, 15, interval=0.5)


def test_buy_land_activate_then_follow_microsofts_changes(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    azurite_connection_string: str,
    table_prefix: str,
    page: Page,
) -> None:
    with running_stack(
        monkeypatch, tmp_path, connection_string=azurite_connection_string, table_prefix=table_prefix
    ) as stack:
        subscription_id = buy_on_the_sandbox_page(stack, page, "basic")
        land_sign_in_and_confirm(stack, page, subscription_id)
        assert stack.microsoft(subscription_id)["saasSubscriptionStatus"] == "Subscribed"

        page.goto(stack.sandbox.http_url + "/")
        form = page.locator(f'form[action="/page/subscriptions/{subscription_id}/change-plan"]')
        form.locator("select").select_option("pro")
        form.locator("button").click()
        wait_until(lambda: stack.microsoft(subscription_id)["planId"] == "pro", 10)
        [change] = [
            op
            for op in stack.control.subscription(subscription_id)["operations"]
            if op["action"] == "ChangePlan"
        ]
        assert "PATCH Success" in stack.sandbox.marketplace.operation_record(change["id"]).decision
        portal_shows(stack, page, subscription_id, '<dd><span data-plan="pro">Pro (annual)</span></dd>')
        shot(page, "portal-after-plan-change")

        for action, status in (
            ("suspend", "Suspended"),
            ("reinstate", "Subscribed"),
            ("unsubscribe", "Unsubscribed"),
        ):
            sandbox_action(stack, page, subscription_id, action)
            portal_shows(stack, page, subscription_id, f'data-status="{status}"')
            shot(page, f"portal-{status.lower()}")
        assert stack.stored(subscription_id).status.value == "Unsubscribed"


def test_a_blocked_downgrade_from_the_sandbox_page_keeps_the_plan(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    azurite_connection_string: str,
    table_prefix: str,
    page: Page,
) -> None:
    env = {"POLICY_BLOCK_DOWNGRADES": "true", "POLICY_PLAN_ORDER": "basic,pro"}
    with running_stack(
        monkeypatch, tmp_path, connection_string=azurite_connection_string, table_prefix=table_prefix, env=env
    ) as stack:
        subscription_id = buy_on_the_sandbox_page(stack, page, "pro")
        land_sign_in_and_confirm(stack, page, subscription_id)

        page.goto(stack.sandbox.http_url + "/")
        form = page.locator(f'form[action="/page/subscriptions/{subscription_id}/change-plan"]')
        form.locator("select").select_option("basic")
        form.locator("button").click()

        operation = wait_until(
            lambda: next(
                (
                    op
                    for op in stack.control.subscription(subscription_id)["operations"]
                    if op["action"] == "ChangePlan" and op["status"] != "InProgress"
                ),
                None,
            ),
            12,
        )
        assert operation["status"] == "Failed"
        assert stack.microsoft(subscription_id)["planId"] == "pro"
        portal_shows(stack, page, subscription_id, '<dd><span data-plan="pro">Pro (annual)</span></dd>')
        shot(page, "portal-downgrade-refused")
