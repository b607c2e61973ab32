"""Buyer words for API values: every member of every enum has one, and unknown values still read as words.

The member lists come from the enums and constant sets themselves, so a status, action, outcome, role or
inbox state added later without wording fails here rather than showing its identifier to a buyer.
"""

from __future__ import annotations

import re

import pytest

from shared.domain import wording
from shared.domain.access import Role
from shared.domain.audit import AuditAction, AuditSource
from shared.domain.inbox import InboxState
from shared.domain.status import Action, OperationStatus, SubscriptionStatus

STATES = {state.value for state in InboxState}

# Words that are API vocabulary: none may come out of the wording functions for a known value.
API_WORDS = [*(m.value for m in SubscriptionStatus if m is not SubscriptionStatus.SUSPENDED)]
API_WORDS += [m.value for m in Action] + [m.value for m in OperationStatus if m.value != "Failed"]
API_WORDS += [*Role, "P1M", "P1Y"]


@pytest.mark.parametrize("status", list(SubscriptionStatus))
def test_every_subscription_status_has_a_name_and_a_headline(status: SubscriptionStatus) -> None:
    assert status in wording.STATUS_NAMES
    assert status in wording.STATUS_HEADLINES
    assert wording.status_name(status) not in API_WORDS
    assert wording.status_name(status.value) == wording.status_name(status)
    assert wording.status_name(status.value.upper()) == wording.status_name(status)


def test_status_words() -> None:
    assert wording.status_name("PendingFulfillmentStart") == "Waiting for activation"
    assert wording.status_name("Subscribed") == "Active"
    assert wording.status_name("Suspended") == "Suspended (payment issue)"
    assert wording.status_name("Unsubscribed") == "Cancelled"
    assert wording.status_headline(SubscriptionStatus.SUBSCRIBED) == "Your subscription is active"


@pytest.mark.parametrize("action", list(Action))
def test_every_action_has_a_name(action: Action) -> None:
    assert action in wording.ACTION_NAMES
    assert wording.action_name(action.value) not in API_WORDS


@pytest.mark.parametrize("outcome", list(OperationStatus))
def test_every_operation_status_has_a_name(outcome: OperationStatus) -> None:
    assert outcome in wording.OUTCOME_NAMES
    assert wording.outcome_name(outcome.value) not in API_WORDS or outcome is OperationStatus.FAILED


@pytest.mark.parametrize("state", sorted(STATES))
def test_every_inbox_state_has_a_name(state: str) -> None:
    assert state in wording.STATE_NAMES
    assert wording.STATE_NAMES.keys() == STATES


@pytest.mark.parametrize("role", [*Role, "delegated"])
def test_every_role_has_a_name(role: str) -> None:
    assert Role.parse(role) in wording.ROLE_NAMES
    assert wording.role_name(role) not in API_WORDS


def test_roles_read_most_senior_first_and_once() -> None:
    roles = ["delegated", "beneficiary-admin", "purchaser", "delegated-admin"]
    assert wording.role_names(roles) == "Purchaser, Administrator, Designated administrator"
    assert wording.role_names(["purchaser"], csp=True) == "Purchasing partner"
    assert wording.role_names([]) == "None"


@pytest.mark.parametrize(
    ("unit", "words"),
    [
        ("P1M", "Monthly"),
        ("P1Y", "Yearly"),
        ("P2Y", "Every 2 years"),
        ("P3Y", "Every 3 years"),
        ("p1y", "Yearly"),
        (" P1M ", "Monthly"),
        ("P6M", "Every 6 months"),
        ("P1Y6M", "Every 1 year and 6 months"),
        ("P1W", "Weekly"),
        ("P14D", "Every 14 days"),
        ("", "Not reported"),
        (None, "Not reported"),
        ("P", "Not reported"),
        ("P0M", "Not reported"),
        ("monthly-ish", "Not reported"),
    ],
)
def test_billing_terms(unit: str | None, words: str) -> None:
    assert wording.billing_term(unit) == words


def test_a_missing_term_can_say_why() -> None:
    assert (
        wording.billing_term("", missing="Starts when your account is ready")
        == "Starts when your account is ready"
    )


def test_outcomes_of_earlier_changes() -> None:
    assert wording.operation_result("Succeeded", "done") == "Completed"
    assert wording.operation_result("Success", "done") == "Completed"  # an older webhook sample's word
    assert wording.operation_result("Conflict", "done") == "Not applied (another change was under way)"
    assert wording.operation_result("", "refused") == "Declined"
    assert wording.operation_result("", "acknowledged") == "Waiting for Microsoft"


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("SomethingNew", "Something new"),
        ("brand-new_role", "Brand new role"),
        ("", "Not reported"),
        (None, "Not reported"),
    ],
)
def test_unknown_values_read_as_words_and_never_raise(value: str | None, words: str) -> None:
    assert wording.status_name(value) == words
    assert wording.outcome_name(value) == words
    assert wording.state_name(value) == words
    assert wording.role_name(value) == words
    assert wording.action_name(value) == (words if value else "Change")
    assert wording.status_headline(value)


def test_display_names_fall_back_to_none() -> None:
    names = {"pro": "Pro (annual)", "blank": "  "}
    assert wording.display_name("pro", names) == "Pro (annual)"
    assert wording.display_name("blank", names) is None
    assert wording.display_name("basic", names) is None
    assert wording.display_name("basic") is None


def test_organisation_lines() -> None:
    assert wording.organisation_line(wording.PERSONAL) == "You (personal Microsoft account)"
    assert wording.organisation_line(wording.BENEFICIARY, "contoso.com") == "Your organisation (contoso.com)"
    assert wording.organisation_line(wording.BENEFICIARY) == "Your organisation"
    assert "partner" in wording.organisation_line(wording.PARTNER, "northwind.com")
    assert wording.email_domain("ada#EXT#@contoso.onmicrosoft.com", "ada@Fabrikam.com") == "fabrikam.com"
    assert wording.email_domain("", "no-at-sign") == ""


# --- the console's audit trail ------------------------------------------------------------------------------

# A purchase's first audit row as the audit table gives it back (JSON values: dicts, ISO strings).
_TERM = {"charge_duration": "", "unit": "P1M", "start": None, "end": None}
_ACTIVE_TERM = {**_TERM, "start": "2026-12-01T00:00:00+00:00", "end": "2026-12-31T00:00:00+00:00"}
_PARTY = {"email": "adele.vance@contoso.com", "object_id": "o", "puid": "p", "tenant_id": "t-1"}
FIRST_SIGHT = {
    "id": (None, "6f1c0000-0000-4000-8000-000000000001"),
    "allowed_customer_operations": (None, ["Delete", "Read", "Update"]),
    "purchaser": (None, _PARTY),
    "created_at": (None, "2026-12-01T20:15:14.056518+00:00"),
    "status": (None, "PendingFulfillmentStart"),
    "term": (None, _TERM),
    "sandbox_type": (None, "None"),
    "auto_renew": (None, True),
}
ACTIVATED = {"status": ("PendingFulfillmentStart", "Subscribed"), "term": (_TERM, _ACTIVE_TERM)}


def test_an_audit_rows_changes_read_as_words_not_identifiers_or_reprs() -> None:
    lines = wording.audit_changes(FIRST_SIGHT) + wording.audit_changes(ACTIVATED)
    assert "Status: Waiting for activation → Active" in lines
    assert "Billing term: Monthly → Monthly, 2026-12-01 to 2026-12-31" in lines
    assert "Purchaser: adele.vance@contoso.com (tenant t-1)" in lines
    assert "First recorded: 2026-12-01 20:15 UTC" in lines
    assert "Renews automatically: Yes" in lines
    assert "The customer may: delete, read, update" in lines
    text = "\n".join(lines)
    for word in [*API_WORDS, "None"]:
        assert not re.search(rf"\b{word}\b", text), word
    for unreadable in ["{", "[", "_", "6f1c0000"]:
        assert unreadable not in text


def test_a_decision_row_reads_as_words() -> None:
    lines = wording.audit_changes({"decision": (None, "refuse"), "reason": (None, "over budget")})
    assert lines == ["Decision: Refused", "Reason: over budget"]


@pytest.mark.parametrize("source", list(AuditSource))
def test_every_audit_source_has_a_name(source: AuditSource) -> None:
    assert source in wording.SOURCE_NAMES
    assert wording.source_name(source.value) == wording.SOURCE_NAMES[source]
    assert wording.source_name(source) != source.value


def test_the_row_a_purchase_first_records_is_named() -> None:
    # The landing mirrors a resolved purchase with the cause "Resolve": its row must not read "Other change".
    assert wording.audit_name(AuditAction.parse("Resolve")) == "Purchase recorded"


def test_the_last_change_from_microsoft_reads_as_words_not_as_its_action_name() -> None:
    lines = wording.audit_changes({"last_operation_action": (None, "ChangeQuantity")})
    assert lines == ["Last change from Microsoft: Seat quantity change"]


def test_the_personal_accounts_tenant_is_named_as_a_personal_account() -> None:
    from shared.domain.identity import MSA_TENANT_ID
    from shared.domain.wording import tenant_words

    assert tenant_words(MSA_TENANT_ID) == "personal Microsoft account"
    assert tenant_words(MSA_TENANT_ID.upper()) == "personal Microsoft account"
    assert (
        tenant_words("72f988bf-86f1-41af-91ab-2d7cd011db47") == "tenant 72f988bf-86f1-41af-91ab-2d7cd011db47"
    )
    assert tenant_words("") == ""


def test_microsofts_test_markers_read_as_answers_not_field_values() -> None:
    from shared.domain.wording import audit_changes

    lines = audit_changes(
        {"sandbox_type": (None, "None"), "session_mode": ("None", "DryRun"), "is_test": (None, False)}
    )

    assert lines == ["Test environment: No", "Dry run: No → Yes, nothing is billed", "Test purchase: No"]
