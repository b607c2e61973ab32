"""The console's dead letters on the running stack, with the dev host's local queue as the app's queue.

The portal's usual queue (in memory) keeps no dead letters an operator can reach, so this module serves the
app with QUEUE_BACKEND=local, as the dev host does; messages are parked and exhausted on the same SQLite file
the way the worker and the queue would, and every page and action goes over HTTP to the served app.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from devhost.local_queue import LocalDeadLetters, LocalQueue, register_local_queue
from shared.app_context import services
from shared.domain.audit import SWEEPS_PARTITION, AuditAction
from shared.domain.dead_letters import DeadLetterEntry
from shared.queueing.messages import QueueMessage, sweep_message
from shared.web import notices
from shared.web.current_user import SignedInUser, session_codec
from tests.console import BUYER, CONSOLE, OLIVIA, RAVI
from tests.portal import Portal, csrf_token, running_portal, token_for

PAGE = f"{CONSOLE}/dead-letters"
XSS_BODY = "<script>alert('body')</script>"
XSS_DESCRIPTION = "<img src=x onerror=alert('description')>"


@dataclass
class Stack:
    portal: Portal
    queue: LocalQueue

    @property
    def url(self) -> str:
        return self.portal.url

    def browser(self, user: SignedInUser | None = None) -> requests.Session:
        return self.portal.browser(user)

    def park(self, *, reason: str = "UnknownOperation", description: str = "forged", **body: str) -> Letter:
        """A message the worker set aside (the parking queue), about a fresh subscription."""
        subscription_id = str(uuid.uuid4())
        message_id = f"op-{uuid.uuid4()}"
        payload = {"id": message_id, "subscriptionId": subscription_id, **body}
        self.queue.dead_letter(_message(message_id, subscription_id, payload), reason, description)
        return Letter(self, message_id, subscription_id)

    def exhaust(self) -> Letter:
        """A message whose every delivery failed (the dead-letter sub-queue's stand-in)."""
        subscription_id = str(uuid.uuid4())
        message_id = f"op-{uuid.uuid4()}"
        payload = {"id": message_id, "subscriptionId": subscription_id}
        self.queue.send(_message(message_id, subscription_id, payload))
        lease = self.queue.receive(timeout=2)
        assert lease is not None
        assert lease.message_id == message_id
        self.queue.abandon(lease, "RuntimeError: the fulfillment API answered 500")
        return Letter(self, message_id, subscription_id)

    def waiting(self, message_id: str) -> DeadLetterEntry | None:
        return next((e for e in LocalDeadLetters(self.queue).list() if e.message_id == message_id), None)

    def queued_replays_of(self, message_id: str) -> list[QueueMessage]:
        return [
            queued.message
            for queued in self.queue.peek_all()
            if queued.message.application_properties.get("originalMessageId") == message_id
        ]


@dataclass
class Letter:
    stack: Stack
    message_id: str
    subscription_id: str

    @property
    def key(self) -> str:
        entry = self.stack.waiting(self.message_id)
        assert entry is not None, f"{self.message_id} is not waiting"
        return entry.key

    @property
    def waits(self) -> bool:
        return self.stack.waiting(self.message_id) is not None

    def audit(self) -> list[tuple[str, str, dict[str, object]]]:
        return [
            (entry.action, entry.actor, dict(entry.changes))
            for entry in services().audit.list(self.subscription_id)
        ]


def _message(message_id: str, subscription_id: str, payload: dict[str, str]) -> QueueMessage:
    return QueueMessage(
        message_id=message_id,
        session_id=subscription_id,
        body={"kind": "webhook", "payload": payload},
        correlation_id="c-1",
    )


@pytest.fixture(scope="module")
def stack(azurite_connection_string: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    path = Path(tmp_path_factory.mktemp("console-dead-letters")) / "queue.sqlite3"
    register_local_queue()  # as the dev host does before serving the app
    env = {"QUEUE_BACKEND": "local", "LOCAL_QUEUE_PATH": str(path)}
    with (
        running_portal(azurite_connection_string, "d" + uuid.uuid4().hex[:10], env=env) as portal,
        LocalQueue(path, max_delivery_count=1) as queue,
    ):
        yield Stack(portal, queue)


def _post(
    client: requests.Session, stack: Stack, action: str, fields: dict[str, str], *, token: str | None = None
) -> requests.Response:
    token = token_for(client) if token is None else token
    return client.post(
        f"{stack.url}{PAGE}/{action}", data={"csrf_token": token, **fields}, allow_redirects=False
    )


def test_both_places_are_listed_with_words_links_and_the_body(stack: Stack) -> None:
    parked = stack.park(reason="UnknownOperation", description="GetOperation does not know it")
    exhausted = stack.exhaust()

    page = stack.browser(RAVI).get(f"{stack.url}{PAGE}", allow_redirects=False)

    assert page.status_code == 200, page.text
    for letter, source in ((parked, "parking"), (exhausted, "deadletter")):
        assert f'data-key="{letter.key}"' in page.text
        assert f'data-source="{source}"' in page.text
        assert f'href="{CONSOLE}/subscriptions/{letter.subscription_id}"' in page.text
        assert letter.message_id in page.text
    assert "Microsoft does not know this operation" in page.text
    assert "GetOperation does not know it" in page.text
    assert "Failed on every delivery" in page.text
    assert "RuntimeError: the fulfillment API answered 500" in page.text
    assert "Notice from Microsoft" in page.text
    assert "&#34;subscriptionId&#34;: &#34;" in page.text or "&quot;subscriptionId&quot;" in page.text
    # A reader sees no action forms.
    assert 'data-row-action="replay"' not in page.text
    assert 'data-bulk="replay"' not in page.text


def test_filters_narrow_the_list(stack: Stack) -> None:
    parked = stack.park(reason="FilterCheck")
    exhausted = stack.exhaust()
    reader = stack.browser(RAVI)

    by_reason = reader.get(f"{stack.url}{PAGE}", params={"reason": "FilterCheck"}).text
    assert f'data-key="{parked.key}"' in by_reason
    assert f'data-key="{exhausted.key}"' not in by_reason
    assert "1 message waits that matches this filter" in by_reason

    by_source = reader.get(f"{stack.url}{PAGE}", params={"source": "parking"}).text
    assert f'data-key="{parked.key}"' in by_source
    assert 'data-source="deadletter"' not in by_source

    by_subscription = reader.get(
        f"{stack.url}{PAGE}", params={"subscription": exhausted.subscription_id}
    ).text
    assert f'data-key="{exhausted.key}"' in by_subscription
    assert f'data-key="{parked.key}"' not in by_subscription


def test_an_admin_confirms_then_replays_one_and_the_audit_names_them(stack: Stack) -> None:
    letter = stack.exhaust()
    key = letter.key
    admin = stack.browser(OLIVIA)
    listing = admin.get(f"{stack.url}{PAGE}").text
    assert 'data-row-action="replay"' in listing

    asked = _post(admin, stack, "replay", {"key": key}, token=csrf_token(listing))
    assert asked.status_code == 200, asked.text
    assert "Replay 1 message?" in asked.text
    assert f'data-key="{key}"' in asked.text
    assert letter.waits, "the first post only asks"
    assert stack.queued_replays_of(letter.message_id) == []

    done = _post(admin, stack, "replay", {"key": key, "confirm": "yes"}, token=csrf_token(asked.text))

    assert done.status_code == 303, done.text
    assert done.headers["Location"].startswith(PAGE)
    assert not letter.waits
    [copy] = stack.queued_replays_of(letter.message_id)
    assert copy.session_id == letter.subscription_id
    assert copy.body["payload"]["id"] == letter.message_id  # type: ignore[index]
    assert copy.application_properties["replayedBy"] == _actor(OLIVIA)
    trail = letter.audit()
    assert (AuditAction.DEAD_LETTER_REPLAYED.value, _actor(OLIVIA)) in {(a, who) for a, who, _ in trail}
    notice = admin.get(f"{stack.url}{done.headers['Location']}").text
    assert "1 message replayed." in notice


def test_an_admin_discards_one_with_a_reason_kept_in_the_audit(stack: Stack) -> None:
    letter = stack.park()
    admin = stack.browser(OLIVIA)

    asked = _post(admin, stack, "discard", {"key": letter.key})
    assert asked.status_code == 200
    assert 'name="why"' in asked.text
    assert letter.waits

    why = "forged: Microsoft never started this operation"
    done = _post(admin, stack, "discard", {"key": letter.key, "confirm": "yes", "why": why})

    assert done.status_code == 303, done.text
    assert not letter.waits
    assert stack.queued_replays_of(letter.message_id) == []
    discarded = [c for a, who, c in letter.audit() if a == AuditAction.DEAD_LETTER_DISCARDED.value]
    assert discarded, letter.audit()
    assert discarded[0]["discard_reason"] == [None, why] or discarded[0]["discard_reason"] == (None, why)
    assert _actor(OLIVIA) in {who for _, who, _ in letter.audit()}
    assert "1 message discarded." in admin.get(f"{stack.url}{done.headers['Location']}").text


def test_a_discard_without_a_reason_is_refused_and_nothing_is_discarded(stack: Stack) -> None:
    letter = stack.park()
    key = letter.key

    answer = _post(stack.browser(OLIVIA), stack, "discard", {"key": key, "confirm": "yes", "why": "   "})

    assert answer.status_code == 400
    assert "Say why before discarding" in answer.text
    assert "Nothing was discarded" in answer.text
    assert letter.key == key
    assert letter.audit() == []


def test_bulk_replay_acts_on_every_entry_the_filter_matches(stack: Stack) -> None:
    reason = f"Bulk{uuid.uuid4().hex[:8]}"
    first, second = stack.park(reason=reason), stack.park(reason=reason)
    other = stack.park()
    admin = stack.browser(OLIVIA)

    asked = _post(admin, stack, "replay", {"scope": "filter", "reason": reason})
    assert "Replay 2 messages?" in asked.text
    done = _post(admin, stack, "replay", _hidden_fields(asked.text))

    assert done.status_code == 303
    assert not first.waits
    assert not second.waits
    assert other.waits
    assert "reason=" + reason in done.headers["Location"]
    assert "2 messages replayed." in admin.get(f"{stack.url}{done.headers['Location']}").text


def test_a_bulk_action_asks_again_when_more_match_than_were_confirmed(stack: Stack) -> None:
    reason = f"Grown{uuid.uuid4().hex[:8]}"
    first = stack.park(reason=reason)
    admin = stack.browser(OLIVIA)
    asked = _post(admin, stack, "discard", {"scope": "filter", "reason": reason})
    assert "Discard 1 message?" in asked.text
    arrived = stack.park(reason=reason)  # after the operator saw the list

    again = _post(admin, stack, "discard", {**_hidden_fields(asked.text), "why": "duplicates"})

    assert again.status_code == 200
    assert "The messages that match changed since you were asked" in again.text
    assert first.waits
    assert arrived.waits


def test_a_bulk_action_asks_again_when_the_matching_messages_changed(stack: Stack) -> None:
    # As many match when the operator confirms as were shown, but not the same ones: one was settled by
    # someone else and another arrived. Acting then would discard a message nobody looked at.
    reason = f"Swapped{uuid.uuid4().hex[:8]}"
    shown, settled = stack.park(reason=reason), stack.park(reason=reason)
    admin = stack.browser(OLIVIA)
    asked = _post(admin, stack, "discard", {"scope": "filter", "reason": reason})
    assert "Discard 2 messages?" in asked.text
    confirm_fields = _hidden_fields(asked.text)
    assert LocalDeadLetters(stack.queue).discard(stack.waiting(settled.message_id))  # type: ignore[arg-type]
    unseen = stack.park(reason=reason)

    again = _post(admin, stack, "discard", {**confirm_fields, "why": "checked these two"})

    assert again.status_code == 200
    assert "The messages that match changed since you were asked" in again.text
    assert shown.waits
    assert unseen.waits
    assert unseen.audit() == []
    # Confirmed again from the list now shown, both are discarded.
    done = _post(admin, stack, "discard", {**_hidden_fields(again.text), "why": "checked these two"})
    assert done.status_code == 303
    assert not shown.waits
    assert not unseen.waits


def _hidden_fields(page: str) -> dict[str, str]:
    """The hidden fields of the confirmation form, as the operator's browser would send them back."""
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)
    return {name: html.unescape(value) for name, value in found if name != "csrf_token"}


def test_a_post_naming_nothing_is_refused(stack: Stack) -> None:
    answer = _post(stack.browser(OLIVIA), stack, "replay", {"confirm": "yes"})
    assert answer.status_code == 400
    assert "Nothing was chosen" in answer.text


@pytest.mark.parametrize("action", ["replay", "discard"])
def test_a_reader_and_a_buyer_are_refused_every_action(stack: Stack, action: str) -> None:
    letter = stack.park()
    fields = {"key": letter.key, "confirm": "yes", "why": "no"}

    assert _post(stack.browser(RAVI), stack, action, fields).status_code == 403
    assert _post(stack.browser(BUYER), stack, action, fields).status_code == 403
    assert stack.browser(BUYER).get(f"{stack.url}{PAGE}", allow_redirects=False).status_code == 403
    assert letter.waits
    assert letter.audit() == []


def test_a_post_without_the_csrf_token_is_refused(stack: Stack) -> None:
    letter = stack.park()
    admin = stack.browser(OLIVIA)

    missing = admin.post(
        f"{stack.url}{PAGE}/replay", data={"key": letter.key, "confirm": "yes"}, allow_redirects=False
    )
    forged = _post(admin, stack, "replay", {"key": letter.key, "confirm": "yes"}, token="forged")

    assert missing.status_code == 403
    assert forged.status_code == 403
    assert letter.waits
    assert letter.audit() == []


def test_markup_in_a_body_and_a_description_is_shown_as_text(stack: Stack) -> None:
    letter = stack.park(reason="UnknownOperation", description=XSS_DESCRIPTION, note=XSS_BODY)
    admin = stack.browser(OLIVIA)

    page = admin.get(f"{stack.url}{PAGE}").text
    asked = _post(admin, stack, "discard", {"key": letter.key}, token=csrf_token(page)).text

    for text in (page, asked):
        assert XSS_BODY not in text
        assert XSS_DESCRIPTION not in text
        assert "&lt;script&gt;alert(" in text
        assert "&lt;img src=x onerror=alert(" in text


def test_a_long_body_is_cut_with_the_whole_one_click_away(stack: Stack) -> None:
    letter = stack.park(note="x" * 2000 + "END-OF-BODY")

    page = stack.browser(RAVI).get(f"{stack.url}{PAGE}", params={"subscription": letter.subscription_id}).text

    assert "Show the whole message" in page
    preview = page.split("data-body-preview>", 1)[1].split("</pre>", 1)[0]
    assert "END-OF-BODY" not in preview
    assert "END-OF-BODY" in page.split("data-body-full>", 1)[1]


def test_a_notice_is_rebuilt_from_numbers_and_keys_only(stack: Stack) -> None:
    client = stack.browser(RAVI)
    client.get(f"{stack.url}{PAGE}")  # the page gives the session its CSRF secret, which signs notices
    codec = session_codec(services().settings)
    session = codec.load(f"{codec.cookie_name}={client.cookies.get(codec.cookie_name)}")
    fields = {"done": "replay", "count": "3", "failures": "1", "failed": "parking:9,<b>evil</b>"}

    page = client.get(f"{stack.url}{PAGE}?{notices.signed_query(session, PAGE, fields)}").text

    assert "3 messages replayed." in page
    assert "parking:9" in page
    assert "evil" not in page


def test_a_crafted_notice_link_shows_nothing(stack: Stack) -> None:
    crafted = {"done": "discard", "count": "40"}

    page = stack.browser(RAVI).get(f"{stack.url}{PAGE}", params=crafted).text

    assert "discarded" not in page


@pytest.mark.parametrize("count", ["\u00b2", "\u2460"])
def test_digits_that_are_not_ascii_are_no_count(stack: Stack, count: str) -> None:
    client = stack.browser(RAVI)
    client.get(f"{stack.url}{PAGE}")
    codec = session_codec(services().settings)
    session = codec.load(f"{codec.cookie_name}={client.cookies.get(codec.cookie_name)}")
    fields = {"done": "replay", "count": count, "failures": count, "gone": count}

    answer = client.get(f"{stack.url}{PAGE}?{notices.signed_query(session, PAGE, fields)}")

    assert answer.status_code == 200
    assert "0 messages replayed." in answer.text


def _actor(user: SignedInUser) -> str:
    return f"{user.upn} ({user.tenant_id}:{user.object_id})"


def test_a_parked_sweep_names_no_subscription_and_its_discard_is_kept_with_the_sweeps(stack: Stack) -> None:
    requested = sweep_message("olivia (t:o)", f"c-{uuid.uuid4()}")
    stack.queue.dead_letter(requested, "ListSubscriptionsFailed", "Microsoft answered 500 on every page")
    entry = stack.waiting(requested.message_id)
    assert entry is not None
    assert entry.subscription_id == ""

    page = stack.browser(RAVI).get(f"{stack.url}{PAGE}").text
    assert "Reconciliation sweep of every subscription" in page
    assert "/api/console/subscriptions/_sweep" not in page, "no link to a subscription that does not exist"

    fields = {"key": entry.key, "confirm": "yes", "why": "the sweep ran again on its schedule"}
    assert _post(stack.browser(OLIVIA), stack, "discard", fields).status_code == 303
    kept = [e.action for e in services().audit.list(SWEEPS_PARTITION)]
    assert AuditAction.DEAD_LETTER_DISCARDED in kept
