"""Seat rules: free seats, the assignment limit, over-assignment, and user key normalization."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.domain.addresses import normalize_user_key
from shared.domain.seats import (
    HOLD_FOR,
    SeatHolds,
    SeatLimitError,
    check_can_assign,
    free_seats,
    over_assignment,
)


@pytest.mark.parametrize(
    ("quantity", "assigned", "free"),
    [(5, 0, 5), (5, 3, 2), (5, 5, 0), (5, 7, 0), (1, 0, 1), (0, 0, 0), (None, 0, 0), (None, 4, 0)],
)
def test_free_seats(quantity: int | None, assigned: int, free: int) -> None:
    assert free_seats(quantity, assigned) == free


@pytest.mark.parametrize(("quantity", "assigned", "count"), [(5, 0, 1), (5, 4, 1), (5, 0, 5), (5, 3, 2)])
def test_assignment_within_the_quantity_is_allowed(quantity: int, assigned: int, count: int) -> None:
    check_can_assign(quantity, assigned, count)


@pytest.mark.parametrize(("quantity", "assigned", "count"), [(5, 5, 1), (5, 4, 2), (0, 0, 1), (3, 7, 1)])
def test_assignment_beyond_the_quantity_is_refused(quantity: int, assigned: int, count: int) -> None:
    words = "Only 1 seat is free" if quantity - assigned == 1 else "Every seat is in use"
    with pytest.raises(SeatLimitError, match=rf"{words} \({assigned} of {quantity} assigned\)") as caught:
        check_can_assign(quantity, assigned, count)

    assert (caught.value.quantity, caught.value.assigned, caught.value.requested) == (
        quantity,
        assigned,
        count,
    )


def test_flat_rate_plan_has_no_seats_to_assign() -> None:
    with pytest.raises(SeatLimitError, match="not sold per user"):
        check_can_assign(None, 0)


@pytest.mark.parametrize(("quantity", "assigned", "count"), [(-1, 0, 1), (5, -1, 1), (5, 0, 0), (5, 0, -2)])
def test_nonsense_counts_are_programming_errors(quantity: int, assigned: int, count: int) -> None:
    with pytest.raises(ValueError, match=r"negative|at least 1") as caught:
        check_can_assign(quantity, assigned, count)

    assert not isinstance(caught.value, SeatLimitError)


@pytest.mark.parametrize(
    ("quantity", "assigned", "over"), [(5, 3, 0), (5, 5, 0), (5, 8, 3), (0, 2, 2), (None, 9, 0)]
)
def test_over_assignment(quantity: int | None, assigned: int, over: int) -> None:
    assert over_assignment(quantity, assigned) == over


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("ada@contoso.com", "ada@contoso.com"),
        ("  Ada.Lovelace@Contoso.COM \n", "ada.lovelace@contoso.com"),
        ("ADA@CONTOSO.ONMICROSOFT.COM", "ada@contoso.onmicrosoft.com"),
        ("ada_fabrikam.com#EXT#@contoso.onmicrosoft.com", "ada_fabrikam.com#ext#@contoso.onmicrosoft.com"),
        ("o'brien+billing@sub.contoso.co.uk", "o'brien+billing@sub.contoso.co.uk"),
    ],
)
def test_user_keys_are_normalized(raw: str, key: str) -> None:
    assert normalize_user_key(raw) == key


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "ada",
        "@contoso.com",
        "ada@",
        "ada@contoso",
        "ada@@contoso.com",
        "a@b@contoso.com",
        "ada lovelace@contoso.com",
        "ada@contoso .com",
        "ada@-contoso.com",
        "ada\x00@contoso.com",
        "ada@contoso.com/evil",
        "x" * 300 + "@contoso.com",
    ],
)
def test_malformed_user_keys_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="email address or user principal name"):
        normalize_user_key(raw)


NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def test_the_lowest_live_hold_counts_and_each_holder_releases_only_its_own() -> None:
    holds = SeatHolds().with_hold("op-azure", 5, NOW).with_hold("portal-request", 7, NOW)

    assert holds.limit(10, NOW) == 5
    assert holds.without("portal-request").limit(10, NOW) == 5
    assert holds.without("op-azure").limit(10, NOW) == 7
    assert holds.limit(4, NOW) == 4  # a quantity already lower than every hold


def test_an_expired_hold_counts_for_nothing_and_is_dropped_at_the_next_hold() -> None:
    holds = SeatHolds().with_hold("op-old", 1, NOW)
    later = NOW + HOLD_FOR

    assert holds.limit(10, later) == 10
    assert not holds.with_hold("op-new", 6, later).holds("op-old")


def test_a_plan_without_seats_stays_without_seats_whatever_is_held() -> None:
    assert SeatHolds().with_hold("op", 3, NOW).limit(None, NOW) is None


def test_holds_survive_being_written_and_read_and_garbage_reads_as_none() -> None:
    holds = SeatHolds().with_hold("op-1", 2, NOW).with_hold("op-2", 3, NOW)

    assert SeatHolds.from_json(holds.to_json()) == holds
    assert SeatHolds.from_json("not json") == SeatHolds()
    assert SeatHolds.from_json(None) == SeatHolds()
