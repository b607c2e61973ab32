"""Builders for the JSON answers entry points give, with the security headers every answer carries.

The headers come from `shared.web.security`, the one place that says what a response must carry (pages
add their nonce-based CSP there); an API answer may load and run nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import azure.functions as func

from shared.web.security import api_security_headers

# Built once: `json.dumps(..., default=str)` builds a new encoder on every call.
_ENCODER = json.JSONEncoder(default=str)


def json_response(
    body: Mapping[str, Any] | list[Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> func.HttpResponse:
    return func.HttpResponse(
        body=_ENCODER.encode(body),
        status_code=status,
        headers={**api_security_headers(), **(headers or {})},
        mimetype="application/json",
        charset="utf-8",
    )


def error_response(
    status: int, error: str, reason: str, headers: Mapping[str, str] | None = None
) -> func.HttpResponse:
    """A JSON error: `error` is a stable machine code, `reason` a sentence for the person reading logs."""
    return json_response({"error": error, "reason": reason}, status=status, headers=headers)
