"""The control JSON API and the HTML control page: catalog, settings, reset, page forms and their safety."""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandbox.server import RunningSandbox
from tests.support.sandbox import ApiCaller, ControlClient, ControlError, running_sandbox


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with running_sandbox(webhook_url="http://127.0.0.1:9/never", webhook_max_attempts=1) as sb:
        yield sb


@pytest.fixture
def browser(sandbox: RunningSandbox) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def post_form(
    browser: requests.Session, sandbox: RunningSandbox, path: str, form: dict[str, Any]
) -> requests.Response:
    return browser.post(f"{sandbox.http_url}{path}", data=form, allow_redirects=False, timeout=10)


def test_health_and_identities_without_secrets(control: ControlClient, sandbox: RunningSandbox) -> None:
    assert control.request("GET", "/health") == {"status": "ok"}
    identities = control.request("GET", "/identities")
    assert identities["publisher"] == {
        "tenantId": sandbox.publisher.tenant_id,
        "clientId": sandbox.publisher.client_id,
    }
    assert sandbox.publisher.client_secret not in str(identities)
    assert any(user["mail"] is None for user in identities["users"])


def test_example_catalog_is_loaded(control: ControlClient) -> None:
    offer = control.request("GET", "/offers")["offers"][0]
    plans = {plan["planId"]: plan for plan in offer["plans"]}
    assert offer["offerId"] == "contoso-analytics"
    assert {"basic", "pro", "team-seats", "enterprise-private"} <= set(plans)
    assert (plans["basic"]["isPricePerSeat"], plans["basic"]["termUnit"]) == (False, "P1M")
    assert plans["pro"]["termUnit"] == "P1Y"
    assert (plans["team-seats"]["minQuantity"], plans["team-seats"]["maxQuantity"]) == (1, 50)
    assert plans["team-seats"]["hasFreeTrials"] is True
    assert plans["enterprise-private"]["isPrivate"] is True
    assert len(plans["enterprise-private"]["audienceTenants"]) == 1


def test_offers_and_plans_can_be_defined_and_stop_sold(
    control: ControlClient, sandbox: RunningSandbox
) -> None:
    control.request("PUT", "/offers/fabrikam-backup", {"displayName": "Fabrikam Backup", "plans": []})
    plan = {
        "displayName": "Vault",
        "isPricePerSeat": True,
        "minQuantity": 5,
        "maxQuantity": 9,
        "termUnit": "P1Y",
    }
    control.request("PUT", "/offers/fabrikam-backup/plans/vault", plan)
    control.request("PUT", "/offers/fabrikam-backup/plans/lite", {"displayName": "Lite"})
    bought = control.buy("vault", offerId="fabrikam-backup", quantity=5)
    control.request("POST", "/offers/fabrikam-backup/plans/lite/stop-sell", {"isStopSell": True})
    plans = (
        ApiCaller(sandbox).call("GET", f"/subscriptions/{bought['subscriptionId']}/listAvailablePlans").json()
    )
    assert [p["planId"] for p in plans["plans"]] == ["vault"]
    with pytest.raises(ControlError) as refused:
        control.buy("team-seats", quantity=2)
    assert "offerId is required" in refused.value.body["error"]["message"]


@pytest.mark.parametrize(
    "plan",
    [
        {"isPricePerSeat": True, "minQuantity": 10, "maxQuantity": 5},
        {"termUnit": "P7D"},
        {"isPrivate": "yes"},
        {"price": -1},
    ],
    ids=["bounds", "term", "flag", "price"],
)
def test_bad_plan_definitions_are_refused(control: ControlClient, plan: dict[str, Any]) -> None:
    with pytest.raises(ControlError) as refused:
        control.request("PUT", "/offers/contoso-analytics/plans/broken", plan)
    assert refused.value.status == 400
    assert "broken" in refused.value.body["error"]["message"]


@pytest.mark.parametrize(
    "changes",
    [
        {"landingUrl": "http://127.0.0.1:7071/#/landing"},
        {"webhookUrl": "ftp://example"},
        {"autoAcceptSeconds": -1},
        {"ignoreRejections": "yes"},
        {"pageSize": 0},
        {"colour": "blue"},
    ],
)
def test_bad_settings_are_refused_and_nothing_changes(
    control: ControlClient, changes: dict[str, Any]
) -> None:
    before = control.settings()
    with pytest.raises(ControlError) as refused:
        control.settings(**changes)
    assert refused.value.status == 400
    assert control.settings() == before


def test_reset_forgets_everything_and_restores_start_settings(control: ControlClient) -> None:
    control.buy("basic")
    control.settings(autoAcceptSeconds=1.5)
    control.add_fault(kind="500")
    control.reset()
    assert control.request("GET", "/subscriptions") == {"subscriptions": []}
    assert control.settings()["autoAcceptSeconds"] == 10.0
    assert control.settings()["webhookUrl"] == "http://127.0.0.1:9/never"
    assert control.request("GET", "/faults") == {"faults": []}
    assert control.deliveries() == []


def test_unknown_paths_and_methods(control: ControlClient) -> None:
    with pytest.raises(ControlError) as missing:
        control.request("GET", "/nothing-here")
    assert missing.value.status == 404
    with pytest.raises(ControlError) as wrong_method:
        control.request("DELETE", "/settings")
    assert wrong_method.value.status == 405


def test_a_non_json_body_is_400(control: ControlClient, browser: requests.Session) -> None:
    response = browser.post(f"{control.base_url}/control/purchases", data=b"{nope", timeout=10)
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]["message"]


# --- the page


def test_page_escapes_names_and_messages(control: ControlClient, browser: requests.Session) -> None:
    control.buy("basic", buyer="it.admin@contoso.onmicrosoft.com")
    page = browser.get(
        f"{control.base_url}/",
        params={"message": "<script>alert(1)</script>", "landing": "javascript:alert(1)"},
        timeout=10,
    )
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert html.escape("Contoso IT Admin <Billing & Licensing>", quote=False) in page.text
    assert "<Billing & Licensing>" not in page.text
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;" in page.text
    assert 'href="javascript:' not in page.text


def test_page_purchase_direct_and_as_csp(
    control: ControlClient, browser: requests.Session, sandbox: RunningSandbox
) -> None:
    form = {"offerId": "contoso-analytics", "planId": "team-seats", "quantity": "3", "mode": "direct"}
    direct = post_form(
        browser, sandbox, "/page/purchase", {**form, "user": "11111111-0000-4000-8000-000000000001"}
    )
    assert direct.status_code == 303
    assert "landing=http" in direct.headers["Location"]
    csp_form = {**form, "mode": "csp", "user": "33333333-0000-4000-8000-000000000001"}
    csp_form["customerTenantId"] = "22222222-0000-4000-8000-000000000000"
    assert post_form(browser, sandbox, "/page/purchase", csp_form).status_code == 303
    subscriptions = control.request("GET", "/subscriptions")["subscriptions"]
    assert [s["allowedCustomerOperations"] for s in subscriptions] == [["Read", "Update", "Delete"], ["Read"]]
    assert subscriptions[1]["beneficiary"]["tenantId"] == "22222222-0000-4000-8000-000000000000"
    assert "Team (per seat)" in browser.get(f"{sandbox.http_url}/", timeout=10).text


def test_page_actions_drive_the_subscription(
    control: ControlClient, browser: requests.Session, sandbox: RunningSandbox
) -> None:
    subscription_id = control.buy("basic")["subscriptionId"]
    sandbox.marketplace.activate(subscription_id, {"planId": "basic"})
    base = f"/page/subscriptions/{subscription_id}"
    assert post_form(browser, sandbox, f"{base}/change-plan", {"planId": "pro"}).status_code == 303
    assert post_form(browser, sandbox, f"{base}/suspend", {}).status_code == 303
    assert post_form(browser, sandbox, f"{base}/token", {}).status_code == 303
    operations = control.subscription(subscription_id)["operations"]
    assert [op["action"] for op in operations] == ["ChangePlan", "Suspend"]
    assert post_form(browser, sandbox, f"{base}/reinstate", {}).status_code == 303
    refused = post_form(browser, sandbox, f"{base}/reinstate", {})
    assert refused.status_code == 303
    assert "Refused" in requests.utils.unquote(refused.headers["Location"])


def test_page_settings_faults_and_reset(
    control: ControlClient, browser: requests.Session, sandbox: RunningSandbox
) -> None:
    settings = {
        "webhookUrl": "http://127.0.0.1:7071/api/webhook",
        "landingUrl": "http://127.0.0.1:7071/api/landing",
        "autoAcceptSeconds": "2.5",
        "ignoreRejections": "on",
    }
    post_form(browser, sandbox, "/page/settings", settings)
    assert (control.settings()["autoAcceptSeconds"], control.settings()["ignoreRejections"]) == (2.5, True)
    fault = {"operation": "*", "kind": "429", "share": "0.5", "retryAfter": "2", "hangSeconds": "1"}
    post_form(browser, sandbox, "/page/faults", fault)
    assert control.request("GET", "/faults")["faults"][0]["retryAfter"] == 2
    post_form(browser, sandbox, "/page/faults/clear", {})
    assert control.request("GET", "/faults") == {"faults": []}
    control.buy("basic")
    post_form(browser, sandbox, "/page/reset", {})
    assert control.request("GET", "/subscriptions") == {"subscriptions": []}


def test_cross_site_posts_are_refused(
    control: ControlClient, browser: requests.Session, sandbox: RunningSandbox
) -> None:
    form = {"planId": "basic", "user": "11111111-0000-4000-8000-000000000001", "mode": "direct"}
    response = browser.post(
        f"{sandbox.http_url}/page/purchase", data=form, headers={"Origin": "http://evil.example"}, timeout=10
    )
    assert response.status_code == 403
    same_site = browser.post(
        f"{sandbox.http_url}/page/purchase",
        data=form,
        headers={"Origin": sandbox.http_url},
        allow_redirects=False,
        timeout=10,
    )
    assert same_site.status_code == 303
    assert len(control.request("GET", "/subscriptions")["subscriptions"]) == 1
