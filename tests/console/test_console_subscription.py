"""One subscription in the console, and the operator's actions on it, against the sandbox and Azurite.

The harness runs no worker (the queue is in memory) and the sandbox keeps a buyer's change InProgress for
60 s, so a change the buyer asks for waits for an answer until the test gives one: the operator's, or the
worker's own path (`handle_announced_operation`) playing the service that decided first.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from shared.domain.audit import AuditAction, AuditSource
from shared.domain.inbox import InboxRecord, InboxState
from shared.domain.status import SubscriptionStatus
from shared.domain.subscription import Subscription
from shared.domain.wording import SOURCE_NAMES
from shared.web.current_user import SignedInUser
from shared.workflows.operations import handle_announced_operation
from tests.console import BUYER, CONSOLE, OLIVIA, RAVI, RefusingQueue
from tests.portal import Portal, csrf_token, post_form, token_for
from tests.support.sandbox import wait_until

XSS = "<script>alert(1)</script>"


def _page(portal: Portal, subscription_id: str) -> str:
    return f"{portal.url}{CONSOLE}/subscriptions/{subscription_id}"


def _get(portal: Portal, user: SignedInUser, subscription_id: str) -> requests.Response:
    return portal.browser(user).get(_page(portal, subscription_id), allow_redirects=False)


def _post(
    portal: Portal, user: SignedInUser, subscription_id: str, action: str, fields: dict[str, str]
) -> requests.Response:
    client = portal.browser(user)
    return post_form(client, _page(portal, subscription_id), action, fields, token=token_for(client))


def _audit(portal: Portal, subscription_id: str, action: AuditAction) -> list[Any]:
    return [entry for entry in portal.services.audit.list(subscription_id) if entry.action is action]


def _pending_quantity_change(portal: Portal, subscription_id: str, quantity: int) -> str:
    """A seat change the buyer asked for at Microsoft; nobody has answered it yet."""
    operation_id = str(portal.control.change_quantity(subscription_id, quantity)["operationId"])
    assert portal.control.operation(operation_id)["status"] == "InProgress"
    return operation_id


def _notice_of(answer: requests.Response, subscription_id: str) -> str:
    """The notice a redirect after an action names (signed for the session: see shared.web.notices)."""
    location = urlsplit(answer.headers["Location"])
    assert location.path == f"{CONSOLE}/subscriptions/{subscription_id}"
    query = parse_qs(location.query)
    assert query.get("ns"), "the notice is signed"
    return query["notice"][0]


# --- the page --------------------------------------------------------------------------------------------


def test_the_page_shows_drift_between_the_mirror_and_microsoft(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=4)
    portal.control.suspend(subscription_id)  # the webhook went to the receiver, never to the app: lost
    answer = _get(portal, RAVI, subscription_id)
    assert answer.status_code == 200, answer.text
    assert 'data-field="status" class="diff" data-differs' in answer.text
    assert 'data-field="quantity" class="diff"' not in answer.text
    assert "Suspended (payment issue)" in answer.text
    assert "Active" in answer.text
    assert "1 field differs" in answer.text
    assert "Suspended" not in answer.text.split('data-field="status"')[1].split("</td>")[1]  # stored side
    assert "PendingFulfillmentStart" not in answer.text
    assert ">Subscribed<" not in answer.text


def test_the_page_lists_operations_audit_and_seats(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=4)
    portal.services.seats.assign(
        subscription_id, "megan.bowen@contoso.onmicrosoft.com", quantity=4, assigned_by="test"
    )
    operation_id = _pending_quantity_change(portal, subscription_id, 6)
    answer = _get(portal, OLIVIA, subscription_id)
    assert answer.status_code == 200, answer.text
    assert f'data-operation="{operation_id}"' in answer.text, "Microsoft's operation in progress is listed"
    assert f'data-decide="{operation_id}"' in answer.text, "an admin is offered the decision"
    # A seat change carries the plan it stays on too: the heading names what changes, the seats.
    assert "Answer the seat quantity change to 6 seats" in answer.text
    assert "megan.bowen@contoso.onmicrosoft.com" in answer.text
    assert "Activated" in answer.text, "the audit trail is shown in words"
    audit = answer.text.split('id="audit"')[1].split("</table>")[0]
    assert "Billing term: Monthly, " in audit, "its changes too"
    for unreadable in ("PendingFulfillmentStart", "charge_duration", "{", ">landing<"):
        assert unreadable not in audit
    actors = [cell.split("</td>")[0] for cell in audit.split("data-actor>")[1:]]
    assert actors, "who did it is shown"
    assert set(actors) <= set(SOURCE_NAMES.values()), "in words, when no person is named"
    reader = _get(portal, RAVI, subscription_id)
    assert f'data-operation="{operation_id}"' in reader.text
    assert "data-decide" not in reader.text
    assert "/reconcile" not in reader.text
    assert "/cancel" not in reader.text


def test_when_microsoft_does_not_know_the_subscription_the_mirror_still_shows(portal: Portal) -> None:
    # Stored here, never sold by the sandbox: GetSubscription answers 404.
    subscription_id = str(uuid.uuid4())
    portal.services.subscriptions.insert(
        Subscription(subscription_id, name="Known only here", plan_id="team-seats", quantity=3)
    )
    answer = _get(portal, RAVI, subscription_id)
    assert answer.status_code == 200, answer.text
    assert 'id="microsoft-problem"' in answer.text
    assert "Microsoft does not know this subscription" in answer.text
    assert 'data-field="quantity"' in answer.text
    assert "data-differs" not in answer.text
    assert "Known only here" in answer.text


def test_when_microsoft_fails_the_page_says_so_and_shows_the_mirror(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=2)
    portal.control.add_fault(operation="FulfillmentOperations_GetSubscription", kind="500", share=1)
    try:
        answer = _get(portal, RAVI, subscription_id)
    finally:
        portal.control.clear_faults()
    assert answer.status_code == 200, answer.text
    assert "Microsoft did not answer just now" in answer.text
    assert 'data-field="status"' in answer.text
    assert "data-differs" not in answer.text


@pytest.mark.parametrize(
    "hostile",
    ["00000000-0000-4000-8000-00000000dead", "%2E%2E", "%3Cscript%3E", "a" * 65, "x'%20or%201=1"],
)
def test_unknown_or_malformed_ids_answer_404(portal: Portal, hostile: str) -> None:
    answer = portal.browser(OLIVIA).get(
        f"{portal.url}{CONSOLE}/subscriptions/{hostile}", allow_redirects=False
    )
    assert answer.status_code == 404
    assert "<script>" not in answer.text
    client = portal.browser(OLIVIA)
    posted = client.post(
        f"{portal.url}{CONSOLE}/subscriptions/{hostile}/reconcile",
        data={"csrf_token": token_for(client), "confirm": "yes"},
        allow_redirects=False,
    )
    assert posted.status_code == 404


def test_names_are_escaped(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=2, name=XSS)
    answer = _get(portal, OLIVIA, subscription_id)
    assert answer.status_code == 200, answer.text
    assert XSS not in answer.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer.text


def test_a_buyer_cannot_open_the_page(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=2)
    answer = _get(portal, BUYER, subscription_id)
    assert answer.status_code == 403
    assert subscription_id not in answer.text


# --- who may act -----------------------------------------------------------------------------------------

ACTIONS = {
    "reconcile": {"confirm": "yes"},
    "activation-retry": {"confirm": "yes"},
    "decide": {"operation_id": "00000000-0000-4000-8000-000000000000", "verdict": "refuse", "confirm": "yes"},
    "cancel": {"confirm_name": "anything"},
}


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("who", [RAVI, BUYER], ids=["reader", "buyer"])
def test_readers_and_buyers_are_refused_every_action(portal: Portal, action: str, who: SignedInUser) -> None:
    subscription_id = portal.buy(quantity=2)
    fields = dict(ACTIONS[action])
    if action == "cancel":
        fields["confirm_name"] = subscription_id
    answer = _post(portal, who, subscription_id, action, fields)
    assert answer.status_code == 403
    assert portal.services.audit.list(subscription_id)[-1].source is not AuditSource.OPERATOR
    assert (
        portal.control.subscription(subscription_id)["subscription"]["saasSubscriptionStatus"] == "Subscribed"
    )
    if who is RAVI:
        # Staff, not a buyer: the way on is back to the console, and the page says what to do.
        assert 'href="/api/console"' in answer.text
        assert "Your subscriptions" not in answer.text
        assert "<strong>What you can do:</strong> </p>" not in answer.text


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_an_action_without_its_csrf_token_is_refused(portal: Portal, action: str) -> None:
    subscription_id = portal.buy(quantity=2)
    client = portal.browser(OLIVIA)
    answer = client.post(
        f"{_page(portal, subscription_id)}/{action}", data=ACTIONS[action], allow_redirects=False
    )
    assert answer.status_code == 403
    forged = client.post(
        f"{_page(portal, subscription_id)}/{action}",
        data={**ACTIONS[action], "csrf_token": "forged"},
        allow_redirects=False,
    )
    assert forged.status_code == 403
    assert not [e for e in portal.services.audit.list(subscription_id) if e.source is AuditSource.OPERATOR]


def test_an_unknown_action_answers_404(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=2)
    assert _post(portal, OLIVIA, subscription_id, "explode", {"confirm": "yes"}).status_code == 404


# --- reconcile and activation retry ------------------------------------------------------------------------


def test_an_admin_reconciles_and_the_audit_names_them(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=2)
    client = portal.browser(OLIVIA)
    page = client.get(_page(portal, subscription_id), allow_redirects=False)
    answer = post_form(
        client, _page(portal, subscription_id), "reconcile", {"confirm": "yes"}, token=csrf_token(page.text)
    )
    assert answer.status_code == 303
    assert _notice_of(answer, subscription_id) == "reconcile"
    (entry,) = _audit(portal, subscription_id, AuditAction.RECONCILE_REQUESTED)
    assert entry.actor.startswith("olivia.ops@publisher.onmicrosoft.com")
    after = client.get(f"{portal.url}{answer.headers['Location']}", allow_redirects=False)
    assert "Reconcile queued" in after.text
    assert "Reconcile requested" in after.text
    assert "olivia.ops@publisher.onmicrosoft.com" in after.text


def test_reconcile_needs_the_confirmation(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=2)
    answer = _post(portal, OLIVIA, subscription_id, "reconcile", {})
    assert answer.status_code == 400
    assert not _audit(portal, subscription_id, AuditAction.RECONCILE_REQUESTED)


def test_an_activation_retry_of_an_active_subscription_is_refused_in_words(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=2)
    answer = _post(portal, OLIVIA, subscription_id, "activation-retry", {"confirm": "yes"})
    assert answer.status_code == 409
    assert "There is no activation to retry" in answer.text
    assert not _audit(portal, subscription_id, AuditAction.ACTIVATION_RETRY_REQUESTED)


def test_an_admin_retries_a_confirmed_activation(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=2)
    portal.services.subscriptions.update(
        subscription_id,
        lambda stored: replace(
            stored,
            status=SubscriptionStatus.PENDING_FULFILLMENT_START,
            activation_requested_at=datetime.now(UTC),
        ),
    )
    page = _get(portal, OLIVIA, subscription_id)
    assert 'id="activation-retry-form"' in page.text
    answer = _post(portal, OLIVIA, subscription_id, "activation-retry", {"confirm": "yes"})
    assert answer.status_code == 303, answer.text
    (entry,) = _audit(portal, subscription_id, AuditAction.ACTIVATION_RETRY_REQUESTED)
    assert "olivia.ops" in entry.actor


# --- deciding a pending change -----------------------------------------------------------------------------


def test_an_admin_refuses_a_pending_change_inside_the_window(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=4)
    operation_id = _pending_quantity_change(portal, subscription_id, 9)
    fields = {
        "operation_id": operation_id,
        "verdict": "refuse",
        "reason": "seats over budget",
        "confirm": "yes",
    }
    answer = _post(portal, OLIVIA, subscription_id, "decide", fields)
    assert answer.status_code == 303, answer.text
    assert _notice_of(answer, subscription_id) == "refused"
    assert portal.control.operation(operation_id)["status"] == "Failed", "Microsoft got the refusal"
    record = portal.services.operations.get(subscription_id, operation_id)
    assert record is not None
    assert (record.decision, record.state, record.reason) == (
        "refuse",
        InboxState.REFUSED,
        "seats over budget",
    )
    assert record.decided_by.startswith("olivia.ops@publisher.onmicrosoft.com")
    (entry,) = _audit(portal, subscription_id, AuditAction.CHANGE_QUANTITY_DECISION)
    assert entry.source is AuditSource.OPERATOR
    assert entry.actor == record.decided_by
    again = _post(portal, OLIVIA, subscription_id, "decide", {**fields, "verdict": "accept"})
    assert again.status_code == 409, "one answer per change"
    page = _get(portal, OLIVIA, subscription_id).text
    row = page.split(f'<tr data-operation="{operation_id}"')[1].split("</tr>")[0]
    assert "Not known yet" not in row, "the refusal is the change's end: its outcome is known"
    assert "Declined" in row


def test_an_admin_accepts_a_pending_change(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=4)
    operation_id = _pending_quantity_change(portal, subscription_id, 6)
    fields = {"operation_id": operation_id, "verdict": "accept", "confirm": "yes"}
    answer = _post(portal, OLIVIA, subscription_id, "decide", fields)
    assert answer.status_code == 303, answer.text
    assert portal.control.operation(operation_id)["status"] == "Succeeded"
    record = portal.services.operations.get(subscription_id, operation_id)
    assert record is not None
    assert record.state is InboxState.ACKNOWLEDGED


def test_an_admin_accepting_a_seat_cut_holds_the_seats_or_is_told_why_not(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=4)
    for n in range(3):
        portal.services.seats.assign(subscription_id, f"user{n}@contoso.com", quantity=4, assigned_by="test")
    too_low = _pending_quantity_change(portal, subscription_id, 2)
    fields = {"operation_id": too_low, "verdict": "accept", "confirm": "yes"}

    refused = _post(portal, OLIVIA, subscription_id, "decide", fields)

    assert refused.status_code == 409
    assert "3 seats are assigned, more than the 2 this change leaves" in refused.text
    assert portal.control.operation(too_low)["status"] == "InProgress"  # nothing was sent
    assert not portal.services.seats.holds(subscription_id).held

    refuse = {"operation_id": too_low, "verdict": "refuse", "confirm": "yes"}
    assert _post(portal, OLIVIA, subscription_id, "decide", refuse).status_code == 303
    fits = _pending_quantity_change(portal, subscription_id, 3)
    accept = {"operation_id": fits, "verdict": "accept", "confirm": "yes"}
    assert _post(portal, OLIVIA, subscription_id, "decide", accept).status_code == 303
    assert portal.services.seats.holds(subscription_id).holds(fits)
    assert portal.services.operations.get(subscription_id, fits).holds_seats  # type: ignore[union-attr]


def test_the_worker_meets_the_operators_decision_and_sends_nothing_else(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=4)
    operation_id = _pending_quantity_change(portal, subscription_id, 7)
    fields = {"operation_id": operation_id, "verdict": "refuse", "confirm": "yes"}
    assert _post(portal, OLIVIA, subscription_id, "decide", fields).status_code == 303
    webhook = {
        "id": operation_id,
        "subscriptionId": subscription_id,
        "action": "ChangeQuantity",
        "quantity": 7,
    }
    handle_announced_operation(webhook, "late-webhook", ports=portal.services.operation_ports)
    record = portal.services.operations.get(subscription_id, operation_id)
    assert record is not None
    assert record.decision == "refuse"
    assert portal.control.operation(operation_id)["status"] == "Failed"
    assert len(_audit(portal, subscription_id, AuditAction.CHANGE_QUANTITY_DECISION)) == 1


def test_deciding_after_the_service_answered_is_refused(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=4)
    operation_id = _pending_quantity_change(portal, subscription_id, 8)
    webhook = {
        "id": operation_id,
        "subscriptionId": subscription_id,
        "action": "ChangeQuantity",
        "quantity": 8,
    }
    handle_announced_operation(webhook, "worker-first", ports=portal.services.operation_ports)
    assert portal.control.operation(operation_id)["status"] != "InProgress"
    fields = {"operation_id": operation_id, "verdict": "refuse", "confirm": "yes"}
    answer = _post(portal, OLIVIA, subscription_id, "decide", fields)
    assert answer.status_code == 409
    assert "window to answer has closed" in answer.text
    record = portal.services.operations.get(subscription_id, operation_id)
    assert record is not None
    assert record.decision == "accept"
    assert not record.decided_by


def test_deciding_what_the_service_recorded_but_did_not_send_yet_is_refused(portal: Portal) -> None:
    # The worker wrote its decision and stopped before the PATCH (a crash): Microsoft's window is still
    # open, and the recorded decision is the one answer the redelivery sends.
    subscription_id = portal.buy(quantity=4)
    operation_id = _pending_quantity_change(portal, subscription_id, 3)
    recorded = InboxRecord(
        subscription_id, operation_id, "ChangeQuantity", InboxState.RECEIVED, "Azure", "accept", "policy"
    )
    assert portal.services.operations.put_new(recorded) is not None
    fields = {"operation_id": operation_id, "verdict": "refuse", "confirm": "yes"}
    assert f'data-decide="{operation_id}"' not in _get(portal, OLIVIA, subscription_id).text
    answer = _post(portal, OLIVIA, subscription_id, "decide", fields)
    assert answer.status_code == 409
    assert "already decided" in answer.text
    assert portal.control.operation(operation_id)["status"] == "InProgress", "nothing was sent"


def test_a_malformed_decision_is_refused(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=4)
    operation_id = _pending_quantity_change(portal, subscription_id, 5)
    for fields in (
        {"operation_id": operation_id, "verdict": "maybe", "confirm": "yes"},
        {"operation_id": "<b>", "verdict": "accept", "confirm": "yes"},
        {"operation_id": operation_id, "verdict": "accept"},
    ):
        assert _post(portal, OLIVIA, subscription_id, "decide", fields).status_code == 400
    assert portal.control.operation(operation_id)["status"] == "InProgress"


# --- cancelling at Microsoft -------------------------------------------------------------------------------


def test_a_wrong_typed_confirmation_cancels_nothing(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=2, name="Contoso design team")
    for typed in ("", "contoso design team", "Contoso design", "yes"):
        answer = _post(portal, OLIVIA, subscription_id, "cancel", {"confirm_name": typed})
        assert answer.status_code == 400
        assert "Nothing was cancelled" in answer.text
    assert (
        portal.control.subscription(subscription_id)["subscription"]["saasSubscriptionStatus"] == "Subscribed"
    )
    assert not _audit(portal, subscription_id, AuditAction.CANCEL_REQUESTED)


def test_an_admin_cancels_by_typing_the_name(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=2, name="Contoso design team")
    answer = _post(portal, OLIVIA, subscription_id, "cancel", {"confirm_name": " Contoso design team "})
    assert answer.status_code == 303, answer.text
    assert _notice_of(answer, subscription_id) == "cancel"
    (entry,) = _audit(portal, subscription_id, AuditAction.CANCEL_REQUESTED)
    assert entry.operation_id
    assert "olivia.ops" in entry.actor
    record = portal.services.operations.get(subscription_id, entry.operation_id)
    assert record is not None
    assert record.initiated_by_publisher
    assert record.action == "Unsubscribe"


def test_a_change_asked_for_in_the_publishers_portal_cannot_be_refused_by_an_operator(portal: Portal) -> None:
    # The portal's own request reaches Microsoft before its inbox row is written: even in that gap (shown
    # here with no row at all) the operator may not overrule the buyer's confirmed change.
    subscription_id = portal.buy(quantity=4)
    operation_id = portal.services.fulfillment.change_quantity(subscription_id, 6)
    assert portal.services.operations.get(subscription_id, operation_id) is None
    page = _get(portal, OLIVIA, subscription_id)
    assert f'value="{operation_id}"' not in page.text, "no decision form for the portal's own change"

    fields = {"operation_id": operation_id, "verdict": "refuse", "confirm": "yes"}
    answer = _post(portal, OLIVIA, subscription_id, "decide", fields)

    assert answer.status_code == 409
    assert "asked for this change in the publisher" in answer.text
    assert portal.control.operation(operation_id)["status"] == "InProgress", "nothing was sent"
    assert portal.services.operations.get(subscription_id, operation_id) is None


def test_an_answer_that_reaches_microsoft_after_it_finished_says_too_late(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=4)
    operation_id = _pending_quantity_change(portal, subscription_id, 9)
    # The operator's PATCH is held up on its way; meanwhile Microsoft's window closes and it applies it.
    portal.control.add_fault(
        operation="SubscriptionOperations_UpdateOperationStatus", kind="hang", hangSeconds=1.5, maxCount=1
    )
    fields = {"operation_id": operation_id, "verdict": "refuse", "confirm": "yes"}
    try:
        with ThreadPoolExecutor(1) as pool:
            posted = pool.submit(_post, portal, OLIVIA, subscription_id, "decide", fields)
            wait_until(lambda: portal.control.request("GET", "/faults")["faults"][0]["hits"] == 1, 10)
            portal.services.fulfillment.update_operation(subscription_id, operation_id, True)
            answer = posted.result(timeout=20)
    finally:
        portal.control.clear_faults()

    assert portal.control.operation(operation_id)["status"] == "Succeeded"
    assert answer.status_code == 409, answer.text
    assert "Too late" in answer.text
    assert "buyer keeps what they had" not in answer.text


def test_an_operation_of_another_subscription_is_not_decided_under_this_one(portal: Portal) -> None:
    mine = portal.buy(quantity=4)
    theirs = portal.buy(quantity=4)
    operation_id = _pending_quantity_change(portal, theirs, 9)

    fields = {"operation_id": operation_id, "verdict": "refuse", "confirm": "yes"}
    answer = _post(portal, OLIVIA, mine, "decide", fields)

    assert answer.status_code == 409
    assert portal.control.operation(operation_id)["status"] == "InProgress"
    assert portal.services.operations.get(mine, operation_id) is None


def test_the_worker_closing_the_row_while_the_operators_answer_is_in_flight_is_still_a_success(
    portal: Portal,
) -> None:
    subscription_id = portal.buy(quantity=4)
    operation_id = _pending_quantity_change(portal, subscription_id, 9)
    portal.control.add_fault(
        operation="SubscriptionOperations_UpdateOperationStatus", kind="hang", hangSeconds=1.5, maxCount=1
    )
    fields = {"operation_id": operation_id, "verdict": "refuse", "confirm": "yes"}
    webhook = {
        "id": operation_id,
        "subscriptionId": subscription_id,
        "action": "ChangeQuantity",
        "quantity": 9,
    }
    try:
        with ThreadPoolExecutor(1) as pool:
            posted = pool.submit(_post, portal, OLIVIA, subscription_id, "decide", fields)
            wait_until(lambda: portal.control.request("GET", "/faults")["faults"][0]["hits"] == 1, 10)
            # The worker meets the operator's recorded decision, sends the same and saves the row first.
            handle_announced_operation(webhook, "worker-meanwhile", ports=portal.services.operation_ports)
            answer = posted.result(timeout=20)
    finally:
        portal.control.clear_faults()

    assert portal.control.operation(operation_id)["status"] == "Failed"
    assert answer.status_code == 303, answer.text
    assert _notice_of(answer, subscription_id) == "refused"


def test_the_notice_shows_for_the_session_that_acted_and_not_from_a_crafted_link(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=4)
    olivia = portal.browser(OLIVIA)
    page = _page(portal, subscription_id)
    answer = post_form(olivia, page, "reconcile", {"confirm": "yes"})
    after = olivia.get(f"{portal.url}{answer.headers['Location']}", allow_redirects=False)
    assert after.status_code == 200
    assert 'role="status"' in after.text

    crafted = olivia.get(f"{page}?notice=cancel", allow_redirects=False)
    assert "Cancellation" not in crafted.text
    someone_else = portal.browser(OLIVIA).get(
        f"{portal.url}{answer.headers['Location']}", allow_redirects=False
    )
    assert 'role="status"' not in someone_else.text, "another session's signed link shows nothing"


def test_a_console_error_leads_back_into_the_console_not_to_the_buyers_portal(portal: Portal) -> None:
    missing = portal.browser(OLIVIA).get(
        f"{portal.url}{CONSOLE}/subscriptions/00000000-0000-4000-8000-00000000dead", allow_redirects=False
    )

    assert missing.status_code == 404
    assert f'href="{CONSOLE}/subscriptions">Search the subscriptions</a>' in missing.text
    assert 'href="/api/portal"' not in missing.text


def test_a_reconcile_the_queue_refuses_says_so_and_audits_nothing(
    portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscription_id = portal.buy(quantity=2)
    monkeypatch.setattr(portal.services, "queue", RefusingQueue())
    monkeypatch.delitem(portal.services.__dict__, "operator_request_ports", raising=False)

    answer = _post(portal, OLIVIA, subscription_id, "reconcile", {"confirm": "yes"})

    assert answer.status_code == 503
    assert "The request could not be queued" in answer.text
    assert "Nothing was started" in answer.text
    assert not _audit(portal, subscription_id, AuditAction.RECONCILE_REQUESTED)


def test_a_cancel_microsoft_accepted_stands_when_its_tracking_cannot_be_queued(
    portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscription_id = portal.buy(quantity=2, name="Outage team")
    monkeypatch.setattr(portal.services, "queue", RefusingQueue())
    for cached in ("operator_request_ports", "change_ports"):
        monkeypatch.delitem(portal.services.__dict__, cached, raising=False)

    answer = _post(portal, OLIVIA, subscription_id, "cancel", {"confirm_name": "Outage team"})

    assert answer.status_code == 303, answer.text
    status = portal.control.subscription(subscription_id)["subscription"]["saasSubscriptionStatus"]
    assert status == "Unsubscribed"
    (entry,) = _audit(portal, subscription_id, AuditAction.CANCEL_REQUESTED)
    record = portal.services.operations.get(subscription_id, entry.operation_id)
    assert record is not None
    assert record.action == "Unsubscribe"
