"""The template environment escapes buyer input and refuses undefined names."""

from __future__ import annotations

import pytest
from jinja2 import UndefinedError

from shared.web import templates
from shared.web.templates import render


def test_values_are_autoescaped_in_html() -> None:
    html = render("error.html", csp_nonce="n0nce", title="Oops", message="<script>alert(1)</script>")

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_misspelt_variable_raises_instead_of_rendering_empty() -> None:
    template = templates.environment().from_string("Hello {{ usr.name }}")

    with pytest.raises(UndefinedError):
        template.render(user={"name": "Ada"})


def test_base_layout_requires_the_csp_nonce() -> None:
    with pytest.raises(UndefinedError):
        render("error.html", title="Oops", message="m")


def test_layout_has_landmarks_skip_link_and_nonce_on_the_style_block(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPPORT_URL", "mailto:help@contoso.example")
    monkeypatch.setenv("DOCS_URL", "https://docs.contoso.example/")
    html = render("error.html", csp_nonce="n0nce", title="Oops", message="m")

    assert '<html lang="en">' in html
    assert 'name="viewport"' in html
    assert 'href="#main"' in html
    assert '<main id="main"' in html
    assert '<style nonce="n0nce">' in html
    assert "<footer" in html
    assert "Support" in html
    assert "Documentation" in html


def test_signed_in_user_slot_shows_name_and_email_escaped() -> None:
    html = render(
        "error.html",
        csp_nonce="n",
        title="t",
        message="m",
        user={"name": "Ada <Admin>", "email": "ada@contoso.example"},
    )

    # Isolated for bidirectional text (`bdi` filter): a U+202E in a name cannot reorder what follows.
    assert (
        "Signed in as <strong><bdi>Ada &lt;Admin&gt;</bdi></strong> (<bdi>ada@contoso.example</bdi>)" in html
    )
    # On a shared computer the session must be endable from any page someone signed in sees.
    assert '<a href="/api/auth/signout">Sign out</a>' in html


def test_nobody_signed_in_renders_no_user_slot() -> None:
    html = render("error.html", csp_nonce="n", title="t", message="m")

    assert "Signed in as" not in html
    assert "Sign out" not in html


def test_error_page_shows_title_message_hint_and_reference() -> None:
    html = render(
        "error.html",
        csp_nonce="n",
        title="Purchase not found",
        message="We couldn't identify this purchase.",
        hint="Reopen the subscription in the Azure portal.",
        reference="corr-123",
        status_code=400,
    )

    assert "<title>Purchase not found · SaaS subscription</title>" in html
    assert "We couldn&#39;t identify this purchase." in html
    assert "Reopen the subscription in the Azure portal." in html
    assert "corr-123" in html
    assert "error 400" in html


def test_environment_is_built_once() -> None:
    assert templates.environment() is templates.environment()


@pytest.mark.parametrize(
    ("support_url", "way_on"),
    [
        ("https://support.example/contoso", 'href="https://support.example/contoso">contact support</a>'),
        ("", "buy it again"),
    ],
)
def test_a_cancelled_subscription_page_offers_a_way_on_that_exists(support_url: str, way_on: str) -> None:
    from shared.domain.status import SubscriptionStatus
    from shared.domain.subscription import Subscription

    cancelled = Subscription(id="sub-1", name="Team", status=SubscriptionStatus.UNSUBSCRIBED)

    html = render(
        "landing.html",
        csp_nonce="n",
        subscription=cancelled,
        offer_name="Analytics",
        status_url="",
        support_url=support_url,
    )

    assert "has been cancelled" in html
    assert way_on in html
    assert "contact support" not in html or support_url
