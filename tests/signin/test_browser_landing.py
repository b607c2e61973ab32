"""A buyer in headless Debian chromium: buy, open the landing link, sign in, confirm, watch activation."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from shared.app_context import services
from tests.signin.test_app_stack import AppStack, app_stack
from tests.signin.test_landing_signin import run_worker

__all__ = ["app_stack"]  # the fixture, imported so pytest finds it here

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "signin"


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(ignore_https_errors=True, viewport={"width": 1100, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_buyer_signs_in_confirms_and_sees_the_subscription_become_active(
    app_stack: AppStack, page: Page
) -> None:
    bought = app_stack.control.buy("team-seats", quantity=3)
    landing_query = bought["landingUrl"].split("?", 1)[1]

    page.goto(f"{app_stack.base_url}/api/landing?{landing_query}")
    expect(page).to_have_url(
        re.compile(re.escape(f"{app_stack.sandbox.https_url}/common/oauth2/v2.0/authorize?"))
    )
    screenshot(page, "1-entra-sign-in")
    page.click('button[data-username="adele.vance@contoso.onmicrosoft.com"]')

    expect(page).to_have_url(f"{app_stack.base_url}/api/landing/confirm")
    expect(page.locator('[data-field="plan"]')).to_have_text("Team (per seat)")  # the name, not the id
    expect(page.locator('[data-field="quantity"]')).to_have_text("3")
    expect(page.locator('[data-field="buyer-name"]')).to_have_text("Adele Vance")
    expect(page.locator("#contact_email")).to_have_value("adele.vance@contoso.com")
    screenshot(page, "2-landing-confirm")
    assert app_stack.activations_queued(bought["subscriptionId"]) == 0

    page.click('[data-testid="confirm"]')
    status = page.locator('[data-testid="activation-status"]')
    expect(status).to_have_attribute("data-status", "PendingFulfillmentStart")
    expect(status).to_have_text("Waiting for activation")
    screenshot(page, "3-activation-pending")
    assert app_stack.activations_queued(bought["subscriptionId"]) == 1

    assert run_worker(app_stack) >= 1
    # The status page refreshes itself every two seconds; no script, so the strict CSP holds.
    expect(status).to_have_attribute("data-status", "Subscribed", timeout=10_000)
    expect(status).to_have_text("Active")
    # The plan's name, not its id.
    expect(page.locator("dl.facts [data-plan]")).to_have_text("Team (per seat)")
    expect(page.locator('[data-testid="manage"]')).to_be_visible()
    screenshot(page, "4-activation-done")
    sandbox_view = app_stack.control.subscription(bought["subscriptionId"])["subscription"]
    assert sandbox_view["saasSubscriptionStatus"] == "Subscribed"

    page.go_back()  # the confirm page again: it must not offer a second activation
    page.reload()
    expect(page).to_have_url(f"{app_stack.base_url}/api/portal/subscriptions/{bought['subscriptionId']}")
    confirmations = [e for e in services().audit.list(bought["subscriptionId"]) if e.action == "Confirm"]
    assert len(confirmations) == 1
