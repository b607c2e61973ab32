"""The ports workflows use: small protocols naming only the methods a workflow calls.

Workflows take these as explicit keyword parameters; `shared.app_context` builds the adapters behind them,
so a workflow never reaches for the composition root and a test can see at a glance what each one touches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from shared.domain.identity import Person
    from shared.domain.inbox import InboxRecord
    from shared.domain.subscription import Plan, Subscription
    from shared.storage.seats import Seat
    from shared.storage.setup_links import SetupLink
    from shared.storage.users import Role, User


# --- portal, seats and licence ports


class PortalSubscriptions(Protocol):
    """Stored subscriptions, as the portal and the seats workflow read them."""

    def get(self, subscription_id: str) -> Subscription | None: ...

    def list_for_tenant(self, tenant_id: str) -> list[Subscription]: ...


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


class LicenceRows(Protocol):
    """The license index the license check reads (`shared.storage.licenses.LicenseIndex`)."""

    def put_seat(self, subscription: Subscription, tenant_id: str, object_id: str) -> None: ...

    def remove_seat(self, subscription: Subscription, tenant_id: str, object_id: str) -> None: ...

    def refresh(self, subscription: Subscription, seat_holders: list[tuple[str, str]]) -> None: ...


class AdminGrants(Protocol):
    """Who holds which role on which subscription (`shared.storage.users.AdminStore`)."""

    def grant(
        self, subscription_id: str, tenant_id: str, object_id: str, role: Role, granted_by: str
    ) -> None: ...

    def roles_for(self, subscription_id: str, tenant_id: str, object_id: str) -> set[str]: ...

    def grantees(self, subscription_id: str, tenant_id: str) -> list[Person]: ...

    def subscriptions_for(self, tenant_id: str, object_id: str) -> list[str]: ...


class PeopleDirectory(Protocol):
    """People who signed in (`shared.storage.users.UserStore`)."""

    def get(self, tenant_id: str, object_id: str) -> User | None: ...

    def list_for_tenant(self, tenant_id: str) -> list[User]: ...

    def holders_of(self, address: str) -> list[Person]: ...


class SetupLinkBook(Protocol):
    """CSP setup links (`shared.storage.setup_links.SetupLinkStore`)."""

    def create(self, subscription_id: str, created_by: str) -> str: ...

    def check(self, code: str) -> SetupLink: ...

    def claim(self, link: SetupLink, used_by: str) -> None: ...


class PublisherChangeApi(Protocol):
    """The Fulfillment API calls a publisher-side change makes (`shared.fulfillment.client`)."""

    def list_available_plans(self, subscription_id: str) -> list[Plan]: ...

    def change_plan(self, subscription_id: str, plan_id: str, *, correlation_id: str) -> str: ...

    def change_quantity(self, subscription_id: str, quantity: int, *, correlation_id: str) -> str: ...

    def delete_subscription(self, subscription_id: str, *, correlation_id: str) -> str: ...


class OperationLog(Protocol):
    """The operation inbox (`shared.storage.inbox.OperationInbox`)."""

    def put_new(self, record: InboxRecord) -> Any: ...

    def list_for_subscription(self, subscription_id: str) -> list[InboxRecord]: ...


class MessageQueue(Protocol):
    """Where `track` messages go (`shared.queueing.messages.EventQueue`)."""

    def send(self, message: Any) -> Any: ...
