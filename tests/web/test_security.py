"""Security headers, CSP nonces and the open-redirect guard."""

from __future__ import annotations

import logging

import pytest

from shared.web.security import new_nonce, safe_redirect_target, security_headers


def _csp_directives(nonce: str) -> dict[str, str]:
    policy = security_headers(nonce)["Content-Security-Policy"]
    pairs = (directive.strip().partition(" ") for directive in policy.split(";"))
    return {name: value for name, _, value in pairs}


def test_every_protective_header_is_present() -> None:
    headers = security_headers(new_nonce())

    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_csp_allows_only_the_responses_nonce_for_styles_and_scripts() -> None:
    nonce = new_nonce()

    directives = _csp_directives(nonce)

    assert directives["default-src"] == "'none'"
    assert directives["style-src"] == f"'nonce-{nonce}'"
    assert directives["script-src"] == f"'nonce-{nonce}'"
    assert directives["img-src"] == "'self' data:"
    assert directives["form-action"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert directives["base-uri"] == "'none'"
    assert directives["connect-src"] == "'self'"
    assert "unsafe-inline" not in security_headers(nonce)["Content-Security-Policy"]


def test_nonces_are_fresh_and_long_enough() -> None:
    nonces = {new_nonce() for _ in range(100)}

    assert len(nonces) == 100
    assert all(len(n) >= 22 for n in nonces)


@pytest.mark.parametrize("bad", ["", "abc'; script-src *", "a b"])
def test_a_nonce_that_could_inject_into_the_policy_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="nonce"):
        security_headers(bad)


@pytest.mark.parametrize(
    "target",
    ["/", "/portal", "/portal/seats?page=2", "/portal#seats", "/a/b/../c", "/search?q=%2Fx"],
)
def test_same_site_paths_are_kept(target: str) -> None:
    assert safe_redirect_target(target, "/home") == target


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "//evil.example/portal",
        "https://evil.example",
        "http://evil.example/portal",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "%2F%2Fevil.example",
        "/%2F%2Fevil.example",
        "/%5Cevil.example",
        "\t/x",
        "/x\r\nSet-Cookie: a=b",
        "/x%0d%0aSet-Cookie: a=b",
        "/\x00x",
        "portal",
        " /portal",
        "/" + "a" * 5000,
    ],
)
def test_evil_targets_fall_back_to_the_default(target: str) -> None:
    assert safe_redirect_target(target, "/home") == "/home"


@pytest.mark.parametrize("target", [None, ""])
def test_no_target_means_the_default(target: str | None) -> None:
    assert safe_redirect_target(target, "/home") == "/home"


def test_a_refused_target_is_logged_without_its_value(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="shared.web.security"):
        safe_redirect_target("https://evil.example/?token=secret", "/home")

    assert [r.getMessage() for r in caplog.records] == ["redirect target refused"]
    assert caplog.records[0].reason == "not an absolute path"
    assert "evil.example" not in caplog.text
