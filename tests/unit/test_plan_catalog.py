"""Plan names per offer, kept a while per instance: a page of many subscriptions asks Microsoft once."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.domain.subscription import Plan, Subscription
from shared.fulfillment.errors import FulfillmentError
from shared.workflows.plan_catalog import PlanCatalog


@dataclass
class _Microsoft:
    """Microsoft's listAvailablePlans, counted (the one side these tests may stand in for)."""

    plans: list[Plan]
    asked: list[str] = field(default_factory=list)
    failing: bool = False

    def list_available_plans(self, subscription_id: str) -> list[Plan]:
        self.asked.append(subscription_id)
        if self.failing:
            raise FulfillmentError("unavailable", status_code=503)
        return self.plans


TEAM = Plan("team-seats", "Team (per seat)")
BASIC = Plan("basic", "Basic")


def _subscription(n: int, plan_id: str = "team-seats", offer_id: str = "analytics") -> Subscription:
    return Subscription(id=f"sub-{n}", offer_id=offer_id, plan_id=plan_id)


def test_many_subscriptions_of_one_offer_ask_once() -> None:
    microsoft = _Microsoft([TEAM, BASIC])
    catalog = PlanCatalog(microsoft, clock=lambda: 100.0)  # type: ignore[arg-type]

    names = [catalog.names_for(_subscription(n, plan)) for n, plan in enumerate(["team-seats", "basic"] * 5)]

    assert microsoft.asked == ["sub-0"]
    assert all(found["team-seats"] == "Team (per seat)" for found in names)


def test_names_are_asked_again_after_a_while_and_kept_when_microsoft_fails() -> None:
    now = [0.0]
    microsoft = _Microsoft([TEAM])
    catalog = PlanCatalog(microsoft, kept_seconds=60, clock=lambda: now[0])  # type: ignore[arg-type]
    catalog.names_for(_subscription(1))

    now[0] = 61.0
    microsoft.failing = True
    names = catalog.names_for(_subscription(2))

    assert microsoft.asked == ["sub-1", "sub-2"]
    assert names == {"team-seats": "Team (per seat)"}


def test_another_offer_is_asked_for_and_an_unanswered_offer_is_not_asked_again_at_once() -> None:
    microsoft = _Microsoft([TEAM])
    catalog = PlanCatalog(microsoft, clock=lambda: 0.0)  # type: ignore[arg-type]
    catalog.names_for(_subscription(1))

    catalog.names_for(_subscription(2, offer_id="backup"))
    catalog.names_for(_subscription(3, plan_id="legacy"))  # not listed: the ids show, no second question

    microsoft.failing = True
    down = PlanCatalog(microsoft, clock=lambda: 0.0)  # type: ignore[arg-type]
    assert down.names_for(_subscription(4)) == {}
    assert down.names_for(_subscription(5)) == {}
    assert microsoft.asked == ["sub-1", "sub-2", "sub-4"]
