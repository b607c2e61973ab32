"""How the console's dead-letters page shows an entry and the notice after an action: words beside the
values, the body pretty and cut, and a notice rebuilt from numbers and entry keys only.

The notice travels in the query as numbers and entry keys only (never free text), signed for the session
that acted (`shared.web.notices`): even a signed link can at worst show a wrong count, never words someone
chose.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from shared.domain.dead_letters import DeadLetterEntry, DeadLetterSource
from shared.entrypoints.console.visit import CONSOLE_HOME
from shared.workflows.dead_letters import DeadLetterOutcome, DeadLetterResult

KEY = re.compile(r"(?:parking|deadletter):[0-9]{1,19}")
ACTIONS = ("replay", "discard")
# A body longer than this is cut in the row; the whole of it is one click away (details/summary, no script).
BODY_PREVIEW_CHARS = 400
# Keys named in a notice: enough to find them, bounded so the address stays short.
NOTICE_KEYS = 20

SOURCE_NAMES = {
    DeadLetterSource.PARKING: "Set aside by the worker",
    DeadLetterSource.DEAD_LETTER: "Moved aside by the queue after every delivery failed",
}
# The reasons the worker and the queue give (shared.workflows, the worker's _park); any other (a refusal
# of the Fulfillment API names its error class) is shown as recorded.
REASON_NAMES = {
    "MaxDeliveryCountExceeded": "Failed on every delivery",
    "UnknownOperation": "Microsoft does not know this operation",
    "OperationMismatch": "The notice and Microsoft's operation disagree",
    "ActivationRefused": "Microsoft refused the activation",
    "InboxRace": "The operation's record vanished while it was handled",
    "MalformedMessage": "The message could not be read",
}
KIND_NAMES = {
    "activate": "Activation of a purchase",
    "webhook": "Notice from Microsoft",
    "track": "Follow-up of a change we asked for",
    "reconcile": "Check against Microsoft",
    "sweep": "Reconciliation sweep of every subscription",
}


@dataclass(frozen=True)
class Row:
    """One entry as the page shows it: words next to the values, the body pretty and cut."""

    key: str
    source: str
    source_name: str
    reason: str
    reason_name: str
    description: str
    subscription_id: str
    subscription_href: str
    kind: str
    kind_name: str
    message_id: str
    first_delivery: str
    last_delivery: str
    deliveries: int
    body_preview: str
    body_full: str

    @property
    def body_cut(self) -> bool:
        return self.body_full != self.body_preview


def row_of(entry: DeadLetterEntry) -> Row:
    body = json.dumps(dict(entry.body), indent=2, sort_keys=True, ensure_ascii=False, default=str)
    preview = body if len(body) <= BODY_PREVIEW_CHARS else body[:BODY_PREVIEW_CHARS] + "\n…"
    subscription = entry.subscription_id
    return Row(
        key=entry.key,
        source=entry.source.value,
        source_name=SOURCE_NAMES[entry.source],
        reason=entry.reason,
        reason_name=REASON_NAMES.get(entry.reason, ""),
        description=entry.description,
        subscription_id=subscription,
        subscription_href=_subscription_href(subscription),
        kind=entry.kind,
        kind_name=KIND_NAMES.get(entry.kind, ""),
        message_id=entry.original_message_id,
        first_delivery=when(entry.first_enqueued_at),
        last_delivery=when(entry.dead_lettered_at),
        deliveries=entry.delivery_count,
        body_preview=preview,
        body_full=body,
    )


def _subscription_href(subscription_id: str) -> str:
    # Quoted whole ("/" too): the id may come from a message body the app could not trust.
    return f"{CONSOLE_HOME}/subscriptions/{quote(subscription_id, safe='')}" if subscription_id else ""


def when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else "Not known"


def outcome_fields(action: str, results: list[DeadLetterResult], *, vanished: int) -> dict[str, str]:
    """The notice's numbers and first keys, as query fields (see the module docstring)."""
    done = DeadLetterOutcome.REPLAYED if action == "replay" else DeadLetterOutcome.DISCARDED
    failed = [r.entry.key for r in results if r.outcome is DeadLetterOutcome.FAILED]
    unrecorded = [r.entry.key for r in results if r.outcome is done and r.error]
    return {
        "done": action,
        "count": str(sum(1 for r in results if r.outcome is done)),
        "failures": str(len(failed)),
        "failed": ",".join(failed[:NOTICE_KEYS]),
        "gone": str(vanished + sum(1 for r in results if r.outcome is DeadLetterOutcome.GONE)),
        "unrecorded": ",".join(unrecorded[:NOTICE_KEYS]),
    }


_COUNT = re.compile(r"[0-9]{1,6}")
# What an action's redirect carries for its notice (`_outcome`), signed for the session that acted.
NOTICE_FIELDS = ("done", "count", "failures", "failed", "gone", "unrecorded")


def notice_sentence(params: Mapping[str, str]) -> str:
    """The sentence after an action, rebuilt from numbers and keys only."""
    action = params.get("done", "")
    if action not in ACTIONS:
        return ""
    verb = "replayed" if action == "replay" else "discarded"
    parts = [f"{_messages(count_in(params.get('count', '')))} {verb}."]
    failures = count_in(params.get("failures", ""))
    if failures:
        named = _keys(params.get("failed", ""))
        more = " and others" if failures > len(named) else ""
        parts.append(
            f"{_messages(failures)} could not be {verb} and still wait (the log says why): "
            f"{', '.join(named)}{more}."
        )
    gone = count_in(params.get("gone", ""))
    if gone:
        parts.append(f"{_messages(gone)} had already been handled by someone else.")
    unrecorded = _keys(params.get("unrecorded", ""))
    if unrecorded:
        parts.append(f"{verb.capitalize()}, but missing from the history: {', '.join(unrecorded)}.")
    return " ".join(parts)


def _messages(count: int) -> str:
    return f"{count} {'message' if count == 1 else 'messages'}"


def count_in(text: str) -> int:
    # Not str.isdigit(): it is true for "²" and "①", which int() refuses.
    return int(text) if _COUNT.fullmatch(text) else 0


def fingerprint(entries: Iterable[DeadLetterEntry]) -> str:
    """Names a set of entries in a form field: the same entries give the same text, in any order.

    A bulk confirmation carries it back, so the act can tell whether the messages that match now are the
    very ones the operator was shown (a count could not: one settled and another arrived is the same
    count). Keys are never reused (sequence numbers), so a new message changes it."""
    keys = "\n".join(sorted(entry.key for entry in entries))
    return hashlib.sha256(keys.encode()).hexdigest()[:32]


def _keys(text: str) -> list[str]:
    return [key for key in text.split(",") if KEY.fullmatch(key)][:NOTICE_KEYS]
