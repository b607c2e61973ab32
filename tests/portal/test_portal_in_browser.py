"""The portal in Debian's headless chromium: a signed-in admin changes the quantity and assigns seats up to
the limit and one over it; screenshots of each page land in test-artifacts/portal/."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from shared.app_context import services
from tests.portal import ADELE, MEGAN, Portal, remember_user, running_portal, session_cookie

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "portal"


@pytest.fixture(scope="module")
def portal(azurite_connection_string: str) -> Iterator[Portal]:
    with running_portal(azurite_connection_string, "b" + uuid.uuid4().hex[:10]) as running:
        yield running


def signed_in_page(browser: Browser, portal: Portal, width: int = 1280) -> Page:
    context = browser.new_context(viewport={"width": width, "height": 900})
    name, value = session_cookie(ADELE)
    context.add_cookies([{"name": name, "value": value, "url": portal.url}])
    return context.new_page()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_admin_changes_quantity_and_assigns_seats_up_to_the_limit(browser: Browser, portal: Portal) -> None:
    subscription_id = portal.buy(quantity=2, name="Contoso Analytics for Adele")
    remember_user(MEGAN)
    page = signed_in_page(browser, portal)

    page.goto(f"{portal.url}/api/portal")
    expect(page.get_by_role("heading", name="Your subscriptions")).to_be_visible()
    shot(page, "01-home")
    page.get_by_role("link", name="Contoso Analytics for Adele").click()
    expect(page.locator("#seat-summary")).to_have_text("0 of 2 seats used, 2 free.")
    shot(page, "02-subscription")

    page.get_by_label("Number of seats").fill("3")
    page.get_by_role("button", name="Change quantity").click()
    expect(page.get_by_role("status")).to_contain_text("Seat quantity change requested")
    expect(page.locator('#operations-in-progress tr[data-action="ChangeQuantity"]')).to_have_count(1)
    expect(page.locator("#operations-in-progress")).to_contain_text("Seat quantity change")
    shot(page, "03-quantity-requested")

    page.get_by_label("Email or user principal name").fill("ada@contoso.com")
    page.get_by_role("button", name="Assign seat").click()
    expect(page.get_by_role("status")).to_contain_text("Seat reserved.")  # binds at their sign-in
    page.get_by_label("Or pick someone who already signed in").select_option(
        f"{MEGAN.tenant_id}:{MEGAN.object_id}"
    )
    page.get_by_role("button", name="Assign seat").click()
    expect(page.locator("#seat-summary")).to_have_text("2 of 2 seats used, 0 free.")
    expect(page.locator("#seats")).to_contain_text("Megan Bowen")
    shot(page, "04-seats-full")

    page.get_by_label("Email or user principal name").fill("one.too.many@contoso.com")
    with page.expect_response(lambda r: r.url.endswith("/seats")) as answer:
        page.get_by_role("button", name="Assign seat").click()
    assert answer.value.status == 409
    expect(page.get_by_role("heading", name="No free seats")).to_be_visible()
    shot(page, "05-no-free-seats")
    assert services().seats.count(subscription_id) == 2


def test_the_subscription_page_fits_a_phone(browser: Browser, portal: Portal) -> None:
    subscription_id = portal.buy(quantity=2)
    page = signed_in_page(browser, portal, width=375)
    page.goto(portal.page_url(subscription_id))
    expect(page.get_by_role("button", name="Change quantity")).to_be_visible()
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    shot(page, "06-subscription-phone")
