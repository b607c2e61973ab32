"""The stack the sign-in tests run against, and the Graph stand-in it includes.

`app_stack` (one per test module that imports it) serves the registered functions with the dev host on a
free port, with Azurite and the marketplace sandbox (Entra ID, Graph, Fulfillment API, control API), all over
real sockets on 127.0.0.1. `Buyer` is a browser stand-in built on requests: it follows the landing link and
drives the sandbox's sign-in page as a person would.
"""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import pytest
import requests

import function_app
from devhost.http_host import FunctionsWsgiApp, HttpHost
from devhost.local_queue import LocalQueue, register_local_queue
from sandbox.server import RunningSandbox
from shared.app_context import reset_services, services
from tests.support.ports import free_port
from tests.support.sandbox import ControlClient, running_sandbox
from tests.support.stack import app_environment

EXAMPLE_IDENTITIES = Path(__file__).resolve().parents[2] / "sandbox" / "identities.example.json"
ADELE = "11111111-0000-4000-8000-000000000001"  # Contoso, has a mailbox
MEGAN = "11111111-0000-4000-8000-000000000002"  # Contoso, mail null (R11)
ALEX = "22222222-0000-4000-8000-000000000001"  # Fabrikam
GUEST = "22222222-0000-4000-8000-000000000002"  # Fabrikam guest, UPN with #EXT#
NESTOR = "33333333-0000-4000-8000-000000000001"  # Northwind, CSP partner
PAT = "00000000-0000-0000-4a1b-000000000001"  # personal Microsoft account
CONTOSO = "11111111-0000-4000-8000-000000000000"
FABRIKAM = "22222222-0000-4000-8000-000000000000"
MSA_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
SESSION_SECRET = "signin-tests-session-secret-0123456789abcdef"


@dataclass
class AppStack:
    base_url: str
    sandbox: RunningSandbox
    control: ControlClient
    queue_path: Path
    sso_client_id: str

    def queue(self) -> LocalQueue:
        return LocalQueue(self.queue_path)

    def activations_queued(self, subscription_id: str) -> int:
        with self.queue() as queue:
            messages = [q.message for q in queue.peek_all()]
        return sum(1 for m in messages if m.kind == "activate" and m.session_id == subscription_id)


def _app_env(sandbox: RunningSandbox, port: int, queue_path: Path, storage: str) -> dict[str, str]:
    prefix = "s" + uuid.uuid4().hex[:10]
    settings = app_environment(
        sandbox, connection_string=storage, table_prefix=prefix, queue_path=queue_path, app_port=port
    )
    return {**settings, "SESSION_SECRET": SESSION_SECRET}


@pytest.fixture(scope="module")
def app_stack(azurite_connection_string: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppStack]:
    with running_app_stack(azurite_connection_string, tmp_path_factory.mktemp("signin-stack")) as stack:
        yield stack


@contextmanager
def running_app_stack(storage: str, directory: Path) -> Iterator[AppStack]:
    """The stack for one block, on the Table Storage of connection string `storage`."""
    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    # The sandbox's webhooks and sign-in callbacks follow this app's URL: nothing depends on port 7071.
    with running_sandbox(
        webhook_url=f"{app_url}/api/webhook", landing_url=f"{app_url}/api/landing"
    ) as sandbox:
        queue_path = directory / "queue.sqlite3"
        with pytest.MonkeyPatch.context() as env:
            env.delenv("CURL_CA_BUNDLE", raising=False)
            for name, value in _app_env(sandbox, port, queue_path, storage).items():
                env.setenv(name, value)
            register_local_queue()  # the confirm step queues the activation on QUEUE_BACKEND=local
            reset_services()
            host = HttpHost(FunctionsWsgiApp(function_app.app), port=port)
            host.start()
            try:
                yield AppStack(
                    host.url,
                    sandbox,
                    ControlClient(sandbox.http_url),
                    queue_path,
                    services().settings.sso_client_id,
                )
            finally:
                host.stop()
                reset_services()


class SignInForm(HTMLParser):
    """The sandbox sign-in page: the form's action, its hidden fields and the users offered."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}
        self.user_ids: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.action = attributes.get("action") or ""
        elif tag == "input" and attributes.get("type") == "hidden":
            self.fields[attributes.get("name") or ""] = attributes.get("value") or ""
        elif tag == "button" and attributes.get("name") == "user":
            self.user_ids.append(attributes.get("value") or "")


class FormFields(HTMLParser):
    """Every named input of an HTML page (the confirm form's CSRF token and contact email)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "input" and attributes.get("name"):
            self.values[attributes["name"] or ""] = attributes.get("value") or ""


class Buyer:
    """One browser: a cookie jar, following redirects by hand so each hop can be inspected."""

    def __init__(self, stack: AppStack) -> None:
        self.stack = stack
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.verify = str(stack.sandbox.ca_bundle)

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.http.get(urljoin(self.stack.base_url, url), allow_redirects=False, timeout=15, **kwargs)

    def post(self, url: str, data: dict[str, str]) -> requests.Response:
        return self.http.post(urljoin(self.stack.base_url, url), data=data, allow_redirects=False, timeout=15)

    def open_landing(self, landing_url: str) -> requests.Response:
        """Opens the link Microsoft gives the buyer, pointed at this run's dev host."""
        parts = urlsplit(landing_url)
        return self.get(f"/api/landing?{parts.query}")

    def choose_user(self, authorize_url: str, object_id: str) -> requests.Response:
        """On the sandbox's sign-in page, picks a user; returns Entra's redirect to our callback."""
        page = self.http.get(authorize_url, timeout=15)
        assert page.status_code == 200, page.text
        form = SignInForm(page.text)
        assert object_id in form.user_ids
        answer = self.http.post(
            urljoin(authorize_url, form.action),
            data={**form.fields, "user": object_id},
            allow_redirects=False,
            timeout=15,
        )
        assert answer.status_code == 302, answer.text
        return answer

    def sign_in_from(self, response: requests.Response, object_id: str) -> requests.Response:
        """From a redirect to Entra ID: choose the user, come back; returns the callback's answer."""
        assert response.status_code == 303, response.text
        callback = self.choose_user(response.headers["Location"], object_id).headers["Location"]
        return self.http.get(callback, allow_redirects=False, timeout=15)

    def follow(self, response: requests.Response) -> requests.Response:
        assert response.status_code in (302, 303), response.text
        return self.get(response.headers["Location"])

    def confirm_page(self, landing_url: str, object_id: str) -> requests.Response:
        """Landing link -> sign-in as `object_id` -> the confirm page."""
        after_callback = self.sign_in_from(self.open_landing(landing_url), object_id)
        return self.follow(after_callback)

    def confirm(self, page: requests.Response, **changes: str) -> requests.Response:
        fields = FormFields(page.text).values
        return self.post("/api/landing/confirm", {**fields, **changes})


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


# ----- the Graph stand-in, as the contact-email rule sees it ----------------------------------------------


def graph_token(stack: AppStack, object_id: str) -> str:
    """A Graph access token for a test user, got the way the app gets it: the code flow through msal."""
    import msal

    sso = json.loads(EXAMPLE_IDENTITIES.read_text())["sso_apps"][0]
    app = msal.ConfidentialClientApplication(
        sso["client_id"],
        client_credential=sso["client_secret"],
        authority=f"{stack.sandbox.https_url}/common",
        instance_discovery=False,
        verify=str(stack.sandbox.ca_bundle),
    )
    redirect_uri = f"{stack.base_url}/api/auth/callback"
    with warnings.catch_warnings():
        # Query mode on purpose, as the app uses it (see shared.identity.signin).
        warnings.filterwarnings("ignore", message="response_mode='form_post' is recommended")
        flow = app.initiate_auth_code_flow(["User.Read"], redirect_uri=redirect_uri, response_mode="query")
    buyer = Buyer(stack)
    callback = buyer.choose_user(flow["auth_uri"], object_id).headers["Location"]
    result = app.acquire_token_by_auth_code_flow(flow, query_of(callback))
    return str(result["access_token"])


def test_graph_me_answers_mail_and_upn_for_the_tokens_owner(app_stack: AppStack) -> None:
    token = graph_token(app_stack, MEGAN)
    answer = requests.get(
        f"{app_stack.sandbox.https_url}/v1.0/me",
        headers={"Authorization": f"Bearer {token}"},
        verify=str(app_stack.sandbox.ca_bundle),
        timeout=10,
    )
    assert answer.status_code == 200
    assert answer.json()["mail"] is None
    assert answer.json()["userPrincipalName"] == "megan.bowen@contoso.onmicrosoft.com"
    assert answer.json()["id"] == MEGAN


def test_graph_me_refuses_a_missing_or_foreign_token(app_stack: AppStack) -> None:
    url = f"{app_stack.sandbox.https_url}/v1.0/me"
    ca = str(app_stack.sandbox.ca_bundle)
    assert requests.get(url, verify=ca, timeout=10).status_code == 401
    publisher_token = app_stack.sandbox.entra.mint_publisher_access_token()
    foreign = requests.get(url, headers={"Authorization": f"Bearer {publisher_token}"}, verify=ca, timeout=10)
    assert foreign.status_code == 401
    assert foreign.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_graph_select_narrows_the_answer(app_stack: AppStack) -> None:
    token = graph_token(app_stack, ADELE)
    answer = requests.get(
        f"{app_stack.sandbox.https_url}/v1.0/me",
        params={"$select": "mail"},
        headers={"Authorization": f"Bearer {token}"},
        verify=str(app_stack.sandbox.ca_bundle),
        timeout=10,
    )
    assert {k for k in answer.json() if not k.startswith("@")} == {"mail"}
    assert answer.json()["mail"] == "adele.vance@contoso.com"
