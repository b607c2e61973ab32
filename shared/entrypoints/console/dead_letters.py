"""The console's dead letters: GET lists both places, POST replays or discards, after a confirmation.

Everything goes through `shared.workflows.dead_letters`, the workflow the CLI uses, so the console and
`python -m ops deadletters` list, select, settle and audit alike.

An action takes two posts. The first (from a row's button, or the bulk buttons under the filters) shows
what would happen; the second, with `confirm=yes`, acts and sends the operator back to the list with a
notice. A row's button names its entry by key; a bulk action names the filter, which is read again when the
operator confirms, and its confirmation carries a fingerprint of the entries it listed: unless the entries
that match then are exactly those, nothing is done and the operator is asked again with the new list (one
settled by someone else and another arrived would keep the count, not the fingerprint). A discard needs a
reason, kept in the subscription's audit trail.

How an entry and the notice after an action read is `dead_letter_views`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import azure.functions as func

from shared.config import ConfigurationError
from shared.domain.dead_letters import DeadLetterEntry, DeadLetterSelection, DeadLetterSource
from shared.entrypoints.console.dead_letter_views import (
    ACTIONS,
    KEY,
    NOTICE_FIELDS,
    REASON_NAMES,
    SOURCE_NAMES,
    fingerprint,
    notice_sentence,
    outcome_fields,
    row_of,
)
from shared.entrypoints.console.visit import (
    CONSOLE_HOME,
    OperatorVisit,
    console_error,
    open_console,
    open_console_action,
)
from shared.logs import get_logger, log_context
from shared.web import notices
from shared.web.pages import redirect
from shared.workflows.dead_letters import (
    ReasonRequiredError,
    discard_dead_letters,
    list_dead_letters,
    replay_dead_letters,
    select_dead_letters,
)

if TYPE_CHECKING:
    from shared.workflows.dead_letters import DeadLetterPorts

log = get_logger(__name__)

PAGE_URL = f"{CONSOLE_HOME}/dead-letters"
# Entries shown on one page, and entries read to fill it: a queue flooded by an outage must not make the
# page read (or render) tens of thousands of messages. Past either bound the page says so.
SHOWN = 200
READ = 2000

# Why the page shows no entries: the queue keeps none the console can reach, or it could not be read now.
NO_VIEW = "no-view"
UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Filters:
    """What the operator narrowed the list to; the same fields on the page's query and on its forms."""

    reason: str = ""
    source: DeadLetterSource | None = None
    subscription_id: str = ""

    @classmethod
    def read(cls, fields: Mapping[str, str]) -> Filters:
        source = fields.get("source", "").strip()
        known = {s.value: s for s in DeadLetterSource}
        return cls(
            reason=fields.get("reason", "").strip()[:200],
            source=known.get(source),
            subscription_id=fields.get("subscription", "").strip()[:100],
        )

    @property
    def selection(self) -> DeadLetterSelection:
        """All entries the filters pass (none set: every entry)."""
        return DeadLetterSelection(
            everything=True, reason=self.reason, source=self.source, subscription_id=self.subscription_id
        )

    @property
    def fields(self) -> dict[str, str]:
        return {
            "reason": self.reason,
            "source": self.source.value if self.source else "",
            "subscription": self.subscription_id,
        }

    @property
    def any(self) -> bool:
        return bool(self.reason or self.source or self.subscription_id)


def handle_list(req: func.HttpRequest) -> func.HttpResponse:
    visit = open_console(req)
    if isinstance(visit, func.HttpResponse):
        return visit
    filters = Filters.read(req.params)
    ports = _ports(visit)
    if isinstance(ports, str):
        return _no_view(visit, filters, ports, status=200 if ports == NO_VIEW else 503)
    try:
        read = list_dead_letters(None, ports=ports, limit=READ + 1)
    except Exception:  # Service Bus unreachable or refusing the app's identity: say so on the page, not a 500
        log.exception("console dead letters could not be read")
        return _no_view(visit, filters, UNREADABLE, status=503)
    more_waiting = len(read) > READ
    read = read[:READ]
    matching = filters.selection.pick(read)
    log.info("console dead letters", extra={"read": len(read), "matching": len(matching)})
    return visit.render(
        "console_dead_letters.html",
        problem="",
        filters=filters,
        rows=[row_of(entry) for entry in matching[:SHOWN]],
        matching=len(matching),
        shown=min(len(matching), SHOWN),
        read_limit=READ,
        more_waiting=more_waiting,
        reasons=_choices(entry.reason for entry in read),
        reason_names=REASON_NAMES,
        source_names={source.value: name for source, name in SOURCE_NAMES.items()},
        notice=notice_sentence(notices.verified(visit.session, PAGE_URL, req.params, NOTICE_FIELDS)),
        page_url=PAGE_URL,
    )


def handle_action(req: func.HttpRequest) -> func.HttpResponse:
    """POST /api/console/dead-letters/{replay|discard}: the confirmation, or with `confirm=yes` the act."""
    action = req.route_params.get("action", "")
    if action not in ACTIONS:
        return _error(404, "Nothing here", "The console has no such action.", _BACK)
    opened = open_console_action(req)
    if isinstance(opened, func.HttpResponse):
        return opened
    visit, form = opened
    ports = _ports(visit)
    filters = Filters.read(form)
    if isinstance(ports, str):
        return _no_view(visit, filters, ports, status=200 if ports == NO_VIEW else 503)
    key = form.get("key", "").strip()
    if key and not KEY.fullmatch(key):
        return _error(400, "That message cannot be named so", "The form named no waiting message.", _BACK)
    if not key and form.get("scope") != "filter":
        return _error(
            400, "Nothing was chosen", "Choose one message, or all the messages the filter shows.", _BACK
        )
    confirmed = form.get("confirm") == "yes"
    why = form.get("why", "")
    if confirmed and action == "discard" and not why.strip():
        # Refused before anything is read or touched; the workflow refuses it too (ReasonRequiredError).
        return _reason_missing()
    selection = DeadLetterSelection(ids=frozenset({key})) if key else filters.selection
    try:
        chosen = select_dead_letters(selection, ports=ports)
    except Exception:  # the queue unreachable or refusing the app: nothing was touched, say so
        log.exception("console dead letters could not be read")
        return _error(503, "The waiting messages could not be read", _UNREADABLE_MESSAGE, _BACK)
    if not confirmed:
        return _confirmation(visit, action, key, filters, chosen)
    if not key and form.get("shown", "") != fingerprint(chosen):
        # Not the messages the operator saw and confirmed: never act on messages nobody looked at.
        log.warning("console bulk action asked again: other messages match", extra={"now": len(chosen)})
        return _confirmation(visit, action, key, filters, chosen, changed=True)
    return _act(visit, action, key, filters, why, chosen, ports)


def _act(
    visit: OperatorVisit,
    action: str,
    key: str,
    filters: Filters,
    why: str,
    chosen: list[DeadLetterEntry],
    ports: DeadLetterPorts,
) -> func.HttpResponse:
    """Settles `chosen` one by one through the workflow, which audits each with the operator's name."""
    correlation_id = f"console-{uuid.uuid4()}"
    with log_context(correlation_id=correlation_id):
        try:
            if action == "replay":
                results = list(
                    replay_dead_letters(
                        chosen, operator=visit.actor, correlation_id=correlation_id, ports=ports
                    )
                )
            else:
                results = list(
                    discard_dead_letters(
                        chosen,
                        reason=why,
                        operator=visit.actor,
                        correlation_id=correlation_id,
                        ports=ports,
                    )
                )
        except ReasonRequiredError:
            return _reason_missing()
        log.info(
            "console dead letters settled",
            extra={"action": action, "chosen": len(chosen), "key": key, "filtered": filters.any},
        )
    # A row's entry that is no longer there was settled by someone else since the page was shown.
    vanished = 1 if key and not chosen else 0
    outcome = outcome_fields(action, results, vanished=vanished)
    signed = notices.signed_query(visit.session, PAGE_URL, outcome)
    return redirect(f"{PAGE_URL}?{urlencode(_kept(filters))}&{signed}")


def _confirmation(
    visit: OperatorVisit,
    action: str,
    key: str,
    filters: Filters,
    chosen: list[DeadLetterEntry],
    *,
    changed: bool = False,
) -> func.HttpResponse:
    return visit.render(
        "console_dead_letters_confirm.html",
        changed=changed,
        shown=fingerprint(chosen),
        action=action,
        key=key,
        filters=filters,
        rows=[row_of(entry) for entry in chosen[:SHOWN]],
        chosen=len(chosen),
        page_url=PAGE_URL,
    )


def _reason_missing() -> func.HttpResponse:
    log.warning("console discard refused: no reason")
    return _error(
        400,
        "Say why before discarding",
        "A discarded message is gone for good, so the reason is kept in the subscription's history. "
        "Nothing was discarded.",
        "Go back, write the reason and confirm again.",
    )


def _ports(visit: OperatorVisit) -> DeadLetterPorts | str:
    """The workflow's ports, or why there are none: the queue keeps no dead letters an operator can reach
    (NO_VIEW), or its view could not be opened (UNREADABLE: the local queue's file, for one)."""
    try:
        return visit.app.dead_letter_ports
    except ConfigurationError as exc:
        log.warning("console dead letters: no view of this queue", extra={"error": str(exc)})
        return NO_VIEW
    except Exception:  # reported on the page; the next request tries again (the property is not cached)
        log.exception("console dead letters: the queue's view could not be opened")
        return UNREADABLE


def _no_view(visit: OperatorVisit, filters: Filters, problem: str, *, status: int = 200) -> func.HttpResponse:
    return visit.render(
        "console_dead_letters.html",
        status=status,
        problem=problem,
        filters=filters,
        rows=[],
        matching=0,
        shown=0,
        read_limit=READ,
        more_waiting=False,
        reasons=[],
        reason_names=REASON_NAMES,
        source_names={source.value: name for source, name in SOURCE_NAMES.items()},
        notice="",
        page_url=PAGE_URL,
    )


def _choices(reasons: Iterable[str]) -> list[str]:
    return sorted({reason for reason in reasons if reason})


def _kept(filters: Filters) -> dict[str, str]:
    return {name: value for name, value in filters.fields.items() if value}


_BACK = "Go back to the dead letters and try again."
_UNREADABLE_MESSAGE = "Nothing was replayed or discarded. The app's log says why."


def _error(status: int, title: str, message: str, hint: str = "") -> func.HttpResponse:
    return console_error(
        status, title, message, hint, back_url=PAGE_URL, back_label="Back to the dead letters"
    )
