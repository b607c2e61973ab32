"""The ports workflows depend on: each a small protocol naming only the methods a workflow calls.

Workflows receive these explicitly (keyword parameters or a frozen dataclass per workflow); the composition
root (`shared.app_context`) is the only place that builds the adapters behind them. A test can therefore run a
workflow against real adapters on Azurite without HTTP and without the composition root.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from datetime import datetime

    from shared.domain.access import Role
    from shared.domain.audit import AuditEntry
    from shared.domain.changes import ChangeFunction, Updated
    from shared.domain.dead_letters import DeadLetterEntry
    from shared.domain.identity import Person
    from shared.domain.inbox import InboxRecord
    from shared.domain.seats import Seat
    from shared.domain.setup_links import SetupLink
    from shared.domain.subscription import (
        MicrosoftSubscription,
        Operation,
        Plan,
        ResolvedPurchase,
        Subscription,
        UnreadableSubscription,
    )
    from shared.domain.users import User
    from shared.queueing.messages import QueueMessage


# --- one protocol per port; the worker, landing, sign-in, portal and seats workflows share them ----------


class Marketplace(Protocol):
    """Microsoft's SaaS Fulfillment API v2: the source of truth for subscriptions and operations."""

    def resolve(self, marketplace_token: str, *, correlation_id: str | None = None) -> ResolvedPurchase: ...

    def list_subscriptions(
        self, *, correlation_id: str | None = None
    ) -> Iterable[MicrosoftSubscription | UnreadableSubscription]: ...

    def get_subscription(
        self, subscription_id: str, *, correlation_id: str | None = None
    ) -> MicrosoftSubscription: ...

    def activate(
        self, subscription_id: str, plan_id: str, quantity: int | None, *, correlation_id: str | None = None
    ) -> None: ...

    def list_operations(
        self, subscription_id: str, *, correlation_id: str | None = None
    ) -> list[Operation]: ...

    def get_operation(
        self, subscription_id: str, operation_id: str, *, correlation_id: str | None = None
    ) -> Operation: ...

    def update_operation(
        self, subscription_id: str, operation_id: str, success: bool, *, correlation_id: str | None = None
    ) -> None: ...

    def list_available_plans(self, subscription_id: str) -> list[Plan]: ...

    def change_plan(self, subscription_id: str, plan_id: str, *, correlation_id: str) -> str: ...

    def change_quantity(self, subscription_id: str, quantity: int, *, correlation_id: str) -> str: ...

    def delete_subscription(self, subscription_id: str, *, correlation_id: str) -> str: ...


class SubscriptionRecords(Protocol):
    """Our mirror of each subscription; `update` applies a change under the record's ETag (starting from
    `current`, a row the caller read with its ETag, when given, so it is not read twice; `absent=True` starts
    from no row without reading, the insert then failing, and the loop reading, if a row is there)."""

    def get(self, subscription_id: str) -> Subscription | None: ...

    def update(
        self,
        subscription_id: str,
        change: ChangeFunction,
        *,
        current: Subscription | None = None,
        absent: bool = False,
    ) -> Updated: ...

    def list_for_tenant(self, tenant_id: str) -> list[Subscription]: ...


class Inbox(Protocol):
    """The operations Microsoft announced (or we started), and what we decided and answered for each."""

    def get(self, subscription_id: str, operation_id: str) -> InboxRecord | None: ...

    def put_new(self, record: InboxRecord) -> InboxRecord | None: ...

    def save(self, record: InboxRecord) -> InboxRecord: ...

    def list_for_subscription(self, subscription_id: str) -> list[InboxRecord]: ...


class AuditLog(Protocol):
    """Append-only record of what changed, who or what caused it, and why."""

    def append(self, entry: AuditEntry) -> AuditEntry: ...


class AuditHistory(AuditLog, Protocol):
    """The audit trail read back: one subscription's entries, oldest first."""

    def list(self, subscription_id: str) -> list[AuditEntry]: ...


class RecentAuditHistory(Protocol):
    """One partition's audit entries from a time on, oldest first (`AuditTrail.list_since`)."""

    def list_since(self, subscription_id: str, cutoff: datetime) -> list[AuditEntry]: ...


class SubscriptionCatalog(Protocol):
    """Every stored subscription, page by page (`shared.storage.subscriptions.SubscriptionStore`)."""

    def get(self, subscription_id: str) -> Subscription | None: ...

    def list_all(self) -> Iterable[Subscription]: ...


class DeadLetterBox(Protocol):
    """The messages no worker could finish: the parking queue and the events queue's dead-letter sub-queue.

    `replay` sends `message` (a copy with a fresh id) to the events queue and only then removes `entry`;
    `discard` removes it. Both return False when `entry` is no longer there (someone else settled it).
    """

    def list(self, *, limit: int | None = None) -> list[DeadLetterEntry]: ...

    def replay(self, entry: DeadLetterEntry, message: QueueMessage) -> bool: ...

    def discard(self, entry: DeadLetterEntry) -> bool: ...


class EventPublisher(Protocol):
    """Hands work to the worker; returns once the queue holds it, else QueueUnavailableError."""

    def send(self, message: QueueMessage) -> None: ...

    def send_many(self, messages: Sequence[QueueMessage]) -> None: ...


class AdminGrants(Protocol):
    """Who holds which role on which subscription."""

    def grant(
        self, subscription_id: str, tenant_id: str, object_id: str, role: Role, granted_by: str
    ) -> None: ...

    def revoke(
        self, subscription_id: str, tenant_id: str, object_id: str, role: Role | str | None = None
    ) -> int: ...

    def roles_for(self, subscription_id: str, tenant_id: str, object_id: str) -> set[Role]: ...

    def grantees(self, subscription_id: str, tenant_id: str) -> list[Person]: ...

    def subscriptions_for(self, tenant_id: str, object_id: str) -> list[str]: ...


class UserDirectory(Protocol):
    """Users known by tenant id + object id, with what their ID token vouched for and their contact email."""

    def get(self, tenant_id: str, object_id: str) -> User | None: ...

    def upsert(self, user: User) -> User: ...

    def set_contact_email(self, tenant_id: str, object_id: str, email: str) -> None: ...

    def list_for_tenant(self, tenant_id: str) -> list[User]: ...

    def holders_of(self, address: str) -> list[Person]: ...


class SeatBook(Protocol):
    """The seats of each subscription (`shared.storage.seats.SeatStore`)."""

    def list(self, subscription_id: str) -> list[Seat]: ...

    def count(self, subscription_id: str) -> int: ...

    def find(
        self,
        subscription_id: str,
        *,
        user_key: str | None = None,
        tenant_id: str | None = None,
        object_id: str | None = None,
    ) -> Seat | None: ...

    def assign(
        self,
        subscription_id: str,
        user_key: str,
        *,
        quantity: int | None,
        assigned_by: str,
        display_name: str = "",
        tenant_id: str = "",
        object_id: str = "",
    ) -> Seat: ...

    def revoke(self, subscription_id: str, user_key: str) -> bool: ...

    def bind_identity(self, subscription_id: str, user_key: str, tenant_id: str, object_id: str) -> Seat: ...

    def hold_limit(self, subscription_id: str, limit: int, held_by: str) -> bool: ...

    def release_limit(self, subscription_id: str, *held_by: str) -> bool: ...


class LicenseRows(Protocol):
    """The license index the license check reads (`shared.storage.licenses.LicenseIndex`)."""

    def put_seat(self, subscription: Subscription, tenant_id: str, object_id: str) -> None: ...

    def remove_seat(self, subscription: Subscription, tenant_id: str, object_id: str) -> None: ...

    def refresh(self, subscription: Subscription, seat_holders: list[Person]) -> None: ...


class SetupLinkBook(Protocol):
    """CSP setup links (`shared.storage.setup_links.SetupLinkStore`)."""

    def create(self, subscription_id: str, created_by: str) -> str: ...

    def check(self, code: str) -> SetupLink: ...

    def claim(self, link: SetupLink, used_by: str) -> None: ...


# --- the retention purge (`shared.workflows.retention`): what it reads and deletes ---------------------


class RetentionCandidates(Protocol):
    """Unsubscribed subscriptions not purged yet, a page at a time, and the ETag-guarded update of one."""

    def unsubscribed_before(self, cutoff: datetime, *, page_size: int = 100) -> Iterable[Subscription]: ...

    def update(
        self, subscription_id: str, change: ChangeFunction, *, current: Subscription | None = None
    ) -> Updated: ...


class AuditRedaction(Protocol):
    """Rewrites the `changes` of a subscription's audit entries; returns how many were rewritten."""

    def rewrite_changes(
        self,
        subscription_id: str,
        rewrite: Callable[[Mapping[str, tuple[Any, Any]]], Mapping[str, tuple[Any, Any]]],
    ) -> int: ...


class SeatRemoval(Protocol):
    """A subscription's seats read, then deleted with their counter."""

    def list(self, subscription_id: str) -> list[Seat]: ...

    def remove_all(self, subscription_id: str) -> int: ...


class LicenseRemoval(Protocol):
    """The license index rows a subscription wrote, and whether a person is licensed by another one."""

    def remove_subscription(self, subscription: Subscription, seat_holders: list[Person]) -> None: ...

    def licensed_elsewhere(self, tenant_id: str, object_id: str, subscription_id: str) -> bool: ...


class GrantRemoval(Protocol):
    """Admin grants: who holds one on a subscription, what else they hold, and removing them."""

    def grantees(self, subscription_id: str, tenant_id: str) -> list[Person]: ...

    def subscriptions_for(self, tenant_id: str, object_id: str) -> list[str]: ...

    def revoke_subscription(self, subscription_id: str, tenant_id: str) -> int: ...


class UserRemoval(Protocol):
    """Forgetting a person: their user row (names, contact and vouched addresses) and their sessions."""

    def delete(self, tenant_id: str, object_id: str) -> bool: ...


class SessionRemoval(Protocol):
    def end_all_for(self, tenant_id: str, object_id: str) -> int: ...


class SetupLinkRemoval(Protocol):
    def delete_for(self, subscription_id: str) -> int: ...
