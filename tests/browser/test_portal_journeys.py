"""The portal's journeys in headless Debian chromium, every user signed in through the sandbox's Entra pages.

Each test starts the whole local stack (sandbox playing Microsoft, Azurite, the dev host, the worker running
from the local queue) and drives the portal as buyers do: a plan change followed to its end, seats assigned
and revoked, a cancellation, the CSP hand-over from partner to customer through a setup link, and a user of
another tenant trying the subscription page and tampered forms. Screenshots of every step land in
test-artifacts/portal-journeys/ (git-ignored).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import NewPage, pick_account
from tests.support.sandbox import FABRIKAM_TENANT, wait_until
from tests.support.stack import Stack

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "portal-journeys"
ADELE = "adele.vance@contoso.onmicrosoft.com"
ALEX = "alex.wilber@fabrikam.onmicrosoft.com"
FABRIKAM_GUEST = "guest.consultant_outlook.com#EXT#@fabrikam.onmicrosoft.com"
FABRIKAM_GUEST_OID = "22222222-0000-4000-8000-000000000002"
NESTOR = "nestor.wilke@northwindpartners.onmicrosoft.com"
CHANGE_FORMS = ("plan", "quantity", "cancel")


# --- helpers (the `new_page` fixture is in tests/browser/conftest.py) -------------------------------


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def subscription_url(stack: Stack, subscription_id: str) -> str:
    return f"{stack.app_url}/api/portal/subscriptions/{subscription_id}"


def land_sign_in_and_activate(stack: Stack, page: Page, landing_url: str, username: str, name: str) -> None:
    """The buyer follows the landing link, signs in on the sandbox page, confirms and sees Subscribed."""
    page.goto(landing_url)
    pick_account(page, username)
    expect(page).to_have_url(f"{stack.app_url}/api/landing/confirm")
    shot(page, f"{name}-01-confirm")
    page.click('[data-testid="confirm"]')
    status = page.locator('[data-testid="activation-status"]')
    expect(status).to_have_attribute("data-status", "Subscribed", timeout=15_000)
    shot(page, f"{name}-02-activated")


def buy_and_activate_in_browser(
    stack: Stack, page: Page, plan_id: str, name: str, *, quantity: int | None = None
) -> str:
    bought = stack.control.buy(plan_id, buyer=ADELE, quantity=quantity)
    land_sign_in_and_activate(stack, page, bought["landingUrl"], ADELE, name)
    return bought["subscriptionId"]


def refresh_until(page: Page, url: str, condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Reloads `url` until `condition` holds (the portal renders server-side: a refresh shows news)."""

    def check() -> bool:
        page.goto(url)
        return condition()

    wait_until(check, timeout, interval=0.5)


def status_badge(page: Page) -> str:
    return page.locator("h1 .badge").get_attribute("data-status") or ""


def expect_no_change_forms(page: Page) -> None:
    for action in CHANGE_FORMS:
        expect(page.locator(f'form[action$="/{action}"]')).to_have_count(0)


def assign_seat(page: Page, email: str) -> None:
    page.get_by_label("Email or user principal name").fill(email)
    page.get_by_role("button", name="Assign seat").click()
    # A typed address is reserved: it binds when its owner signs in (README, "Seat licenses").
    expect(page.get_by_role("status")).to_contain_text("Seat reserved.")


def revoke_seat(page: Page, user_key: str) -> None:
    page.get_by_role("button", name=f"Revoke seat of {user_key}").click()
    expect(page.get_by_role("status")).to_have_text("Seat revoked.")


# --- (1) plan change -----------------------------------------------------------------------------------


def test_plan_change_from_the_portal_is_shown_in_progress_then_with_its_outcome(
    stack: Stack, new_page: NewPage
) -> None:
    page = new_page()
    subscription_id = buy_and_activate_in_browser(stack, page, "basic", "plan")
    url = subscription_url(stack, subscription_id)
    page.goto(url)
    expect(page.locator("dl.facts [data-plan]").first).to_have_attribute("data-plan", "basic")
    expect(page.locator("dl.facts")).to_contain_text("Basic")  # the display name, not the id
    shot(page, "plan-03-portal-basic")

    # Microsoft answers GetOperation slowly for the next two calls (the worker's track and webhook look-ups),
    # so the change is still running when the page comes back and the "in progress" table can be seen.
    stack.control.add_fault(
        operation="SubscriptionOperations_GetOperationStatus", kind="hang", hangSeconds=2, maxCount=2
    )
    page.check('input[name="plan_id"][value="pro"]')
    page.get_by_role("button", name="Change plan").click()
    expect(page.get_by_role("status")).to_contain_text("Plan change requested")
    in_progress = page.locator("#operations-in-progress")
    expect(in_progress.locator('tr[data-action="ChangePlan"]')).to_have_count(1)
    expect(in_progress).to_contain_text("Plan change")
    expect(in_progress).to_contain_text("Pro (annual)")  # the plan's display name from listAvailablePlans
    shot(page, "plan-04-in-progress")

    refresh_until(
        page,
        url,
        lambda: (
            page.locator("dl.facts dd [data-plan]").first.get_attribute("data-plan") == "pro"
            and page.locator("#operations-in-progress").count() == 0
        ),
    )
    history = page.get_by_role("table", name="Earlier changes")
    change = history.locator('tr[data-action="ChangePlan"]')
    expect(change).to_have_count(1)
    shot(page, "plan-05-done")
    assert stack.microsoft(subscription_id)["planId"] == "pro"
    assert stack.stored(subscription_id).plan_id == "pro"
    # The outcome column says how Microsoft's operation ended (not why the publisher accepted it); the
    # worker's tracking records it within a poll or two of the operation finishing.
    [operation] = [
        op for op in stack.control.subscription(subscription_id)["operations"] if op["action"] == "ChangePlan"
    ]
    assert operation["status"] == "Succeeded"

    def outcome_shown() -> str | None:
        page.reload()
        text = change.get_by_role("cell").last.inner_text()
        return None if text == "Waiting for Microsoft" else text

    outcome = wait_until(outcome_shown, 20, interval=1.0)
    shot(page, "plan-06-outcome")
    assert outcome == "Completed", f"the portal shows the outcome of the finished ChangePlan as {outcome!r}"


# --- (2) seats -----------------------------------------------------------------------------------------


def test_admin_assigns_two_seats_and_revokes_one(stack: Stack, new_page: NewPage) -> None:
    page = new_page()
    subscription_id = buy_and_activate_in_browser(stack, page, "team-seats", "seats", quantity=3)
    page.goto(subscription_url(stack, subscription_id))
    summary = page.locator("#seat-summary")
    expect(summary).to_have_text("0 of 3 seats used, 3 free.")
    shot(page, "seats-03-none")

    assign_seat(page, "ada@contoso.com")
    assign_seat(page, "ben@contoso.com")
    expect(summary).to_have_text("2 of 3 seats used, 1 free.")
    shot(page, "seats-04-two-assigned")

    revoke_seat(page, "ada@contoso.com")
    expect(summary).to_have_text("1 of 3 seats used, 2 free.")
    expect(page.locator("#seats")).to_contain_text("ben@contoso.com")
    expect(page.locator("#seats")).not_to_contain_text("ada@contoso.com")
    shot(page, "seats-05-one-revoked")
    assert stack.services.seats.count(subscription_id) == 1


# --- (3) cancel ----------------------------------------------------------------------------------------


def test_cancel_from_the_portal_ends_the_subscription_on_both_sides(stack: Stack, new_page: NewPage) -> None:
    page = new_page()
    subscription_id = buy_and_activate_in_browser(stack, page, "basic", "cancel")
    url = subscription_url(stack, subscription_id)
    page.goto(url)
    shot(page, "cancel-03-before")

    page.get_by_label("I understand that cancelling ends the service").check()
    page.get_by_role("button", name="Cancel subscription").click()
    expect(page.get_by_role("status")).to_contain_text("Cancellation requested")
    shot(page, "cancel-04-requested")

    refresh_until(page, url, lambda: status_badge(page) == "Unsubscribed")
    expect(page.locator('form[action$="/cancel"]')).to_have_count(0)
    shot(page, "cancel-05-unsubscribed")
    assert stack.microsoft(subscription_id)["saasSubscriptionStatus"] == "Unsubscribed"
    assert stack.stored(subscription_id).status.value == "Unsubscribed"


# --- (4) CSP -------------------------------------------------------------------------------------------


def test_csp_partner_sets_up_and_hands_over_to_the_customers_admin(stack: Stack, new_page: NewPage) -> None:
    bought = stack.control.buy_as_csp("team-seats", customer_tenant_id=FABRIKAM_TENANT, quantity=3)
    subscription_id = bought["subscriptionId"]
    url = subscription_url(stack, subscription_id)

    partner = new_page()
    land_sign_in_and_activate(stack, partner, bought["landingUrl"], NESTOR, "csp")
    partner.goto(f"{stack.app_url}/api/portal")
    row = partner.get_by_role("row").filter(has_text="Bought through a partner")
    expect(row).to_have_count(1)
    shot(partner, "csp-03-partner-home")
    row.get_by_role("link").click()
    expect(partner).to_have_url(url)
    expect(partner.locator("section", has_text="Partner Center")).to_be_visible()
    expect_no_change_forms(partner)
    assign_seat(partner, "lee.gu@fabrikam.com")
    expect(partner.locator("#seat-summary")).to_have_text("1 of 3 seats used, 2 free.")
    shot(partner, "csp-04-partner-seat")

    partner.get_by_role("button", name="Create setup link").click()
    link = partner.get_by_role("textbox", name="Setup link").input_value()
    assert re.fullmatch(rf"{re.escape(stack.app_url)}/api/portal/setup\?code=[A-Za-z0-9_-]+", link), link
    shot(partner, "csp-05-setup-link")

    roles_before = stack.services.admins.roles_for(subscription_id, FABRIKAM_TENANT, FABRIKAM_GUEST_OID)
    assert roles_before == set()
    customer = new_page()
    customer.goto(link)
    pick_account(customer, FABRIKAM_GUEST)
    # Opening the link only asks; nothing is granted until the customer's admin accepts.
    expect(customer.get_by_role("heading", name=re.compile("Accept administration"))).to_be_visible()
    assert stack.services.admins.roles_for(subscription_id, FABRIKAM_TENANT, FABRIKAM_GUEST_OID) == set()
    shot(customer, "csp-06-customer-confirms")
    customer.get_by_role("button", name="Accept administration").click()
    expect(customer).to_have_url(f"{url}?notice=setup-complete")
    expect(customer.get_by_role("status")).to_have_text(
        "You now manage this subscription for your organisation."
    )
    expect_no_change_forms(customer)
    expect(customer.locator("#seat-summary")).to_have_text("1 of 3 seats used, 2 free.")
    shot(customer, "csp-06-customer-took-over")

    assign_seat(customer, "megan.fabrikam@fabrikam.com")
    revoke_seat(customer, "lee.gu@fabrikam.com")
    expect(customer.locator("#seat-summary")).to_have_text("1 of 3 seats used, 2 free.")
    expect(customer.locator("#seats")).to_contain_text("megan.fabrikam@fabrikam.com")
    expect_no_change_forms(customer)
    shot(customer, "csp-07-customer-seats")

    partner.goto(url)
    expect(partner.locator("#seats")).to_contain_text("megan.fabrikam@fabrikam.com")
    expect_no_change_forms(partner)
    shot(partner, "csp-08-partner-sees-customer-seats")
    assert stack.services.seats.count(subscription_id) == 1
    assert stack.microsoft(subscription_id)["allowedCustomerOperations"] == ["Read"]


# --- (5) tenant isolation ------------------------------------------------------------------------------


def submit_tampered_form(page: Page, own_id: str, other_id: str, action: str) -> int:
    """Submits the user's own `action` form with the other subscription's id in its address."""
    form = page.locator(f'form[action$="/{own_id}/{action}"]').first
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        form.evaluate(
            """(form, ids) => {
                form.action = form.getAttribute("action").replace(ids[0], ids[1]);
                form.querySelectorAll("input[type=email]").forEach((f) => { f.value = "x@contoso.com"; });
                form.querySelectorAll("input[type=checkbox]").forEach((box) => { box.checked = true; });
                const plan = form.querySelector("input[type=radio]:not([disabled])");
                if (plan) { plan.checked = true; }
                form.requestSubmit();
            }""",
            [own_id, other_id],
        )
    page.wait_for_load_state()
    return answer.value.status


def test_a_user_of_another_tenant_can_neither_see_nor_change_a_subscription(
    stack: Stack, new_page: NewPage
) -> None:
    contoso_id = stack.buy_and_activate("team-seats", quantity=3)
    fabrikam_id = stack.buy_and_activate("team-seats", quantity=2, buyer=ALEX)

    page = new_page()
    page.goto(f"{stack.app_url}/api/portal")
    pick_account(page, ALEX)
    expect(page).to_have_url(f"{stack.app_url}/api/portal")
    expect(page.locator(f'a[href$="/{fabrikam_id}"]')).to_have_count(1)
    expect(page.locator(f'a[href$="/{contoso_id}"]')).to_have_count(0)
    assert contoso_id not in page.content()
    shot(page, "isolation-01-home")

    response = page.goto(subscription_url(stack, contoso_id))
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", name="Subscription not found")).to_be_visible()
    assert contoso_id not in page.content()
    shot(page, "isolation-02-page-404")

    for action in ("seats", "quantity", "plan", "cancel"):
        page.goto(subscription_url(stack, fabrikam_id))
        status = submit_tampered_form(page, fabrikam_id, contoso_id, action)
        assert status == 404, action
        expect(page.get_by_role("heading", name="Subscription not found")).to_be_visible()
        shot(page, f"isolation-03-tampered-{action}-404")

    # The same forms work on Alex's own subscription: the 404s came from the tenant check, not the form.
    page.goto(subscription_url(stack, fabrikam_id))
    assign_seat(page, "own.seat@fabrikam.com")
    assert stack.services.seats.count(fabrikam_id) == 1
    assert stack.services.seats.count(contoso_id) == 0
    assert stack.services.operations.list_for_subscription(contoso_id) == []
    microsoft = stack.microsoft(contoso_id)
    assert (microsoft["saasSubscriptionStatus"], microsoft["planId"], microsoft["quantity"]) == (
        "Subscribed",
        "team-seats",
        3,
    )
