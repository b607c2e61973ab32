"""The app settings the template gives the Function App: each one read by someone, none carrying a key.

Readers: the Functions host (identity-based connections, telemetry), the app itself (the settings
shared/ reads, which tests/test_settings_documented.py keeps in local.settings.example.json and the README;
MANAGED_IDENTITY_CLIENT_ID picks the user-assigned identity for every credential the app builds).
"""

from __future__ import annotations

import ast
import json
from typing import Any

from shared.config import is_unresolved_reference
from tests.infra.bicep import ROOT, accessor, array_items, by_name, conditional_branches, one
from tests.test_settings_documented import settings_read_by_the_app

# Read by the Functions host: identity-based host storage and trigger connection, and Entra-authenticated
# Application Insights ingestion.
HOST_SETTINGS = {
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "ServiceBusConnection__fullyQualifiedNamespace",
    "ServiceBusConnection__credential",
    "ServiceBusConnection__clientId",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}
# Settings that must never be set in Azure: keyed connections, settings Flex Consumption refuses (the
# runtime is in functionAppConfig), and the local stack's switches.
FORBIDDEN = {
    "AzureWebJobsStorage",
    "ServiceBusConnection",
    "STORAGE_CONNECTION_STRING",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_RUN_FROM_PACKAGE",
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "APPINSIGHTS_INSTRUMENTATIONKEY",
    "DEVHOST_LOCAL_STACK",
    "DEVHOST_FUNCTION_KEY",
    "FAULT_POINTS",
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
}
SECRET_SETTINGS = {"SESSION_SECRET", "SSO_CLIENT_SECRET", "PUBLISHER_CLIENT_SECRET"}
SECURE_PARAMETERS = {"sessionSecret", "ssoClientSecret", "fulfillmentClientSecret"}


def emitted() -> list[dict[str, Any]]:
    """Every {name, value} the site's appSettings can hold, optional ones included."""
    doc = by_name("app/function.bicep")
    settings = one("Microsoft.Web/sites").config["properties"]["siteConfig"]["appSettings"]
    return list(array_items(doc, settings))


def settings() -> dict[str, Any]:
    return {item["name"]: item["value"] for item in emitted()}


def test_each_setting_is_set_once() -> None:
    names = [item["name"] for item in emitted()]
    assert len(names) == len(set(names)), sorted(name for name in names if names.count(name) > 1)


def test_every_setting_has_a_reader() -> None:
    read_by_app = settings_read_by_the_app()
    unread = set(settings()) - HOST_SETTINGS - read_by_app
    assert not unread, f"no code reads {sorted(unread)}"


def test_settings_the_app_reads_are_in_the_example_file() -> None:
    example = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
    app_settings = set(settings()) - HOST_SETTINGS
    assert app_settings <= set(example)


def test_no_forbidden_setting() -> None:
    assert not FORBIDDEN & set(settings())


def test_host_storage_is_reached_by_the_user_assigned_identity() -> None:
    values = settings()
    assert accessor(values["AzureWebJobsStorage__accountName"]) == "storageAccount.name"
    assert values["AzureWebJobsStorage__credential"] == "managedidentity"
    assert values["AzureWebJobsStorage__clientId"] == "identityClientId"


def _trigger_connection() -> str:
    """The `connection` of the Service Bus trigger in function_app.py."""
    tree = ast.parse((ROOT / "function_app.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "service_bus_queue_trigger":
            keywords = {keyword.arg: keyword.value for keyword in node.keywords}
            connection = keywords["connection"]
            assert isinstance(connection, ast.Constant)
            return str(connection.value)
    raise AssertionError("function_app.py has no Service Bus trigger")


def test_service_bus_is_reached_by_the_user_assigned_identity_under_the_triggers_connection_name() -> None:
    values = settings()
    prefix = _trigger_connection()
    assert values[f"{prefix}__fullyQualifiedNamespace"] == "serviceBusHost"
    assert values[f"{prefix}__credential"] == "managedidentity"
    assert values[f"{prefix}__clientId"] == "identityClientId"
    host = by_name("app/function.bicep")["variables"]["serviceBusHost"]["value"]
    assert host == "${serviceBusNamespaceName}.servicebus.windows.net"


def test_the_app_reaches_tables_and_the_fulfillment_api_with_the_identity() -> None:
    values = settings()
    assert values["STORAGE_ACCOUNT_URL"] == (
        "https://${storageAccount.name}.table.${environment().suffixes.storage}"
    )
    assert values["MANAGED_IDENTITY_CLIENT_ID"] == "identityClientId"
    assert "AZURE_CLIENT_ID" not in values, "one setting names the identity: MANAGED_IDENTITY_CLIENT_ID"
    assert values["QUEUE_BACKEND"] == "servicebus"
    # Federated managed identity unless a fallback secret was given (shared/fulfillment/credentials.py).
    branches = conditional_branches(values["PUBLISHER_CREDENTIAL_KIND"])
    assert branches == ("managed_identity_federated", "secret")


def test_telemetry_is_sent_with_the_identity() -> None:
    values = settings()
    assert (
        values["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
        == "ClientId=${identityClientId};Authorization=AAD"
    )
    connection = accessor(values["APPLICATIONINSIGHTS_CONNECTION_STRING"])
    assert connection == "applicationInsights.properties.ConnectionString"


def test_secrets_arrive_as_key_vault_references_only() -> None:
    values = settings()
    assert set(values) >= SECRET_SETTINGS
    for name in SECRET_SETTINGS:
        value = values[name]
        assert isinstance(value, str)
        assert value.startswith("@Microsoft.KeyVault(SecretUri=${"), name
        assert value.endswith("})"), name
        # The app's fail-closed check recognises it, should Azure leave it unresolved.
        assert is_unresolved_reference(value), name


def test_no_setting_carries_a_key_or_a_secret_value() -> None:
    function = by_name("app/function.bicep")
    assert not SECURE_PARAMETERS & set(function["parameters"]), "secret values never reach the app module"
    assert not any("secure" in str(parameter["decorators"]) for parameter in function["parameters"].values())
    text = json.dumps(emitted())
    for marker in (
        "AccountKey=",
        "SharedAccessKey",
        "listKeys",
        "InstrumentationKey=",
        "DefaultEndpointsProtocol",
    ):
        assert marker.lower() not in text.lower(), marker


def test_the_queue_names_come_from_queues_json() -> None:
    values = settings()
    assert values["SERVICEBUS_QUEUE"] == "eventsQueueName"
    assert values["SERVICEBUS_DEADLETTER_QUEUE"] == "parkingQueueName"
    params = by_name("resources.bicep")["modules"]["functionApp"]["config"]["params"]
    assert accessor(params["eventsQueueName"]) == "queues.events.name"
    assert accessor(params["parkingQueueName"]) == "queues.parking.name"
