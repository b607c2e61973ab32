"""No buyer page shows API vocabulary: every page rendered by the real handlers over HTTP, then its visible
text (element content and titles, not attributes) checked against the identifiers the Fulfillment API uses.

The identifiers stay in `data-*` attributes for CSS and tests; that is checked too, so a page does not lose
its machine-readable state while gaining words.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import quote

import pytest

from shared.app_context import services
from shared.domain.inbox import InboxRecord, InboxState
from shared.domain.status import Action, OperationStatus
from shared.entrypoints.landing.status import status_url
from shared.web.current_user import session_codec
from tests.portal import ADELE, CONTOSO, Portal, csrf_token, running_portal

# Whole words, case-sensitive: "Purchaser" as a heading is English, "beneficiary-admin" is not.
API_WORDS = [
    "PendingFulfillmentStart",
    "Subscribed",
    "Unsubscribed",
    "P1M",
    "P1Y",
    "P2Y",
    "beneficiary-admin",
    "delegated-admin",
    "delegated",
    "purchaser",
    *(action.value for action in Action),
    "NotStarted",
    "InProgress",
    "Succeeded",
    "Conflict",
    # Inbox states that are not also plain English ("Not applied", "Failed" are fine words).
    *sorted({state.value for state in InboxState} - {"done", "received", "refused"}),
    "team-seats",  # a plan id where the page knows the display name
]


class VisibleText(HTMLParser):
    """Text a reader sees: element content outside <style>/<script>, attribute values left out."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._hidden += tag in {"style", "script"}

    def handle_endtag(self, tag: str) -> None:
        self._hidden -= tag in {"style", "script"}

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def api_words_in(html: str, *, allowed: tuple[str, ...] = ()) -> list[str]:
    text = visible_text(html)
    return [
        w for w in API_WORDS if w not in allowed and re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text)
    ]


@pytest.fixture(scope="module")
def portal(azurite_connection_string: str) -> Iterator[Portal]:
    with running_portal(azurite_connection_string, "w" + uuid.uuid4().hex[:10]) as running:
        yield running


def test_confirm_and_status_pages_speak_to_the_buyer(portal: Portal) -> None:
    bought = portal.control.buy("team-seats", buyer="adele.vance@contoso.onmicrosoft.com", quantity=3)
    client = portal.browser(ADELE)
    landed = client.get(
        f"{portal.url}/api/landing?token={quote(bought['token'], safe='')}", allow_redirects=False
    )
    assert landed.headers["Location"] == "/api/landing/confirm"
    confirm = client.get(f"{portal.url}/api/landing/confirm", allow_redirects=False)
    assert confirm.status_code == 200
    # The offer and plan ids are all Resolve gives; they are shown, marked as ids (class="id").
    assert api_words_in(confirm.text, allowed=("team-seats",)) == []
    assert CONTOSO not in visible_text(confirm.text), "the organisation is named in words, not by tenant id"
    assert "Your organisation (contoso.com)" in visible_text(confirm.text)
    assert 'data-status="PendingFulfillmentStart" data-field="status">Waiting for activation<' in confirm.text
    assert 'data-field="term">Monthly<' in confirm.text

    posted = client.post(
        f"{portal.url}/api/landing/confirm",
        data={"csrf_token": csrf_token(confirm.text), "contact_email": "adele.vance@contoso.com"},
        allow_redirects=False,
    )
    status = client.get(f"{portal.url}{posted.headers['Location']}")
    assert status.status_code == 200
    assert api_words_in(status.text, allowed=("team-seats",)) == []
    assert 'data-status="PendingFulfillmentStart"' in status.text


def test_status_page_of_an_active_subscription(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=3)
    client = portal.browser(ADELE)
    # A status link works only with the session it was issued to (hostile pass): read that session back.
    session = session_codec(services().settings).load(
        "; ".join(f"{c.name}={c.value}" for c in client.cookies)
    )
    status = client.get(f"{portal.url}{status_url(services(), subscription_id, session)}")
    assert api_words_in(status.text, allowed=("team-seats",)) == []
    assert 'data-status="Subscribed" data-testid="activation-status">Active<' in status.text
    assert "Your subscription is active" in visible_text(status.text)


def test_portal_pages_with_every_kind_of_change_speak_to_the_buyer(portal: Portal) -> None:
    subscription_id = portal.buy(quantity=3)
    start = datetime.now(UTC) - timedelta(hours=1)
    actions = [*(action.value for action in Action), "SomethingMicrosoftAddsLater"]
    states = list(InboxState)
    outcomes = ["", *(outcome.value for outcome in OperationStatus)]
    for n, action in enumerate(actions):
        for m, state in enumerate(states):
            at = start + timedelta(seconds=n * 100 + m)
            services().operations.put_new(
                InboxRecord(
                    subscription_id=subscription_id,
                    operation_id=str(uuid.uuid4()),
                    action=action,
                    state=state,
                    outcome=outcomes[(n + m) % len(outcomes)],
                    plan_id="team-seats" if action == "ChangePlan" else "",
                    quantity=4 if action == "ChangeQuantity" else None,
                    created_at=at,
                    updated_at=at,
                )
            )
    client = portal.browser(ADELE)

    page = client.get(portal.page_url(subscription_id))
    assert page.status_code == 200
    assert api_words_in(page.text) == []
    text = visible_text(page.text)
    for words in ("Active", "Monthly", "Purchaser, Administrator", "Plan change", "Seat quantity change"):
        assert words in text, words
    assert "Team (per seat)" in text  # the plan's display name from listAvailablePlans
    assert "Something microsoft adds later" in text  # an unknown action still reads as words
    assert 'data-status="Subscribed"' in page.text
    assert 'data-action="ChangeQuantity"' in page.text

    home = client.get(f"{portal.url}/api/portal")
    # The home page names the plan too: the offer's plan names are kept per instance, not asked per row.
    assert api_words_in(home.text) == []
    assert '<span data-plan="team-seats">Team (per seat)</span>' in home.text
    assert 'data-roles="beneficiary-admin purchaser">Purchaser, Administrator<' in home.text
