"""What both token validators share: fetching an authority's OpenID metadata over TLS we trust.

The webhook validator (Microsoft's tokens) and the ID-token validator (the buyer's sign-in) each find their
signing keys through OpenID metadata; a failure to fetch it is our side's problem, never the caller's, so it
is one error type that entry points answer with 503 or a "try again" page.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.request
from typing import Any
from urllib.error import URLError
from urllib.parse import urlsplit

HTTP_TIMEOUT_SECONDS = 5.0


class SigningKeysUnavailableError(Exception):
    """The OpenID metadata or JWKS could not be fetched: our side is at fault, so the caller should retry."""


def default_ssl_context() -> ssl.SSLContext:
    """Trusts the CA bundle `requests` would use, so a local HTTPS sandbox works the same as Entra ID."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE") or None
    return ssl.create_default_context(cafile=bundle)


def fetch_openid_metadata(
    url: str, *, ssl_context: ssl.SSLContext, timeout: float = HTTP_TIMEOUT_SECONDS
) -> dict[str, Any]:
    """The metadata document as a JSON object; SigningKeysUnavailableError on any failure."""
    try:
        if urlsplit(url).scheme not in {"http", "https"}:
            raise ValueError("the OpenID metadata URL must be http(s)")
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - scheme checked above
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ssl_context))
        with opener.open(request, timeout=timeout) as response:
            metadata = json.load(response)
    except (URLError, OSError, ValueError) as exc:
        raise SigningKeysUnavailableError(f"OpenID metadata unavailable: {exc}") from exc
    if not isinstance(metadata, dict):
        raise SigningKeysUnavailableError("OpenID metadata unavailable: the document is not a JSON object")
    return metadata
