"""Portal test harness: the registered functions served by the dev host, with Azurite and the sandbox.

`running_portal` starts the marketplace sandbox (plays Microsoft: plans, PATCH, DELETE over HTTPS), points the
app at it and at Azurite, and serves `function_app.app` on a free port with a function key. Users are signed
in the way the Entra sign-in will do it: a session cookie minted by the app's own SessionCodec through
`current_user.sign_in`. The queue is the in-memory adapter, so tests read the `track` messages back.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from devhost.http_host import FunctionsWsgiApp, HttpHost
from sandbox.server import RunningSandbox
from shared.app_context import Services, reset_services, services
from shared.domain.transitions import Cause
from shared.domain.users import User
from shared.web.current_user import SignedInUser, session_codec, sign_in
from shared.workflows.sync import sync_from_microsoft
from tests.support.sandbox import ControlClient, WebhookReceiver, running_sandbox
from tests.support.stack import app_environment as stack_environment

SESSION_SECRET = "portal-test-session-secret-0123456789abcdef"
FUNCTION_KEY = "portal-test-function-key"
CONTOSO = "11111111-0000-4000-8000-000000000000"
FABRIKAM = "22222222-0000-4000-8000-000000000000"
NORTHWIND = "33333333-0000-4000-8000-000000000000"
ADELE = SignedInUser(
    CONTOSO, "11111111-0000-4000-8000-000000000001", "Adele Vance", "adele.vance@contoso.com"
)
MEGAN = SignedInUser(
    CONTOSO, "11111111-0000-4000-8000-000000000002", "Megan Bowen", "", "megan.bowen@contoso.onmicrosoft.com"
)
ALEX = SignedInUser(
    FABRIKAM, "22222222-0000-4000-8000-000000000001", "Alex Wilber", "alex.wilber@fabrikam.com"
)
NESTOR = SignedInUser(
    NORTHWIND, "33333333-0000-4000-8000-000000000001", "Nestor Wilke", "nestor.wilke@northwindpartners.com"
)
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Portal:
    """A running app plus the sandbox it talks to."""

    url: str  # http://127.0.0.1:<port>
    sandbox: RunningSandbox
    control: ControlClient

    @property
    def services(self) -> Services:
        return services()

    def browser(self, user: SignedInUser | None = None, *, signed_in_ago: float = 0.0) -> requests.Session:
        """An HTTP client; with `user`, signed in (`signed_in_ago` seconds ago) through a real session cookie.
        Redirects not followed."""
        session = requests.Session()
        session.trust_env = False
        if user is not None:
            name, value = session_cookie(user, signed_in_ago=signed_in_ago)
            session.cookies.set(name, value, domain="127.0.0.1", path="/")
        return session

    def buy(self, plan_id: str = "team-seats", *, quantity: int | None = 5, **purchase: Any) -> str:
        """A purchase Microsoft has activated and the app has mirrored; returns its subscription id."""
        purchase.setdefault("buyer", "adele.vance@contoso.onmicrosoft.com")
        bought = self.control.buy(plan_id, quantity=quantity, **purchase)
        return self._activate(bought["subscriptionId"], plan_id, quantity)

    def buy_as_csp(
        self, plan_id: str = "team-seats", *, quantity: int | None = 5, customer: str = FABRIKAM
    ) -> str:
        bought = self.control.buy_as_csp(plan_id, customer_tenant_id=customer, quantity=quantity)
        return self._activate(bought["subscriptionId"], plan_id, quantity)

    def _activate(self, subscription_id: str, plan_id: str, quantity: int | None) -> str:
        app = services()
        app.fulfillment.activate(subscription_id, plan_id, quantity)
        cause = Cause("", "Activate", "test", datetime.now(UTC))
        sync_from_microsoft(app.sync_ports, subscription_id, cause, "portal-test")
        return subscription_id

    def page_url(self, subscription_id: str) -> str:
        return f"{self.url}/api/portal/subscriptions/{subscription_id}"


def session_cookie(user: SignedInUser, *, signed_in_ago: float = 0.0) -> tuple[str, str]:
    """The (name, value) of the cookie the app sets after a successful sign-in of `user`."""
    app = services()
    clock = lambda: time.time() - signed_in_ago  # noqa: E731 - the sign-in's own clock, moved back
    session = sign_in({}, user, settings=app.settings, store=app.sessions, clock=clock)
    set_cookie = session_codec(app.settings).dump(session)
    name, _, rest = set_cookie.partition("=")
    return name, rest.split(";", 1)[0]


def token_for(client: requests.Session) -> str:
    """A valid CSRF token of the client's own session (for posts without opening a page first)."""
    from shared.web import csrf

    codec = session_codec(services().settings)
    session = codec.load(f"{codec.cookie_name}={client.cookies.get(codec.cookie_name)}")
    assert session, "the client has no valid session"
    return csrf.issue(session)


def remember_user(user: SignedInUser) -> None:
    """What the sign-in stores for a user who signed in before (the portal's pick lists read it)."""
    services().users.upsert(User(user.tenant_id, user.object_id, user.name, user.email, user.upn))


def csrf_token(html: str) -> str:
    match = _CSRF_FIELD.search(html)
    assert match, "the page carries no CSRF token"
    return match.group(1)


def post_form(
    client: requests.Session, page_url: str, action: str, fields: dict[str, str], *, token: str | None = None
) -> requests.Response:
    """Opens the page (for its CSRF token unless one is given) and posts a form to `<page>/<action>`."""
    if token is None:
        token = csrf_token(client.get(page_url, allow_redirects=False).text)
    return client.post(f"{page_url}/{action}", data={"csrf_token": token, **fields}, allow_redirects=False)


def app_environment(
    sandbox: RunningSandbox, *, connection_string: str, table_prefix: str, public_url: str
) -> dict[str, str]:
    """The stack's settings with the in-memory queue (tests read `track` messages back) and a function key."""
    settings = stack_environment(
        sandbox,
        connection_string=connection_string,
        table_prefix=table_prefix,
        queue_path=Path("unused"),
        app_port=urlsplit(public_url).port or 0,
    )
    return {
        **settings,
        "QUEUE_BACKEND": "memory",
        "SESSION_SECRET": SESSION_SECRET,
        "PUBLIC_BASE_URL": public_url,
        "DEVHOST_FUNCTION_KEY": FUNCTION_KEY,
        "FULFILLMENT_MAX_ATTEMPTS": "2",
    }


@contextmanager
def running_portal(
    connection_string: str,
    table_prefix: str,
    *,
    env: dict[str, str] | None = None,
    port: int = 0,
    **sandbox_settings: Any,
) -> Iterator[Portal]:
    """The app (on `port`, any free one by default) and the sandbox for one block; changes pending at
    Microsoft stay InProgress for 60 s."""
    import function_app

    sandbox_settings.setdefault("auto_accept_seconds", 60.0)
    with (
        WebhookReceiver() as receiver,
        running_sandbox(webhook_url=receiver.url, **sandbox_settings) as sandbox,
        pytest.MonkeyPatch.context() as patch,
    ):
        host = HttpHost(FunctionsWsgiApp(function_app.app, function_key=FUNCTION_KEY), port=port)
        settings = app_environment(
            sandbox, connection_string=connection_string, table_prefix=table_prefix, public_url=host.url
        )
        patch.delenv("CURL_CA_BUNDLE", raising=False)  # requests would trust it over the sandbox's CA
        for name, value in {**settings, **(env or {})}.items():
            patch.setenv(name, value)
        reset_services()
        host.start()
        try:
            yield Portal(url=host.url, sandbox=sandbox, control=ControlClient(sandbox.http_url))
        finally:
            host.stop()
            reset_services()
