"""CSP setup links (R65): the partner creates one, the customer's admin opens it and accepts the role.

Opening only checks the link and who opens it (a GET must change nothing: link scanners and prefetchers
open links); accepting claims the single-use code and grants "beneficiary-admin" of that one subscription.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.domain import access
from shared.domain.access import Role
from shared.domain.identity import Person, acts_for
from shared.domain.setup_links import OTHER_TENANT, SetupLinkError
from shared.logs import get_logger, log_context

if TYPE_CHECKING:
    from shared.domain.setup_links import SetupLink
    from shared.domain.subscription import Subscription
    from shared.workflows.ports import AdminGrants, SetupLinkBook, SubscriptionRecords

log = get_logger(__name__)


@dataclass(frozen=True)
class OpenedLink:
    """A usable link and the subscription it hands over."""

    link: SetupLink
    subscription: Subscription


def may_create(subscription: Subscription, roles: frozenset[Role]) -> bool:
    """R65: the partner who bought for a customer hands the customer's admin a setup link."""
    return (
        access.is_csp(subscription)
        and Role.PURCHASER in roles
        and access.can_manage_seats(subscription, roles)
    )


def create_link(
    subscription: Subscription, roles: frozenset[Role], *, created_by: str, links: SetupLinkBook
) -> str:
    """A new code for the subscription; PermissionError unless the visitor is the partner who bought it."""
    if not may_create(subscription, roles):
        raise PermissionError("only the partner who bought this subscription can create setup links")
    return links.create(subscription.id, created_by=created_by)


def open_link(
    code: str, who: Person, *, links: SetupLinkBook, subscriptions: SubscriptionRecords
) -> OpenedLink:
    """The link behind `code`, if `who` may accept it; SetupLinkError ("unknown", "expired", "used",
    "other-tenant") otherwise. Changes nothing."""
    link = links.check(code)
    subscription = subscriptions.get(link.subscription_id)
    if subscription is None or not acts_for(subscription.beneficiary, who):
        log.warning("setup link opened by a user of another tenant")
        raise SetupLinkError(OTHER_TENANT)
    return OpenedLink(link, subscription)


def accept_link(
    code: str, who: Person, *, links: SetupLinkBook, subscriptions: SubscriptionRecords, admins: AdminGrants
) -> Subscription:
    """Claims the code (once, ETag-guarded) and makes `who` beneficiary admin. Raises SetupLinkError."""
    opened = open_link(code, who, links=links, subscriptions=subscriptions)
    links.claim(opened.link, used_by=f"{who.tenant_id}:{who.object_id}")
    admins.grant(
        opened.link.subscription_id,
        who.tenant_id,
        who.object_id,
        Role.BENEFICIARY_ADMIN,
        granted_by=opened.link.created_by,
    )
    with log_context(subscription_id=opened.link.subscription_id):
        log.info("setup link used: beneficiary admin granted")
    return opened.subscription
