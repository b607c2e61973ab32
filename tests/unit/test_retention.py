"""When an Unsubscribed subscription's personal data is due for purge, and what the purge keeps (R56, R58)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.config import ConfigurationError, Settings
from shared.domain.retention import (
    DEFAULT_RETENTION_DAYS,
    REDACTED,
    due_for_purge,
    purge_cutoff,
    redact_changes,
)
from shared.domain.status import SubscriptionStatus
from shared.domain.subscription import MicrosoftSubscription, Party, Subscription, Term

NOW = datetime(2026, 12, 1, 3, 30, tzinfo=UTC)
DAYS = 30
ADELE = Party(email="adele@contoso.example", object_id="oid-adele", tenant_id="tid-contoso", puid="1001")


def unsubscribed(at: datetime | None) -> Subscription:
    return Subscription(
        id="sub-1",
        name="Adele's team",
        offer_id="offer",
        plan_id="team-seats",
        quantity=5,
        status=SubscriptionStatus.UNSUBSCRIBED,
        purchaser=ADELE,
        beneficiary=ADELE,
        term=Term(unit="P1M", start=NOW - timedelta(days=90)),
        unsubscribed_at=at,
    )


def test_due_exactly_at_the_end_of_the_period_and_not_a_second_before() -> None:
    assert due_for_purge(unsubscribed(NOW - timedelta(days=DAYS)), NOW, DAYS)
    assert not due_for_purge(unsubscribed(NOW - timedelta(days=DAYS) + timedelta(seconds=1)), NOW, DAYS)
    assert due_for_purge(unsubscribed(NOW - timedelta(days=DAYS, seconds=1)), NOW, DAYS)


def test_one_day_short_of_the_period_is_kept() -> None:
    assert not due_for_purge(unsubscribed(NOW - timedelta(days=DAYS - 1)), NOW, DAYS)
    assert not due_for_purge(unsubscribed(NOW), NOW, DAYS)


def test_without_unsubscribed_at_nothing_is_purged() -> None:
    assert not due_for_purge(unsubscribed(None), NOW, DAYS)


@pytest.mark.parametrize(
    "status",
    [
        SubscriptionStatus.SUBSCRIBED,
        SubscriptionStatus.SUSPENDED,
        SubscriptionStatus.PENDING_FULFILLMENT_START,
    ],
)
def test_only_an_unsubscribed_subscription_is_ever_due(status: SubscriptionStatus) -> None:
    long_ago = unsubscribed(NOW - timedelta(days=400))
    assert not due_for_purge(replace(long_ago, status=status), NOW, DAYS)


def test_a_purged_subscription_is_not_due_again() -> None:
    purged = replace(unsubscribed(NOW - timedelta(days=60)), personal_data_purged_at=NOW - timedelta(days=1))
    assert not due_for_purge(purged, NOW, DAYS)


def test_a_period_shorter_than_microsofts_seven_days_is_refused() -> None:
    with pytest.raises(ValueError, match="R58"):
        due_for_purge(unsubscribed(NOW - timedelta(days=400)), NOW, 6)
    assert due_for_purge(unsubscribed(NOW - timedelta(days=7)), NOW, 7)


def test_the_cutoff_is_the_period_before_now() -> None:
    assert purge_cutoff(NOW, DAYS) == NOW - timedelta(days=DAYS)


def test_the_setting_defaults_to_thirty_days_and_refuses_less_than_seven() -> None:
    assert Settings.from_env({}).retention_days == DEFAULT_RETENTION_DAYS == 30
    assert Settings.from_env({"RETENTION_DAYS": "90"}).retention_days == 90
    valid = {"STORAGE_CONNECTION_STRING": "x", "SESSION_SECRET": "s" * 32}
    Settings.from_env({**valid, "RETENTION_DAYS": "7"}).validate()
    with pytest.raises(ConfigurationError, match="RETENTION_DAYS"):
        Settings.from_env({**valid, "RETENTION_DAYS": "6"}).validate()


def test_without_personal_data_keeps_billing_fields_and_tenants() -> None:
    sub = unsubscribed(NOW - timedelta(days=60))
    anonymous = sub.without_personal_data()
    assert anonymous.name == ""
    assert anonymous.purchaser == Party(tenant_id="tid-contoso") == anonymous.beneficiary
    kept = ("id", "offer_id", "plan_id", "quantity", "status", "term", "unsubscribed_at")
    assert all(getattr(anonymous, name) == getattr(sub, name) for name in kept)


def test_a_purged_record_stays_anonymous_when_microsoft_is_mirrored_again() -> None:
    anonymous = unsubscribed(NOW - timedelta(days=60)).without_personal_data()
    purged = replace(anonymous, personal_data_purged_at=NOW)
    again = purged.mirrored(
        MicrosoftSubscription(id="sub-1", name="Adele's team", purchaser=ADELE, beneficiary=ADELE)
    )
    assert again.purchaser.email == ""
    assert again.name == ""
    fresh = unsubscribed(None).mirrored(MicrosoftSubscription(id="sub-1", purchaser=ADELE))
    assert fresh.purchaser == ADELE, "a record not purged mirrors its parties as before"


def test_redaction_hides_parties_names_and_addresses_and_keeps_the_rest() -> None:
    party = {"email": "adele@contoso.example", "object_id": "oid", "puid": "1", "tenant_id": "tid"}
    changes = {
        "purchaser": (None, party),
        "name": ("", "Adele's team"),
        "plan_id": ("basic", "team-seats"),
        "quantity": (3, 5),
        "reason": ("", "asked by adele@contoso.example on the phone"),
        "status": ("Subscribed", "Unsubscribed"),
    }
    redacted = redact_changes(changes)
    assert redacted["purchaser"] == (
        None,
        {"email": REDACTED, "object_id": REDACTED, "puid": REDACTED, "tenant_id": "tid"},
    )
    assert redacted["name"] == ("", REDACTED)
    assert redacted["plan_id"] == ("basic", "team-seats")
    assert redacted["quantity"] == (3, 5)
    assert redacted["status"] == ("Subscribed", "Unsubscribed")
    assert redacted["reason"] == ("", f"asked by {REDACTED} on the phone")
    assert "adele" not in repr(redacted)


def test_redaction_is_idempotent() -> None:
    once = redact_changes({"purchaser": (None, {"email": "a@b.example"}), "note": ("", "x@y.example")})
    assert redact_changes(once) == once
