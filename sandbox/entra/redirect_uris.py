"""Redirect-URI registration: which SSO apps exist and where each may send a signed-in user back to.

An app's redirect URIs are those of the identities file plus the function app's own sign-in callback, read
at each sign-in so they follow the app's URL (a moved port, a changed landing page setting). A request for
an unknown app or an unregistered URI gets an error page, never a redirect (no open redirect).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from urllib.parse import urlsplit

from sandbox.identities import Identities, SsoApp

# Where the function app's sign-in comes back (shared.identity.signin: {PUBLIC_BASE_URL}/api/auth/callback).
APP_CALLBACK_PATH = "/api/auth/callback"
_LOOPBACK_NAMES = ("127.0.0.1", "localhost")


class SignInPageError(Exception):
    """An authorize request that cannot be trusted to redirect anywhere: answered with a 400 page."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def app_callback_uris(landing_url: str) -> list[str]:
    """Sign-in callbacks of the app whose landing page is `landing_url`: its origin, either loopback name.

    Registering them as the landing URL changes is what lets `make dev` and the tests run the app on any
    port; a real app registration lists its one production URL instead.
    """
    parts = urlsplit(landing_url)
    if not parts.scheme or not parts.hostname:
        return []
    port = f":{parts.port}" if parts.port else ""
    hosts = _LOOPBACK_NAMES if parts.hostname in _LOOPBACK_NAMES else (parts.hostname,)
    return [f"{parts.scheme}://{host}{port}{APP_CALLBACK_PATH}" for host in hosts]


def registered_client(
    identities: Identities, app_redirect_uris: Callable[[], Iterable[str]], parameters: Mapping[str, str]
) -> tuple[SsoApp, str]:
    """The SSO app `client_id` names and the `redirect_uri`, once both are known to be registered."""
    client_id = parameters.get("client_id", "")
    app = identities.sso_app(client_id)
    if app is None:
        raise SignInPageError(
            700016, f"Application with identifier '{client_id}' was not found in the sandbox."
        )
    redirect_uri = parameters.get("redirect_uri", "")
    if redirect_uri not in {*app.redirect_uris, *app_redirect_uris()}:
        raise SignInPageError(
            50011,
            f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect "
            f"URIs configured for the application '{client_id}'.",
        )
    return app, redirect_uri
