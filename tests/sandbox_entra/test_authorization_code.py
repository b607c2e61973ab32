"""The landing page's SSO sign-in, driven with the real msal library through the stand-in's sign-in page."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import jwt
import msal
import pytest
import requests

from sandbox.identities import MSA_TENANT_ID, SsoApp, TestUser
from sandbox.tls import TlsFiles, write_trust_bundle
from tests.sandbox_entra.conftest import RunningEntra

CONTOSO = "11111111-0000-4000-8000-000000000000"
ADELE = "11111111-0000-4000-8000-000000000001"  # work account with a mailbox
MEGAN = "11111111-0000-4000-8000-000000000002"  # work account with mail null (R11)
PAT = "00000000-0000-0000-4a1b-000000000001"  # personal Microsoft account


@pytest.fixture(autouse=True)
def _msal_honours_verify(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override a Session's `verify`, which is how msal
    # passes `verify=`; with either set (common on CI images) msal would not trust the sandbox CA.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


class _SignInPage(HTMLParser):
    """Reads the sign-in form: its action, hidden fields and the user buttons offered."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.user_ids: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            self.action = attributes.get("action")
        elif tag == "input" and attributes.get("type") == "hidden":
            self.fields[attributes["name"] or ""] = attributes.get("value") or ""
        elif tag == "button" and attributes.get("name") == "user":
            self.user_ids.append(attributes.get("value") or "")


@dataclass
class SignIn:
    app: msal.ConfidentialClientApplication
    flow: dict[str, Any]
    auth_response: dict[str, str]


def _sso_app(entra: RunningEntra) -> SsoApp:
    return entra.identities.sso_apps[0]


def _msal_app(entra: RunningEntra, tenant: str) -> msal.ConfidentialClientApplication:
    sso = _sso_app(entra)
    return msal.ConfidentialClientApplication(
        sso.client_id,
        client_credential=sso.client_secret,
        authority=f"{entra.base_url}/{tenant}",
        instance_discovery=False,
        verify=entra.ca_cert,
    )


def _open_page(entra: RunningEntra, url: str) -> _SignInPage:
    response = requests.get(url, verify=entra.ca_cert, timeout=10, allow_redirects=False)
    assert response.status_code == 200, response.text
    return _SignInPage(response.text)


def _choose(entra: RunningEntra, auth_uri: str, page: _SignInPage, user_id: str) -> requests.Response:
    return requests.post(
        urljoin(auth_uri, page.action),
        data={**page.fields, "user": user_id},
        verify=entra.ca_cert,
        timeout=10,
        allow_redirects=False,
    )


def _redirect_parameters(response: requests.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    return dict(parse_qsl(urlsplit(response.headers["Location"]).query))


def _posted_parameters(response: requests.Response, redirect_uri: str) -> dict[str, str]:
    assert response.status_code == 200, response.text
    page = _SignInPage(response.text)
    assert page.action == redirect_uri
    return page.fields


def _flow(app: msal.ConfidentialClientApplication, entra: RunningEntra, scopes: list[str]) -> dict[str, Any]:
    # form_post is what msal recommends for web apps (the code never lands in a URL or a log).
    return app.initiate_auth_code_flow(
        scopes, redirect_uri=_sso_app(entra).redirect_uris[0], response_mode="form_post"
    )


def _sign_in(entra: RunningEntra, tenant: str, user_id: str) -> SignIn:
    app = _msal_app(entra, tenant)
    flow = _flow(app, entra, ["User.Read", "email"])
    page = _open_page(entra, flow["auth_uri"])
    response = _choose(entra, flow["auth_uri"], page, user_id)
    return SignIn(app, flow, _posted_parameters(response, flow["redirect_uri"]))


def _user(entra: RunningEntra, object_id: str) -> TestUser:
    user = entra.identities.user(object_id)
    assert user is not None
    return user


def _verified_id_token(entra: RunningEntra, id_token: str, tenant_id: str) -> dict[str, Any]:
    keys = requests.get(
        f"{entra.base_url}/common/discovery/v2.0/keys", verify=entra.ca_cert, timeout=10
    ).json()
    key = jwt.PyJWKSet.from_dict(keys).keys[0].key
    return jwt.decode(
        id_token,
        key,
        algorithms=["RS256"],
        audience=_sso_app(entra).client_id,
        issuer=f"{entra.base_url}/{tenant_id}/v2.0",
    )


@pytest.mark.parametrize("user_id", [ADELE, PAT], ids=["work account", "personal MSA account"])
def test_msal_code_flow_through_common_signs_in_the_chosen_user(entra: RunningEntra, user_id: str) -> None:
    user = _user(entra, user_id)
    sign_in = _sign_in(entra, "common", user_id)

    result = sign_in.app.acquire_token_by_auth_code_flow(sign_in.flow, sign_in.auth_response)

    assert "error" not in result, result
    claims = _verified_id_token(entra, result["id_token"], user.tenant_id)
    assert claims["tid"] == user.tenant_id
    assert claims["oid"] == user.object_id
    assert claims["preferred_username"] == user.username
    assert claims["name"] == user.display_name
    assert claims["email"] == user.mail
    assert claims["xms_edov"] is True  # Entra's "email domain owner verified", only beside `email`
    assert result["id_token_claims"]["oid"] == user.object_id
    [account] = sign_in.app.get_accounts()
    assert account["home_account_id"] == f"{user.object_id}.{user.tenant_id}"


def test_personal_account_carries_the_msa_tenant(entra: RunningEntra) -> None:
    sign_in = _sign_in(entra, "consumers", PAT)

    result = sign_in.app.acquire_token_by_auth_code_flow(sign_in.flow, sign_in.auth_response)

    assert result["id_token_claims"]["tid"] == MSA_TENANT_ID
    assert result["id_token_claims"]["iss"] == f"{entra.base_url}/{MSA_TENANT_ID}/v2.0"


def test_user_without_mailbox_has_no_email_claim(entra: RunningEntra) -> None:
    sign_in = _sign_in(entra, CONTOSO, MEGAN)

    result = sign_in.app.acquire_token_by_auth_code_flow(sign_in.flow, sign_in.auth_response)

    assert result["id_token_claims"]["oid"] == MEGAN
    assert "email" not in result["id_token_claims"]
    assert "xms_edov" not in result["id_token_claims"]
    assert result["id_token_claims"]["preferred_username"] == "megan.bowen@contoso.onmicrosoft.com"


def test_access_token_is_a_graph_token_for_the_user(entra: RunningEntra) -> None:
    sign_in = _sign_in(entra, "organizations", ADELE)

    result = sign_in.app.acquire_token_by_auth_code_flow(sign_in.flow, sign_in.auth_response)

    claims = entra.stand_in.verify_graph_access_token(f"Bearer {result['access_token']}")
    assert claims["oid"] == ADELE
    assert "User.Read" in claims["scp"].split()


@pytest.mark.parametrize(
    ("tenant", "expected"),
    [
        ("organizations", lambda u: u.account_kind == "work"),
        ("consumers", lambda u: u.account_kind == "personal"),
        (CONTOSO, lambda u: u.tenant_id == CONTOSO),
        ("common", lambda u: True),
    ],
)
def test_sign_in_page_offers_the_users_the_tenant_segment_allows(
    entra: RunningEntra, tenant: str, expected
) -> None:
    flow = _flow(_msal_app(entra, tenant), entra, [])

    page = _open_page(entra, flow["auth_uri"])

    assert page.user_ids == [u.object_id for u in entra.identities.users if expected(u)]
    assert page.user_ids


def test_user_outside_the_tenant_segment_is_refused_at_the_redirect_uri(entra: RunningEntra) -> None:
    flow = _flow(_msal_app(entra, "organizations"), entra, [])
    page = _open_page(entra, flow["auth_uri"])

    parameters = _posted_parameters(_choose(entra, flow["auth_uri"], page, PAT), flow["redirect_uri"])

    assert parameters["error"] == "access_denied"
    assert parameters["state"] == flow["state"]
    assert "code" not in parameters


def test_redirect_echoes_state_and_msal_refuses_a_tampered_one(entra: RunningEntra) -> None:
    sign_in = _sign_in(entra, "common", ADELE)
    assert sign_in.auth_response["state"] == sign_in.flow["state"]

    tampered = {**sign_in.auth_response, "state": sign_in.flow["state"] + "x"}

    with pytest.raises(ValueError, match="state"):
        sign_in.app.acquire_token_by_auth_code_flow(sign_in.flow, tampered)


def test_code_is_single_use(entra: RunningEntra) -> None:
    sign_in = _sign_in(entra, "common", ADELE)
    first = sign_in.app.acquire_token_by_auth_code_flow(sign_in.flow, sign_in.auth_response)

    replay = sign_in.app.acquire_token_by_auth_code_flow(sign_in.flow, sign_in.auth_response)

    assert "access_token" in first
    assert replay["error"] == "invalid_grant"
    assert replay["error_codes"] == [54005]


def test_code_expires(entra: RunningEntra) -> None:
    sign_in = _sign_in(entra, "common", ADELE)
    entra.clock.advance(301)

    result = sign_in.app.acquire_token_by_auth_code_flow(sign_in.flow, sign_in.auth_response)

    assert result["error"] == "invalid_grant"
    assert result["error_codes"] == [70008]


def _redeem(entra: RunningEntra, sign_in: SignIn, **changes: str) -> requests.Response:
    sso = _sso_app(entra)
    form = {
        "grant_type": "authorization_code",
        "client_id": sso.client_id,
        "client_secret": sso.client_secret,
        "code": sign_in.auth_response["code"],
        "redirect_uri": sso.redirect_uris[0],
        "code_verifier": sign_in.flow["code_verifier"],
        **changes,
    }
    return requests.post(
        f"{entra.base_url}/common/oauth2/v2.0/token", data=form, verify=entra.ca_cert, timeout=10
    )


@pytest.mark.parametrize(
    ("changes", "status", "error"),
    [
        ({"code_verifier": "a-different-verifier-of-sufficient-length-0123456789"}, 400, "invalid_grant"),
        ({"code_verifier": ""}, 400, "invalid_grant"),
        ({"redirect_uri": "http://localhost:7071/api/auth/callback"}, 400, "invalid_grant"),
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"code": "made-up"}, 400, "invalid_grant"),
    ],
    ids=["wrong PKCE verifier", "no PKCE verifier", "other redirect_uri", "wrong secret", "unknown code"],
)
def test_bad_redemption_is_refused(entra: RunningEntra, changes: dict, status: int, error: str) -> None:
    sign_in = _sign_in(entra, "common", ADELE)

    response = _redeem(entra, sign_in, **changes)

    assert response.status_code == status
    assert response.json()["error"] == error
    assert "id_token" not in response.json()


def test_good_redemption_by_hand_returns_client_info_only_when_asked(entra: RunningEntra) -> None:
    sign_in = _sign_in(entra, "common", ADELE)

    body = _redeem(entra, sign_in).json()

    assert body["token_type"] == "Bearer"
    assert "client_info" not in body
    assert "id_token" in body


def _authorize_url(entra: RunningEntra, **changes: str) -> str:
    sso = _sso_app(entra)
    parameters = {
        "client_id": sso.client_id,
        "response_type": "code",
        "redirect_uri": sso.redirect_uris[0],
        "scope": "openid profile email",
        "state": "s-123",
        "nonce": "n-456",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
        **changes,
    }
    return f"{entra.base_url}/common/oauth2/v2.0/authorize?{urlencode(parameters)}"


@pytest.mark.parametrize(
    "changes",
    [
        {"redirect_uri": "https://attacker.example/<script>alert(1)</script>"},
        {"redirect_uri": "http://127.0.0.1:7071/api/auth/callback/extra"},
        {"redirect_uri": ""},
        {"client_id": "<b>not-an-app</b>"},
    ],
    ids=["foreign host", "longer path", "missing", "unknown client"],
)
def test_untrusted_client_or_redirect_uri_gets_a_400_page_and_no_redirect(
    entra: RunningEntra, changes: dict
) -> None:
    response = requests.get(
        _authorize_url(entra, **changes), verify=entra.ca_cert, timeout=10, allow_redirects=False
    )

    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<script>alert" not in response.text
    assert "<b>not-an-app" not in response.text


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"code_challenge": ""}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"scope": "profile email"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"prompt": "none"}, "login_required"),
    ],
)
def test_invalid_request_from_a_registered_client_is_reported_to_its_redirect_uri(
    entra: RunningEntra, changes: dict, error: str
) -> None:
    response = requests.get(
        _authorize_url(entra, **changes), verify=entra.ca_cert, timeout=10, allow_redirects=False
    )

    assert response.headers["Location"].startswith(_sso_app(entra).redirect_uris[0] + "?")
    parameters = _redirect_parameters(response)
    assert parameters["error"] == error
    assert parameters["state"] == "s-123"


def test_sign_in_page_escapes_display_names(entra: RunningEntra) -> None:
    response = requests.get(_authorize_url(entra), verify=entra.ca_cert, timeout=10)

    assert "Contoso IT Admin &lt;Billing &amp; Licensing&gt;" in response.text
    assert "<Billing" not in response.text


def test_query_response_mode_redirects_with_code_and_state(entra: RunningEntra) -> None:
    page = _open_page(entra, _authorize_url(entra))

    response = _choose(entra, _authorize_url(entra), page, ADELE)

    assert response.headers["Location"].startswith(_sso_app(entra).redirect_uris[0] + "?")
    parameters = _redirect_parameters(response)
    assert parameters["state"] == "s-123"
    assert parameters["code"]


def test_msal_trusts_the_sandbox_through_a_requests_ca_bundle(
    entra: RunningEntra, tls_files: TlsFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(write_trust_bundle(tls_files, tmp_path / "bundle.pem")))
    sso = _sso_app(entra)

    app = msal.ConfidentialClientApplication(
        sso.client_id,
        client_credential=sso.client_secret,
        authority=f"{entra.base_url}/common",
        instance_discovery=False,
    )

    assert _flow(app, entra, [])["auth_uri"].startswith(f"{entra.base_url}/common/oauth2/v2.0/authorize?")
