"""HTML page responses: render a template with a fresh CSP nonce and every security header."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import azure.functions as func

from shared.web.security import new_nonce, security_headers
from shared.web.templates import render


def page(
    template: str,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> func.HttpResponse:
    nonce = new_nonce()
    return func.HttpResponse(
        body=render(template, csp_nonce=nonce, **context),
        status_code=status,
        headers={**security_headers(nonce), **(headers or {})},
        mimetype="text/html",
        charset="utf-8",
    )


def error_page(status: int, title: str, message: str, hint: str = "", **context: Any) -> func.HttpResponse:
    return page("error.html", status=status, title=title, message=message, hint=hint, **context)


def redirect(location: str, *, headers: Mapping[str, str] | None = None) -> func.HttpResponse:
    """303 See Other: after a POST the browser follows with a GET, so a refresh never re-submits."""
    nonce = new_nonce()
    return func.HttpResponse(
        status_code=303, headers={**security_headers(nonce), "Location": location, **(headers or {})}
    )
