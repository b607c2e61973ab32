"""A sweep asked for from the console (or the CLI against Azure) is queued for the worker, which runs it in
the app's own identity; every sweep's counts land in the audit trail and on the overview."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from azure.functions.servicebus import ServiceBusMessage

from shared.domain.audit import SWEEPS_PARTITION, AuditAction, AuditSource
from shared.domain.subscription import SWEEP_SESSION
from shared.entrypoints import worker
from shared.queueing.messages import MessageKind, QueueMessage
from shared.web.current_user import SignedInUser
from tests.console import BUYER, CONSOLE, OLIVIA, RAVI, RefusingQueue
from tests.portal import Portal, token_for


def _ask(
    portal: Portal, user: SignedInUser, fields: dict[str, str], client: requests.Session | None = None
) -> requests.Response:
    client = client or portal.browser(user)
    return client.post(
        f"{portal.url}{CONSOLE}/sweep",
        data={"csrf_token": token_for(client), **fields},
        allow_redirects=False,
    )


def _sweep_requests(portal: Portal) -> list[QueueMessage]:
    sent = portal.services.queue.messages  # type: ignore[attr-defined]
    return [m for m in sent if m.body.get("kind") == MessageKind.SWEEP]


def _deliver(message: QueueMessage) -> None:
    """Runs the real worker on the queued request, as the Functions host would."""
    worker.handle_message(
        ServiceBusMessage(
            body=message.encode(),
            message_id=message.message_id,
            session_id=message.session_id,
            correlation_id=message.correlation_id,
            delivery_count=1,
            application_properties={},
            user_properties={},
        )
    )


def test_an_admin_asks_for_a_sweep_and_the_worker_runs_it_and_records_its_counts(portal: Portal) -> None:
    wanted = portal.buy(quantity=2)
    before = len(_sweep_requests(portal))

    olivia = portal.browser(OLIVIA)
    answer = _ask(portal, OLIVIA, {"confirm": "yes"}, olivia)

    assert answer.status_code == 303, answer.text
    assert parse_qs(urlsplit(answer.headers["Location"]).query)["notice"] == ["sweep"]
    (request,) = _sweep_requests(portal)[before:]
    assert request.session_id == SWEEP_SESSION
    assert request.body["requestedBy"].startswith("olivia.ops@publisher.onmicrosoft.com (")
    asked = portal.services.audit.list(SWEEPS_PARTITION)[-1]
    assert (asked.action, asked.source) == (AuditAction.SWEEP_REQUESTED, AuditSource.OPERATOR)

    _deliver(request)

    ran = portal.services.audit.list(SWEEPS_PARTITION)[-1]
    assert ran.action is AuditAction.SWEEP
    assert ran.actor == request.body["requestedBy"]
    assert ran.changes["listed"][1] >= 1
    page = olivia.get(f"{portal.url}{answer.headers['Location']}", allow_redirects=False).text
    assert "Sweep queued." in page
    assert 'data-sweep="Sweep"' in page
    assert wanted  # a subscription Microsoft lists: the sweep saw it


@pytest.mark.parametrize("who", [RAVI, BUYER])
def test_readers_and_buyers_cannot_ask_for_a_sweep(portal: Portal, who: SignedInUser) -> None:
    before = len(_sweep_requests(portal))

    assert _ask(portal, who, {"confirm": "yes"}).status_code == 403
    assert len(_sweep_requests(portal)) == before


def test_a_sweep_needs_the_confirmation_and_a_csrf_token(portal: Portal) -> None:
    before = len(_sweep_requests(portal))
    assert _ask(portal, OLIVIA, {}).status_code == 400
    forged = portal.browser(OLIVIA).post(
        f"{portal.url}{CONSOLE}/sweep", data={"confirm": "yes"}, allow_redirects=False
    )
    assert forged.status_code == 403
    assert len(_sweep_requests(portal)) == before


def test_a_reader_sees_the_sweeps_but_no_button(portal: Portal) -> None:
    page = portal.browser(RAVI).get(f"{portal.url}{CONSOLE}", allow_redirects=False).text
    assert "Reconciliation with Microsoft" in page
    assert 'id="sweep-form"' not in page


def test_a_sweep_the_queue_refuses_says_so_and_records_nothing(
    portal: Portal, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = len(portal.services.audit.list(SWEEPS_PARTITION))
    monkeypatch.setattr(portal.services, "queue", RefusingQueue())

    answer = _ask(portal, OLIVIA, {"confirm": "yes"})

    assert answer.status_code == 503
    assert "The sweep could not be queued" in answer.text
    assert len(portal.services.audit.list(SWEEPS_PARTITION)) == before
