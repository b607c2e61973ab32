"""Who is signed in to the portal: the session's claims about the user, and the redirect to sign in.

The session (a signed cookie, `shared.web.sessions`) holds only claims: tenant id, object id, name, email
and UPN, plus the CSRF secret (`shared.web.csrf`). Users are identified by tenant id + object id (R10); the
email and name are for display only. The Entra ID sign-in calls `sign_in` after validating the ID token.

A signed-in session also carries a random session id (`sid`), minted at each sign-in, and the time of that
sign-in (`iat`). The cookie alone is not enough: the session's record (in a `SessionRecords`) must still
exist, which costs one point read per request and lets sign-out end every copy of the cookie. Load the
session once per request (`load_session`, `require_session`) and pass it on; each load is a read. The
entry point passes in the settings and the session store (this module never reaches the composition root).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import azure.functions as func

from shared.config import Settings
from shared.domain.identity import Person
from shared.domain.sessions import StoredSession
from shared.logs import get_logger
from shared.web.csrf import CSRF_SESSION_KEY, issue
from shared.web.pages import redirect
from shared.web.security import safe_redirect_target
from shared.web.sessions import ISSUED_AT_KEY, SessionCodec

log = get_logger(__name__)

SIGN_IN_PATH = "/api/auth/signin"
DEFAULT_AFTER_SIGN_IN = "/api/portal"
SESSION_ID_KEY = "sid"
ROLES_KEY = "roles"
_IDENTITY_KEYS = ("tid", "oid", "name", "email", "upn", ROLES_KEY, SESSION_ID_KEY, ISSUED_AT_KEY)


class SessionRecords(Protocol):
    """Where sessions are recorded (Table Storage in the app, `shared.storage.sessions.SessionStore`).

    Declared here so that the web adapter depends on what it needs, not on the storage adapter.
    """

    def start(self, session_id: str, session: StoredSession) -> None: ...

    def get(self, session_id: str) -> StoredSession | None: ...

    def end(self, session_id: str) -> None: ...


@dataclass(frozen=True)
class SignedInUser:
    """The person behind a session; `tenant_id` + `object_id` is the key, the rest is for display."""

    tenant_id: str
    object_id: str
    name: str = ""
    email: str = ""
    upn: str = ""
    # The operations console's roles (`shared.domain.operators`), kept from the ID token at sign-in; empty
    # for every buyer. A role removed in Entra ends with the session (SESSION_LIFETIME_SECONDS at most).
    operator_roles: frozenset[str] = frozenset()

    @property
    def person(self) -> Person:
        """Who this is, as every identity check compares it: tenant id + object id."""
        return Person.of(self.tenant_id, self.object_id)

    @property
    def display(self) -> Mapping[str, str]:
        """What base.html shows in the header: the account Entra ID signed in (its UPN), never the contact
        email, which the user typed and which must not look like who they are."""
        return {"name": self.name or self.upn or "Signed-in user", "email": self.upn}


def session_codec(settings: Settings, *, clock: Callable[[], float] = time.time) -> SessionCodec:
    """The portal's cookie codec; Secure (and __Host-) whenever the site is served over https."""
    secure = urlsplit(settings.public_base_url).scheme == "https"
    return SessionCodec(
        settings.session_secret, secure=secure, max_age_seconds=settings.session_lifetime_seconds, clock=clock
    )


def load_session(req: func.HttpRequest, settings: Settings, *, store: SessionRecords) -> dict[str, Any]:
    """The request's session; {} when there is none, it was tampered with, has expired or was ended.

    A session without identity claims (a purchase remembered before sign-in) costs no I/O; a signed-in
    one costs one point read of its record (in `store`, which the entry point passes in).
    """
    session = session_codec(settings).load(req.headers.get("cookie"))
    if not any(key in session for key in _IDENTITY_KEYS):
        return session
    return session if _is_live(session, store) else {}


def _is_live(session: Mapping[str, Any], store: SessionRecords) -> bool:
    session_id = session.get(SESSION_ID_KEY)
    if not isinstance(session_id, str) or not isinstance(session.get(ISSUED_AT_KEY), int):
        # A cookie from before sessions had ids (or a bug): nothing could end it, so it counts as ended.
        log.info("session refused: no session id")
        return False
    record = store.get(session_id)
    if record is None:
        log.info("session refused: ended by sign-out or a later sign-in")
        return False
    user = user_from_session(session)
    if user is None or record.person != user.person:
        log.warning("session refused: the record belongs to someone else")
        return False
    if datetime.now(UTC) >= record.expires_at:
        log.info("session refused: past its absolute lifetime")
        return False
    return True


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
        operator_roles=_roles(session.get(ROLES_KEY)),
    )


def _roles(value: Any) -> frozenset[str]:
    if not isinstance(value, list):
        return frozenset()
    return frozenset(role for role in value if isinstance(role, str))


def new_session(
    session: Mapping[str, Any], user: SignedInUser, *, session_id: str, issued_at: int
) -> dict[str, Any]:
    """The claims of a new session for `user` (pure): identity, session id, issue time, a fresh CSRF secret.

    The session id and the CSRF secret are replaced, never carried over, so an id or a token planted
    before sign-in (session fixation) is worthless afterwards. Other keys of the old session (e.g. a
    pending `next`) are kept.
    """
    fresh = {k: v for k, v in session.items() if k not in (*_IDENTITY_KEYS, CSRF_SESSION_KEY)}
    fresh.update(
        tid=user.tenant_id.strip().lower(),
        oid=user.object_id.strip().lower(),
        name=user.name,
        email=user.email,
        upn=user.upn,
    )
    if user.operator_roles:
        fresh[ROLES_KEY] = sorted(user.operator_roles)
    fresh[SESSION_ID_KEY] = session_id
    fresh[ISSUED_AT_KEY] = issued_at
    issue(fresh)
    return fresh


def sign_in(
    session: Mapping[str, Any],
    user: SignedInUser,
    *,
    settings: Settings,
    store: SessionRecords,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Starts a new session for `user` and records it; the browser's previous session, if any, ends.

    `session` is the request's session as `load_session` returned it (so a previous `sid` is a live one).
    """
    lifetime = settings.session_lifetime_seconds
    issued_at = int(clock())
    fresh = new_session(session, user, session_id=secrets.token_urlsafe(32), issued_at=issued_at)
    started = datetime.fromtimestamp(issued_at, UTC)
    record = StoredSession(fresh["tid"], fresh["oid"], started, started + timedelta(seconds=lifetime))
    store.start(fresh[SESSION_ID_KEY], record)
    previous = session.get(SESSION_ID_KEY)
    if isinstance(previous, str):
        store.end(previous)
    return fresh


def sign_out(session: Mapping[str, Any], *, store: SessionRecords) -> None:
    """Ends the session on the server: every copy of its cookie stops working at once."""
    session_id = session.get(SESSION_ID_KEY)
    if isinstance(session_id, str):
        store.end(session_id)


def current_path(req: func.HttpRequest) -> str:
    """The request's path and query, if it is a same-site path; else the portal's home."""
    parts = urlsplit(req.url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return safe_redirect_target(path, DEFAULT_AFTER_SIGN_IN)


def sign_in_url(next_path: str) -> str:
    return f"{SIGN_IN_PATH}?next={quote(safe_redirect_target(next_path, DEFAULT_AFTER_SIGN_IN), safe='')}"


def require_session(
    req: func.HttpRequest, settings: Settings, *, store: SessionRecords
) -> tuple[SignedInUser, dict[str, Any]] | func.HttpResponse:
    """The signed-in user and their session (loaded once: one read), or a 303 to sign in and come back."""
    session = load_session(req, settings, store=store)
    user = user_from_session(session)
    if user is not None:
        return user, session
    log.info("sign-in required", extra={"path": urlsplit(req.url).path})
    return redirect(sign_in_url(current_path(req)))
