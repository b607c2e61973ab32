"""`make dev` works on any free ports: a buyer signs in for real with every port of the stack moved.

The sandbox used to register the app's sign-in callback for port 7071 only, so with DEVHOST_PORT moved the
sign-in page answered AADSTS50011. Its registered redirect URIs now follow the app's URL.
"""

from __future__ import annotations

import signal
from pathlib import Path
from urllib.parse import urljoin

import requests

from sandbox.entra.redirect_uris import app_callback_uris
from tests.devhost.test_stack import _run_stack, _stop, stack_env
from tests.signin.test_app_stack import ADELE, SignInForm
from tests.support.ports import wait_for_port


def browser(ca_bundle: Path) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(ca_bundle)
    return session


def sign_in(http: requests.Session, landing_url: str, object_id: str) -> requests.Response:
    """Landing link -> Entra sign-in page -> choose the user -> back to the app; the app's last answer."""
    to_entra = http.get(landing_url, allow_redirects=False, timeout=15)
    assert to_entra.status_code == 303, to_entra.text
    page = http.get(to_entra.headers["Location"], timeout=15)
    assert page.status_code == 200, page.text
    assert "AADSTS50011" not in page.text, "the sandbox does not know the app's redirect URI"
    form = SignInForm(page.text)
    chosen = http.post(
        urljoin(to_entra.headers["Location"], form.action),
        data={**form.fields, "user": object_id},
        allow_redirects=False,
        timeout=15,
    )
    assert chosen.status_code == 302, chosen.text
    return http.get(chosen.headers["Location"], allow_redirects=False, timeout=15)


def test_a_buyer_signs_in_with_every_port_moved(tmp_path: Path) -> None:
    env = stack_env(tmp_path)  # free ports for Azurite, both sandbox listeners and the dev host
    assert env["DEVHOST_PORT"] != "7071"
    stack = _run_stack(env)
    try:
        for name in ("AZURITE_PORT", "SANDBOX_HTTP_PORT", "SANDBOX_HTTPS_PORT", "DEVHOST_PORT"):
            wait_for_port(int(env[name]), timeout=90)
        control = f"http://127.0.0.1:{env['SANDBOX_HTTP_PORT']}/control"
        http = browser(tmp_path / "sandbox" / "tls" / "ca.pem")
        bought = http.post(
            f"{control}/purchases",
            json={"planId": "team-seats", "quantity": 3, "buyer": "adele.vance@contoso.onmicrosoft.com"},
            timeout=15,
        ).json()
        app = f"http://127.0.0.1:{env['DEVHOST_PORT']}"
        assert bought["landingUrl"].startswith(f"{app}/api/landing?token=")

        back = sign_in(http, bought["landingUrl"], ADELE)

        assert back.status_code == 303, back.text
        assert back.headers["Location"] == "/api/landing/confirm"
        confirm = http.get(f"{app}/api/landing/confirm", allow_redirects=False, timeout=15)
        assert confirm.status_code == 200
        assert '<span data-plan="team-seats">Team (per seat)</span>' in confirm.text
    finally:
        _, err = _stop(stack, signal.SIGTERM)
    assert stack.returncode == 0, err


def test_the_callbacks_follow_the_landing_url() -> None:
    assert app_callback_uris("http://127.0.0.1:21071/api/landing") == [
        "http://127.0.0.1:21071/api/auth/callback",
        "http://localhost:21071/api/auth/callback",
    ]
    assert app_callback_uris("https://saas.contoso.example/api/landing") == [
        "https://saas.contoso.example/api/auth/callback"
    ]
    assert app_callback_uris("not a url") == []
