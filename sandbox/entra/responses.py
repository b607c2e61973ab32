"""What Entra's endpoints answer with besides tokens: its JSON error shape, JSON documents and HTML pages."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.wrappers import Response


class OAuthError(Exception):
    """An error answered as Entra-shaped JSON ({"error", "error_description", "error_codes", ...})."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.code = code
        self.description = description


def json_response(document: Mapping[str, Any], status: int = 200) -> Response:
    response = Response(json.dumps(document), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def json_error(error: OAuthError, http_exception: HTTPException | None = None) -> Response:
    trace_id = str(uuid.uuid4())
    document = {
        "error": error.error,
        "error_description": f"AADSTS{error.code}: {error.description} Trace ID: {trace_id}",
        "error_codes": [error.code],
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        "trace_id": trace_id,
        "correlation_id": str(uuid.uuid4()),
    }
    response = json_response(document, error.status)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="sandbox-entra"'
    if http_exception is not None and isinstance(http_exception, MethodNotAllowed):
        response.headers["Allow"] = ", ".join(http_exception.valid_methods or [])
    return response


def html_response(html: str, status: int) -> Response:
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response
