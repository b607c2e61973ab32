"""The retention purge: personal data of subscriptions Unsubscribed longer than the retention period (R58).

Microsoft unsubscribes on cancellation or at the end of the suspension grace (R56); the data stays at least
7 days after that, restorable if asked, and then goes (R58). `purge_expired`, run daily by the timer
`function_app.personal_data_purge`, streams the subscriptions Unsubscribed before the cut-off a page at a
time (`RetentionCandidates.unsubscribed_before`) and purges each one `shared.domain.retention.due_for_purge`
picks:

1. people: the users who held a grant or a seat on it, unless another subscription still has them (a grant,
   or a license row of another subscription), with their address index rows and sessions;
2. grants, license index rows (the index is fed by the seats) and seats with their counter;
3. setup links (they name who made and who used them);
4. audit entries: personal values in `changes` redacted (`redact_changes`), the rest of the trail kept;
5. last, the row itself: name and the parties' e-mail, object id and puid cleared, billing fields kept,
   `personal_data_purged_at` set, in one transaction with a `PersonalDataPurged` entry (source
   `retention`) that holds counts only.

Every step is idempotent, and the row is marked last: a run that fails half way leaves the subscription due,
and the next run finishes it. A marked row is never due again, and the query leaves it out, so a second run
neither purges nor reads it (a row purged before the marker existed is read once more and stored with it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from shared.domain.audit import AuditAction, AuditEntry, AuditSource
from shared.domain.changes import Change
from shared.domain.identity import Person
from shared.domain.retention import due_for_purge, purge_cutoff, redact_changes
from shared.logs import get_logger, log_context

if TYPE_CHECKING:
    from shared.domain.subscription import Subscription
    from shared.workflows.ports import (
        AuditRedaction,
        GrantRemoval,
        LicenseRemoval,
        RetentionCandidates,
        SeatRemoval,
        SessionRemoval,
        SetupLinkRemoval,
        UserRemoval,
    )

log = get_logger(__name__)
# Candidates held at once: one page of the query, so memory does not grow with the table.
PURGE_PAGE = 100


@dataclass(frozen=True)
class RetentionPorts:
    """Every store that holds personal data of a subscription."""

    subscriptions: RetentionCandidates
    audit: AuditRedaction
    seats: SeatRemoval
    licenses: LicenseRemoval
    grants: GrantRemoval
    users: UserRemoval
    sessions: SessionRemoval
    setup_links: SetupLinkRemoval


@dataclass(frozen=True)
class PurgeCounts:
    """What one subscription's purge removed or rewrote: numbers only, so they may go in the audit trail."""

    users: int = 0
    sessions: int = 0
    grants: int = 0
    seats: int = 0
    setup_links: int = 0
    audit_entries_redacted: int = 0


@dataclass(frozen=True)
class PurgeReport:
    """One run: candidates seen (Unsubscribed before the cut-off and not purged yet) and purged."""

    candidates: int = 0
    purged: int = 0


def purge_expired(
    now: datetime,
    retention_days: int,
    correlation_id: str,
    *,
    ports: RetentionPorts,
    page_size: int = PURGE_PAGE,
) -> PurgeReport:
    """Purges every subscription due at `now` (injected: tests move the clock instead of waiting)."""
    candidates = purged = 0
    cutoff = purge_cutoff(now, retention_days)
    for subscription in ports.subscriptions.unsubscribed_before(cutoff, page_size=page_size):
        candidates += 1
        if subscription.personal_data_purged_at is not None:
            # Handed back although purged: its row predates the purge marker. Stored again, it gets the
            # marker, and no later run reads it.
            ports.subscriptions.update(subscription.id, _unchanged, current=subscription)
            continue
        if not due_for_purge(subscription, now, retention_days):
            continue
        with log_context(subscription_id=subscription.id):
            purged += purge_subscription(subscription, now, retention_days, correlation_id, ports=ports)
    log.info(
        "retention purge finished",
        extra={"candidates": candidates, "purged": purged, "retention_days": retention_days},
    )
    return PurgeReport(candidates=candidates, purged=purged)


def _unchanged(current: Subscription | None) -> Subscription | None:
    return current


def purge_subscription(
    subscription: Subscription,
    now: datetime,
    retention_days: int,
    correlation_id: str,
    *,
    ports: RetentionPorts,
) -> bool:
    """Purges one subscription; False when it was no longer due once re-read (purged meanwhile)."""
    holders = [seat.holder for seat in ports.seats.list(subscription.id) if seat.is_bound]
    people = _people(subscription, holders, ports=ports)
    users, sessions = _forget_people(subscription.id, people, ports=ports)
    grants = sum(ports.grants.revoke_subscription(subscription.id, t) for t in _tenants(subscription, people))
    ports.licenses.remove_subscription(subscription, holders)
    counts = PurgeCounts(
        users=users,
        sessions=sessions,
        grants=grants,
        seats=ports.seats.remove_all(subscription.id),
        setup_links=ports.setup_links.delete_for(subscription.id),
        audit_entries_redacted=ports.audit.rewrite_changes(subscription.id, redact_changes),
    )
    marked = _mark_purged(subscription.id, now, retention_days, counts, correlation_id, ports=ports)
    if marked:
        log.info("personal data purged", extra=_as_extra(counts))
    return marked


def _tenants(subscription: Subscription, people: set[Person]) -> set[str]:
    parties = {subscription.purchaser.tenant_id, subscription.beneficiary.tenant_id}
    every = parties | {person.tenant_id for person in people}
    return {tenant.strip().lower() for tenant in every if tenant and tenant.strip()}


def _people(subscription: Subscription, holders: list[Person], *, ports: RetentionPorts) -> set[Person]:
    """Who the subscription knows: its parties, its grantees (in the parties' tenants) and seat holders."""
    people = set(holders)
    for party in (subscription.purchaser, subscription.beneficiary):
        if party.tenant_id and party.object_id:
            people.add(Person.of(party.tenant_id, party.object_id))
    for tenant in _tenants(subscription, people):
        people.update(ports.grants.grantees(subscription.id, tenant))
    return people


def _forget_people(subscription_id: str, people: set[Person], *, ports: RetentionPorts) -> tuple[int, int]:
    """Deletes the users no other subscription still has; returns (users, sessions) deleted."""
    users = sessions = 0
    for person in people:
        if _kept_by_another(subscription_id, person, ports=ports):
            continue
        users += ports.users.delete(person.tenant_id, person.object_id)
        sessions += ports.sessions.end_all_for(person.tenant_id, person.object_id)
    return users, sessions


def _kept_by_another(subscription_id: str, person: Person, *, ports: RetentionPorts) -> bool:
    # Their row holds the contact e-mail another subscription's admin still uses, or a seat they hold.
    grants = ports.grants.subscriptions_for(person.tenant_id, person.object_id)
    if any(other != subscription_id for other in grants):
        return True
    return ports.licenses.licensed_elsewhere(person.tenant_id, person.object_id, subscription_id)


def _mark_purged(
    subscription_id: str,
    now: datetime,
    retention_days: int,
    counts: PurgeCounts,
    correlation_id: str,
    *,
    ports: RetentionPorts,
) -> bool:
    def anonymise(current: Subscription | None) -> Change | None:
        # Re-checked on the row as it is now: another run may have purged it meanwhile.
        if current is None or not due_for_purge(current, now, retention_days):
            return None
        purged = replace(current.without_personal_data(), personal_data_purged_at=now)
        return Change(
            purged, audit=_purge_entry(subscription_id, now, retention_days, counts, correlation_id)
        )

    return ports.subscriptions.update(subscription_id, anonymise).after is not None


def _purge_entry(
    subscription_id: str, now: datetime, retention_days: int, counts: PurgeCounts, correlation_id: str
) -> AuditEntry:
    changes = {name: (None, value) for name, value in _as_extra(counts).items()}
    changes["retention_days"] = (None, retention_days)
    return AuditEntry(
        subscription_id=subscription_id,
        at=now,
        action=AuditAction.PERSONAL_DATA_PURGED,
        source=AuditSource.RETENTION,
        changes=changes,
        correlation_id=correlation_id,
    )


def _as_extra(counts: PurgeCounts) -> dict[str, int]:
    return {
        "users": counts.users,
        "sessions": counts.sessions,
        "grants": counts.grants,
        "seats": counts.seats,
        "setup_links": counts.setup_links,
        "audit_entries_redacted": counts.audit_entries_redacted,
    }
