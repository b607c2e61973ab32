"""Who is signed in to the portal: the session's claims about the user, and the redirect to sign in.

The session (a signed cookie, `shared.web.sessions`) holds only claims: tenant id, object id, name, email
and UPN, plus the CSRF secret (`shared.web.csrf`). Users are identified by tenant id + object id (R10); the
email and name are for display only. The Entra ID sign-in calls `sign_in` after validating the ID token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import azure.functions as func

from shared.config import Settings
from shared.logs import get_logger
from shared.web.csrf import CSRF_SESSION_KEY, issue
from shared.web.pages import redirect
from shared.web.security import safe_redirect_target
from shared.web.sessions import SessionCodec

log = get_logger(__name__)

SIGN_IN_PATH = "/api/auth/signin"
DEFAULT_AFTER_SIGN_IN = "/api/portal"
_IDENTITY_KEYS = ("tid", "oid", "name", "email", "upn")


@dataclass(frozen=True)
class SignedInUser:
    """The person behind a session; `tenant_id` + `object_id` is the key, the rest is for display."""

    tenant_id: str
    object_id: str
    name: str = ""
    email: str = ""
    upn: str = ""

    @property
    def display(self) -> Mapping[str, str]:
        """What base.html shows in the header."""
        return {"name": self.name or self.upn or self.email or "Signed-in user", "email": self.email}


def session_codec(settings: Settings) -> SessionCodec:
    """The portal's cookie codec; Secure (and __Host-) whenever the site is served over https."""
    secure = urlsplit(settings.public_base_url).scheme == "https"
    return SessionCodec(settings.session_secret, secure=secure)


def _settings() -> Settings:
    from shared.app_context import services

    return services().settings


def load_session(req: func.HttpRequest, settings: Settings | None = None) -> dict[str, Any]:
    """The request's session; {} when there is none or it was tampered with or has expired."""
    return session_codec(settings or _settings()).load(req.headers.get("cookie"))


def user_from_session(session: Mapping[str, Any]) -> SignedInUser | None:
    tenant_id, object_id = session.get("tid"), session.get("oid")
    if not isinstance(tenant_id, str) or not isinstance(object_id, str) or not tenant_id or not object_id:
        return None
    return SignedInUser(
        tenant_id=tenant_id.strip().lower(),
        object_id=object_id.strip().lower(),
        name=str(session.get("name") or ""),
        email=str(session.get("email") or ""),
        upn=str(session.get("upn") or ""),
    )


def current_user(req: func.HttpRequest, settings: Settings | None = None) -> SignedInUser | None:
    return user_from_session(load_session(req, settings))


def sign_in(session: Mapping[str, Any], user: SignedInUser) -> dict[str, Any]:
    """A new session for `user`: identity claims set and a fresh CSRF secret.

    The CSRF secret is replaced, never carried over, so a token planted before sign-in (session fixation)
    does not verify afterwards. Other keys of the old session (e.g. a pending `next`) are kept.
    """
    fresh = {k: v for k, v in session.items() if k not in (*_IDENTITY_KEYS, CSRF_SESSION_KEY)}
    fresh.update(
        tid=user.tenant_id.strip().lower(),
        oid=user.object_id.strip().lower(),
        name=user.name,
        email=user.email,
        upn=user.upn,
    )
    issue(fresh)
    return fresh


def current_path(req: func.HttpRequest) -> str:
    """The request's path and query, if it is a same-site path; else the portal's home."""
    parts = urlsplit(req.url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return safe_redirect_target(path, DEFAULT_AFTER_SIGN_IN)


def sign_in_url(next_path: str) -> str:
    return f"{SIGN_IN_PATH}?next={quote(safe_redirect_target(next_path, DEFAULT_AFTER_SIGN_IN), safe='')}"


def require_user(req: func.HttpRequest, settings: Settings | None = None) -> SignedInUser | func.HttpResponse:
    """The signed-in user, or a 303 to the sign-in page that comes back to this same page afterwards."""
    user = current_user(req, settings)
    if user is not None:
        return user
    log.info("sign-in required", extra={"path": urlsplit(req.url).path})
    return redirect(sign_in_url(current_path(req)))
