"""The state machine as Microsoft runs it: activation, changes and their decisions, lifecycle events."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.server import RunningSandbox
from tests.support.sandbox import (
    CONTOSO_TENANT,
    FABRIKAM_TENANT,
    ApiCaller,
    ControlClient,
    ControlError,
    ReceivedWebhook,
    WebhookReceiver,
    running_sandbox,
    wait_until,
)

PUBLISHER_ID = "contoso"


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as webhook_receiver:
        yield webhook_receiver


@pytest.fixture(scope="module")
def sandbox(receiver: WebhookReceiver) -> Iterator[RunningSandbox]:
    with running_sandbox(
        webhook_url=receiver.url,
        auto_accept_seconds=30,
        webhook_base_delay_seconds=0.01,
        webhook_max_attempts=3,
    ) as sb:
        yield sb


def buy_and_activate(control: ControlClient, api: ApiCaller, plan_id: str = "team-seats", **buy: Any) -> str:
    bought = control.buy(plan_id, **buy)
    resolved = api.call(
        "POST", "/subscriptions/resolve", headers={"x-ms-marketplace-token": bought["token"]}
    ).json()
    body = {"planId": resolved["planId"], "quantity": resolved.get("quantity")}
    response = api.call("POST", f"/subscriptions/{resolved['id']}/activate", body=body)
    assert response.status_code == 200, response.text
    return resolved["id"]


def subscription(api: ApiCaller, subscription_id: str) -> dict[str, Any]:
    return api.call("GET", f"/subscriptions/{subscription_id}").json()


def operation(api: ApiCaller, subscription_id: str, operation_id: str) -> dict[str, Any]:
    return api.call("GET", f"/subscriptions/{subscription_id}/operations/{operation_id}").json()


def webhooks_for(receiver: WebhookReceiver, operation_id: str, count: int = 1) -> list[ReceivedWebhook]:
    return wait_until(lambda: [w for w in receiver.received if w.body["id"] == operation_id][:count] or None)


def patch_operation(api: ApiCaller, subscription_id: str, operation_id: str, status: str) -> int:
    path = f"/subscriptions/{subscription_id}/operations/{operation_id}"
    return api.call("PATCH", path, body={"status": status}).status_code


# --- activation


def test_activation_starts_the_term_and_allows_omitting_the_quantity(
    control: ControlClient, api: ApiCaller
) -> None:
    subscription_id = control.buy("team-seats", quantity=4)["subscriptionId"]
    response = api.call("POST", f"/subscriptions/{subscription_id}/activate", body={"planId": "team-seats"})
    assert response.status_code == 200
    activated = subscription(api, subscription_id)
    assert activated["saasSubscriptionStatus"] == "Subscribed"
    assert activated["term"]["startDate"][:10] == time.strftime("%Y-%m-%d", time.gmtime())


@pytest.mark.parametrize(
    "body",
    [{"planId": "team-seats", "quantity": 5}, {"quantity": 4}, {}, [1]],
    ids=["wrong-quantity", "no-plan", "empty", "not-an-object"],
)
def test_activation_with_a_body_other_than_the_purchase_is_400(
    control: ControlClient, api: ApiCaller, body: Any
) -> None:
    subscription_id = control.buy("team-seats", quantity=4)["subscriptionId"]
    response = api.call("POST", f"/subscriptions/{subscription_id}/activate", body=body)
    assert response.status_code == 400
    assert subscription(api, subscription_id)["saasSubscriptionStatus"] == "PendingFulfillmentStart"


def test_activating_a_suspended_subscription_is_400(control: ControlClient, api: ApiCaller) -> None:
    subscription_id = buy_and_activate(control, api, "basic")
    control.suspend(subscription_id)
    response = api.call("POST", f"/subscriptions/{subscription_id}/activate", body={"planId": "basic"})
    assert response.status_code == 400


# --- publisher-initiated updates


@pytest.mark.parametrize(
    ("plan_id", "body", "reason"),
    [
        ("team-seats", {"planId": "basic", "quantity": 3}, "not both"),
        ("team-seats", {}, "planId or quantity"),
        ("team-seats", {"planId": "team-seats"}, "already on plan"),
        ("team-seats", {"planId": "gold"}, "does not exist"),
        ("team-seats", {"planId": "legacy"}, "stop-sold"),
        ("team-seats", {"planId": "enterprise-private"}, "private"),
        ("team-seats", {"quantity": 5}, "already has quantity"),
        ("team-seats", {"quantity": 51}, "outside 1..50"),
        ("team-seats", {"quantity": 0}, "outside 1..50"),
        ("team-seats", {"quantity": "7"}, "whole number"),
        ("basic", {"quantity": 3}, "flat rate"),
    ],
)
def test_update_refusals_are_400_with_a_reason(
    control: ControlClient, api: ApiCaller, plan_id: str, body: dict[str, Any], reason: str
) -> None:
    quantity = 5 if plan_id == "team-seats" else None
    subscription_id = buy_and_activate(control, api, plan_id, quantity=quantity)
    response = api.call("PATCH", f"/subscriptions/{subscription_id}", body=body)
    assert response.status_code == 400
    assert reason in response.json()["error"]["message"]


@pytest.mark.parametrize("status_change", ["pending", "suspended", "unsubscribed"])
def test_only_subscribed_subscriptions_can_be_updated(
    control: ControlClient, api: ApiCaller, status_change: str
) -> None:
    if status_change == "pending":
        subscription_id = control.buy("basic")["subscriptionId"]
    else:
        subscription_id = buy_and_activate(control, api, "basic")
        (control.suspend if status_change == "suspended" else control.unsubscribe)(subscription_id)
    response = api.call("PATCH", f"/subscriptions/{subscription_id}", body={"planId": "pro"})
    assert response.status_code == 400


def test_csp_purchases_cannot_be_updated_by_the_publisher(control: ControlClient, api: ApiCaller) -> None:
    bought = control.buy_as_csp("basic", customer_tenant_id=CONTOSO_TENANT)
    api.call("POST", f"/subscriptions/{bought['subscriptionId']}/activate", body={"planId": "basic"})
    response = api.call("PATCH", f"/subscriptions/{bought['subscriptionId']}", body={"planId": "pro"})
    assert response.status_code == 400
    assert "allowedCustomerOperations" in response.json()["error"]["message"]


def test_publisher_change_waits_for_patch_success_and_sends_a_partner_webhook(
    control: ControlClient, api: ApiCaller, receiver: WebhookReceiver
) -> None:
    subscription_id = buy_and_activate(control, api, "basic")
    response = api.call("PATCH", f"/subscriptions/{subscription_id}", body={"planId": "pro"})
    operation_id = response.headers["Operation-Location"].split("/operations/")[1].split("?")[0]
    webhook = webhooks_for(receiver, operation_id)[0].body
    assert (webhook["action"], webhook["operationRequestSource"], webhook["planId"]) == (
        "ChangePlan",
        "Partner",
        "pro",
    )
    assert subscription(api, subscription_id)["planId"] == "basic"
    assert patch_operation(api, subscription_id, operation_id, "Success") == 200
    changed = subscription(api, subscription_id)
    assert (changed["planId"], changed["term"]["termUnit"]) == ("pro", "P1Y")
    assert operation(api, subscription_id, operation_id)["status"] == "Succeeded"


# --- customer-initiated changes and how they are decided


def test_customer_change_sends_an_azure_webhook_with_the_r33_fields(
    control: ControlClient, api: ApiCaller, receiver: WebhookReceiver
) -> None:
    subscription_id = buy_and_activate(control, api, "team-seats", quantity=5)
    operation_id = control.change_quantity(subscription_id, 8)["operationId"]
    body = webhooks_for(receiver, operation_id)[0].body
    expected_fields = {
        "id",
        "activityId",
        "subscriptionId",
        "publisherId",
        "offerId",
        "planId",
        "quantity",
        "timeStamp",
        "action",
        "status",
        "operationRequestSource",
        "subscription",
        "purchaseToken",
    }
    assert expected_fields <= set(body)
    assert body["purchaseToken"] is None
    assert (body["action"], body["status"], body["operationRequestSource"]) == (
        "ChangeQuantity",
        "InProgress",
        "Azure",
    )
    assert (body["subscriptionId"], body["publisherId"], body["quantity"]) == (
        subscription_id,
        PUBLISHER_ID,
        8,
    )
    assert body["subscription"]["id"] == subscription_id
    pending = api.call("GET", f"/subscriptions/{subscription_id}/operations").json()["operations"]
    assert [op["id"] for op in pending] == [operation_id]


def test_patch_failure_keeps_the_old_plan(control: ControlClient, api: ApiCaller) -> None:
    subscription_id = buy_and_activate(control, api, "basic")
    operation_id = control.change_plan(subscription_id, "pro")["operationId"]
    assert patch_operation(api, subscription_id, operation_id, "Failure") == 200
    assert subscription(api, subscription_id)["planId"] == "basic"
    assert operation(api, subscription_id, operation_id)["status"] == "Failed"


def test_a_finished_operation_answers_409(control: ControlClient, api: ApiCaller) -> None:
    subscription_id = buy_and_activate(control, api, "basic")
    operation_id = control.change_plan(subscription_id, "pro")["operationId"]
    assert patch_operation(api, subscription_id, operation_id, "Success") == 200
    assert patch_operation(api, subscription_id, operation_id, "Failure") == 409
    assert subscription(api, subscription_id)["planId"] == "pro"


def test_no_answer_within_the_window_accepts_the_change(control: ControlClient, api: ApiCaller) -> None:
    control.settings(autoAcceptSeconds=0.3)
    subscription_id = buy_and_activate(control, api, "basic")
    started = time.monotonic()
    operation_id = control.change_plan(subscription_id, "pro")["operationId"]
    assert operation(api, subscription_id, operation_id)["status"] == "InProgress"
    wait_until(lambda: operation(api, subscription_id, operation_id)["status"] == "Succeeded", timeout=5)
    assert time.monotonic() - started >= 0.3
    assert subscription(api, subscription_id)["planId"] == "pro"
    assert "auto-accepted" in control.operation(operation_id)["decision"]
    assert patch_operation(api, subscription_id, operation_id, "Failure") == 409


def test_a_4xx_webhook_answer_rejects_the_change(
    control: ControlClient, api: ApiCaller, receiver: WebhookReceiver
) -> None:
    subscription_id = buy_and_activate(control, api, "team-seats", quantity=5)
    receiver.answer_next(400)
    operation_id = control.change_quantity(subscription_id, 20)["operationId"]
    wait_until(lambda: operation(api, subscription_id, operation_id)["status"] == "Failed")
    assert subscription(api, subscription_id)["quantity"] == 5
    assert [d["status"] for d in control.deliveries(operation_id)] == [400]


def test_ignore_rejections_applies_a_refused_change(control: ControlClient, api: ApiCaller) -> None:
    control.settings(ignoreRejections=True)
    subscription_id = buy_and_activate(control, api, "basic")
    operation_id = control.change_plan(subscription_id, "pro")["operationId"]
    assert patch_operation(api, subscription_id, operation_id, "Failure") == 200
    assert subscription(api, subscription_id)["planId"] == "pro"
    assert operation(api, subscription_id, operation_id)["status"] == "Succeeded"


def test_ignore_rejections_applies_a_change_refused_by_webhook_answer(
    control: ControlClient, api: ApiCaller, receiver: WebhookReceiver
) -> None:
    control.settings(ignoreRejections=True)
    subscription_id = buy_and_activate(control, api, "basic")
    receiver.answer_next(409)
    operation_id = control.change_plan(subscription_id, "pro")["operationId"]
    wait_until(lambda: operation(api, subscription_id, operation_id)["status"] == "Succeeded")
    assert subscription(api, subscription_id)["planId"] == "pro"


def test_moving_off_a_trial_plan_ends_the_trial(control: ControlClient, api: ApiCaller) -> None:
    subscription_id = buy_and_activate(control, api, "team-seats", quantity=2)
    assert subscription(api, subscription_id)["isFreeTrial"] is True
    operation_id = control.change_plan(subscription_id, "basic")["operationId"]
    patch_operation(api, subscription_id, operation_id, "Success")
    after = subscription(api, subscription_id)
    assert (after["planId"], after["isFreeTrial"]) == ("basic", False)
    assert "quantity" not in after


# --- lifecycle events that act at once


def test_suspend_and_reinstate_act_at_once_with_notify_webhooks(
    control: ControlClient, api: ApiCaller, receiver: WebhookReceiver
) -> None:
    subscription_id = buy_and_activate(control, api, "basic")
    suspend_id = control.suspend(subscription_id)["operationId"]
    assert subscription(api, subscription_id)["saasSubscriptionStatus"] == "Suspended"
    assert operation(api, subscription_id, suspend_id)["status"] == "Succeeded"
    assert webhooks_for(receiver, suspend_id)[0].body["action"] == "Suspend"
    reinstate_id = control.reinstate(subscription_id)["operationId"]
    assert subscription(api, subscription_id)["saasSubscriptionStatus"] == "Subscribed"
    assert webhooks_for(receiver, reinstate_id)[0].body["action"] == "Reinstate"
    with pytest.raises(ControlError) as refused:
        control.reinstate(subscription_id)
    assert refused.value.status == 400


def test_renew_rolls_the_term_forward_and_converts_the_trial(control: ControlClient, api: ApiCaller) -> None:
    subscription_id = buy_and_activate(control, api, "team-seats", quantity=2)
    before = subscription(api, subscription_id)["term"]
    control.renew(subscription_id)
    after = subscription(api, subscription_id)
    assert after["term"]["startDate"] > before["endDate"]
    assert after["term"]["endDate"] > after["term"]["startDate"]
    assert after["isFreeTrial"] is False


def test_unsubscribed_is_terminal(control: ControlClient, api: ApiCaller, receiver: WebhookReceiver) -> None:
    subscription_id = buy_and_activate(control, api, "basic")
    pending_id = control.change_plan(subscription_id, "pro")["operationId"]
    unsubscribe_id = control.unsubscribe(subscription_id)["operationId"]
    assert webhooks_for(receiver, unsubscribe_id)[0].body["action"] == "Unsubscribe"
    assert operation(api, subscription_id, pending_id)["status"] == "Failed"
    for act in (control.suspend, control.reinstate, control.renew, control.unsubscribe):
        with pytest.raises(ControlError):
            act(subscription_id)
    with pytest.raises(ControlError):
        control.change_plan(subscription_id, "pro")
    assert api.call("DELETE", f"/subscriptions/{subscription_id}").status_code == 400
    listed = api.call("GET", "/subscriptions/").json()["subscriptions"]
    assert [s["saasSubscriptionStatus"] for s in listed if s["id"] == subscription_id] == ["Unsubscribed"]


# --- purchases


def test_csp_purchase_shape(control: ControlClient, api: ApiCaller) -> None:
    bought = control.buy_as_csp("team-seats", customer_tenant_id=FABRIKAM_TENANT, quantity=3)
    body = subscription(api, bought["subscriptionId"])
    assert body["purchaser"]["tenantId"] == "33333333-0000-4000-8000-000000000000"
    assert body["purchaser"]["emailId"] == "nestor.wilke@northwindpartners.com"
    assert body["beneficiary"]["tenantId"] == FABRIKAM_TENANT
    assert body["allowedCustomerOperations"] == ["Read"]
    assert body["sandboxType"] == "None"
    direct = subscription(api, control.buy("basic")["subscriptionId"])
    assert direct["purchaser"] == direct["beneficiary"]
    assert direct["allowedCustomerOperations"] == ["Read", "Update", "Delete"]


def test_private_plans_are_only_for_their_audience(control: ControlClient, api: ApiCaller) -> None:
    with pytest.raises(ControlError) as refused:
        control.buy("enterprise-private", quantity=10)
    assert "private" in refused.value.body["error"]["message"]
    bought = control.buy("enterprise-private", buyer="alex.wilber@fabrikam.onmicrosoft.com", quantity=10)
    plans = api.call("GET", f"/subscriptions/{bought['subscriptionId']}/listAvailablePlans").json()["plans"]
    assert "enterprise-private" in {p["planId"] for p in plans}


def test_user_without_mailbox_is_named_by_upn(control: ControlClient, api: ApiCaller) -> None:
    bought = control.buy("basic", buyer="megan.bowen@contoso.onmicrosoft.com")
    assert (
        subscription(api, bought["subscriptionId"])["purchaser"]["emailId"]
        == "megan.bowen@contoso.onmicrosoft.com"
    )


@pytest.mark.parametrize(
    "body",
    [
        {"planId": "basic", "buyer": "nobody@example.com"},
        {"planId": "basic"},
        {"planId": "team-seats", "quantity": 99},
        {"planId": "basic", "quantity": 2},
        {"planId": "legacy"},
        {"buyer": "adele.vance@contoso.onmicrosoft.com"},
        {
            "planId": "basic",
            "partner": "nestor.wilke@northwindpartners.onmicrosoft.com",
            "customerTenantId": "x",
        },
        {"planId": "basic", "offerId": "nope", "buyer": "adele.vance@contoso.onmicrosoft.com"},
    ],
    ids=[
        "unknown-user",
        "no-user",
        "too-many-seats",
        "flat-with-seats",
        "stop-sold",
        "no-plan",
        "bad-tenant",
        "offer",
    ],
)
def test_bad_purchases_are_refused_with_a_reason(control: ControlClient, body: dict[str, Any]) -> None:
    with pytest.raises(ControlError) as refused:
        control.request("POST", "/purchases", body)
    assert refused.value.status in {400, 404}
    assert refused.value.body["error"]["message"]


def test_unknown_subscription_in_control_api_is_404(control: ControlClient) -> None:
    with pytest.raises(ControlError) as refused:
        control.suspend(str(uuid.uuid4()))
    assert refused.value.status == 404


def test_concurrent_purchases_and_changes_are_all_kept(
    control: ControlClient, api: ApiCaller, sandbox: RunningSandbox
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:
        bought = list(pool.map(lambda _: control.buy("team-seats", quantity=2)["subscriptionId"], range(24)))
    for subscription_id in bought:
        sandbox.marketplace.activate(subscription_id, {"planId": "team-seats"})
    with ThreadPoolExecutor(max_workers=8) as pool:
        operations = list(pool.map(lambda s: control.change_quantity(s, 3)["operationId"], bought))
    assert len(set(operations)) == len(bought)
    listed = api.call("GET", "/subscriptions/").json()["subscriptions"]
    assert {s["id"] for s in listed} == set(bought)
