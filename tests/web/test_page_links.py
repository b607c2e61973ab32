"""Every link a page shows goes somewhere: help links come from the publisher's settings, or are left out."""

from __future__ import annotations

import pytest

from shared.web.templates import render


def test_without_settings_pages_show_no_help_link_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SUPPORT_URL", "DOCS_URL", "PRODUCT_NAME"):
        monkeypatch.delenv(name, raising=False)

    html = render("error.html", csp_nonce="n0nce", title="Oops", message="Something went wrong.")

    assert 'href="/docs"' not in html  # a route this app does not serve
    assert "contoso.example" not in html  # nor a placeholder address
    assert ">Support<" not in html
    assert ">Documentation<" not in html
    assert 'href="/api/portal"' in html  # the one way back that always exists


def test_configured_help_links_appear_in_the_footer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPPORT_URL", "mailto:help@fabrikam.example")
    monkeypatch.setenv("DOCS_URL", "https://docs.fabrikam.example/")
    monkeypatch.setenv("PRODUCT_NAME", "Fabrikam Insights")

    html = render("error.html", csp_nonce="n0nce", title="Oops", message="Something went wrong.")

    assert '<a href="mailto:help@fabrikam.example">Support</a>' in html
    assert '<a href="https://docs.fabrikam.example/">Documentation</a>' in html
    assert "Fabrikam Insights" in html


def test_the_product_name_leads_to_a_page_of_this_app_never_to_the_hosts_root() -> None:
    buyer = render("error.html", csp_nonce="n0nce", title="Oops", message="Something went wrong.")
    assert 'class="product-name" href="/api/portal"' in buyer
    console = render("error.html", csp_nonce="n0nce", title="Oops", message="x", home_url="/api/console")
    assert 'class="product-name" href="/api/console"' in console
    assert 'href="/"' not in buyer + console
