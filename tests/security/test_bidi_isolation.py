"""Every page isolates text a buyer or user controls for bidirectional text (issue 7, item 5).

A right-to-left override (U+202E) in a display name reverses everything after it up to the end of the
paragraph, so "Mallory\u202e" followed by " (upn)" reads differently from what the app wrote, and in a
pick list one user can pass for another. The pages are served by the real handlers (dev host over
127.0.0.1, Azurite, the sandbox as Microsoft) and read in Debian's chromium: every text node that holds the
override must sit alone in a <bdi> (or an element with dir="auto"), or between FSI and PDI marks where no
element is allowed (<option>, <title>); inputs showing such text carry dir="auto".
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from playwright.sync_api import Browser

from shared.app_context import services
from shared.entrypoints.landing.journey import LANDING_SESSION_KEY
from shared.web.current_user import SignedInUser, session_codec, sign_in
from tests.portal import (
    ADELE,
    CONTOSO,
    FABRIKAM,
    NESTOR,
    Portal,
    post_form,
    remember_user,
    running_portal,
)

RLO = "\u202e"
EVIL_SUBSCRIPTION = f"Payroll {RLO}gnitset"
EVIL_ADELE = replace(ADELE, name=f"Adele {RLO}nimda")
EVIL_COLLEAGUE = SignedInUser(
    CONTOSO, "11111111-0000-4000-8000-0000000000b1", f"Megan {RLO}ecnalA", "", f"megan{RLO}@contoso.example"
)

# Lists every place where the override is not isolated; an empty list is a pass.
UNISOLATED = """(rlo) => {
  const stripped = (text) => {  // drops FSI ... PDI runs, innermost first
    let previous;
    const run = /\\u2068[^\\u2068\\u2069]*\\u2069/g;
    do { previous = text; text = text.replace(run, ""); } while (text !== previous);
    return text;
  };
  const isolatedByElement = (node) => {
    const parent = node.parentElement;
    const isolating = parent.tagName === "BDI" || (parent.getAttribute("dir") || "").toLowerCase() === "auto";
    return isolating && parent.textContent === node.nodeValue;
  };
  const found = [];
  if (stripped(document.title).includes(rlo)) found.push("<title>" + document.title);
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.nodeValue.includes(rlo)) continue;
    if (isolatedByElement(node) || !stripped(node.nodeValue).includes(rlo)) continue;
    found.push(node.parentElement.outerHTML.slice(0, 200));
  }
  for (const input of document.querySelectorAll("input, textarea")) {
    if (input.value.includes(rlo) && (input.getAttribute("dir") || "").toLowerCase() !== "auto") {
      found.push(input.outerHTML.slice(0, 200));
    }
  }
  return found;
}"""


@pytest.fixture(scope="module")
def portal(azurite_connection_string: str) -> Iterator[Portal]:
    with running_portal(azurite_connection_string, "i" + uuid.uuid4().hex[:10]) as running:
        yield running


def cookie_for(session: dict[str, object]) -> tuple[str, str]:
    set_cookie = session_codec(services().settings).dump(session)
    name, _, rest = set_cookie.partition("=")
    return name, rest.split(";", 1)[0]


def unisolated(browser: Browser, portal: Portal, path: str, session: dict[str, object]) -> list[str]:
    """Opens `path` with `session` as the session cookie; returns the places where the override leaks."""
    context = browser.new_context()
    try:
        name, value = cookie_for(session)
        context.add_cookies([{"name": name, "value": value, "url": portal.url}])
        page = context.new_page()
        response = page.goto(f"{portal.url}{path}")
        assert response is not None
        assert response.status == 200, path
        assert RLO in page.content(), f"{path} does not show the hostile text at all: the test proves nothing"
        return page.evaluate(UNISOLATED, RLO)
    finally:
        context.close()


def rename(subscription_id: str, name: str) -> None:
    stored = services().subscriptions.get(subscription_id)
    assert stored is not None
    services().subscriptions.replace(replace(stored, name=name))


def test_portal_pages_isolate_names_and_pick_lists(browser: Browser, portal: Portal) -> None:
    subscription_id = portal.buy(quantity=3, name=EVIL_SUBSCRIPTION)
    remember_user(EVIL_COLLEAGUE)
    admin = sign_in({}, EVIL_ADELE, settings=services().settings, store=services().sessions)
    client = portal.browser(EVIL_ADELE)
    page_url = portal.page_url(subscription_id)
    seated = SignedInUser(
        CONTOSO, "11111111-0000-4000-8000-0000000000b2", f"Seat {RLO}rehto", "", "s@x.example"
    )
    remember_user(seated)
    assert post_form(client, page_url, "seats", {"user": f"{seated.tenant_id}:{seated.object_id}"}).ok
    assert EVIL_COLLEAGUE.object_id in client.get(page_url).text, "the pick lists offer the colleague"

    for path in ("/api/portal", f"/api/portal/subscriptions/{subscription_id}", "/api/auth/signout"):
        assert unisolated(browser, portal, path, admin) == [], path


def test_the_landing_confirmation_isolates_subscription_and_buyer(browser: Browser, portal: Portal) -> None:
    bought = portal.control.buy("team-seats", quantity=2, buyer="adele.vance@contoso.onmicrosoft.com")
    purchase = services().fulfillment.resolve(bought["token"])
    from shared.workflows.confirmation import record_purchase

    record_purchase(purchase, "bidi-test", sync=services().sync_ports)
    rename(bought["subscriptionId"], EVIL_SUBSCRIPTION)
    pending = {LANDING_SESSION_KEY: bought["subscriptionId"]}
    session = sign_in(pending, EVIL_ADELE, settings=services().settings, store=services().sessions)

    assert unisolated(browser, portal, "/api/landing/confirm", session) == []


def test_the_setup_link_page_isolates_the_subscription_name(browser: Browser, portal: Portal) -> None:
    subscription_id = portal.buy_as_csp(customer=FABRIKAM)
    rename(subscription_id, EVIL_SUBSCRIPTION)
    partner = portal.browser(NESTOR)

    created = post_form(partner, portal.page_url(subscription_id), "setup-links", {})

    assert created.status_code == 200
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_content(created.text)  # the page is shown once, in answer to the POST
        assert RLO in page.content()
        assert page.evaluate(UNISOLATED, RLO) == []
    finally:
        context.close()
