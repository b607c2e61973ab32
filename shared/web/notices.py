"""The sentence a page shows after an action (a 303 to `page?notice=...`), signed for the session that acted.

The query carries what happened (which notice, how many) so a refresh shows it again; a link anyone can
make must not, or a crafted URL could tell an operator "Cancellation sent to Microsoft" when nothing was
done. So the redirect adds `ns`, an HMAC of the page's path and the notice's fields under the session's CSRF
secret (`shared.web.csrf`), and the page shows a notice only when `ns` checks out for the visitor's own
session. No new secret is needed, nothing is stored, and a different session's link shows nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, MutableMapping
from typing import Any
from urllib.parse import urlencode

from shared.web.csrf import CSRF_SESSION_KEY

SIGNATURE_FIELD = "ns"


def signed_query(session: MutableMapping[str, Any], path: str, fields: Mapping[str, str]) -> str:
    """`fields` as a query string with their signature; without a CSRF secret (no form was ever posted in
    this session, so no action either), the fields go unsigned and the page will show no notice."""
    signature = _signature(session, path, fields)
    signed = {**fields, SIGNATURE_FIELD: signature} if signature else dict(fields)
    return urlencode(signed)


def verified(
    session: MutableMapping[str, Any], path: str, params: Mapping[str, str], names: tuple[str, ...]
) -> dict[str, str]:
    """The notice fields `names` of a request's query, or {} unless the signature is this session's."""
    fields = {name: params[name] for name in names if name in params}
    expected = _signature(session, path, fields)
    given = params.get(SIGNATURE_FIELD, "")
    if not fields or not expected or not hmac.compare_digest(expected, given):
        return {}
    return fields


def _signature(session: MutableMapping[str, Any], path: str, fields: Mapping[str, str]) -> str:
    secret = session.get(CSRF_SESSION_KEY)
    if not isinstance(secret, str) or not secret:
        return ""
    message = "\0".join(["notice", path, urlencode(sorted(fields.items()))]).encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()[:18]
    return base64.urlsafe_b64encode(digest).decode()
