"""Composition root: builds each adapter once per process, on first use, from `Settings`.

Entry points ask `services()` for what they need. This is the one module that imports adapter modules (and
azure.identity) inside functions: each cached property imports what it builds, so that a cold start pays
only for the adapters the triggered function uses (the webhook never builds the Fulfillment API client).
With `shared.entrypoints.binding` (entry modules imported on their trigger's first call) and
`shared.telemetry` (OpenTelemetry imported only when configured, which `services()` does) it is the app's
whole lazy-import mechanism; every other module imports at top level. The Service Bus sender, HTTP
sessions and JWKS cache are reused across invocations of a warm instance.
Tests call `reset_services()` after changing the environment."""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING

from shared import logs, telemetry
from shared.config import Settings, check_fail_closed
from shared.storage import errors as _storage_errors

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from shared.domain.policy import PublisherPolicy
    from shared.fulfillment.client import FulfillmentClient
    from shared.identity.signing_keys import SigningKeys
    from shared.identity.tokens import TokenValidator
    from shared.queueing.messages import DeadLetterQueues, EventQueue
    from shared.storage.audit import AuditTrail
    from shared.storage.inbox import OperationInbox
    from shared.storage.licenses import LicenseIndex
    from shared.storage.seats import SeatStore
    from shared.storage.sessions import SessionStore
    from shared.storage.setup_links import SetupLinkStore
    from shared.storage.subscriptions import SubscriptionStore
    from shared.storage.tables import TableSet
    from shared.storage.users import AdminStore, UserStore
    from shared.workflows.activation import ActivationPorts
    from shared.workflows.confirmation import ConfirmationPorts
    from shared.workflows.console_overview import OverviewPorts
    from shared.workflows.dead_letters import DeadLetterPorts
    from shared.workflows.operations import OperationPorts
    from shared.workflows.operator_requests import OperatorRequestPorts
    from shared.workflows.plan_catalog import PlanCatalog
    from shared.workflows.provisioning import ProvisioningHook
    from shared.workflows.publisher_changes import ChangePorts
    from shared.workflows.reconcile import ReconcilePorts, SweepPorts
    from shared.workflows.retention import RetentionPorts
    from shared.workflows.subscription_views import SubscriptionViewPorts, SummaryIndex
    from shared.workflows.sync import SyncPorts
    from shared.workflows.tracking import TrackingPorts


class Services:
    """The process-wide adapters. Each property is built at most once (guarded by one lock)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.RLock()

    @cached_property
    def fulfillment(self) -> FulfillmentClient:
        from shared.fulfillment.client import FulfillmentClient

        with self._lock:
            return FulfillmentClient.from_settings(self.settings)

    @cached_property
    def azure_credential(self) -> TokenCredential:
        """The app's managed identity, for Table Storage and Service Bus when no connection string is set.

        Built on first use only: azure.identity (and msal, which it loads) are slow to import, and neither the
        webhook nor anything else configured with connection strings needs them.
        """
        from azure.identity import DefaultAzureCredential

        # A user-assigned identity (the template's) must be named; None asks for the system-assigned one.
        client_id = self.settings.managed_identity_client_id or None
        with self._lock:
            return DefaultAzureCredential(managed_identity_client_id=client_id)

    def _credential(self) -> TokenCredential:
        return self.azure_credential

    def telemetry_credential(self) -> TokenCredential:
        """Entra ID for Application Insights (`APPLICATIONINSIGHTS_AUTHENTICATION_STRING=Authorization=AAD`):
        the user-assigned identity that string names (`ClientId=`), else the app's own identity above."""
        client_id = telemetry.entra_client_id(self.settings.applicationinsights_authentication_string)
        if not client_id:
            return self.azure_credential
        from azure.identity import ManagedIdentityCredential

        return ManagedIdentityCredential(client_id=client_id)

    @cached_property
    def _tables(self) -> TableSet:
        from shared.storage.tables import TableSet

        with self._lock:
            return TableSet.from_settings(self.settings, credential=self._credential)

    @property
    def subscriptions(self) -> SubscriptionStore:
        return self._tables.subscriptions

    @property
    def operations(self) -> OperationInbox:
        return self._tables.operations

    @property
    def audit(self) -> AuditTrail:
        return self._tables.audit

    @cached_property
    def queue(self) -> EventQueue:
        from shared.queueing.backends import build_queue

        with self._lock:
            return build_queue(self.settings, credential=self._credential)

    @cached_property
    def dead_letters(self) -> DeadLetterQueues:
        """The parked and dead-lettered messages of the configured queue backend (operators only)."""
        from shared.queueing.backends import build_dead_letters

        with self._lock:
            return build_dead_letters(self.settings, credential=self._credential)

    @cached_property
    def seats(self) -> SeatStore:
        from shared.storage.seats import SeatStore

        return SeatStore(self._tables.table(self.settings.table_seats))

    @cached_property
    def users(self) -> UserStore:
        from shared.storage.users import UserStore

        return UserStore(self._tables.table(self.settings.table_users))

    @cached_property
    def admins(self) -> AdminStore:
        # Admin grants share the users table: both are keyed by tenant, so each lookup stays in one partition.
        from shared.storage.users import AdminStore

        return AdminStore(self._tables.table(self.settings.table_users))

    @cached_property
    def licenses(self) -> LicenseIndex:
        from shared.storage.licenses import LicenseIndex, license_table_name

        return LicenseIndex(
            self._tables.table(license_table_name(self.settings.table_seats)),
            cache_seconds=self.settings.license_cache_seconds,
        )

    @cached_property
    def setup_links(self) -> SetupLinkStore:
        from shared.storage.setup_links import SetupLinkStore, setup_link_table_name

        return SetupLinkStore(self._tables.table(setup_link_table_name(self.settings.table_users)))

    @cached_property
    def sessions(self) -> SessionStore:
        from shared.storage.sessions import SessionStore, session_table_name

        return SessionStore(self._tables.table(session_table_name(self.settings.table_users)))

    @cached_property
    def signing_keys(self) -> SigningKeys:
        """The one JWKS cache: both validators below share keys and refresh budget per JWKS URL."""
        from shared.identity.signing_keys import SigningKeys

        with self._lock:
            return SigningKeys()

    @cached_property
    def webhook_validator(self) -> TokenValidator:
        """Remembers the tokens it has validated: Microsoft reuses one for up to an hour, so a burst of
        webhooks skips the RSA check after the first (bounds and rules in `shared.identity.token_cache`)."""
        from shared.identity.token_cache import ValidatedTokens
        from shared.identity.token_policies import webhook_policy_from_settings
        from shared.identity.tokens import TokenValidator

        with self._lock:
            policy = webhook_policy_from_settings(self.settings)
            return TokenValidator(policy, self.signing_keys, cache=ValidatedTokens())

    @cached_property
    def id_token_validator(self) -> TokenValidator:
        from shared.identity.token_policies import id_token_policy_from_settings
        from shared.identity.tokens import TokenValidator

        with self._lock:
            return TokenValidator(id_token_policy_from_settings(self.settings), self.signing_keys)

    @cached_property
    def policy(self) -> PublisherPolicy:
        from shared.domain.policy import PublisherPolicy

        return PublisherPolicy(
            block_downgrades=self.settings.policy_block_downgrades,
            plan_order=self.settings.policy_plan_order,
            refuse_quantity_below_assigned=self.settings.policy_refuse_quantity_below_assigned,
        )

    # --- worker, landing and sign-in workflow ports: the adapters each workflow is handed -------------

    @cached_property
    def provisioning_hook(self) -> ProvisioningHook:
        from shared.domain.subscription import Subscription
        from shared.workflows.provisioning import load_hook

        # Loaded when an activation calls it, not when ports are built: a wrong PROVISIONING_HOOK must fail
        # activations only (they are delivered again), never reconciliations that activate nothing.
        def provision(subscription: Subscription) -> bool:
            return load_hook(self.settings.provisioning_hook)(subscription)

        return provision

    @cached_property
    def sync_ports(self) -> SyncPorts:
        from shared.workflows.sync import SyncPorts

        return SyncPorts(self.fulfillment, self.subscriptions, self.seats, self.licenses)

    @cached_property
    def activation_ports(self) -> ActivationPorts:
        from shared.workflows.activation import ActivationPorts

        return ActivationPorts(self.sync_ports, self.provisioning_hook)

    @cached_property
    def operation_ports(self) -> OperationPorts:
        from shared.workflows.operations import OperationPorts

        return OperationPorts(self.sync_ports, self.operations, self.audit, self.queue, self.policy)

    @cached_property
    def tracking_ports(self) -> TrackingPorts:
        from shared.workflows.tracking import TrackingPorts

        return TrackingPorts(self.sync_ports, self.operations, self.queue, self.audit)

    @cached_property
    def reconcile_ports(self) -> ReconcilePorts:
        from shared.workflows.reconcile import ReconcilePorts

        return ReconcilePorts(self.activation_ports, self.operation_ports)

    @cached_property
    def sweep_ports(self) -> SweepPorts:
        from shared.workflows.reconcile import SweepPorts

        return SweepPorts(self.fulfillment, self.subscriptions, self.queue, self.audit)

    @cached_property
    def retention_ports(self) -> RetentionPorts:
        from shared.workflows.retention import RetentionPorts

        return RetentionPorts(
            subscriptions=self.subscriptions,
            audit=self.audit,
            seats=self.seats,
            licenses=self.licenses,
            grants=self.admins,
            users=self.users,
            sessions=self.sessions,
            setup_links=self.setup_links,
        )

    @cached_property
    def confirmation_ports(self) -> ConfirmationPorts:
        from shared.workflows.confirmation import ConfirmationPorts

        return ConfirmationPorts(self.subscriptions, self.users, self.admins, self.queue)

    # --- operator workflow ports: the CLI (and later the console) ----------------------------------------

    @cached_property
    def dead_letter_ports(self) -> DeadLetterPorts:
        from shared.workflows.dead_letters import DeadLetterPorts

        return DeadLetterPorts(self.dead_letters, self.audit)

    @cached_property
    def operator_request_ports(self) -> OperatorRequestPorts:
        from shared.workflows.operator_requests import OperatorRequestPorts

        return OperatorRequestPorts(self.subscriptions, self.queue, self.audit)

    @cached_property
    def plan_catalog(self) -> PlanCatalog:
        from shared.workflows.plan_catalog import PlanCatalog

        return PlanCatalog(self.fulfillment)

    @cached_property
    def change_ports(self) -> ChangePorts:
        from shared.workflows.publisher_changes import ChangePorts

        return ChangePorts(
            fulfillment=self.fulfillment, operations=self.operations, queue=self.queue, policy=self.policy
        )

    @cached_property
    def subscription_view_ports(self) -> SubscriptionViewPorts:
        from shared.workflows.subscription_views import SubscriptionViewPorts

        return SubscriptionViewPorts(self.subscriptions, self.operations, self.audit, self.seats)

    @cached_property
    def subscription_index(self) -> SummaryIndex:
        """The console list's per-instance copy of every subscription's list columns (30 s at most old)."""
        from shared.workflows.subscription_views import SummaryIndex

        return SummaryIndex(self.subscriptions)

    @cached_property
    def overview_ports(self) -> OverviewPorts:
        from shared.workflows.console_overview import OverviewPorts

        return OverviewPorts(
            self.subscription_index, self.audit, self.operations, lambda: self.dead_letter_ports, self.audit
        )


# A row another writer saved first (the worker and an operator deciding one change): entry points may not
# import adapters, so the composition root names the error for them to word.
RecordChangedError = _storage_errors.ConcurrencyError

_services: Services | None = None
_services_lock = threading.Lock()


def services() -> Services:
    global _services  # one composition root per process is the point
    if _services is None:
        with _services_lock:
            if _services is None:
                check_fail_closed()
                settings = Settings.from_env()
                logs.configure(settings.log_level)
                _services = Services(settings)
                # Before the first span: when APPLICATIONINSIGHTS_CONNECTION_STRING is absent this imports
                # nothing and returns at once.
                telemetry.configure(settings, credential=_services.telemetry_credential)
    return _services


def reset_services() -> None:
    """Forget every adapter; the next `services()` reads the environment again (tests, dev host reload)."""
    global _services
    with _services_lock:
        _services = None
