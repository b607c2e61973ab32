"""The confirmation and sign-in workflows driven directly: real stores on Azurite, real queues, no HTTP.

Their ports are passed in explicitly, so the business steps behind /api/landing/confirm and the sign-in
callback (confirm once, grant roles, roll back when the queue refuses; keep a confirmed contact email) are
checked here without a browser, a session cookie or the composition root.
"""

from __future__ import annotations

import uuid

import pytest
from azure.data.tables import TableClient

from shared.config import Settings
from shared.domain.audit import AuditAction
from shared.domain.subscription import Party, Subscription
from shared.domain.users import User
from shared.identity.id_token import IdTokenClaims
from shared.identity.signin import SignInResult
from shared.queueing.memory import InMemoryQueue
from shared.queueing.messages import MessageKind, QueueUnavailableError
from shared.queueing.servicebus import ServiceBusEventQueue
from shared.storage.tables import TableSet
from shared.storage.users import AdminStore, UserStore
from shared.web.current_user import SignedInUser
from shared.workflows.confirmation import ConfirmationPorts, confirm_purchase
from shared.workflows.ports import EventPublisher
from shared.workflows.signin import remember_user
from tests.support.ports import free_port

CONTOSO = "72f988bf-86f1-41af-91ab-2d7cd011db47"
PARTNER = "0b7ad2a4-0000-4000-8000-00000000c5e1"
ADELE = SignedInUser(CONTOSO, "11111111-0000-4000-8000-0000000000a1", "Adele", "", "adele@contoso.example")


@pytest.fixture
def tables(azurite_connection_string: str, table_prefix: str) -> TableSet:
    settings = Settings(
        storage_connection_string=azurite_connection_string,
        table_subscriptions=f"{table_prefix}s",
    )
    return TableSet.from_settings(settings)


@pytest.fixture
def users_table(tables: TableSet, table_prefix: str) -> TableClient:
    return tables.table(f"{table_prefix}users")


def ports(tables: TableSet, users_table: TableClient, events: EventPublisher) -> ConfirmationPorts:
    return ConfirmationPorts(
        subscriptions=tables.subscriptions,
        users=UserStore(users_table),
        admins=AdminStore(users_table),
        events=events,
    )


def pending_purchase(tables: TableSet) -> Subscription:
    """A resolved purchase the buyer has not confirmed yet, bought by a CSP partner for Contoso."""
    return tables.subscriptions.insert(
        Subscription(
            id=str(uuid.uuid4()),
            offer_id="contoso-offer",
            plan_id="team-seats",
            quantity=5,
            purchaser=Party(tenant_id=PARTNER, object_id="22222222-0000-4000-8000-0000000000b1"),
            beneficiary=Party(tenant_id=CONTOSO, object_id="33333333-0000-4000-8000-0000000000c1"),
        )
    )


def closed_service_bus() -> ServiceBusEventQueue:
    """The real Service Bus adapter pointed at a port nobody listens on: every send is refused."""
    connection = (
        f"Endpoint=sb://127.0.0.1:{free_port()}/;SharedAccessKeyName=RootManageSharedAccessKey;"
        "SharedAccessKey=bm90LWEtcmVhbC1rZXk=;UseDevelopmentEmulator=true"
    )
    return ServiceBusEventQueue.from_settings(
        Settings.from_env({"ServiceBusConnection": connection, "SERVICEBUS_QUEUE": "activations"})
    )


def test_confirming_grants_the_roles_and_queues_the_activation_once(
    tables: TableSet, users_table: TableClient
) -> None:
    queue = InMemoryQueue()
    confirmation = ports(tables, users_table, queue)
    stored = pending_purchase(tables)

    first = confirm_purchase(stored, ADELE, "it@contoso.example", "c-1", ports=confirmation)
    again = confirm_purchase(stored, ADELE, "it@contoso.example", "c-2", ports=confirmation)

    assert (first, again) == (True, False)
    [message] = queue.messages
    assert (message.kind, message.body["subscriptionId"]) == (MessageKind.ACTIVATE, stored.id)
    assert confirmation.admins.roles_for(stored.id, ADELE.tenant_id, ADELE.object_id) == {"beneficiary-admin"}
    partner = stored.purchaser
    assert confirmation.admins.roles_for(stored.id, partner.tenant_id, partner.object_id) == {"purchaser"}
    after = tables.subscriptions.get(stored.id)
    assert after is not None
    assert after.activation_requested_at is not None
    assert [e.action for e in tables.audit.list(stored.id)] == [AuditAction.CONFIRM]


def test_a_refused_queue_takes_the_confirmation_back_so_the_buyer_can_confirm_again(
    tables: TableSet, users_table: TableClient
) -> None:
    stored = pending_purchase(tables)
    refused = closed_service_bus()
    try:
        with pytest.raises(QueueUnavailableError):
            confirm_purchase(
                stored, ADELE, "it@contoso.example", "c-1", ports=ports(tables, users_table, refused)
            )
    finally:
        refused.close()

    after = tables.subscriptions.get(stored.id)
    assert after is not None
    assert after.activation_requested_at is None
    actions = [e.action for e in tables.audit.list(stored.id)]
    assert actions == [AuditAction.CONFIRM, AuditAction.CONFIRM_ROLLED_BACK]

    queue = InMemoryQueue()
    assert confirm_purchase(
        stored, ADELE, "it@contoso.example", "c-2", ports=ports(tables, users_table, queue)
    )
    assert len(queue.messages) == 1


def test_signing_in_again_keeps_the_contact_email_the_buyer_confirmed(
    tables: TableSet, users_table: TableClient
) -> None:
    users = ports(tables, users_table, InMemoryQueue()).users
    users.upsert(User(tenant_id=ADELE.tenant_id, object_id=ADELE.object_id, email="it@contoso.example"))
    claims = IdTokenClaims(ADELE.tenant_id, ADELE.object_id, "Adele Vance", "", ADELE.upn, (ADELE.upn,))

    user = remember_user(SignInResult(claims, contact_email=ADELE.upn), users=users)

    assert (user.name, user.email, user.upn) == ("Adele Vance", "it@contoso.example", ADELE.upn)
    stored = users.get(ADELE.tenant_id, ADELE.object_id)
    assert stored is not None
    assert stored.addresses == (ADELE.upn,)
