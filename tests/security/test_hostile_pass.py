"""A hostile pass over the hardening of issue 7: each test here failed on the code before its fix.

Pure rules are checked directly; what a visitor can reach is driven over real HTTP on 127.0.0.1 (the dev host
serving `function_app.app`, the sandbox's Entra ID and Fulfillment API, Azurite).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from shared.config import ConfigurationError, check_fail_closed
from shared.domain.addresses import normalize_user_key
from shared.domain.identity import MSA_TENANT_ID, Person, entra_addresses, may_bind_seat
from shared.domain.subscription import Party
from tests.signin.test_app_stack import ADELE, AppStack, Buyer, running_app_stack

CONTOSO = "11111111-0000-4000-8000-000000000000"
OWN_SECRET = "a-secret-of-this-deployment-0123456789abcdef"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


# --- seat binding: no Unicode case trick turns one address into another -----------------------------------


@pytest.mark.parametrize(
    ("claimed", "seat"),
    [
        ("\u212aim@contoso.com", "kim@contoso.com"),  # KELVIN SIGN lower-cases to an ASCII "k"
        ("\u212aIM@outlook.com", "kim@outlook.com"),
    ],
)
def test_a_non_ascii_look_alike_never_binds_an_ascii_seat(claimed: str, seat: str) -> None:
    assert normalize_user_key(claimed) != normalize_user_key(seat)
    for tenant in (CONTOSO, MSA_TENANT_ID):
        beneficiary = Party(tenant_id=tenant, object_id="b0b0b0b0-0000-4000-8000-000000000000")
        who = Person.of(tenant, "0a0a0a0a-0000-4000-8000-000000000000")
        vouched = entra_addresses({"preferred_username": claimed})
        assert not may_bind_seat(seat, beneficiary, who, vouched)


def test_ascii_case_still_does_not_matter() -> None:
    assert normalize_user_key(" Kim.Doe@Contoso.COM ") == "kim.doe@contoso.com"


# --- settings: a reference Azure did not resolve is refused however it is spelt ---------------------------


@pytest.mark.parametrize(
    "value",
    [
        "\ufeff@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/s)",  # a pasted BOM
        "\u200b@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/s)",  # a zero-width space
        '"@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/s)"',  # quotes copied from JSON
        "@Microsoft.KeyVault (SecretUri=https://v.vault.azure.net/secrets/s)",  # a space Azure does not parse
        "@Microsoft.AppConfiguration(Endpoint=https://c.azconfig.io; Key=session-secret)",
        "@microsoft.appconfiguration(Endpoint=https://c.azconfig.io; Key=session-secret)",
    ],
)
def test_an_unresolved_reference_is_refused_however_it_is_spelt(value: str) -> None:
    env = {"STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true", "SESSION_SECRET": value}
    with pytest.raises(ConfigurationError) as refused:
        check_fail_closed(env)
    assert "SESSION_SECRET" in str(refused.value)
    assert "vault.azure.net" not in str(refused.value) and "azconfig" not in str(refused.value)  # noqa: PT018


def test_a_secret_of_ones_own_is_still_accepted() -> None:
    check_fail_closed({"SESSION_SECRET": OWN_SECRET, "NOTE": "see microsoft.com for key vault docs"})


# --- over the real stack -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_stack(azurite_connection_string: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppStack]:
    with running_app_stack(azurite_connection_string, tmp_path_factory.mktemp("hostile")) as stack:
        yield stack


def signed_in(stack: AppStack, object_id: str = ADELE) -> Buyer:
    buyer = Buyer(stack)
    answer = buyer.sign_in_from(buyer.get("/api/auth/signin"), object_id)
    assert answer.status_code == 303, answer.text
    return buyer


def csrf_token(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page carries no CSRF token"
    return match.group(1)


def test_a_subscription_id_with_a_trailing_newline_is_not_found_not_a_crash(app_stack: AppStack) -> None:
    buyer = signed_in(app_stack)
    for path in ("/api/portal/subscriptions/abc%0A", "/api/portal/subscriptions/abc%0a"):
        page = buyer.get(path)
        assert page.status_code == 404, (path, page.status_code)
    page = buyer.get("/api/auth/signout")  # any form of this session carries a valid CSRF token
    form = buyer.post("/api/portal/subscriptions/abc%0A/seats", {"csrf_token": csrf_token(page.text)})
    assert form.status_code == 404


def test_a_status_link_stops_working_when_its_session_ends(app_stack: AppStack) -> None:
    buyer = signed_in(app_stack)
    bought = app_stack.control.buy("team-seats", buyer="adele.vance@contoso.onmicrosoft.com", quantity=5)
    page = buyer.follow(buyer.open_landing(bought["landingUrl"]))
    assert page.status_code == 200, page.text
    confirmed = buyer.post(
        "/api/landing/confirm", {"csrf_token": csrf_token(page.text), "contact_email": "adele@contoso.com"}
    )
    assert confirmed.status_code == 303
    status_link = confirmed.headers["Location"]
    assert status_link.startswith("/api/landing/status?ticket=")
    assert buyer.get(status_link).status_code == 200  # while the session lives
    stranger = Buyer(app_stack)  # the link alone (history, a screenshot, a shared screen) is not enough
    assert stranger.get(status_link).status_code == 403

    form = buyer.get("/api/auth/signout")
    assert buyer.post("/api/auth/signout", {"csrf_token": csrf_token(form.text)}).status_code == 200

    assert buyer.get(status_link).status_code == 403
    assert bought["subscriptionId"] not in buyer.get(status_link).text
