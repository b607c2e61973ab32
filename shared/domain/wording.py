"""The words buyers read for the API's values: statuses, billing terms, roles, changes and their outcomes.

The Fulfillment API speaks in identifiers (`PendingFulfillmentStart`, `P1M`, `ChangeQuantity`,
`beneficiary-admin`); pages show these words instead and keep the identifiers in `data-*` attributes for CSS
and tests. Everything here is pure: plain values in, a string out, no I/O and no template engine, so the same
words can serve pages, emails and logs meant for people. A value nobody has named yet (Microsoft adds enum
members without notice, R33) still reads as words, never as a crash or a blank.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TypeVar

from shared.domain.access import Role
from shared.domain.audit import AuditAction, AuditSource
from shared.domain.identity import is_personal_tenant
from shared.domain.inbox import InboxState
from shared.domain.status import Action, OperationStatus, SubscriptionStatus
from shared.domain.transitions import ACTIVATE

NOT_REPORTED = "Not reported"
_E = TypeVar("_E", SubscriptionStatus, OperationStatus)

# --- subscription status (R30) ------------------------------------------------------------------------------

STATUS_NAMES: dict[SubscriptionStatus, str] = {
    SubscriptionStatus.PENDING_FULFILLMENT_START: "Waiting for activation",
    SubscriptionStatus.SUBSCRIBED: "Active",
    # Microsoft suspends a subscription when it has not received payment; saying so tells the buyer what
    # to fix, and "issue" keeps it calm (it is often an expired card, not a dispute).
    SubscriptionStatus.SUSPENDED: "Suspended (payment issue)",
    SubscriptionStatus.UNSUBSCRIBED: "Cancelled",
}

# A sentence for a page heading about one subscription.
STATUS_HEADLINES: dict[SubscriptionStatus, str] = {
    SubscriptionStatus.PENDING_FULFILLMENT_START: "Setting up your subscription…",
    SubscriptionStatus.SUBSCRIBED: "Your subscription is active",
    SubscriptionStatus.SUSPENDED: "Your subscription is suspended until payment is settled",
    SubscriptionStatus.UNSUBSCRIBED: "Your subscription has been cancelled",
}


def status_name(status: object) -> str:
    """ "Active" for Subscribed and so on; an unknown status spelled out in words."""
    known = _member(SubscriptionStatus, status)
    return STATUS_NAMES[known] if known is not None else _words(status)


def status_headline(status: object) -> str:
    known = _member(SubscriptionStatus, status)
    if known is not None:
        return STATUS_HEADLINES[known]
    return f"Your subscription: {_words(status).lower()}" if _text(status) else "Your subscription"


# --- billing term (R68): an ISO 8601 duration such as P1M or P1Y --------------------------------------------

_TERM_NAMES = {"P1D": "Daily", "P1W": "Weekly", "P1M": "Monthly", "P1Y": "Yearly"}
_DURATION = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$")
_UNITS = ("year", "month", "week", "day")


def billing_term(unit: object, *, missing: str = NOT_REPORTED) -> str:
    """ "Monthly" for P1M, "Every 2 years" for P2Y, "Every 1 year and 6 months" for P1Y6M; `missing` for
    an empty or unreadable term (a pending subscription may have none yet, pitfall P10)."""
    text = _text(unit).upper()
    if text in _TERM_NAMES:
        return _TERM_NAMES[text]
    match = _DURATION.match(text)
    if not text or not match or not any(match.groups()):
        return missing
    parts = [_count(int(n), name) for n, name in zip(match.groups(), _UNITS, strict=True) if n and int(n)]
    if not parts:
        return missing
    return "Every " + " and ".join(parts)


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


# --- roles on a subscription (shared.domain.access) ---------------------------------------------------------

ROLE_NAMES: dict[Role, str] = {
    Role.PURCHASER: "Purchaser",
    Role.BENEFICIARY_ADMIN: "Administrator",
    Role.DELEGATED_ADMIN: "Designated administrator",
}
_ROLE_ORDER = tuple(Role)  # most senior first


def role_name(role: object, *, csp: bool = False) -> str:
    """The purchaser of a partner (CSP) purchase is the partner, so it says so (R60)."""
    known = Role.parse(_text(role))
    if known is Role.PURCHASER and csp:
        return "Purchasing partner"
    return ROLE_NAMES[known] if known is not None else _words(role)


def role_names(roles: Iterable[object], *, csp: bool = False) -> str:
    """ "Purchaser, Administrator": one name each, most senior first, duplicates once."""
    ordered = sorted({_text(r).lower() for r in roles if _text(r)}, key=_role_rank)
    return ", ".join(dict.fromkeys(role_name(role, csp=csp) for role in ordered)) or "None"


def _role_rank(name: str) -> tuple[int, str]:
    known = Role.parse(name)
    return (_ROLE_ORDER.index(known) if known is not None else len(_ROLE_ORDER), name)


# --- changes to a subscription (operations, R27) ------------------------------------------------------------

ACTION_NAMES: dict[str, str] = {
    Action.CHANGE_PLAN: "Plan change",
    Action.CHANGE_QUANTITY: "Seat quantity change",
    Action.SUSPEND: "Suspension",
    Action.REINSTATE: "Service resumed",
    Action.UNSUBSCRIBE: "Cancellation",
    Action.RENEW: "Renewal",
    Action.UNKNOWN: "Other change",
    ACTIVATE: "Activation",
}


def action_name(action: object) -> str:
    key = _text(action)
    by_lower = {str(k).lower(): v for k, v in ACTION_NAMES.items()}
    return by_lower.get(key.lower()) or (_words(action) if key else "Change")


# How Microsoft's operation ended (OperationStatus) ...
OUTCOME_NAMES: dict[OperationStatus, str] = {
    OperationStatus.NOT_STARTED: "Not started yet",
    OperationStatus.IN_PROGRESS: "In progress",
    OperationStatus.SUCCEEDED: "Completed",
    OperationStatus.FAILED: "Failed",
    OperationStatus.CONFLICT: "Not applied (another change was under way)",
    OperationStatus.UNKNOWN: "Unclear: ask support",
}

# ... and where the publisher's own handling of it stands (shared.storage.operations states). Kept as plain
# strings: the storage module does I/O and this one must not import it; tests check the two sets agree.
STATE_NAMES: dict[str, str] = {
    InboxState.RECEIVED.value: "Received",
    InboxState.TRACKING.value: "Microsoft is processing it",
    InboxState.ACKNOWLEDGED.value: "Completed",
    InboxState.DONE.value: "Completed",
    InboxState.REFUSED.value: "Declined",
}
AWAITING_MICROSOFT = "Waiting for Microsoft"


# --- the audit trail and the publisher's decisions (the operations console) ---------------------------------

AUDIT_NAMES: dict[str, str] = {
    AuditAction.RESOLVE: "Purchase recorded",
    AuditAction.ACTIVATE: "Activated",
    AuditAction.RECONCILE: "Brought in line with Microsoft",
    AuditAction.PROVISIONED: "Provisioned",
    AuditAction.CONFIRM: "Buyer confirmed the purchase",
    AuditAction.CONFIRM_ROLLED_BACK: "Buyer's confirmation rolled back",
    AuditAction.CHANGE_PLAN_DECISION: "Plan change decided",
    AuditAction.CHANGE_QUANTITY_DECISION: "Seat change decided",
    AuditAction.RECONCILE_REQUESTED: "Reconcile requested",
    AuditAction.ACTIVATION_RETRY_REQUESTED: "Activation retry requested",
    AuditAction.CANCEL_REQUESTED: "Cancellation requested by the publisher",
    AuditAction.DEAD_LETTER_REPLAY_REQUESTED: "Parked message replay requested",
    AuditAction.DEAD_LETTER_REPLAYED: "Parked message replayed",
    AuditAction.DEAD_LETTER_DISCARD_REQUESTED: "Parked message discard requested",
    AuditAction.DEAD_LETTER_DISCARDED: "Parked message discarded",
    AuditAction.PERSONAL_DATA_PURGED: "Personal data removed after the retention period",
    AuditAction.SWEEP: "Reconciliation sweep",
    AuditAction.SWEEP_REQUESTED: "Reconciliation sweep requested",
}
DECISION_NAMES: dict[str, str] = {"accept": "Accepted", "refuse": "Refused"}


def audit_name(action: object) -> str:
    """What an audit row records, in words; Microsoft's own actions read as on the buyer's pages."""
    key = _text(action).lower()
    by_lower = {str(k).lower(): v for k, v in AUDIT_NAMES.items()}
    return by_lower.get(key) or action_name(action)


# Who caused an audit row that names no person (an operator's rows name them in `actor`).
SOURCE_NAMES: dict[AuditSource, str] = {
    AuditSource.AZURE: "The customer, at Microsoft",
    AuditSource.PARTNER: "The publisher, through Microsoft",
    AuditSource.LANDING: "The buyer, on the landing page",
    AuditSource.RECONCILIATION: "The service, comparing with Microsoft",
    AuditSource.PUBLISHER_POLICY: "The service, by the publisher's rules",
    AuditSource.OPERATOR: "An operator",
    AuditSource.RETENTION: "The retention timer",
    AuditSource.UNKNOWN: "Not recorded",
}

# The audited fields (Subscription's, and the few a workflow adds) as an operator reads them. The
# subscription's own id is left out: the page it is shown on is that subscription's.
CHANGE_LABELS: dict[str, str] = {
    "name": "Name",
    "status": "Status",
    "offer_id": "Offer",
    "plan_id": "Plan",
    "quantity": "Seats",
    "term": "Billing term",
    "auto_renew": "Renews automatically",
    "purchaser": "Purchaser",
    "beneficiary": "Beneficiary",
    "is_free_trial": "Free trial",
    "is_test": "Test purchase",
    "allowed_customer_operations": "The customer may",
    "sandbox_type": "Test environment",
    "session_mode": "Dry run",
    "created_at": "First recorded",
    "activated_at": "Activated",
    "provisioned": "Provisioned",
    "decision": "Decision",
    "reason": "Reason",
    "unanswered_operation": "Unanswered operation",
    "last_operation_action": "Last change from Microsoft",
    "last_operation_at": "Last change at",
    "last_operation_id": "Last operation id",
    "confirmed_by": "Confirmed by",
    "contact_email": "Contact e-mail",
}
_UNLABELLED = frozenset({"id"})
_MOMENT = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})")


def source_name(source: object) -> str:
    known = next((member for member in AuditSource if member.value.lower() == _text(source).lower()), None)
    return SOURCE_NAMES[known] if known is not None else _words(source)


def audit_changes(changes: Mapping[str, tuple[object, object]]) -> list[str]:
    """Each changed field of an audit row as "Label: old → new" in words ("Label: new" on first sight).

    Values arrive as the audit table stores them (JSON: a term or a party is a dict, a moment an ISO
    string), never as the identifiers or Python reprs an operator cannot read.
    """
    lines = []
    for key, (old, new) in changes.items():
        if key in _UNLABELLED:
            continue
        label = CHANGE_LABELS.get(key) or _words(key)
        after = _change_value(key, new)
        lines.append(f"{label}: {after}" if old is None else f"{label}: {_change_value(key, old)} → {after}")
    return lines


# Microsoft's sandboxType and sessionMode, in words; its "None" means "no" for both.
_MARKERS = {
    "sandbox_type": {"none": "No", "csp": "Yes, a partner's test environment"},
    "session_mode": {"none": "No", "dryrun": "Yes, nothing is billed"},
}


def _change_value(key: str, value: object) -> str:
    if key in _MARKERS:
        words = _MARKERS[key]
        return words.get(_text(value).lower() or "none") or _words(value)
    # Microsoft's own "None" means there is none, as an empty value does.
    if value is None or value in ("", "None") or value == [] or value == {}:
        return "none"
    if key == "status":
        return status_name(value)
    if key == "decision":
        return decision_name(value)
    if key == "last_operation_action":
        return action_name(value)
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, Mapping):
        return _term(value) if key == "term" else _party(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(_words(item).lower() for item in value)
    moment = _MOMENT.match(str(value))
    if moment:
        return f"{moment.group(1)} {moment.group(2)} UTC"
    return str(value)


def _term(term: Mapping[object, object]) -> str:
    unit = billing_term(term.get("unit"))
    start, end = (_MOMENT.match(str(term.get(edge) or "")) for edge in ("start", "end"))
    if start and end:
        return f"{unit}, {start.group(1)} to {end.group(1)}"
    return unit


def _party(party: Mapping[object, object]) -> str:
    # The address alone would hide a change of tenant behind the same address.
    email = str(party.get("email") or "no address")
    tenant = party.get("tenant_id")
    return f"{email} ({tenant_words(str(tenant))})" if tenant else email


def tenant_words(tenant_id: object) -> str:
    """An organisation by its tenant id, except the one tenant every personal Microsoft account shares:
    that is one person's account, not an organisation, and never a group of customers."""
    text = _text(tenant_id)
    if is_personal_tenant(text):
        return "personal Microsoft account"
    return f"tenant {text}" if text else ""


def decision_name(decision: object) -> str:
    """The publisher's verdict on a change, or Microsoft's final status when Microsoft decided."""
    key = _text(decision).lower()
    if not key:
        return "Not decided"
    return DECISION_NAMES.get(key) or outcome_name(decision)


def outcome_name(outcome: object) -> str:
    known = _member(OperationStatus, outcome)
    if known is None and _text(outcome).lower() == "success":  # an older webhook sample's word
        known = OperationStatus.SUCCEEDED
    return OUTCOME_NAMES[known] if known is not None else _words(outcome)


def state_name(state: object) -> str:
    return STATE_NAMES.get(_text(state).lower()) or _words(state)


def operation_result(outcome: object, state: object) -> str:
    """The "Outcome" of an earlier change: Microsoft's word once known; before that, "Declined" or "Failed"
    when it ended on this side, else it still waits for Microsoft."""
    if _text(outcome):
        return outcome_name(outcome)
    if _text(state).lower() == InboxState.REFUSED.value:
        return state_name(state)
    return AWAITING_MICROSOFT


# --- plans and offers ---------------------------------------------------------------------------------------


def display_name(identifier: object, names: Mapping[str, str] | None = None) -> str | None:
    """The display name Microsoft gave a plan (listAvailablePlans `displayName`), None when not known: the
    page then shows the id itself, marked as an id."""
    key = _text(identifier)
    name = (names or {}).get(key, "")
    return name.strip() or None


# --- who a subscription is for ------------------------------------------------------------------------------

PERSONAL = "personal"
BENEFICIARY = "beneficiary"
PARTNER = "partner"


def organisation_line(relation: str, domain: str = "") -> str:
    """Whom the signed-in buyer acts for on the confirm page: their own organisation (by its domain when
    known), themselves (a personal Microsoft account), or a customer they bought for as a partner."""
    named = f" ({domain})" if domain else ""
    if relation == PERSONAL:
        return "You (personal Microsoft account)"
    if relation == PARTNER:
        return f"Your organisation{named}, buying for a customer as their partner"
    return f"Your organisation{named}"


def email_domain(*addresses: str) -> str:
    """The domain of the first usable address; "" for guests (`#EXT#` names their home, not this tenant)."""
    for address in addresses:
        local, at, domain = (address or "").strip().rpartition("@")
        if at and local and domain and "#ext#" not in local.lower():
            return domain.lower()
    return ""


# --- fallbacks ----------------------------------------------------------------------------------------------


def _text(value: object) -> str:
    if value is None:
        return ""
    return str(getattr(value, "value", value)).strip()


def _member(enum: type[_E], value: object) -> _E | None:
    key = _text(value).lower()
    return next((member for member in enum if member.value.lower() == key), None)


_HUMPS = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|[-_\s]+")


def _words(value: object) -> str:
    """ "SomeNewValue" or "some-new_value" as "Some new value"; an empty value as "Not reported"."""
    text = _text(value)
    if not text:
        return NOT_REPORTED
    words = " ".join(part for part in _HUMPS.split(text) if part).lower()
    return words[:1].upper() + words[1:]
