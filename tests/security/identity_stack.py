"""A portal whose users really sign in: the dev host, Azurite, and the sandbox playing Entra ID over https.

`running_identity_stack` is `tests.portal.running_portal` with two differences the identity tests need: the
app listens on a port chosen in advance, so the sandbox's SSO app accepts its callback, and the sandbox knows
extra test users (`TestPerson`), e.g. personal Microsoft accounts with random object ids. `sign_in` drives the
whole OpenID Connect flow (app -> sandbox authorize page -> callback) as a browser would, so sessions, stored
users and seat bindings come from real ID tokens, never from a cookie minted by the test.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from shared.web.current_user import SignedInUser
from tests.portal import Portal, running_portal
from tests.support.ports import free_port
from tests.support.stack import EXAMPLE_IDENTITIES

# Every personal Microsoft account carries this tenant id (a Microsoft fact, spelt out here so the tests
# do not lean on the code under test).
MSA_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"


@dataclass(frozen=True)
class TestPerson:
    """A sandbox test user as the identities file describes them."""

    __test__ = False

    object_id: str
    tenant_id: str
    username: str
    display_name: str
    mail: str | None = None
    personal: bool = False
    mail_domain_verified: bool = True

    def entry(self) -> dict[str, Any]:
        return {
            "object_id": self.object_id,
            "tenant_id": self.tenant_id,
            "username": self.username,
            "display_name": self.display_name,
            "mail": self.mail,
            "account_kind": "personal" if self.personal else "work",
            "mail_domain_verified": self.mail_domain_verified,
        }

    @property
    def signed_in(self) -> SignedInUser:
        return SignedInUser(self.tenant_id, self.object_id, self.display_name, self.mail or "", self.username)


def personal_account(name: str) -> TestPerson:
    """A personal Microsoft account with a random object id and address (all share the MSA tenant)."""
    tag = uuid.uuid4().hex[:8]
    address = f"{name}.{tag}@outlook.com"
    return TestPerson(str(uuid.uuid4()), MSA_TENANT_ID, address, f"{name.title()} {tag}", address, True)


def work_account(tenant_id: str, name: str, domain: str, **changes: Any) -> TestPerson:
    """A work account of `tenant_id` with a random object id; `username` may be given (a guest's)."""
    tag = uuid.uuid4().hex[:8]
    username = changes.pop("username", f"{name}.{tag}@{domain}")
    return TestPerson(str(uuid.uuid4()), tenant_id, username, f"{name.title()} {tag}", **changes)


def example_user(object_id: str, tenant_id: str, username: str) -> TestPerson:
    """One of the users `sandbox/identities.example.json` already lists (not written again)."""
    return TestPerson(object_id, tenant_id, username, username.split("@")[0])


def write_identities(directory: Path, port: int, people: list[TestPerson]) -> Path:
    document = json.loads(EXAMPLE_IDENTITIES.read_text())
    document["sso_apps"][0]["redirect_uris"].append(f"http://127.0.0.1:{port}/api/auth/callback")
    document["users"].extend(person.entry() for person in people)
    path = directory / "identities.json"
    path.write_text(json.dumps(document))
    return path


@contextmanager
def running_identity_stack(
    connection_string: str, table_prefix: str, directory: Path, people: list[TestPerson]
) -> Iterator[Portal]:
    """The portal stack with these people registered at the sandbox's Entra ID, signing in for real."""
    port = free_port()
    identities = write_identities(directory, port, people)
    with running_portal(connection_string, table_prefix, port=port, identities_path=identities) as portal:
        yield portal


class _Form(HTMLParser):
    """The first form's action and every input (hidden fields and values) of an HTML page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form" and not self.action:
            self.action = attributes.get("action") or ""
        elif tag == "input" and attributes.get("name"):
            self.fields[attributes["name"] or ""] = attributes.get("value") or ""


def browser(portal: Portal) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(portal.sandbox.ca_bundle)
    return session


def finish_sign_in(
    portal: Portal, client: requests.Session, to_entra: requests.Response, object_id: str
) -> str:
    """From the app's redirect to Entra: pick the user on the sign-in page, follow the callback.

    Returns where the app sends the browser after the callback (it has set the session cookie).
    """
    assert to_entra.status_code == 303, to_entra.text
    authorize_url = to_entra.headers["Location"]
    page = client.get(authorize_url, timeout=15)
    assert page.status_code == 200, page.text
    form = _Form(page.text)
    answer = client.post(
        urljoin(authorize_url, form.action),
        data={**form.fields, "user": object_id},
        allow_redirects=False,
        timeout=15,
    )
    assert answer.status_code == 302, answer.text
    callback = client.get(answer.headers["Location"], allow_redirects=False, timeout=15)
    assert callback.status_code == 303, callback.text
    return str(callback.headers["Location"])


def sign_in(portal: Portal, person: TestPerson, client: requests.Session | None = None) -> requests.Session:
    """A browser signed in to the portal as `person` through the sandbox's Entra ID."""
    client = client or browser(portal)
    start = client.get(f"{portal.url}/api/auth/signin?next=/api/portal", allow_redirects=False, timeout=15)
    finish_sign_in(portal, client, start, person.object_id)
    return client


def land_and_confirm(
    portal: Portal, person: TestPerson, landing_url: str, contact_email: str
) -> requests.Response:
    """Opens a landing link, signs in as `person`, and confirms the purchase typing `contact_email`."""
    client = browser(portal)
    landing = client.get(f"{portal.url}/api/landing?{urlsplit(landing_url).query}", allow_redirects=False)
    next_path = finish_sign_in(portal, client, landing, person.object_id)
    page = client.get(urljoin(portal.url, next_path), allow_redirects=False, timeout=15)
    assert page.status_code == 200, page.text
    fields = {**_Form(page.text).fields, "contact_email": contact_email}
    return client.post(f"{portal.url}/api/landing/confirm", data=fields, allow_redirects=False, timeout=15)
