"""The buyer's contact email (R11): Graph `/me` first, then what the ID token says, always editable.

Graph's `mail` is null for users without a mailbox and for many guests, while `userPrincipalName` is always
set but is not always a deliverable address (a guest's UPN holds `#EXT#`). So the order is: `mail`, the UPN
when it looks like an address, the ID token's `email`, then `preferred_username`. Personal Microsoft
accounts skip Graph (it tells nothing beyond the ID token). An empty answer means the confirm page asks.
The result is contact data only: it never identifies anyone (see `shared.domain.identity`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import requests

from shared.domain.identity import is_personal_tenant
from shared.identity.id_token import IdTokenClaims
from shared.logs import get_logger
from shared.tls import configure_session

log = get_logger(__name__)

GRAPH_TIMEOUT_SECONDS = (3.05, 5.0)
MAX_EMAIL_LENGTH = 254
# Deliberately plain: one @, a dot in the domain, no spaces, and no '#' (a guest UPN's "#EXT#" marker).
_ADDRESS = re.compile(r"^[A-Za-z0-9.!$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


@dataclass(frozen=True)
class GraphProfile:
    mail: str = ""
    user_principal_name: str = ""


def looks_like_address(value: str | None) -> bool:
    text = (value or "").strip()
    return len(text) <= MAX_EMAIL_LENGTH and bool(_ADDRESS.match(text))


def choose_contact_email(profile: GraphProfile | None, claims: IdTokenClaims) -> str:
    """The first candidate that looks like an address, in R11's order; "" when none does."""
    candidates = [
        profile.mail if profile else "",
        profile.user_principal_name if profile else "",
        claims.email,
        claims.preferred_username,
    ]
    return next((c.strip() for c in candidates if looks_like_address(c)), "")


def fetch_graph_profile(
    graph_base_url: str, access_token: str, *, session: requests.Session | None = None
) -> GraphProfile | None:
    """Graph `/me` (mail, UPN) for the signed-in user, or None when Graph cannot answer."""
    http = session or _graph_session()
    try:
        response = http.get(
            f"{graph_base_url.rstrip('/')}/me",
            params={"$select": "mail,userPrincipalName"},
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            timeout=GRAPH_TIMEOUT_SECONDS,
        )
    except requests.RequestException as exc:
        log.warning("graph /me unreachable; using the ID token", extra={"error": type(exc).__name__})
        return None
    if response.status_code != 200:
        log.warning("graph /me refused; using the ID token", extra={"status": response.status_code})
        return None
    try:
        body = response.json()
    except ValueError:
        log.warning("graph /me answered no JSON; using the ID token")
        return None
    return GraphProfile(
        mail=str(body.get("mail") or ""), user_principal_name=str(body.get("userPrincipalName") or "")
    )


def _graph_session() -> requests.Session:
    session: requests.Session = configure_session(requests.Session())
    return session


def contact_email_for(
    claims: IdTokenClaims,
    access_token: str | None,
    graph_base_url: str,
    *,
    session: requests.Session | None = None,
) -> str:
    """R11 end to end: Graph for work accounts that came with an access token, else the ID token alone."""
    profile = None
    if not is_personal_tenant(claims.tenant_id) and access_token:
        profile = fetch_graph_profile(graph_base_url, access_token, session=session)
    return choose_contact_email(profile, claims)
