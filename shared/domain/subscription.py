"""The publisher's record of one SaaS subscription and the Microsoft objects it mirrors.

These are plain frozen dataclasses: the Fulfillment API client parses Microsoft's JSON into them, the Table
store persists them, and the transition rules compute new ones from old. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from shared.domain.status import Action, OperationStatus, SubscriptionStatus

# Every message on the events queue is in its subscription's session (the subscription id), but for a
# requested reconciliation sweep (shared.queueing.messages.sweep_message): this one names no subscription.
SWEEP_SESSION = "_sweep"


@dataclass(frozen=True)
class Party:
    """A purchaser or beneficiary (R60): the person and the Entra tenant they act for."""

    email: str = ""
    object_id: str = ""
    tenant_id: str = ""
    puid: str = ""


@dataclass(frozen=True)
class Term:
    """The billing term (R68). Dates may be missing (pitfall P10), so all are optional."""

    unit: str = ""  # P1M, P1Y, ...
    start: datetime | None = None
    end: datetime | None = None
    charge_duration: str = ""


@dataclass(frozen=True)
class MicrosoftSubscription:
    """A subscription exactly as the Fulfillment API reported it at one moment (R67)."""

    id: str
    name: str = ""
    offer_id: str = ""
    plan_id: str = ""
    quantity: int | None = None
    status: SubscriptionStatus = SubscriptionStatus.PENDING_FULFILLMENT_START
    purchaser: Party = field(default_factory=Party)
    beneficiary: Party = field(default_factory=Party)
    term: Term = field(default_factory=Term)
    auto_renew: bool = True
    is_test: bool = False
    is_free_trial: bool = False
    allowed_customer_operations: frozenset[str] = frozenset()
    sandbox_type: str = "None"
    session_mode: str = "None"
    publisher_id: str = ""
    created: datetime | None = None
    last_modified: datetime | None = None

    @property
    def is_csp(self) -> bool:
        """A purchase made for another tenant (R60-R61)."""
        return bool(self.purchaser.tenant_id and self.beneficiary.tenant_id) and (
            self.purchaser.tenant_id != self.beneficiary.tenant_id
        )


@dataclass(frozen=True)
class UnreadableSubscription:
    """An item of Microsoft's ListSubscriptions we could not read (an unknown status, a field of the wrong
    shape, no id): its id when it had one, and why. The sweep counts it and, when it has an id, still queues
    its reconcile, which then fails on GetSubscription and parks the message where an operator sees it."""

    id: str
    error: str


@dataclass(frozen=True)
class ResolvedPurchase:
    """The answer to Resolve (R6): the subscription id plus the subscription as it stands."""

    subscription_id: str
    subscription_name: str
    offer_id: str
    plan_id: str
    quantity: int | None
    subscription: MicrosoftSubscription


@dataclass(frozen=True)
class Operation:
    """A SaaS operation (R27) as returned by Get/List operations or announced by a webhook."""

    id: str
    subscription_id: str
    action: Action
    status: OperationStatus
    action_raw: str = ""
    activity_id: str = ""
    offer_id: str = ""
    publisher_id: str = ""
    plan_id: str = ""
    quantity: int | None = None
    timestamp: datetime | None = None
    request_source: str = ""  # "Azure" (customer / Microsoft) or "Partner" (publisher-initiated, R42)
    error_status_code: str = ""
    error_message: str = ""


@dataclass(frozen=True)
class Subscription:
    """The publisher's mirror of one subscription, as stored in Table Storage.

    `mirror` fields follow Microsoft; the rest is the publisher's own bookkeeping: whether activation was
    sent, which operation was applied last (for ordering), and the ETag-like `version` held by the store.
    """

    id: str
    name: str = ""
    offer_id: str = ""
    plan_id: str = ""
    quantity: int | None = None
    status: SubscriptionStatus = SubscriptionStatus.PENDING_FULFILLMENT_START
    purchaser: Party = field(default_factory=Party)
    beneficiary: Party = field(default_factory=Party)
    term: Term = field(default_factory=Term)
    auto_renew: bool = True
    is_test: bool = False
    is_free_trial: bool = False
    allowed_customer_operations: frozenset[str] = frozenset()
    sandbox_type: str = "None"
    session_mode: str = "None"
    # --- publisher bookkeeping
    activation_requested_at: datetime | None = None
    activated_at: datetime | None = None
    provisioned: bool = False
    last_operation_id: str = ""
    last_operation_action: str = ""
    last_operation_at: datetime | None = None
    last_synced_at: datetime | None = None
    unsubscribed_at: datetime | None = None
    # Set once the retention period ended and the personal data was purged (shared.domain.retention).
    personal_data_purged_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    etag: str = ""  # the store's concurrency token; empty for a record not yet stored

    @property
    def is_csp(self) -> bool:
        return bool(self.purchaser.tenant_id and self.beneficiary.tenant_id) and (
            self.purchaser.tenant_id != self.beneficiary.tenant_id
        )

    @classmethod
    def from_microsoft(cls, ms: MicrosoftSubscription) -> Subscription:
        """A new record mirroring Microsoft's view; bookkeeping fields start empty."""
        return cls(id=ms.id).mirrored(ms)

    def without_personal_data(self) -> Subscription:
        """This record with the people left out: the name (buyers often name a subscription after someone)
        and the parties' e-mail, object id and puid. Tenants stay: they are organisations, and billing and
        the license index are keyed by them."""
        return replace(
            self,
            name="",
            purchaser=Party(tenant_id=self.purchaser.tenant_id),
            beneficiary=Party(tenant_id=self.beneficiary.tenant_id),
        )

    def mirrored(self, ms: MicrosoftSubscription) -> Subscription:
        """This record with every mirrored field replaced by Microsoft's (R22: Microsoft is the truth).

        A purged record stays without its people: a late webhook or an operator's reconcile must not bring
        back what the retention period removed."""
        mirrored = self._mirrored(ms)
        return mirrored.without_personal_data() if self.personal_data_purged_at else mirrored

    def _mirrored(self, ms: MicrosoftSubscription) -> Subscription:
        return replace(
            self,
            name=ms.name or self.name,
            offer_id=ms.offer_id or self.offer_id,
            plan_id=ms.plan_id,
            quantity=ms.quantity,
            status=ms.status,
            purchaser=ms.purchaser,
            beneficiary=ms.beneficiary,
            term=ms.term,
            auto_renew=ms.auto_renew,
            is_test=ms.is_test,
            is_free_trial=ms.is_free_trial,
            allowed_customer_operations=ms.allowed_customer_operations,
            sandbox_type=ms.sandbox_type,
            session_mode=ms.session_mode,
        )


@dataclass(frozen=True)
class Plan:
    """One entry of ListAvailablePlans (R23): a plan this subscription may move to, the current included."""

    plan_id: str
    display_name: str = ""
    description: str = ""
    is_private: bool = False
    is_price_per_seat: bool = False
    has_free_trials: bool = False
    is_stop_sell: bool = False
    min_quantity: int | None = None
    max_quantity: int | None = None
    term_units: tuple[str, ...] = ()


def needs_reconcile(stored: Subscription | None, listed: MicrosoftSubscription) -> bool:
    """Whether the sweep must reconcile a subscription Microsoft lists: not stored here, drifted in what the
    marketplace decides (status, plan, quantity, term), or still waiting for its activation.

    One in step is left alone: reconciling every subscription on every sweep floods the queue, and the
    webhooks behind it then wait out Microsoft's answer window. An operation left unanswered is accepted by
    Microsoft when its window closes, which shows up here as drift on the next sweep.
    """
    if stored is None or listed.status is SubscriptionStatus.PENDING_FULFILLMENT_START:
        return True
    ours = (stored.status, stored.plan_id, stored.quantity, stored.term)
    theirs = (listed.status, listed.plan_id, listed.quantity, listed.term)
    return ours != theirs
