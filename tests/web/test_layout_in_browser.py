"""The layout in Debian's headless chromium: the CSP lets the nonce'd style block in and keeps others out."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from shared.web.security import new_nonce, security_headers
from shared.web.templates import LAYOUT_DEFAULTS, environment

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

# A portal-like page: the last <style> has no nonce, so a working CSP must block it (the page stays blue).
SAMPLE_PAGE = """{% extends "base.html" %}
{% block title %}Your subscription{% endblock %}
{% block content %}
<h1>Contoso Analytics — Enterprise</h1>
<p class="lead">Manage your subscription and who may use it.</p>
<div class="grid">
  <section class="card"><h2>Subscription</h2>
    <dl class="facts"><dt>Plan</dt><dd>Enterprise (per user)</dd><dt>Seats</dt><dd>3 of 5 assigned</dd></dl>
  </section>
  <section class="card"><h2>Status</h2>
    {% for status in ["Subscribed", "PendingFulfillmentStart", "Suspended", "Unsubscribed"] %}
    <span class="badge" data-status="{{ status }}" id="badge-{{ status }}">{{ status }}</span>
    {% endfor %}
  </section>
</div>
<section class="card"><div class="table-wrap"><table><caption>Seats</caption>
  <thead><tr><th scope="col">Name</th><th scope="col">Email</th></tr></thead>
  <tbody><tr><td>Ada Lovelace</td><td>ada@contoso.example</td></tr></tbody></table></div>
</section>
<form class="card" method="post" action="/seats">
  <div class="field"><label for="email">Email or user name</label>
    <p class="hint" id="email-hint">The address they sign in with.</p>
    <input id="email" name="email" type="email" aria-describedby="email-hint"></div>
  <button type="submit" id="assign">Assign seat</button>
</form>
<style>body { background: rgb(255, 0, 0) !important; }</style>
{% endblock %}
"""


class _PageHandler(BaseHTTPRequestHandler):
    """Renders the sample page with a fresh nonce and the real security headers on every GET."""

    def do_GET(self) -> None:
        nonce = new_nonce()
        body = (
            environment()
            .from_string(SAMPLE_PAGE)
            .render(
                {
                    **LAYOUT_DEFAULTS,
                    "csp_nonce": nonce,
                    "user": {"name": "Ada Admin", "email": "ada@contoso.example"},
                }
            )
        )
        encoded = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(encoded)))
        for name, value in security_headers(nonce).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(encoded)

    def log_message(self, *_: object) -> None:
        return


@pytest.fixture
def page_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/portal"
    server.shutdown()
    server.server_close()


def _style(page: object, selector: str, prop: str) -> str:
    return page.eval_on_selector(selector, f"e => getComputedStyle(e).getPropertyValue('{prop}')")  # type: ignore[attr-defined]


@pytest.mark.browser
def test_nonced_stylesheet_applies_and_unnonced_style_is_blocked(browser: Browser, page_url: str) -> None:
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))

    response = page.goto(page_url)

    assert response is not None
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert _style(page, "body", "background-color") == "rgb(244, 246, 248)"
    assert "system-ui" in _style(page, "body", "font-family")
    assert _style(page, ".container", "max-width") == "1024px"
    assert _style(page, "#badge-Subscribed", "background-color") == "rgb(209, 231, 221)"
    assert _style(page, "#badge-PendingFulfillmentStart", "background-color") == "rgb(255, 243, 205)"
    assert _style(page, "#badge-Suspended", "background-color") == "rgb(248, 215, 218)"
    assert _style(page, "#assign", "background-color") == "rgb(10, 88, 202)"
    assert any("Content Security Policy" in line for line in console)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "base-layout.png"), full_page=True)


@pytest.mark.browser
def test_skip_link_is_first_in_tab_order_and_visible_on_focus(browser: Browser, page_url: str) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(page_url)

    page.keyboard.press("Tab")

    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    assert page.evaluate("document.activeElement.getBoundingClientRect().top") >= 0
    assert _style(page, ".skip-link", "outline-style") == "solid"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "base-layout-mobile.png"), full_page=True)
