"""The retention purge on the local stack: personal data of a subscription Unsubscribed for longer than the
retention period leaves every table, billing fields and the (redacted) audit trail stay (R56, R58).

A purchase is activated through the worker, given users, grants, seats (one bound, one reserved), a setup
link, a session and an operator's note naming the buyer, then unsubscribed on Microsoft's side. The clock
is moved by handing `now` to the workflow (and to the timer's handler), never by sleeping. Every table of
the test's prefix is then scanned for the addresses and names used.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.data.tables import TableServiceClient, UpdateMode
from azure.functions.timer import TimerRequest

from shared.domain.audit import AuditAction, AuditEntry, AuditSource
from shared.domain.identity import Person
from shared.domain.sessions import StoredSession
from shared.domain.status import SubscriptionStatus
from shared.domain.users import User
from shared.workflows.retention import PurgeReport, purge_expired
from tests.support.sandbox import wait_until
from tests.support.stack import Stack

DAYS = 30
CONTOSO = "11111111-0000-4000-8000-000000000000"
ADELE = Person.of(CONTOSO, "11111111-0000-4000-8000-000000000001")
MEGAN = Person.of(CONTOSO, "11111111-0000-4000-8000-000000000002")
ADELE_UPN = "adele.vance@contoso.onmicrosoft.com"
ADELE_MAIL = "adele.vance@contoso.com"
MEGAN_UPN = "megan.bowen@contoso.onmicrosoft.com"
CONTACT = "billing.desk@contoso.com"
NEW_HIRE = "new.hire@contoso.com"
ALEX_UPN = "alex.wilber@fabrikam.onmicrosoft.com"  # buys a subscription that stays Subscribed
# What the purged subscription brought in: none of it may remain in any table.
PERSONAL = (ADELE_UPN, ADELE_MAIL, MEGAN_UPN, CONTACT, NEW_HIRE, "Adele Vance", "Megan Bowen")
BILLING_FIELDS = (
    "id",
    "offer_id",
    "plan_id",
    "quantity",
    "status",
    "term",
    "activated_at",
    "unsubscribed_at",
    "created_at",
)


def people_and_seats(stack: Stack, subscription_id: str) -> None:
    """What sign-in, confirmation and the portal leave behind for one subscription."""
    app = stack.services
    app.users.upsert(
        User(ADELE.tenant_id, ADELE.object_id, "Adele Vance", ADELE_MAIL, ADELE_UPN, addresses=(ADELE_UPN,))
    )
    app.users.set_contact_email(ADELE.tenant_id, ADELE.object_id, CONTACT)
    app.users.upsert(
        User(MEGAN.tenant_id, MEGAN.object_id, "Megan Bowen", MEGAN_UPN, MEGAN_UPN, addresses=(MEGAN_UPN,))
    )
    actor = f"{ADELE.tenant_id}:{ADELE.object_id}"
    app.admins.grant(subscription_id, ADELE.tenant_id, ADELE.object_id, "purchaser", granted_by=actor)
    app.admins.grant(subscription_id, MEGAN.tenant_id, MEGAN.object_id, "delegated-admin", granted_by=actor)
    subscription = stack.stored(subscription_id)
    bound = app.seats.assign(
        subscription_id,
        MEGAN_UPN,
        quantity=subscription.quantity,
        assigned_by=actor,
        display_name="Megan Bowen",
        tenant_id=MEGAN.tenant_id,
        object_id=MEGAN.object_id,
    )
    app.licenses.put_seat(subscription, bound.tenant_id, bound.object_id)
    app.seats.assign(subscription_id, NEW_HIRE, quantity=subscription.quantity, assigned_by=actor)
    app.setup_links.create(subscription_id, created_by=actor)
    issued = datetime.now(UTC)
    app.sessions.start(
        "s" * 40, StoredSession(ADELE.tenant_id, ADELE.object_id, issued, issued + timedelta(hours=8))
    )
    app.audit.append(
        AuditEntry(
            subscription_id=subscription_id,
            at=issued,
            action=AuditAction.RECONCILE_REQUESTED,
            source=AuditSource.OPERATOR,
            changes={"reason": ("", f"asked by {ADELE_MAIL} on the phone")},
            actor="operator@publisher.example",
        )
    )


def unsubscribe(stack: Stack, subscription_id: str) -> Any:
    stack.control.unsubscribe(subscription_id)
    wait_until(lambda: stack.stored(subscription_id).status is SubscriptionStatus.UNSUBSCRIBED, 15)
    stack.settled()
    return stack.stored(subscription_id)


def every_row(stack: Stack, connection_string: str, table_prefix: str) -> list[tuple[str, str]]:
    """(table, row as JSON) for every row of every table this test's stack wrote."""
    service = TableServiceClient.from_connection_string(connection_string)
    tables = [t.name for t in service.list_tables() if t.name.startswith(table_prefix)]
    assert len(tables) >= 6, tables  # subscriptions, operations, seats, licenses, users, links, sessions
    return [
        (name, json.dumps(dict(row), default=str, ensure_ascii=False))
        for name in tables
        for row in service.get_table_client(name).list_entities()
    ]


def rows_naming(rows: list[tuple[str, str]], words: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(table, word) for table, text in rows for word in words if word.lower() in text.lower()]


def purge(stack: Stack, now: datetime) -> PurgeReport:
    return purge_expired(now, DAYS, "test-purge", ports=stack.services.retention_ports, page_size=1)


def test_an_unsubscribed_subscription_loses_its_personal_data_after_the_retention_period(
    stack: Stack, azurite_connection_string: str, table_prefix: str
) -> None:
    subscription_id = stack.buy_and_activate("team-seats", quantity=5, buyer=ADELE_UPN)
    other_id = stack.buy_and_activate("basic", buyer=ALEX_UPN)  # stays Subscribed
    people_and_seats(stack, subscription_id)
    before = unsubscribe(stack, subscription_id)
    assert before.purchaser.email, "the mirror holds the purchaser's address until the purge"
    rows = every_row(stack, azurite_connection_string, table_prefix)
    assert {table for table, _ in rows_naming(rows, PERSONAL)} >= {
        f"{table_prefix}subs",
        f"{table_prefix}users",
        f"{table_prefix}seats",
    }, "the scan finds the data before the purge"
    trail_before = stack.services.audit.list(subscription_id)
    unsubscribed_at = before.unsubscribed_at

    # One second short of the period, nothing is due.
    early = purge(stack, unsubscribed_at + timedelta(days=DAYS) - timedelta(seconds=1))
    assert early.purged == 0
    assert stack.stored(subscription_id) == before

    report = purge(stack, unsubscribed_at + timedelta(days=DAYS, hours=1))
    assert report.purged == 1

    after = stack.stored(subscription_id)
    assert all(getattr(after, name) == getattr(before, name) for name in BILLING_FIELDS)
    assert after.personal_data_purged_at is not None
    assert after.name == ""
    assert after.purchaser.email == after.beneficiary.email == ""
    assert after.purchaser.object_id == after.purchaser.puid == ""
    assert after.purchaser.tenant_id == before.purchaser.tenant_id

    rows = every_row(stack, azurite_connection_string, table_prefix)
    assert rows_naming(rows, (*PERSONAL, before.purchaser.email, before.beneficiary.email)) == []
    assert rows_naming(rows, (ADELE.object_id, MEGAN.object_id)) == []
    other_email = stack.stored(other_id).purchaser.email
    assert other_email
    assert rows_naming(rows, (other_email,)), "the subscription still running keeps its data"

    trail = stack.services.audit.list(subscription_id)
    assert [e.action for e in trail[:-1]] == [e.action for e in trail_before]
    assert [e.at for e in trail[:-1]] == [e.at for e in trail_before]
    assert any("status" in entry.changes for entry in trail), "what happened stays in the trail"
    purged = trail[-1]
    assert purged.action is AuditAction.PERSONAL_DATA_PURGED
    assert purged.source is AuditSource.RETENTION
    counts = {name: new for name, (_, new) in purged.changes.items()}
    assert counts["seats"] == 2
    assert counts["users"] == 2
    assert counts["grants"] == 2
    assert counts["sessions"] == 1
    assert counts["setup_links"] == 1
    assert counts["audit_entries_redacted"] >= 2
    assert counts["retention_days"] == DAYS

    # A second run, through the timer's own handler, finds nothing to do and does not even read the row.
    from shared.entrypoints import retention

    much_later = unsubscribed_at + timedelta(days=400)
    again = retention.handle_timer(TimerRequest(past_due=False), now=much_later)
    assert again == PurgeReport(candidates=0, purged=0)
    assert stack.services.audit.list(subscription_id) == trail
    assert stack.stored(subscription_id) == after
    assert stack.stored(other_id).status is SubscriptionStatus.SUBSCRIBED


def test_a_person_another_subscription_still_has_keeps_their_user_row(stack: Stack) -> None:
    ended = stack.buy_and_activate("team-seats", quantity=5, buyer=ADELE_UPN)
    running = stack.buy_and_activate("team-seats", quantity=5, buyer=ADELE_UPN)
    people_and_seats(stack, ended)
    app = stack.services
    app.admins.grant(running, MEGAN.tenant_id, MEGAN.object_id, "delegated-admin", granted_by="test")
    unsubscribed_at = unsubscribe(stack, ended).unsubscribed_at

    assert purge(stack, unsubscribed_at + timedelta(days=DAYS + 1)).purged == 1
    assert app.users.get(MEGAN.tenant_id, MEGAN.object_id) is not None, "still an admin of another one"
    assert app.admins.subscriptions_for(MEGAN.tenant_id, MEGAN.object_id) == [running]
    assert app.seats.list(ended) == []
    assert app.users.get(ADELE.tenant_id, ADELE.object_id) is None, "nothing else has Adele"


def test_within_the_retention_period_the_timer_changes_nothing(stack: Stack) -> None:
    subscription_id = stack.buy_and_activate("team-seats", quantity=5, buyer=ADELE_UPN)
    people_and_seats(stack, subscription_id)
    before = unsubscribe(stack, subscription_id)
    from shared.entrypoints import retention

    report = retention.handle_timer(
        TimerRequest(past_due=True), now=before.unsubscribed_at + timedelta(days=DAYS - 1)
    )
    assert report.purged == 0
    assert stack.stored(subscription_id) == before
    assert stack.services.users.get(ADELE.tenant_id, ADELE.object_id) is not None
    assert len(stack.services.seats.list(subscription_id)) == 2
    assert not any(
        e.action is AuditAction.PERSONAL_DATA_PURGED for e in stack.services.audit.list(subscription_id)
    )


def test_a_row_purged_before_the_purge_marker_existed_is_read_once_more_then_never(
    stack: Stack, azurite_connection_string: str, table_prefix: str
) -> None:
    subscription_id = stack.buy_and_activate("basic", buyer=ADELE_UPN)
    unsubscribed_at = unsubscribe(stack, subscription_id).unsubscribed_at
    assert purge(stack, unsubscribed_at + timedelta(days=DAYS + 1)).purged == 1
    purged = stack.stored(subscription_id)
    # The row as the previous layout wrote it: purged, without the marker.
    table = TableServiceClient.from_connection_string(azurite_connection_string).get_table_client(
        f"{table_prefix}subs"
    )
    old_layout = dict(table.get_entity(subscription_id, "subscription"))
    del old_layout["personal_data_purged"]
    old_layout["schema_version"] = 1
    table.upsert_entity(old_layout, mode=UpdateMode.REPLACE)
    trail = stack.services.audit.list(subscription_id)

    later = unsubscribed_at + timedelta(days=DAYS + 2)
    assert purge(stack, later) == PurgeReport(candidates=1, purged=0)
    assert purge(stack, later) == PurgeReport(candidates=0, purged=0)
    after = stack.stored(subscription_id)
    assert after.personal_data_purged_at == purged.personal_data_purged_at
    assert replace(after, etag="", updated_at=None) == replace(purged, etag="", updated_at=None)
    assert stack.services.audit.list(subscription_id) == trail, "nothing purged twice, nothing audited"
