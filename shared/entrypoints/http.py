"""Builders for the HTTP answers every entry point gives: JSON, HTML and errors, all with security headers.

Keeping the headers in one place means no page or API answer can forget them: responses are never cached
(they carry per-buyer or per-operation data), never framed, never MIME-sniffed and never leak a referrer
(the landing URL carries the marketplace purchase token, R7).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import azure.functions as func

SECURITY_HEADERS: Mapping[str, str] = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
}

# Pages load scripts and styles from this app only; nothing may frame them.
HTML_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
JSON_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"


def _headers(content_security_policy: str, extra: Mapping[str, str] | None) -> dict[str, str]:
    return {**SECURITY_HEADERS, "Content-Security-Policy": content_security_policy, **(extra or {})}


def json_response(
    body: Mapping[str, Any] | list[Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> func.HttpResponse:
    return func.HttpResponse(
        body=json.dumps(body, default=str),
        status_code=status,
        headers=_headers(JSON_CONTENT_SECURITY_POLICY, headers),
        mimetype="application/json",
        charset="utf-8",
    )


def html_response(
    html: str, status: int = 200, headers: Mapping[str, str] | None = None
) -> func.HttpResponse:
    return func.HttpResponse(
        body=html,
        status_code=status,
        headers=_headers(HTML_CONTENT_SECURITY_POLICY, headers),
        mimetype="text/html",
        charset="utf-8",
    )


def error_response(
    status: int, error: str, reason: str, headers: Mapping[str, str] | None = None
) -> func.HttpResponse:
    """A JSON error: `error` is a stable machine code, `reason` a sentence for the person reading logs."""
    return json_response({"error": error, "reason": reason}, status=status, headers=headers)
