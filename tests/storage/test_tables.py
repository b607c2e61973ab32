"""TableSet: which client it builds from which setting, and that tables appear only when first handed out."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from azure.data.tables import TableServiceClient
from azure.identity import DefaultAzureCredential

from shared.app_context import Services
from shared.config import ConfigurationError, Settings
from shared.storage.audit import AuditTrail
from shared.storage.inbox import OperationInbox
from shared.storage.subscriptions import SubscriptionStore
from shared.storage.tables import TableSet


def table_names(connection_string: str, prefix: str) -> set[str]:
    service = TableServiceClient.from_connection_string(connection_string)
    return {t.name for t in service.list_tables() if t.name.startswith(prefix)}


def prefixed_settings(connection_string: str, prefix: str) -> Settings:
    return Settings(
        storage_connection_string=connection_string,
        table_subscriptions=f"{prefix}s",
        table_operations=f"{prefix}o",
    )


@pytest.fixture
def listening_socket() -> Iterator[socket.socket]:
    """A local port that would notice any connection attempt."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.setblocking(False)
        yield server


def test_account_url_builds_clients_with_managed_identity_and_no_network(
    listening_socket: socket.socket,
) -> None:
    port = listening_socket.getsockname()[1]
    settings = Settings(storage_account_url=f"https://127.0.0.1:{port}/account")

    # The managed identity is the composition root's, handed to the adapter as a credential source.
    app = Services(settings)
    tables = TableSet.from_settings(settings, credential=lambda: app.azure_credential)

    assert isinstance(tables.service_client.credential, DefaultAzureCredential)
    assert str(port) in tables.service_client.url
    with pytest.raises(BlockingIOError):
        listening_socket.accept()  # nothing tried to connect


def test_connection_string_wins_over_account_url(azurite_connection_string: str) -> None:
    settings = Settings(
        storage_connection_string=azurite_connection_string,
        storage_account_url="https://unused.table.core.windows.net",
    )

    tables = TableSet.from_settings(settings)

    assert "unused" not in tables.service_client.url
    assert not isinstance(tables.service_client.credential, DefaultAzureCredential)


def test_neither_setting_raises_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="STORAGE_CONNECTION_STRING or STORAGE_ACCOUNT_URL"):
        TableSet.from_settings(Settings())


def test_plain_http_account_url_raises_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="STORAGE_ACCOUNT_URL"):
        TableSet.from_settings(
            Settings(storage_account_url="http://127.0.0.1:1/account"), credential=DefaultAzureCredential
        )


def test_malformed_connection_string_raises_without_echoing_it() -> None:
    secret = "AccountKey=c2VjcmV0"

    with pytest.raises(ConfigurationError) as caught:
        TableSet.from_settings(Settings(storage_connection_string=f"garbage;{secret}"))

    assert secret not in str(caught.value)
    assert caught.value.__cause__ is None


def test_tables_are_created_on_first_use_only(azurite_connection_string: str, table_prefix: str) -> None:
    tables = TableSet.from_settings(prefixed_settings(azurite_connection_string, table_prefix))
    assert table_names(azurite_connection_string, table_prefix) == set()

    assert isinstance(tables.subscriptions, SubscriptionStore)
    assert table_names(azurite_connection_string, table_prefix) == {f"{table_prefix}s"}

    assert isinstance(tables.operations, OperationInbox)
    assert isinstance(tables.audit, AuditTrail)
    # The audit trail lives in the subscriptions table, beside the rows it describes.
    assert table_names(azurite_connection_string, table_prefix) == {f"{table_prefix}s", f"{table_prefix}o"}


def test_other_modules_get_their_own_tables(azurite_connection_string: str, table_prefix: str) -> None:
    tables = TableSet.from_settings(prefixed_settings(azurite_connection_string, table_prefix))

    seats = tables.table(f"{table_prefix}seats")
    seats.create_entity({"PartitionKey": "sub-1", "RowKey": "user-1"})

    assert tables.table(f"{table_prefix}seats") is seats
    assert table_names(azurite_connection_string, table_prefix) == {f"{table_prefix}seats"}


def test_an_existing_table_is_reused_not_recreated(azurite_connection_string: str, table_prefix: str) -> None:
    settings = prefixed_settings(azurite_connection_string, table_prefix)
    TableSet.from_settings(settings).table(f"{table_prefix}x").create_entity(
        {"PartitionKey": "p", "RowKey": "r"}
    )

    again = TableSet.from_settings(settings).table(f"{table_prefix}x")

    assert again.get_entity("p", "r")["RowKey"] == "r"


def test_stores_are_built_once_across_threads(azurite_connection_string: str, table_prefix: str) -> None:
    tables = TableSet.from_settings(prefixed_settings(azurite_connection_string, table_prefix))
    start_together = threading.Barrier(8, timeout=30)

    def grab(_: int) -> tuple[object, object, object]:
        start_together.wait()
        return tables.subscriptions, tables.operations, tables.audit

    with ThreadPoolExecutor(max_workers=8) as pool:
        seen = list(pool.map(grab, range(8)))

    # Compared by identity while every object is still referenced, so a discarded duplicate cannot hide.
    assert all(all(a is b for a, b in zip(stores, seen[0], strict=True)) for stores in seen)
