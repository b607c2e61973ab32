"""The app's identity holds exactly the roles infra/app/roles.bicep explains, each on its narrowest scope."""

from __future__ import annotations

from typing import Any

from tests.infra.bicep import Resource, accessor, by_name, function, resources

# Azure's built-in role definition ids (the same in every tenant).
ROLE_NAMES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "090c5cfd-751d-490a-894a-3ce6f1109419": "Azure Service Bus Data Owner",
    "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39": "Azure Service Bus Data Sender",
    "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0": "Azure Service Bus Data Receiver",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
}
# (role, scope): the scope is the resource type, and for a queue the parameter naming it.
EXPECTED = {
    ("Storage Blob Data Owner", "Microsoft.Storage/storageAccounts"),
    ("Storage Table Data Contributor", "Microsoft.Storage/storageAccounts"),
    # The trigger: receive, and Manage for the target-based scaler, which reads the queue's runtime properties
    # (without it the scaler logs "Target scaler is not supported" and falls back). Owner includes Send, so
    # the enqueuing entry points need no Sender here.
    ("Azure Service Bus Data Owner", "Microsoft.ServiceBus/namespaces/queues:eventsQueueName"),
    ("Azure Service Bus Data Sender", "Microsoft.ServiceBus/namespaces/queues:parkingQueueName"),
    # The operations console lists, replays and discards parked messages from inside the app.
    ("Azure Service Bus Data Receiver", "Microsoft.ServiceBus/namespaces/queues:parkingQueueName"),
    ("Key Vault Secrets User", "Microsoft.KeyVault/vaults"),
    ("Monitoring Metrics Publisher", "Microsoft.Insights/components"),
}


def _assignments() -> list[Resource]:
    return resources("Microsoft.Authorization/roleAssignments")


def _role(assignment: Resource) -> str:
    doc = by_name("app/roles.bicep")
    call = function(assignment.config["properties"]["roleDefinitionId"], "subscription_resource_id")
    assert call is not None
    assert call["resource_type"] == "Microsoft.Authorization/roleDefinitions"
    path = accessor(call["resource_name_1"])
    assert path is not None
    assert path.startswith("roleIds.")
    role_id = doc["variables"]["roleIds"]["value"][path.removeprefix("roleIds.")]
    return ROLE_NAMES[role_id]


def _scope(assignment: Resource) -> str:
    symbol = assignment.config["scope"]
    declared: dict[str, Any] = by_name("app/roles.bicep")["resources"][symbol]
    kind = declared["type"]
    if kind == "Microsoft.ServiceBus/namespaces/queues":
        return f"{kind}:{declared['config']['name']}"
    return str(kind)


def test_role_assignments_live_in_roles_bicep_only() -> None:
    assert {assignment.file.name for assignment in _assignments()} == {"roles.bicep"}


def test_the_identity_holds_exactly_the_expected_roles() -> None:
    granted = [(_role(assignment), _scope(assignment)) for assignment in _assignments()]
    assert len(granted) == len(set(granted)), "a role is granted twice on the same scope"
    assert set(granted) == EXPECTED


def test_role_ids_are_azures_built_in_ones() -> None:
    role_ids = by_name("app/roles.bicep")["variables"]["roleIds"]["value"]
    assert set(role_ids.values()) == set(ROLE_NAMES)


def test_every_assignment_is_for_the_apps_service_principal() -> None:
    for assignment in _assignments():
        properties = assignment.config["properties"]
        # Skips the directory lookup that fails while a new identity replicates.
        assert properties["principalType"] == "ServicePrincipal", assignment.symbol
        assert properties["principalId"] == "principalId", assignment.symbol
        # A stable name per (scope, principal, role): re-deploying updates instead of failing on a duplicate.
        name = function(assignment.config["name"], "guid")
        assert name is not None, assignment.symbol
        assert accessor(name["base_string"]) == f"{assignment.config['scope']}.id", assignment.symbol
        assert name["extra_string_1"] == "principalId", assignment.symbol


def test_queue_scopes_are_the_queues_from_queues_json() -> None:
    params = by_name("resources.bicep")["modules"]["roles"]["config"]["params"]
    assert accessor(params["eventsQueueName"]) == "queues.events.name"
    assert accessor(params["parkingQueueName"]) == "queues.parking.name"
