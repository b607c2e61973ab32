"""The stored mirror beside Microsoft's view: which fields differ, in the words an operator reads."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from shared.domain.identity import MSA_TENANT_ID
from shared.domain.mirror_diff import compare, drifted
from shared.domain.status import SubscriptionStatus
from shared.domain.subscription import MicrosoftSubscription, Party, Subscription, Term

LIVE = MicrosoftSubscription(
    id="sub-1",
    name="Contoso team",
    offer_id="offer",
    plan_id="team-seats",
    quantity=5,
    status=SubscriptionStatus.SUBSCRIBED,
    purchaser=Party("adele@contoso.com", "oid-1", "tenant-1"),
    beneficiary=Party("adele@contoso.com", "oid-1", "tenant-1"),
    term=Term("P1M", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC)),
)
STORED = Subscription.from_microsoft(LIVE)


def test_a_faithful_mirror_shows_no_drift() -> None:
    fields = compare(STORED, LIVE)
    assert drifted(fields) == []
    assert {field.key for field in fields} >= {"status", "plan", "quantity", "term_start", "term_end"}


def test_each_drifted_field_is_named_with_both_sides_in_words() -> None:
    stale = replace(
        STORED,
        status=SubscriptionStatus.PENDING_FULFILLMENT_START,
        quantity=3,
        auto_renew=False,
        term=replace(STORED.term, end=datetime(2026, 12, 31, tzinfo=UTC)),
        beneficiary=Party("adele@contoso.com", "oid-2", "tenant-1"),
    )
    by_key = {field.key: field for field in drifted(compare(stale, LIVE))}
    assert set(by_key) == {"status", "quantity", "auto_renew", "term_end", "beneficiary"}
    assert (by_key["status"].stored, by_key["status"].live) == ("Waiting for activation", "Active")
    assert (by_key["quantity"].stored, by_key["quantity"].live) == ("3", "5")
    assert (by_key["term_end"].stored, by_key["term_end"].live) == ("2026-12-31", "2026-11-30")
    assert by_key["auto_renew"].label == "Renews automatically"
    assert "PendingFulfillmentStart" not in by_key["status"].stored


def test_what_reads_the_same_is_no_drift() -> None:
    # Same day at another hour, the same address in another case: a person sees no difference.
    shifted = replace(
        STORED,
        term=replace(STORED.term, start=datetime(2026, 11, 1, 9, 30, tzinfo=UTC)),
        purchaser=replace(STORED.purchaser, email="Adele@Contoso.com"),
    )
    assert drifted(compare(shifted, LIVE)) == []


def test_a_flat_rate_plan_and_a_missing_term_read_as_words() -> None:
    flat = replace(LIVE, quantity=None, term=Term())
    fields = {field.key: field for field in compare(Subscription.from_microsoft(flat), flat)}
    assert fields["quantity"].stored == "No seat count (flat rate)"
    assert fields["term_start"].live == "Not reported"
    assert not fields["quantity"].differs


def test_without_microsofts_view_nothing_differs_and_the_stored_side_shows() -> None:
    fields = compare(replace(STORED, quantity=9), None)
    assert drifted(fields) == []
    assert {field.key: field.stored for field in fields}["quantity"] == "9"
    assert all(field.live == "" for field in fields)


def test_a_personal_account_is_named_as_one_not_as_a_tenant_of_customers() -> None:
    personal = Party("pat@outlook.com", "oid-pat", MSA_TENANT_ID)
    live = replace(LIVE, purchaser=personal, beneficiary=personal)

    [beneficiary] = [
        field for field in compare(Subscription.from_microsoft(live), live) if "eneficiar" in field.label
    ]

    assert beneficiary.stored == "pat@outlook.com, personal Microsoft account, user oid-pat"
    assert MSA_TENANT_ID not in beneficiary.stored
