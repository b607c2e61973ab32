"""The process's Table Storage account: one service client, each table created once, each store built once.

Locally (Azurite) the account comes from a connection string; in Azure from the account URL and the
Functions app's managed identity through `DefaultAzureCredential`. Building a TableSet makes no network
call: a table is created (if missing) the first time it is handed out, which keeps cold starts short for
functions that never touch storage. The SDK's HTTP session takes its CA bundle and proxy decision from
`shared.tls` (no environment scan per request unless a proxy is set); the service and every table client
share that one transport and its connection pool. Table clients are `shared.storage.transactions`'
TableClient, the SDK's client with lighter transaction framing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from azure.core.credentials import TokenCredential
from azure.data.tables import TableServiceClient

from shared.config import ConfigurationError, Settings
from shared.logs import get_logger
from shared.storage.audit import AuditTrail
from shared.storage.inbox import OperationInbox
from shared.storage.subscriptions import SubscriptionStore
from shared.storage.transactions import TableClient
from shared.tls import azure_transport_settings

_log = get_logger(__name__)
_Store = TypeVar("_Store", SubscriptionStore, OperationInbox, AuditTrail)


class TableSet:
    """Hands out table clients and the stores built on them; safe to share between threads.

    :param service_client: the account's service client.
    :param settings: supplies the table names.
    :param transport: the keyword arguments that give the table clients the service client's transport.
    """

    def __init__(
        self, service_client: TableServiceClient, settings: Settings, transport: dict[str, Any]
    ) -> None:
        self._service = service_client
        self._settings = settings
        self._transport = transport
        self._tables: dict[str, TableClient] = {}
        self._stores: dict[str, object] = {}
        # One lock for table creation and for the cached stores: both happen once per process.
        self._lock = threading.RLock()

    @classmethod
    def from_settings(
        cls, settings: Settings, *, credential: Callable[[], TokenCredential] | None = None
    ) -> TableSet:
        """Connection string if set (Azurite, or a key-based account), else account URL + managed identity.

        Raises ConfigurationError when neither is set or the values cannot be used.
        """
        transport = azure_transport_settings()
        return cls(_service_client(settings, credential, transport), settings, transport)

    @property
    def service_client(self) -> TableServiceClient:
        return self._service

    def table(self, name: str) -> TableClient:
        """The client of table `name`, creating the table on first request (once per TableSet)."""
        with self._lock:
            client = self._tables.get(name)
            if client is None:
                self._service.create_table_if_not_exists(table_name=name)
                client = TableClient(
                    self._service.url,
                    table_name=name,
                    credential=self._service.credential,
                    api_version=self._service.api_version,
                    **self._transport,
                )
                _log.info("table ready", extra={"table": name})
                self._tables[name] = client
            return client

    @property
    def subscriptions(self) -> SubscriptionStore:
        return self._store(
            "subscriptions", lambda: SubscriptionStore(self.table(self._settings.table_subscriptions))
        )

    @property
    def operations(self) -> OperationInbox:
        return self._store("operations", lambda: OperationInbox(self.table(self._settings.table_operations)))

    @property
    def audit(self) -> AuditTrail:
        return self._store("audit", lambda: AuditTrail(self.table(self._settings.table_subscriptions)))

    def _store(self, kind: str, build: Callable[[], _Store]) -> _Store:
        # Not functools.cached_property: since Python 3.12 it no longer locks, and two threads could each
        # build a store on a cold start.
        with self._lock:
            store = self._stores.get(kind)
            if store is None:
                store = self._stores[kind] = build()
            return store  # type: ignore[return-value]


def _service_client(
    settings: Settings, credential: Callable[[], TokenCredential] | None, transport: dict[str, Any]
) -> TableServiceClient:
    if settings.storage_connection_string:
        try:
            return TableServiceClient.from_connection_string(settings.storage_connection_string, **transport)
        except ValueError:
            # The SDK's message may quote the connection string, a secret: neither log it nor chain it.
            _log.error("STORAGE_CONNECTION_STRING is malformed")
            raise ConfigurationError("STORAGE_CONNECTION_STRING is malformed") from None
    if settings.storage_account_url:
        return _service_client_with_identity(settings.storage_account_url, credential, transport)
    _log.error("no Table Storage account configured")
    raise ConfigurationError("set STORAGE_CONNECTION_STRING or STORAGE_ACCOUNT_URL")


def _service_client_with_identity(
    account_url: str, credential: Callable[[], TokenCredential] | None, transport: dict[str, Any]
) -> TableServiceClient:
    # The credential is the composition root's (the app's managed identity), built only on this path.
    if credential is None:
        _log.error("STORAGE_ACCOUNT_URL set but no token credential given")
        raise ConfigurationError("STORAGE_ACCOUNT_URL needs a token credential (the managed identity)")
    try:
        return TableServiceClient(endpoint=account_url, credential=credential(), **transport)
    except ValueError as exc:
        # e.g. an http:// URL, over which the SDK refuses to send a bearer token.
        _log.error("STORAGE_ACCOUNT_URL cannot be used", extra={"reason": str(exc)})
        raise ConfigurationError(f"STORAGE_ACCOUNT_URL cannot be used: {exc}") from exc
