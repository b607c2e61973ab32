"""What the browser journeys share: a fresh browser context per person (the `browser` fixture itself is the
session-wide one in tests/conftest.py), and signing in on the sandbox's Entra page."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.stack import Stack

NewPage = Callable[[], Page]


@pytest.fixture
def new_page(browser: Browser) -> Iterator[NewPage]:
    """Opens a page in a fresh browser context (its own cookies: one person each), closed after the test."""
    contexts: list[BrowserContext] = []

    def open_page() -> Page:
        context = browser.new_context(ignore_https_errors=True, viewport={"width": 1200, "height": 900})
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    try:
        yield open_page
    finally:
        for context in contexts:
            context.close()


def pick_account(page: Page, username: str) -> None:
    """On the sandbox's Entra sign-in page, choose the test user (the app's callback follows)."""
    expect(page.get_by_role("heading", name="Pick an account")).to_be_visible()
    page.click(f'button[data-username="{username}"]')


def signed_in(new_page: NewPage, stack: Stack, username: str, path: str) -> Page:
    """Opens `path` as `username`: the app sends them to sign in and brings them back to `path`."""
    page = new_page()
    page.goto(f"{stack.app_url}{path}")
    pick_account(page, username)
    expect(page).to_have_url(f"{stack.app_url}{path}")
    return page
