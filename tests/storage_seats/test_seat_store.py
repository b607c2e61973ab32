"""SeatStore against Azurite: the quantity limit holds, also when many admins assign at the same moment."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from azure.data.tables import TableClient, TableServiceClient

from shared.domain.seats import SeatLimitError, SeatNotFoundError
from shared.storage.seats import SeatStore

ADMIN = "oid:tenant-a:admin-1"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OBJECT = "00000000-0000-0000-0000-00000000a11c"


@pytest.fixture
def table_name(table_prefix: str) -> str:
    return f"{table_prefix}seats"


@pytest.fixture
def seats_table(azurite_connection_string: str, table_name: str) -> Iterator[TableClient]:
    service = TableServiceClient.from_connection_string(azurite_connection_string)
    yield service.create_table(table_name)
    service.delete_table(table_name)


@pytest.fixture
def store(seats_table: TableClient) -> SeatStore:
    return SeatStore(seats_table)


@pytest.fixture
def subscription_id() -> str:
    return str(uuid.uuid4())


def test_assign_up_to_the_limit_then_one_more_is_refused(store: SeatStore, subscription_id: str) -> None:
    for n in range(3):
        store.assign(subscription_id, f"user{n}@contoso.com", quantity=3, assigned_by=ADMIN)

    with pytest.raises(SeatLimitError, match=r"Every seat is in use \(3 of 3 assigned\)"):
        store.assign(subscription_id, "user3@contoso.com", quantity=3, assigned_by=ADMIN)

    assert store.count(subscription_id) == 3
    assert [s.user_key for s in store.list(subscription_id)] == [f"user{n}@contoso.com" for n in range(3)]


def test_assigned_seat_records_who_when_and_the_normalized_key(
    store: SeatStore, subscription_id: str
) -> None:
    seat = store.assign(
        subscription_id, "  Ada@Contoso.COM ", quantity=2, assigned_by=ADMIN, display_name="Ada Lovelace"
    )

    found = store.find(subscription_id, user_key="ada@contoso.com")
    assert found == seat
    assert seat.user_key == "ada@contoso.com"
    assert seat.assigned_by == ADMIN
    assert seat.display_name == "Ada Lovelace"
    assert seat.assigned_at is not None
    assert not seat.is_bound


def test_twelve_concurrent_assignments_to_five_seats_end_with_exactly_five(
    azurite_connection_string: str, seats_table: TableClient, table_name: str, subscription_id: str
) -> None:
    start = threading.Barrier(12)
    outcomes: list[str] = []
    lock = threading.Lock()

    def assign(n: int) -> None:
        # One client per thread, as separate function instances would have.
        own = SeatStore(TableClient.from_connection_string(azurite_connection_string, table_name))
        start.wait()
        try:
            own.assign(subscription_id, f"racer{n}@contoso.com", quantity=5, assigned_by=ADMIN)
            outcome = "assigned"
        except SeatLimitError:
            outcome = "refused"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=assign, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    store = SeatStore(seats_table)
    assert sorted(outcomes) == ["assigned"] * 5 + ["refused"] * 7
    assert len(store.list(subscription_id)) == 5
    assert store.count(subscription_id) == 5


def test_assigning_the_same_user_twice_uses_one_seat(store: SeatStore, subscription_id: str) -> None:
    first = store.assign(subscription_id, "ada@contoso.com", quantity=2, assigned_by=ADMIN)

    again = store.assign(subscription_id, "ADA@contoso.com", quantity=2, assigned_by="oid:tenant-a:other")

    assert again == first
    assert store.count(subscription_id) == 1
    assert len(store.list(subscription_id)) == 1


def test_a_seated_user_can_be_reassigned_when_the_subscription_is_full(
    store: SeatStore, subscription_id: str
) -> None:
    store.assign(subscription_id, "ada@contoso.com", quantity=1, assigned_by=ADMIN)

    again = store.assign(subscription_id, "ada@contoso.com", quantity=1, assigned_by=ADMIN)

    assert again.user_key == "ada@contoso.com"
    assert store.count(subscription_id) == 1


def test_revoke_frees_a_seat_for_someone_else(store: SeatStore, subscription_id: str) -> None:
    store.assign(subscription_id, "ada@contoso.com", quantity=1, assigned_by=ADMIN)

    assert store.revoke(subscription_id, "Ada@Contoso.com")
    store.assign(subscription_id, "grace@contoso.com", quantity=1, assigned_by=ADMIN)

    assert store.find(subscription_id, user_key="ada@contoso.com") is None
    assert [s.user_key for s in store.list(subscription_id)] == ["grace@contoso.com"]
    assert store.count(subscription_id) == 1


def test_revoking_a_user_without_a_seat_changes_nothing(store: SeatStore, subscription_id: str) -> None:
    store.assign(subscription_id, "ada@contoso.com", quantity=2, assigned_by=ADMIN)

    assert not store.revoke(subscription_id, "grace@contoso.com")
    assert store.count(subscription_id) == 1


def test_flat_rate_plan_refuses_assignment(store: SeatStore, subscription_id: str) -> None:
    with pytest.raises(SeatLimitError, match="not sold per user"):
        store.assign(subscription_id, "ada@contoso.com", quantity=None, assigned_by=ADMIN)

    assert store.count(subscription_id) == 0


def test_malformed_user_is_refused_before_any_write(store: SeatStore, subscription_id: str) -> None:
    with pytest.raises(ValueError, match="Enter an email address"):
        store.assign(subscription_id, "ada at contoso", quantity=2, assigned_by=ADMIN)

    assert store.list(subscription_id) == []


def test_bind_identity_then_find_by_tenant_and_object_id(store: SeatStore, subscription_id: str) -> None:
    store.assign(subscription_id, "ada@contoso.com", quantity=2, assigned_by=ADMIN, display_name="Ada")

    bound = store.bind_identity(subscription_id, "ada@contoso.com", TENANT, OBJECT.upper())

    found = store.find(subscription_id, tenant_id=TENANT, object_id=OBJECT)
    assert found == bound
    assert found.is_bound
    assert found.key == f"oid:{TENANT}:{OBJECT}"
    assert (found.user_key, found.display_name, found.assigned_by) == ("ada@contoso.com", "Ada", ADMIN)
    assert store.find(subscription_id, user_key="ada@contoso.com") == bound
    assert store.count(subscription_id) == 1
    assert len(store.list(subscription_id)) == 1


def test_bound_seat_is_not_assigned_again_by_email(store: SeatStore, subscription_id: str) -> None:
    store.assign(subscription_id, "ada@contoso.com", quantity=2, assigned_by=ADMIN)
    store.bind_identity(subscription_id, "ada@contoso.com", TENANT, OBJECT)

    store.assign(subscription_id, "ada@contoso.com", quantity=2, assigned_by=ADMIN)

    assert store.count(subscription_id) == 1


def test_bound_seat_can_be_revoked_by_email_or_seat_key(store: SeatStore, subscription_id: str) -> None:
    store.assign(subscription_id, "ada@contoso.com", quantity=2, assigned_by=ADMIN)
    store.assign(subscription_id, "grace@contoso.com", quantity=2, assigned_by=ADMIN)
    ada = store.bind_identity(subscription_id, "ada@contoso.com", TENANT, OBJECT)
    grace = store.bind_identity(subscription_id, "grace@contoso.com", TENANT, "grace-oid")

    assert store.revoke(subscription_id, "ada@contoso.com")
    assert store.revoke(subscription_id, grace.key)

    assert store.find(subscription_id, tenant_id=TENANT, object_id=OBJECT) is None
    assert ada.key != grace.key
    assert store.count(subscription_id) == 0


def test_binding_is_idempotent(store: SeatStore, subscription_id: str) -> None:
    store.assign(subscription_id, "ada@contoso.com", quantity=2, assigned_by=ADMIN)
    first = store.bind_identity(subscription_id, "ada@contoso.com", TENANT, OBJECT)

    assert store.bind_identity(subscription_id, "ada@contoso.com", TENANT, OBJECT) == first


def test_same_person_seated_by_mail_and_by_upn_keeps_one_seat(store: SeatStore, subscription_id: str) -> None:
    store.assign(subscription_id, "ada@contoso.com", quantity=3, assigned_by=ADMIN)
    store.assign(subscription_id, "ada@contoso.onmicrosoft.com", quantity=3, assigned_by=ADMIN)
    first = store.bind_identity(subscription_id, "ada@contoso.com", TENANT, OBJECT)

    second = store.bind_identity(subscription_id, "ada@contoso.onmicrosoft.com", TENANT, OBJECT)

    assert second == first
    assert store.count(subscription_id) == 1
    assert [s.key for s in store.list(subscription_id)] == [first.key]


def test_a_bound_seat_is_not_handed_to_another_identity(store: SeatStore, subscription_id: str) -> None:
    store.assign(subscription_id, "ada@contoso.com", quantity=2, assigned_by=ADMIN)
    store.bind_identity(subscription_id, "ada@contoso.com", TENANT, OBJECT)

    with pytest.raises(ValueError, match="another signed-in user"):
        store.bind_identity(subscription_id, "ada@contoso.com", TENANT, "someone-else")


def test_binding_a_user_without_a_seat_fails(store: SeatStore, subscription_id: str) -> None:
    with pytest.raises(SeatNotFoundError):
        store.bind_identity(subscription_id, "nobody@contoso.com", TENANT, OBJECT)


def test_assign_with_a_known_identity_keys_the_seat_on_it(store: SeatStore, subscription_id: str) -> None:
    seat = store.assign(
        subscription_id, "ada@contoso.com", quantity=2, assigned_by=ADMIN, tenant_id=TENANT, object_id=OBJECT
    )

    assert seat.is_bound
    assert store.find(subscription_id, tenant_id=TENANT, object_id=OBJECT) == seat
    store.assign(subscription_id, "ada@contoso.com", quantity=2, assigned_by=ADMIN)
    assert store.count(subscription_id) == 1


def test_guest_upn_with_characters_forbidden_in_keys_round_trips(
    store: SeatStore, subscription_id: str
) -> None:
    guest = "ada_fabrikam.com#EXT#@contoso.onmicrosoft.com"

    store.assign(subscription_id, guest, quantity=1, assigned_by=ADMIN)

    assert store.find(subscription_id, user_key=guest).user_key == guest.lower()
    assert store.revoke(subscription_id, guest)


def test_subscriptions_do_not_share_seats(store: SeatStore, subscription_id: str) -> None:
    other = str(uuid.uuid4())
    store.assign(subscription_id, "ada@contoso.com", quantity=1, assigned_by=ADMIN)

    store.assign(other, "grace@contoso.com", quantity=1, assigned_by=ADMIN)

    assert [s.user_key for s in store.list(subscription_id)] == ["ada@contoso.com"]
    assert store.find(other, user_key="ada@contoso.com") is None
    assert (store.count(subscription_id), store.count(other)) == (1, 1)


def test_find_needs_a_user_or_an_identity(store: SeatStore, subscription_id: str) -> None:
    with pytest.raises(ValueError, match="user_key or by tenant_id"):
        store.find(subscription_id)


def test_a_held_cut_limits_assignments_until_it_is_released(store: SeatStore, subscription_id: str) -> None:
    store.assign(subscription_id, "user0@contoso.com", quantity=3, assigned_by=ADMIN)
    store.hold_limit(subscription_id, 1, "op-cut")

    with pytest.raises(SeatLimitError):
        store.assign(subscription_id, "user1@contoso.com", quantity=3, assigned_by=ADMIN)
    assert store.release_limit(subscription_id, "op-cut")
    store.assign(subscription_id, "user1@contoso.com", quantity=3, assigned_by=ADMIN)

    assert store.count(subscription_id) == 2


def test_a_cut_below_the_seats_assigned_is_not_held(store: SeatStore, subscription_id: str) -> None:
    for n in range(2):
        store.assign(subscription_id, f"user{n}@contoso.com", quantity=3, assigned_by=ADMIN)

    with pytest.raises(SeatLimitError, match="2 seats are assigned, more than 1"):
        store.hold_limit(subscription_id, 1, "op-cut")

    store.assign(subscription_id, "user2@contoso.com", quantity=3, assigned_by=ADMIN)  # nothing held


def test_assigning_and_revoking_keep_the_hold_and_only_its_holder_releases_it(
    store: SeatStore, subscription_id: str
) -> None:
    store.hold_limit(subscription_id, 2, "op-cut")
    store.assign(subscription_id, "user0@contoso.com", quantity=5, assigned_by=ADMIN)
    store.assign(subscription_id, "user1@contoso.com", quantity=5, assigned_by=ADMIN)
    store.revoke(subscription_id, "user1@contoso.com")
    store.assign(subscription_id, "user2@contoso.com", quantity=5, assigned_by=ADMIN)

    with pytest.raises(SeatLimitError):
        store.assign(subscription_id, "user3@contoso.com", quantity=5, assigned_by=ADMIN)
    assert not store.release_limit(subscription_id, "another-op")
    with pytest.raises(SeatLimitError):
        store.assign(subscription_id, "user3@contoso.com", quantity=5, assigned_by=ADMIN)
    assert store.release_limit(subscription_id, "op-cut")
    assert not store.release_limit(subscription_id, "op-cut")


def test_an_expired_hold_limits_nothing(
    store: SeatStore, subscription_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shared.domain.seats.HOLD_FOR", timedelta(seconds=-1))
    store.hold_limit(subscription_id, 0, "op-never-followed")

    store.assign(subscription_id, "user0@contoso.com", quantity=1, assigned_by=ADMIN)

    assert store.count(subscription_id) == 1


def test_a_cut_and_assignments_racing_never_leave_more_seats_than_the_held_limit(
    store: SeatStore, subscription_id: str
) -> None:
    for attempt in range(5):
        subscription = f"{subscription_id}-{attempt}"
        held = _race_a_cut_to_one_against_three_assignments(store, subscription)

        assigned = store.count(subscription)
        assert assigned == len(store.list(subscription))
        if held:
            assert assigned <= 1, f"attempt {attempt}: the cut to 1 was held with {assigned} seats assigned"
        else:
            assert assigned >= 2


def _race_a_cut_to_one_against_three_assignments(store: SeatStore, subscription: str) -> bool:
    """Starts a hold of 1 seat and three assignments (of 3 seats) at once; whether the hold was taken."""
    outcomes: dict[str, bool] = {}
    start = threading.Barrier(4)

    def cut() -> None:
        start.wait()
        try:
            store.hold_limit(subscription, 1, "op-cut")
            outcomes["held"] = True
        except SeatLimitError:
            outcomes["held"] = False

    def assign(n: int) -> None:
        start.wait()
        with contextlib.suppress(SeatLimitError):
            store.assign(subscription, f"user{n}@contoso.com", quantity=3, assigned_by=ADMIN)

    threads = [threading.Thread(target=cut)] + [threading.Thread(target=assign, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcomes["held"]


def test_two_cuts_in_progress_each_hold_and_release_their_own(store: SeatStore, subscription_id: str) -> None:
    store.hold_limit(subscription_id, 2, "op-azure")
    store.hold_limit(subscription_id, 4, "portal-request")
    assert store.release_limit(subscription_id, "portal-request")  # Microsoft refused the portal's

    store.assign(subscription_id, "user0@contoso.com", quantity=10, assigned_by=ADMIN)
    store.assign(subscription_id, "user1@contoso.com", quantity=10, assigned_by=ADMIN)
    with pytest.raises(SeatLimitError):
        store.assign(subscription_id, "user2@contoso.com", quantity=10, assigned_by=ADMIN)
    assert store.holds(subscription_id).holds("op-azure")


def test_holding_says_whether_the_hold_was_new_and_release_takes_several_holders(
    store: SeatStore, subscription_id: str
) -> None:
    # A redelivery that "holds" again must know whether it renewed the first delivery's hold or made a new
    # one after that hold was released (then it is not the first row's to keep).
    assert store.hold_limit(subscription_id, 2, "op-1") is False
    assert store.hold_limit(subscription_id, 2, "op-1") is True
    store.hold_limit(subscription_id, 3, "request-7")

    assert store.release_limit(subscription_id, "op-1", "request-7", "never-held")
    assert not store.holds(subscription_id).held
    assert store.release_limit(subscription_id, "op-1") is False
