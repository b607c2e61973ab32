"""UserStore and AdminStore against Azurite: round trips, and tenants never see each other's people."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from azure.data.tables import TableClient, TableServiceClient

from shared.domain.access import Role
from shared.domain.users import User
from shared.storage.users import AdminStore, UserStore

CONTOSO = "72f988bf-86f1-41af-91ab-2d7cd011db47"
FABRIKAM = "f0f0f0f0-1111-2222-3333-444455556666"
SUB_1 = "37f9dea2-4345-438f-b0bd-03d40d28c7e0"
SUB_2 = "5b0a2a6c-0a4b-4d3b-9c39-bd0d8e3b1a11"


@pytest.fixture
def users_table(azurite_connection_string: str, table_prefix: str) -> Iterator[TableClient]:
    service = TableServiceClient.from_connection_string(azurite_connection_string)
    name = f"{table_prefix}users"
    yield service.create_table(name)
    service.delete_table(name)


@pytest.fixture
def users(users_table: TableClient) -> UserStore:
    return UserStore(users_table)


@pytest.fixture
def admins(users_table: TableClient) -> AdminStore:
    # The same table on purpose: the stores must keep to their own rows.
    return AdminStore(users_table)


def test_user_round_trip(users: UserStore) -> None:
    signed_in = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    user = User(
        CONTOSO, "OID-ADA", "Ada Lovelace", "ada@contoso.com", "ada@contoso.onmicrosoft.com", signed_in
    )

    stored = users.upsert(user)

    assert users.get(CONTOSO, "oid-ada") == stored
    assert stored.object_id == "oid-ada"
    assert stored.last_sign_in_at == signed_in


def test_upsert_replaces_and_stamps_the_sign_in(users: UserStore) -> None:
    users.upsert(User(CONTOSO, "oid-ada", "Ada", "old@contoso.com"))

    users.upsert(User(CONTOSO, "oid-ada", "Ada Lovelace", "ada@contoso.com"))

    stored = users.get(CONTOSO, "oid-ada")
    assert (stored.display_name, stored.email, stored.upn) == ("Ada Lovelace", "ada@contoso.com", "")
    assert stored.last_sign_in_at is not None
    assert abs((datetime.now(UTC) - stored.last_sign_in_at).total_seconds()) < 60


def test_unknown_user_is_none(users: UserStore) -> None:
    assert users.get(CONTOSO, "nobody") is None


def test_users_are_listed_per_tenant_only(users: UserStore, admins: AdminStore) -> None:
    users.upsert(User(CONTOSO, "oid-grace", "Grace"))
    users.upsert(User(CONTOSO, "oid-ada", "Ada"))
    users.upsert(User(FABRIKAM, "oid-eve", "Eve"))
    admins.grant(SUB_1, CONTOSO, "oid-ada", "purchaser", granted_by="landing")

    assert [u.display_name for u in users.list_for_tenant(CONTOSO)] == ["Ada", "Grace"]
    assert [u.display_name for u in users.list_for_tenant(FABRIKAM)] == ["Eve"]
    assert users.get(FABRIKAM, "oid-ada") is None


@pytest.mark.parametrize("bad", ["", "a/b", "a#b", "a?b", "a:b", "a\\b", "x\ny"])
def test_ids_that_could_break_table_keys_are_refused(users: UserStore, bad: str) -> None:
    with pytest.raises(ValueError, match="object id"):
        users.upsert(User(CONTOSO, bad))


def test_grants_round_trip_with_several_roles(admins: AdminStore) -> None:
    admins.grant(SUB_1, CONTOSO, "oid-ada", "purchaser", granted_by="landing")
    admins.grant(SUB_1, CONTOSO, "oid-ada", "beneficiary-admin", granted_by="landing")
    admins.grant(SUB_1, CONTOSO, "oid-ada", "purchaser", granted_by="landing")

    assert admins.roles_for(SUB_1, CONTOSO, "oid-ada") == {"purchaser", "beneficiary-admin"}
    assert admins.subscriptions_for(CONTOSO, "oid-ada") == [SUB_1]


def test_subscriptions_for_lists_each_managed_subscription_once(admins: AdminStore) -> None:
    admins.grant(SUB_2, CONTOSO, "oid-ada", "delegated", granted_by=f"oid:{CONTOSO}:oid-grace")
    admins.grant(SUB_1, CONTOSO, "oid-ada", "purchaser", granted_by="landing")
    admins.grant(SUB_1, CONTOSO, "oid-ada", "beneficiary-admin", granted_by="landing")
    admins.grant(SUB_1, CONTOSO, "oid-ada2", "purchaser", granted_by="landing")

    assert admins.subscriptions_for(CONTOSO, "oid-ada") == sorted([SUB_1, SUB_2])


def test_grants_do_not_leak_between_tenants_or_people(admins: AdminStore) -> None:
    admins.grant(SUB_1, CONTOSO, "oid-ada", "purchaser", granted_by="landing")

    assert admins.roles_for(SUB_1, FABRIKAM, "oid-ada") == set()
    assert admins.roles_for(SUB_1, CONTOSO, "oid-grace") == set()
    assert admins.roles_for(SUB_2, CONTOSO, "oid-ada") == set()
    assert admins.subscriptions_for(FABRIKAM, "oid-ada") == []


def test_revoke_one_role_or_all(admins: AdminStore) -> None:
    admins.grant(SUB_1, CONTOSO, "oid-ada", "purchaser", granted_by="landing")
    admins.grant(SUB_1, CONTOSO, "oid-ada", "delegated", granted_by="landing")
    admins.grant(SUB_2, CONTOSO, "oid-ada", "delegated", granted_by="landing")

    assert admins.revoke(SUB_1, CONTOSO, "oid-ada", "delegated") == 1
    assert admins.roles_for(SUB_1, CONTOSO, "oid-ada") == {"purchaser"}
    assert admins.revoke(SUB_1, CONTOSO, "oid-ada") == 1
    assert admins.revoke(SUB_1, CONTOSO, "oid-ada") == 0
    assert admins.subscriptions_for(CONTOSO, "oid-ada") == [SUB_2]


def test_unknown_role_is_refused(admins: AdminStore) -> None:
    with pytest.raises(ValueError, match="role must be one of"):
        admins.grant(SUB_1, CONTOSO, "oid-ada", "owner", granted_by="landing")


def test_a_grant_stored_under_the_old_delegated_spelling_is_still_read_and_revoked(
    admins: AdminStore, users_table: TableClient
) -> None:
    # A row as the store wrote it before "delegated-admin" became the one spelling.
    users_table.create_entity(
        {
            "PartitionKey": CONTOSO,
            "RowKey": f"grant:oid-ada:{SUB_1}:delegated",
            "kind": "grant",
            "subscription_id": SUB_1,
            "object_id": "oid-ada",
            "role": "delegated",
            "granted_by": "landing",
        }
    )
    assert admins.roles_for(SUB_1, CONTOSO, "oid-ada") == {Role.DELEGATED_ADMIN}
    admins.grant(SUB_1, CONTOSO, "oid-ada", Role.DELEGATED_ADMIN, granted_by="portal")
    assert admins.roles_for(SUB_1, CONTOSO, "oid-ada") == {Role.DELEGATED_ADMIN}
    assert admins.revoke(SUB_1, CONTOSO, "oid-ada", Role.DELEGATED_ADMIN) == 2
    assert admins.roles_for(SUB_1, CONTOSO, "oid-ada") == set()


def test_grant_rows_are_not_listed_as_users(users: UserStore, admins: AdminStore) -> None:
    admins.grant(SUB_1, CONTOSO, "oid-ada", "purchaser", granted_by="landing")

    assert users.list_for_tenant(CONTOSO) == []


def test_addresses_entra_vouched_for_are_indexed_and_follow_the_latest_sign_in(users: UserStore) -> None:
    users.upsert(User(CONTOSO, "oid-ada", "Ada", addresses=("Ada@Contoso.com", "ada_x.com#EXT#@contoso.com")))
    users.upsert(User(FABRIKAM, "oid-eve", "Eve", addresses=("ada@contoso.com",)))
    assert {(p.tenant_id, p.object_id) for p in users.holders_of("ADA@contoso.com")} == {
        (CONTOSO, "oid-ada"),
        (FABRIKAM, "oid-eve"),
    }
    assert [p.object_id for p in users.holders_of("ada_x.com#EXT#@contoso.com")] == ["oid-ada"]

    users.upsert(User(CONTOSO, "oid-ada", "Ada", addresses=("ada.lovelace@contoso.com",)))

    assert [p.object_id for p in users.holders_of("ada@contoso.com")] == ["oid-eve"]
    assert [p.object_id for p in users.holders_of("ada.lovelace@contoso.com")] == ["oid-ada"]
    assert [u.object_id for u in users.list_for_tenant(CONTOSO)] == ["oid-ada"]  # index rows stay apart


def test_the_contact_email_changes_nothing_that_identifies(users: UserStore) -> None:
    users.upsert(
        User(CONTOSO, "oid-ada", "Ada", "ada@contoso.com", "ada@contoso.com", addresses=("ada@contoso.com",))
    )

    users.set_contact_email(CONTOSO, "oid-ada", "boss@contoso.com")

    stored = users.get(CONTOSO, "oid-ada")
    assert stored is not None
    assert (stored.email, stored.upn, stored.addresses) == (
        "boss@contoso.com",
        "ada@contoso.com",
        ("ada@contoso.com",),
    )
    assert users.holders_of("boss@contoso.com") == []


def test_grantees_lists_one_tenants_admins_of_one_subscription(admins: AdminStore) -> None:
    admins.grant(SUB_1, CONTOSO, "oid-ada", "delegated", granted_by="t")
    admins.grant(SUB_1, CONTOSO, "oid-ada", "purchaser", granted_by="t")
    admins.grant(SUB_2, CONTOSO, "oid-grace", "delegated", granted_by="t")
    admins.grant(SUB_1, FABRIKAM, "oid-eve", "delegated", granted_by="t")

    assert [p.object_id for p in admins.grantees(SUB_1, CONTOSO)] == ["oid-ada"]
