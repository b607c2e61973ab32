"""Which stored subscriptions an operator asks for: exact filters plus a free-text search, pure.

The CLI (`subscriptions list`) and the console's list read the same query. Both match full `Subscription`s
and the console's lighter `SubscriptionSummary` (the columns the list shows, all a query reads): anything
with the attributes of `Listed` matches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from shared.domain.status import SubscriptionStatus
from shared.domain.subscription import Party, Subscription

# Longer than any id, name or address a search could usefully hold; longer ones are refused, not cut.
MAX_TEXT = 200
STATUSES = {status.value.lower(): status for status in SubscriptionStatus}


class Listed(Protocol):
    """What a query reads of a subscription (a `Subscription` or a `SubscriptionSummary`)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def offer_id(self) -> str: ...
    @property
    def plan_id(self) -> str: ...
    @property
    def status(self) -> SubscriptionStatus: ...
    @property
    def purchaser(self) -> Party: ...
    @property
    def beneficiary(self) -> Party: ...


@dataclass(frozen=True)
class SubscriptionSummary:
    """One row of the operator's list: what it shows, searches and exports, nothing else."""

    id: str
    name: str = ""
    offer_id: str = ""
    plan_id: str = ""
    quantity: int | None = None
    status: SubscriptionStatus = SubscriptionStatus.PENDING_FULFILLMENT_START
    purchaser: Party = field(default_factory=Party)
    beneficiary: Party = field(default_factory=Party)
    created_at: datetime | None = None
    last_synced_at: datetime | None = None


def summary_of(subscription: Subscription) -> SubscriptionSummary:
    return SubscriptionSummary(
        id=subscription.id,
        name=subscription.name,
        offer_id=subscription.offer_id,
        plan_id=subscription.plan_id,
        quantity=subscription.quantity,
        status=subscription.status,
        purchaser=subscription.purchaser,
        beneficiary=subscription.beneficiary,
        created_at=subscription.created_at,
        last_synced_at=subscription.last_synced_at,
    )


@dataclass(frozen=True)
class SubscriptionQuery:
    """Empty fields filter nothing. `status` is read as Microsoft spells it, any case; `offer` and `plan`
    are exact (any case); `tenant` matches the purchaser's or the beneficiary's tenant exactly; `id`,
    `name` and `buyer` (either e-mail address) match a case-insensitive part; `search` is a
    case-insensitive part of the id, name, offer, plan, either tenant or either e-mail address."""

    status: str = ""
    plan: str = ""
    offer: str = ""
    tenant: str = ""
    search: str = ""
    limit: int | None = None
    id: str = ""
    name: str = ""
    buyer: str = ""

    def matches(self, subscription: Listed) -> bool:
        return (
            _same(self.status, subscription.status.value)
            and _same(self.plan, subscription.plan_id)
            and _same(self.offer, subscription.offer_id)
            and (
                not self.tenant
                or self.tenant.strip().lower()
                in {subscription.purchaser.tenant_id.lower(), subscription.beneficiary.tenant_id.lower()}
            )
            and _part(self.id, subscription.id)
            and _part(self.name, subscription.name)
            and _part(self.buyer, f"{subscription.purchaser.email}\n{subscription.beneficiary.email}")
            and (not self.search or self.search.strip().lower() in _haystack(subscription))
        )

    def status_is_known(self) -> bool:
        """False for a status Microsoft never sends (a typo would otherwise quietly match nothing)."""
        return not self.status or self.status.strip().lower() in STATUSES

    def problems(self, *, for_people: bool = False) -> list[str]:
        """What is wrong with the query as asked, in words an operator can act on; empty when usable.

        The CLI's operator types Microsoft's status values, so it is offered those; a page (`for_people`)
        offers the statuses as its list shows them."""
        found = []
        if not self.status_is_known():
            if for_people:
                choice = "Choose a status from the list."
            else:
                choice = "Choose one of: " + ", ".join(status.value for status in SubscriptionStatus) + "."
            found.append(f"There is no status {_quoted(self.status)}. {choice}")
        for label, value in self.texts().items():
            if len(value) > MAX_TEXT:
                found.append(
                    f"The {label} is {len(value):,} characters long; at most {MAX_TEXT} are searched."
                )
        return found

    def texts(self) -> dict[str, str]:
        """Every free-text field by the name a form shows it under."""
        return {
            "search": self.search,
            "id": self.id,
            "name": self.name,
            "tenant": self.tenant,
            "buyer address": self.buyer,
            "offer": self.offer,
            "plan": self.plan,
            "status": self.status,
        }

    @property
    def is_empty(self) -> bool:
        return not any(value.strip() for value in self.texts().values())


@dataclass(frozen=True)
class Page:
    """One page of a list: 1-based `number`, the items on it, and how many matched in all."""

    number: int
    size: int
    total: int

    @property
    def count(self) -> int:
        """How many pages the matches fill (at least one, even when nothing matched)."""
        return max(1, -(-self.total // self.size))

    @property
    def start(self) -> int:
        return (self.number - 1) * self.size

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.count


def parse_page(raw: str, *, largest: int = 1_000_000) -> int | None:
    """A page number as typed in a URL (1 when absent), None when it is not a whole number from 1 to
    `largest` (a caller says so instead of guessing)."""
    text = (raw or "").strip()
    if not text:
        return 1
    if not text.isascii() or not text.isdigit() or len(text) > len(str(largest)):
        return None
    number = int(text)
    return number if 1 <= number <= largest else None


def _same(wanted: str, value: str) -> bool:
    return not wanted.strip() or wanted.strip().lower() == value.lower()


def _part(wanted: str, value: str) -> bool:
    return not wanted.strip() or wanted.strip().lower() in value.lower()


def _quoted(value: str) -> str:
    shown = value if len(value) <= 40 else value[:40] + "…"
    return f"“{shown}”"


def _haystack(subscription: Listed) -> str:
    parts = (
        subscription.id,
        subscription.name,
        subscription.offer_id,
        subscription.plan_id,
        subscription.purchaser.tenant_id,
        subscription.purchaser.email,
        subscription.beneficiary.tenant_id,
        subscription.beneficiary.email,
    )
    return "\n".join(parts).lower()
