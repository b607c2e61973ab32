"""Property: however webhooks are shuffled and duplicated, the mirror converges on Microsoft's truth (R37).

Microsoft is modelled as a state machine that only performs operations legal in its current state (R31),
each later than the one before. The publisher receives one message per operation, in a random order with
random duplicates, skips operation ids its inbox has already seen, and applies the snapshot it reads from
Microsoft when it processes the message (R22, R38).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.status import SubscriptionStatus
from shared.domain.subscription import MicrosoftSubscription, Party, Subscription, Term
from shared.domain.transitions import ACTIVATE, Cause, apply_snapshot, next_status

PENDING = SubscriptionStatus.PENDING_FULFILLMENT_START
SUBSCRIBED = SubscriptionStatus.SUBSCRIBED
SUSPENDED = SubscriptionStatus.SUSPENDED
UNSUBSCRIBED = SubscriptionStatus.UNSUBSCRIBED

T0 = datetime(2024, 1, 1, tzinfo=UTC)
SUB_ID = "5a1e5ee5-0000-4000-8000-00000000beef"
PLANS = ("basic", "standard", "premium", "enterprise")
TERM_DAYS = 30

# Microsoft's side, written independently of the module under test: what may happen in each state.
LEGAL_ACTIONS: dict[SubscriptionStatus, tuple[str, ...]] = {
    PENDING: (ACTIVATE, "Unsubscribe"),
    SUBSCRIBED: ("ChangePlan", "ChangeQuantity", "Renew", "Suspend", "Unsubscribe"),
    SUSPENDED: ("Reinstate", "Unsubscribe"),
    UNSUBSCRIBED: (),
}
STATUS_AFTER: dict[str, SubscriptionStatus] = {
    ACTIVATE: SUBSCRIBED,
    "Suspend": SUSPENDED,
    "Reinstate": SUBSCRIBED,
    "Unsubscribe": UNSUBSCRIBED,
}

SETTINGS = settings(max_examples=200, deadline=None)


@dataclass(frozen=True)
class MicrosoftOperation:
    id: str
    action: str
    at: datetime
    after: MicrosoftSubscription  # Microsoft's state once this operation completed


@dataclass(frozen=True)
class History:
    initial: MicrosoftSubscription
    operations: tuple[MicrosoftOperation, ...]

    @property
    def states(self) -> list[MicrosoftSubscription]:
        """states[0] before anything happened, states[i + 1] after operation i."""
        return [self.initial, *(op.after for op in self.operations)]

    @property
    def final(self) -> MicrosoftSubscription:
        return self.states[-1]


def _perform(draw: st.DrawFn, state: MicrosoftSubscription, action: str) -> MicrosoftSubscription:
    if action == "ChangePlan":
        plan = draw(st.sampled_from([p for p in PLANS if p != state.plan_id]))
        return replace(state, plan_id=plan)
    if action == "ChangeQuantity":
        quantity = draw(st.integers(min_value=1, max_value=50).filter(lambda q: q != state.quantity))
        return replace(state, quantity=quantity)
    if action == "Renew":
        assert state.term.end is not None
        renewed = Term(unit="P1M", start=state.term.end, end=state.term.end + timedelta(days=TERM_DAYS))
        return replace(state, term=renewed)
    return replace(state, status=STATUS_AFTER[action])


@st.composite
def histories(draw: st.DrawFn) -> History:
    initial = MicrosoftSubscription(
        id=SUB_ID,
        name="Fabrikam workspace",
        offer_id="fabrikam-offer",
        plan_id=draw(st.sampled_from(PLANS)),
        quantity=draw(st.integers(min_value=1, max_value=50)),
        status=draw(st.sampled_from([PENDING, SUBSCRIBED])),
        purchaser=Party(email="buyer@fabrikam.example", tenant_id="tenant-f"),
        beneficiary=Party(email="user@fabrikam.example", tenant_id="tenant-f"),
        term=Term(unit="P1M", start=T0, end=T0 + timedelta(days=TERM_DAYS)),
    )
    state, operations = initial, []
    for index in range(draw(st.integers(min_value=1, max_value=12))):
        legal = LEGAL_ACTIONS[state.status]
        if not legal:
            break
        action = draw(st.sampled_from(legal))
        after = _perform(draw, state, action)
        # Cross-check the module's R31 table against this independent model of Microsoft.
        assert next_status(state.status, action) is after.status
        operations.append(MicrosoftOperation(f"op-{index}", action, T0 + timedelta(minutes=index + 1), after))
        state = after
    return History(initial, tuple(operations))


@st.composite
def deliveries(draw: st.DrawFn, operation_count: int) -> list[int]:
    """Every operation delivered at least once, some more than once, in any order."""
    duplicates = draw(
        st.lists(st.integers(min_value=0, max_value=operation_count - 1), max_size=operation_count)
    )
    return draw(st.permutations([*range(operation_count), *duplicates]))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[History, list[int], bool]:
    history = draw(histories())
    order = draw(deliveries(len(history.operations)))
    saw_landing_page = draw(st.booleans())
    return history, order, saw_landing_page


@dataclass
class Publisher:
    """The worker's view: the stored record plus the inbox of operation ids already processed."""

    stored: Subscription | None = None
    inbox: set[str] = field(default_factory=set)
    first_unsubscribed_apply: datetime | None = None

    def receive(self, operation: MicrosoftOperation, truth: MicrosoftSubscription, now: datetime) -> None:
        if operation.id in self.inbox:
            return
        self.inbox.add(operation.id)
        cause = Cause(operation_id=operation.id, action=operation.action, source="webhook", at=operation.at)
        self.apply(truth, cause, now)

    def apply(self, truth: MicrosoftSubscription, cause: Cause, now: datetime) -> None:
        before = self.stored
        outcome = apply_snapshot(before, truth, cause, now)
        _assert_changes_describe_the_step(before, outcome.subscription, outcome.changes)
        _assert_last_operation_never_moves_back(before, outcome.subscription)
        if truth.status is UNSUBSCRIBED and self.first_unsubscribed_apply is None:
            self.first_unsubscribed_apply = now
        self.stored = outcome.subscription


def _assert_changes_describe_the_step(
    before: Subscription | None, after: Subscription, changes: dict[str, tuple[object, object]]
) -> None:
    if before is None:
        return
    for name in (f.name for f in fields(Subscription)):
        if name in {"last_synced_at", "updated_at"}:
            continue
        old, new = getattr(before, name), getattr(after, name)
        if old == new:
            assert name not in changes
        else:
            assert changes[name] == (old, new)


def _assert_last_operation_never_moves_back(before: Subscription | None, after: Subscription) -> None:
    if before is not None and before.last_operation_at is not None:
        assert after.last_operation_at is not None
        assert after.last_operation_at >= before.last_operation_at


def _mirrored(record: Subscription) -> dict[str, object]:
    names = {f.name for f in fields(MicrosoftSubscription)} & {f.name for f in fields(Subscription)}
    return {name: getattr(record, name) for name in sorted(names)}


def _start(history: History, saw_landing_page: bool) -> Publisher:
    publisher = Publisher()
    if saw_landing_page:
        # The landing page recorded the purchase before any webhook: a resolve, not an operation.
        publisher.apply(history.initial, Cause("", "Resolve", "landing", T0), T0)
    return publisher


def _processing_time(history: History, delivery_number: int) -> datetime:
    return history.operations[-1].at + timedelta(seconds=delivery_number + 1)


def _assert_converged(history: History, publisher: Publisher) -> None:
    record = publisher.stored
    assert record is not None
    assert _mirrored(record) == _mirrored(Subscription.from_microsoft(history.final))
    newest = history.operations[-1]
    assert (record.last_operation_id, record.last_operation_action, record.last_operation_at) == (
        newest.id,
        newest.action,
        newest.at,
    )
    assert (record.unsubscribed_at is not None) is (history.final.status is UNSUBSCRIBED)
    assert record.unsubscribed_at == publisher.first_unsubscribed_apply
    if history.final.status is SUBSCRIBED:
        assert record.activated_at is not None
    assert publisher.inbox == {op.id for op in history.operations}


def _run(
    history: History,
    order: Sequence[int],
    saw_landing_page: bool,
    truth_at: Callable[[int, int], MicrosoftSubscription],
) -> Publisher:
    publisher = _start(history, saw_landing_page)
    for number, index in enumerate(order):
        publisher.receive(
            history.operations[index], truth_at(number, index), _processing_time(history, number)
        )
    return publisher


@SETTINGS
@given(scenarios())
def test_reading_the_final_truth_converges_whatever_the_delivery_order(
    scenario: tuple[History, list[int], bool],
) -> None:
    history, order, saw_landing_page = scenario
    publisher = _run(history, order, saw_landing_page, lambda _number, _index: history.final)
    _assert_converged(history, publisher)


@SETTINGS
@given(scenarios(), st.data())
def test_reading_intermediate_truths_converges_whatever_the_delivery_order(
    scenario: tuple[History, list[int], bool], data: st.DataObject
) -> None:
    history, order, saw_landing_page = scenario
    states = history.states
    last = len(states) - 1
    # Microsoft moves on while messages wait: each delivery sees a state no older than the previous
    # delivery's, and never older than the operation it announces.
    progress = [0]

    def truth_at(_number: int, index: int) -> MicrosoftSubscription:
        advance = data.draw(st.integers(min_value=0, max_value=2), label="advance")
        progress[0] = min(last, max(progress[0] + advance, index + 1))
        return states[progress[0]]

    publisher = _run(history, order, saw_landing_page, truth_at)
    _assert_converged(history, publisher)
