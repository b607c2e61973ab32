"""Flex Consumption, one user-assigned identity, and nothing in Azure that accepts a key instead of it."""

from __future__ import annotations

import re

import pytest

from tests.infra.bicep import (
    Resource,
    accessor,
    bicep_files,
    by_name,
    one,
    resources,
    without_comments,
)

SITE = "Microsoft.Web/sites"


def test_the_plan_is_flex_consumption() -> None:
    plan = one("Microsoft.Web/serverfarms").config
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True, "Flex Consumption runs on Linux only"
    site = one(SITE).config
    assert site["kind"] == "functionapp,linux"
    assert site["properties"]["serverFarmId"] == {
        "operator": {"type": "property_accessor", "operands": {"operand_1": "plan", "operand_2": "id"}}
    }


def test_the_app_runs_python_from_a_package_its_identity_fetches() -> None:
    config = one(SITE).config["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "pythonVersion"}
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": "identityId",
    }


def test_the_app_has_only_the_user_assigned_identity_and_uses_it_for_key_vault() -> None:
    site = one(SITE).config
    assert site["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {"'${identityId}'": {}}}
    assert site["properties"]["keyVaultReferenceIdentity"] == "identityId"
    assert site["properties"]["httpsOnly"] is True
    assert site["properties"]["siteConfig"]["minTlsVersion"] == "1.2"
    module = by_name("resources.bicep")["modules"]["functionApp"]["config"]
    assert accessor(module["params"]["identityId"]) == "identity.id"
    assert accessor(module["params"]["identityClientId"]) == "identity.properties.clientId"
    identity = one("Microsoft.ManagedIdentity/userAssignedIdentities")
    assert identity.file.name == "resources.bicep"


def test_the_app_starts_only_once_its_roles_exist() -> None:
    # Key Vault references resolve at the first start: Key Vault Secrets User must be there before it.
    module = by_name("resources.bicep")["modules"]["functionApp"]["config"]
    assert "roles" in module["dependsOn"]
    roles = by_name("resources.bicep")["modules"]["roles"]["config"]["params"]
    assert accessor(roles["principalId"]) == "identity.properties.principalId"


def test_storage_takes_no_shared_key_and_no_anonymous_reader() -> None:
    properties = one("Microsoft.Storage/storageAccounts").config["properties"]
    assert properties["allowSharedKeyAccess"] is False
    assert properties["allowBlobPublicAccess"] is False
    assert properties["defaultToOAuthAuthentication"] is True
    assert properties["minimumTlsVersion"] == "TLS1_2"
    assert properties["supportsHttpsTrafficOnly"] is True
    container = one("Microsoft.Storage/storageAccounts/blobServices/containers").config
    assert container["properties"]["publicAccess"] == "None"


def test_service_bus_takes_no_sas_key() -> None:
    namespace = one("Microsoft.ServiceBus/namespaces").config
    assert namespace["properties"]["disableLocalAuth"] is True
    assert namespace["properties"]["minimumTlsVersion"] == "1.2"
    # Sessions and duplicate detection do not exist in Basic.
    assert namespace["sku"]["name"] in {"Standard", "Premium"}
    assert not resources("Microsoft.ServiceBus/namespaces/AuthorizationRules")
    assert not resources("Microsoft.ServiceBus/namespaces/queues/authorizationRules")


def test_application_insights_takes_entra_ingestion_only_into_log_analytics() -> None:
    component = one("Microsoft.Insights/components").config
    assert component["properties"]["DisableLocalAuth"] is True
    assert accessor(component["properties"]["WorkspaceResourceId"]) == "workspace.id"
    one("Microsoft.OperationalInsights/workspaces")


def test_key_vault_is_rbac_only_and_cannot_be_purged() -> None:
    vault = one("Microsoft.KeyVault/vaults").config["properties"]
    assert vault["enableRbacAuthorization"] is True
    assert vault["enableSoftDelete"] is True
    assert vault["enablePurgeProtection"] is True
    assert "accessPolicies" not in vault


def test_key_vault_holds_only_the_secrets_no_identity_can_replace() -> None:
    secrets: dict[str, Resource] = {
        secret.config["name"]: secret for secret in resources("Microsoft.KeyVault/vaults/secrets")
    }
    assert set(secrets) == {"session-secret", "sso-client-secret", "fulfillment-client-secret"}
    assert not secrets["session-secret"].conditional
    # Stored only when given: by default the Partner Center app trusts the managed identity instead.
    assert secrets["sso-client-secret"].conditional
    assert secrets["fulfillment-client-secret"].conditional
    values = {name: secret.config["properties"]["value"] for name, secret in secrets.items()}
    assert values == {
        "session-secret": "sessionSecret",
        "sso-client-secret": "ssoClientSecret",
        "fulfillment-client-secret": "fulfillmentClientSecret",
    }


# Ways a key or a keyed connection string gets into a template: functions that read keys, key material, SAS
# rules. Matched on the parsed templates (comments dropped), in any case.
KEY_PATTERNS = [
    r"list[A-Za-z]*Keys\s*\(",
    r"listConnectionStrings",
    r"listAccountSas",
    r"listServiceSas",
    r"AccountKey=",
    r"SharedAccessKey",
    r"SharedAccessSignature",
    r"primaryKey",
    r"secondaryKey",
    r"InstrumentationKey=",
    r"RootManageSharedAccessKey",
]


@pytest.mark.parametrize("pattern", KEY_PATTERNS)
def test_no_template_reads_or_writes_a_key(pattern: str) -> None:
    offenders = [
        path.name for path in bicep_files() if re.search(pattern, without_comments(path), re.IGNORECASE)
    ]
    assert not offenders, f"{pattern} in {offenders}"
