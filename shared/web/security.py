"""Response headers every page carries, CSP nonces, and redirect targets that cannot leave the site.

CSP is nonce-based: each response gets a fresh random nonce; the layout's `<style>` (and any `<script>`)
carries it, and nothing else may run or style the page: no 'unsafe-inline', no third-party origins. Callers
do `nonce = new_nonce()`, render with `csp_nonce=nonce` and send `security_headers(nonce)`.

`form-action 'self'` also applies to redirects that follow a form POST, so a flow that must end at another
origin (the Entra sign-in) starts with a link or a GET, not a form posting to this site.

Referrer-Policy is no-referrer because the landing URL carries the marketplace purchase token (R1, R4): a
link or a sub-resource fetched from that page must never send it to anyone in a Referer header.
"""

from __future__ import annotations

import secrets
from urllib.parse import unquote, urlsplit

from shared.logs import get_logger

log = get_logger(__name__)

HSTS_MAX_AGE_SECONDS = 365 * 24 * 3600
_MAX_REDIRECT_LENGTH = 2048


def new_nonce() -> str:
    """128 random bits, URL-safe base64 (valid in a CSP nonce-source and an HTML attribute unescaped)."""
    return secrets.token_urlsafe(16)


def content_security_policy(nonce: str) -> str:
    directives = [
        "default-src 'none'",
        f"style-src 'nonce-{nonce}'",
        f"script-src 'nonce-{nonce}'",
        "img-src 'self' data:",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "connect-src 'self'",
    ]
    return "; ".join(directives)


# What every answer carries, page or API: never cached (per-buyer data), never sniffed, framed or sent with
# a referrer, and only over https.
_EVERY_RESPONSE = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Strict-Transport-Security": f"max-age={HSTS_MAX_AGE_SECONDS}; includeSubDomains",
}
# An API answer is data, never a document: it may load and run nothing.
API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"


def security_headers(nonce: str) -> dict[str, str]:
    """Headers for an HTML response rendered with `csp_nonce=nonce`; a fresh dict the caller may extend."""
    if not nonce or not nonce.replace("-", "").replace("_", "").isalnum():
        raise ValueError("nonce must be a non-empty URL-safe base64 value from new_nonce()")
    return {
        "Content-Security-Policy": content_security_policy(nonce),
        **_EVERY_RESPONSE,
        "Pragma": "no-cache",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    }


def api_security_headers() -> dict[str, str]:
    """Headers for a JSON answer (`shared.entrypoints.http`); a fresh dict the caller may extend."""
    return {**_EVERY_RESPONSE, "Content-Security-Policy": API_CONTENT_SECURITY_POLICY}


def _has_control_character(text: str) -> bool:
    return any(ord(char) < 0x20 or ord(char) == 0x7F for char in text)


def _redirect_problem(target: str) -> str | None:
    """Why `target` is not a same-site relative path, or None when it is safe."""
    if len(target) > _MAX_REDIRECT_LENGTH:
        return "too long"
    # Checked on the raw value and once decoded: some servers and browsers decode before they resolve.
    for candidate in (target, unquote(target)):
        if _has_control_character(candidate):
            return "control character"
        if "\\" in candidate:
            return "backslash"
        if not candidate.startswith("/"):
            return "not an absolute path"
        if candidate.startswith("//"):
            return "scheme-relative"
        parts = urlsplit(candidate)
        if parts.scheme or parts.netloc:
            return "absolute URL"
    return None


def safe_redirect_target(target: str | None, default: str) -> str:
    """`target` if it is a path on this site ("/portal?x=1"), else `default`: no open redirect."""
    if not target:
        return default
    problem = _redirect_problem(target)
    if problem is None:
        return target
    # The value itself is not logged: it may carry a purchase token or be crafted to forge log lines.
    log.warning("redirect target refused", extra={"reason": problem, "target_length": len(target)})
    return default
