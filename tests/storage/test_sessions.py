"""SessionStore against Azurite: a recorded session reads back until it is ended, and ids never repeat."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableServiceClient

from shared.domain.sessions import StoredSession
from shared.storage.errors import AlreadyExistsError, InvalidEntityError
from shared.storage.sessions import SessionStore, session_key

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
RECORD = StoredSession("tenant-1", "object-1", NOW, NOW + timedelta(hours=8))


@pytest.fixture
def store(azurite_connection_string: str, table_prefix: str) -> SessionStore:
    service = TableServiceClient.from_connection_string(azurite_connection_string)
    return SessionStore(service.create_table_if_not_exists(f"{table_prefix}sessions"))


def test_a_started_session_reads_back_until_it_is_ended(store: SessionStore) -> None:
    session_id = secrets.token_urlsafe(32)
    store.start(session_id, RECORD)

    assert store.get(session_id) == RECORD
    store.end(session_id)
    assert store.get(session_id) is None
    store.end(session_id)  # ending twice (two sign-out tabs) is not an error


def test_an_id_is_never_reused_and_only_its_hash_is_stored(store: SessionStore) -> None:
    session_id = secrets.token_urlsafe(32)
    store.start(session_id, RECORD)

    with pytest.raises(AlreadyExistsError):
        store.start(session_id, RECORD)
    [row] = list(store._table.list_entities())
    assert row["PartitionKey"] == session_key(session_id)
    assert session_id not in str(dict(row))


@pytest.mark.parametrize("session_id", ["", "short", None])
def test_malformed_ids_are_refused_without_a_request(store: SessionStore, session_id: object) -> None:
    assert store.get(session_id) is None  # type: ignore[arg-type]
    with pytest.raises(InvalidEntityError):
        store.start(session_id, RECORD)  # type: ignore[arg-type]


def test_naive_times_are_refused(store: SessionStore) -> None:
    naive = StoredSession("t", "o", NOW.replace(tzinfo=None), NOW.replace(tzinfo=None))
    with pytest.raises(InvalidEntityError):
        store.start(secrets.token_urlsafe(32), naive)
