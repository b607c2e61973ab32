"""Who may enter the operations console: publisher staff by app role, in the publisher's tenant only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devhost.http_host import http_functions
from shared.domain.operators import OperatorRole, can_act, can_look, operator_roles
from tests.console import BUYER, CONSOLE, OLIVIA, PUBLISHER_TENANT, RAVI, SELF_PROMOTED
from tests.portal import Portal
from tests.signin.test_app_stack import AppStack, Buyer, running_app_stack

CONTOSO = "11111111-0000-4000-8000-000000000000"


def test_roles_count_only_in_the_publishers_tenant() -> None:
    admin = [OperatorRole.ADMIN.value]
    assert operator_roles(PUBLISHER_TENANT, admin, PUBLISHER_TENANT) == {"Publisher.Admin"}
    assert operator_roles(PUBLISHER_TENANT.upper(), admin, f" {PUBLISHER_TENANT} ") == {"Publisher.Admin"}
    assert operator_roles(CONTOSO, admin, PUBLISHER_TENANT) == frozenset()
    assert operator_roles(PUBLISHER_TENANT, admin, "") == frozenset(), "no publisher tenant, no operators"
    assert operator_roles(PUBLISHER_TENANT, ["Publisher.Owner", 7, None], PUBLISHER_TENANT) == frozenset()


def test_readers_look_and_admins_act() -> None:
    assert can_look({"Publisher.Reader"})
    assert not can_act({"Publisher.Reader"})
    assert can_look({"Publisher.Admin"})
    assert can_act({"Publisher.Admin"})
    assert not can_look(set())
    assert not can_act(set())


def test_nobody_signed_in_is_sent_to_sign_in_and_back(portal: Portal) -> None:
    answer = portal.browser().get(f"{portal.url}{CONSOLE}", allow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/api/auth/signin?next=%2Fapi%2Fconsole"


def test_a_buyer_is_refused_the_console(portal: Portal) -> None:
    answer = portal.browser(BUYER).get(f"{portal.url}{CONSOLE}", allow_redirects=False)
    assert answer.status_code == 403
    assert "This area is for the publisher" in answer.text
    assert "Subscriptions by status" not in answer.text


def test_a_customer_tenant_cannot_grant_itself_the_console(portal: Portal) -> None:
    # Even a session that carries the role (minted here as if the sign-in had kept it) is refused: the
    # console checks the tenant again on every request.
    answer = portal.browser(SELF_PROMOTED).get(f"{portal.url}{CONSOLE}", allow_redirects=False)
    assert answer.status_code == 403
    assert "Subscriptions by status" not in answer.text


@pytest.mark.parametrize(("operator", "role_word"), [(RAVI, "Reader"), (OLIVIA, "Administrator")])
def test_staff_see_the_overview(portal: Portal, operator: object, role_word: str) -> None:
    portal.buy("team-seats", quantity=3)
    answer = portal.browser(operator).get(f"{portal.url}{CONSOLE}", allow_redirects=False)  # type: ignore[arg-type]
    assert answer.status_code == 200, answer.text
    assert "Subscriptions by status" in answer.text
    assert role_word in answer.text
    assert 'data-status-count="Subscribed"' in answer.text


@pytest.fixture(scope="module")
def app_stack(azurite_connection_string: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppStack]:
    directory = Path(tmp_path_factory.mktemp("console-stack"))
    with running_app_stack(azurite_connection_string, directory) as stack:
        yield stack


def _signed_in_through_entra(app_stack: AppStack, object_id: str) -> Buyer:
    browser = Buyer(app_stack)
    back = browser.sign_in_from(browser.follow(browser.get(CONSOLE)), object_id)
    assert back.status_code == 303, back.text
    assert back.headers["Location"] == CONSOLE
    return browser


def test_staff_signed_in_through_entra_carry_their_role_from_the_id_token(app_stack: AppStack) -> None:
    admin = _signed_in_through_entra(app_stack, OLIVIA.object_id).get(CONSOLE)
    assert admin.status_code == 200
    assert "Administrator" in admin.text
    reader = _signed_in_through_entra(app_stack, RAVI.object_id).get(CONSOLE)
    assert reader.status_code == 200
    assert "Reader" in reader.text


def test_a_role_assigned_in_a_customers_tenant_opens_nothing(app_stack: AppStack) -> None:
    answer = _signed_in_through_entra(app_stack, SELF_PROMOTED.object_id).get(CONSOLE)
    assert answer.status_code == 403


def test_a_sign_in_older_than_the_consoles_limit_must_be_renewed(portal: Portal) -> None:
    # Roles are read from the ID token at sign-in: a fresh sign-in is what notices a role removed in Entra.
    stale = portal.browser(OLIVIA, signed_in_ago=3600 + 60).get(
        f"{portal.url}{CONSOLE}", allow_redirects=False
    )
    assert stale.status_code == 303
    assert stale.headers["Location"] == "/api/auth/signin?next=%2Fapi%2Fconsole"

    recent = portal.browser(OLIVIA, signed_in_ago=600).get(f"{portal.url}{CONSOLE}", allow_redirects=False)
    assert recent.status_code == 200


def test_a_form_posted_without_a_session_leads_back_to_the_console_not_to_the_action(portal: Portal) -> None:
    answer = portal.browser().post(
        f"{portal.url}{CONSOLE}/subscriptions/x/reconcile", data={"confirm": "yes"}, allow_redirects=False
    )
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/api/auth/signin?next=%2Fapi%2Fconsole"


def test_no_function_route_starts_with_admin() -> None:
    # The Functions host refuses them ("conflicts with one or more built in routes"): such a route would
    # work under the dev host and vanish in Azure.
    import function_app

    routes = [function.route for function in http_functions(function_app.app)]
    assert len(routes) > 10, "the app registers its HTTP routes"
    assert [route for route in routes if route.lower().lstrip("/").startswith("admin")] == []
