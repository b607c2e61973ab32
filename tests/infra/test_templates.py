"""Every Bicep file parses, every module is wired to the parameters it declares, and the parameters and
outputs azd and the scripts rely on are the ones infra/README.md promises."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.infra.bicep import INFRA, ROOT, bicep_files, by_name, decorators, template

# The outputs the deploy and Entra registration scripts read (azd writes them into .azure/<env>/.env).
OUTPUTS = {
    "AZURE_LOCATION",
    "AZURE_TENANT_ID",
    "AZURE_RESOURCE_GROUP",
    "AZURE_FUNCTION_APP_NAME",
    "FUNCTION_APP_HOSTNAME",
    "FUNCTION_APP_URL",
    "KEY_VAULT_NAME",
    "MANAGED_IDENTITY_CLIENT_ID",
    "MANAGED_IDENTITY_PRINCIPAL_ID",
    "SERVICEBUS_NAMESPACE",
    "STORAGE_ACCOUNT_NAME",
    "APPLICATIONINSIGHTS_NAME",
}
# Outputs only the subscription-scoped entry point can give (azd's own).
ENTRY_POINT_ONLY = {"AZURE_LOCATION", "AZURE_TENANT_ID"}
PARAMETERS = {
    "environmentName",
    "location",
    "publisherTenantId",
    "fulfillmentClientId",
    "ssoClientId",
    "alertEmail",
    "sessionSecret",
    "ssoClientSecret",
    "fulfillmentClientSecret",
    "pythonVersion",
    "publicBaseUrl",
    "storageSku",
}
# Standard general-purpose v2 only: the Functions host needs Blob, Queue and Table (Premium has no tables or
# queues); zone-redundant by default, locally or geo-redundant where the region has no zones.
STORAGE_SKUS = [
    "Standard_ZRS",
    "Standard_LRS",
    "Standard_GRS",
    "Standard_RAGRS",
    "Standard_GZRS",
    "Standard_RAGZRS",
]
SECURE_PARAMETERS = {"sessionSecret", "ssoClientSecret", "fulfillmentClientSecret"}


def test_there_are_templates_to_check() -> None:
    names = {path.relative_to(INFRA).as_posix() for path in bicep_files()}
    assert {"main.bicep", "resources.bicep", "app/function.bicep", "app/roles.bicep"} <= names


@pytest.mark.parametrize("path", bicep_files(), ids=lambda path: path.relative_to(INFRA).as_posix())
def test_every_bicep_file_parses(path: Path) -> None:
    doc = template(path)
    assert doc.get("resources") or doc.get("modules"), f"{path.name} declares nothing"


def _modules() -> list[tuple[Path, str, dict[str, Any]]]:
    return [
        (path, symbol, module)
        for path in bicep_files()
        for symbol, module in template(path).get("modules", {}).items()
    ]


@pytest.mark.parametrize(
    ("path", "symbol", "module"), _modules(), ids=[f"{path.stem}.{symbol}" for path, symbol, _ in _modules()]
)
def test_every_module_gets_exactly_the_parameters_it_declares(
    path: Path, symbol: str, module: dict[str, Any]
) -> None:
    # Only local modules: a registry module (br:) could not be checked, or parsed, offline.
    assert module["type"] == "local", f"{symbol} in {path.name} is not a file in this repository"
    target = path.parent / module["detail"]["path"]
    assert target.is_file(), f"{symbol} in {path.name} points at a missing {target}"
    declared = template(target).get("parameters", {})
    given = set(module["config"].get("params", {}))
    required = {name for name, parameter in declared.items() if parameter["default"] is None}
    assert given <= set(declared), f"{symbol} passes unknown parameters {sorted(given - set(declared))}"
    assert required <= given, f"{symbol} leaves out required parameters {sorted(required - given)}"


def test_the_entry_point_passes_every_parameter_through_unchanged() -> None:
    main, resources = by_name("main.bicep"), by_name("resources.bicep")
    assert main["globals"]["scope"]["value"] == "subscription"
    assert resources["globals"]["scope"]["value"] == "resourceGroup"
    assert set(main["parameters"]) == PARAMETERS
    assert set(resources["parameters"]) == PARAMETERS
    passed = main["modules"]["resources"]["config"]["params"]
    assert passed == {name: name for name in PARAMETERS}


@pytest.mark.parametrize("name", ["main.bicep", "resources.bicep", "app/keyvault.bicep"])
def test_secrets_are_secure_parameters(name: str) -> None:
    parameters = by_name(name)["parameters"]
    for secret in SECURE_PARAMETERS:
        assert "secure" in decorators(parameters[secret]), f"{secret} in {name} must be @secure()"


def test_python_version_is_3_11_or_3_12_and_3_11_by_default() -> None:
    for name in ("main.bicep", "resources.bicep", "app/function.bicep"):
        parameter = by_name(name)["parameters"]["pythonVersion"]
        assert decorators(parameter)["allowed"] == ["3.11", "3.12"], name
        assert parameter["default"] == "3.11", name


def test_the_storage_sku_is_a_parameter_zone_redundant_by_default() -> None:
    for name in ("main.bicep", "resources.bicep"):
        parameter = by_name(name)["parameters"]["storageSku"]
        assert decorators(parameter)["allowed"] == STORAGE_SKUS, name
        assert parameter["default"] == "Standard_ZRS", name
    module = by_name("resources.bicep")["modules"]["storage"]["config"]["params"]
    assert module["skuName"] == "storageSku"
    sku = by_name("app/storage.bicep")["parameters"]["skuName"]
    assert decorators(sku)["allowed"] == STORAGE_SKUS
    account = by_name("app/storage.bicep")["resources"]["account"]["config"]
    assert account["sku"]["name"] == "skuName"
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["storageSku"]["value"] == "${STORAGE_SKU=Standard_ZRS}"


def test_the_session_secret_is_generated_by_azd_long_enough_for_the_app() -> None:
    from shared.config import ConfigurationError, Settings

    parameter = by_name("main.bicep")["parameters"]["sessionSecret"]
    generate = decorators(parameter)["metadata"]["azd"]
    assert generate["type"] == "generate"
    length = generate["config"]["length"]
    assert decorators(parameter)["min_length"] == 32
    # The app refuses a shorter one (Settings.validate); a generated one of this length passes.
    Settings(storage_account_url="https://x", session_secret="x" * length).validate()
    with pytest.raises(ConfigurationError):
        Settings(storage_account_url="https://x", session_secret="x" * 31).validate()


def test_main_parameters_json_gives_every_parameter_azd_cannot_generate() -> None:
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = by_name("main.bicep")["parameters"]
    assert set(parameters) <= set(declared)
    # sessionSecret is left to azd's generator, so that it is made once per environment and kept.
    assert set(declared) - set(parameters) == {"sessionSecret"}
    assert parameters["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert parameters["location"]["value"] == "${AZURE_LOCATION}"
    for secret in SECURE_PARAMETERS & set(parameters):
        # Only a reference to the azd environment, never a value.
        assert re.fullmatch(r"\$\{[A-Z_]+=?\}", parameters[secret]["value"]), secret


def test_both_templates_give_the_outputs_the_scripts_read() -> None:
    main = set(by_name("main.bicep")["outputs"])
    resources = set(by_name("resources.bicep")["outputs"])
    assert main == OUTPUTS
    assert resources == OUTPUTS - ENTRY_POINT_ONLY
    for name in OUTPUTS - ENTRY_POINT_ONLY - {"AZURE_RESOURCE_GROUP"}:
        value = by_name("main.bicep")["outputs"][name]["value"]
        assert value["operator"]["operands"]["operand_1"] == "resources", f"{name} is not passed through"


def test_infra_readme_lists_every_output_and_parameter() -> None:
    readme = (INFRA / "README.md").read_text()
    missing = {name for name in OUTPUTS | PARAMETERS if f"`{name}`" not in readme}
    assert not missing, f"explain in infra/README.md: {sorted(missing)}"


def test_azure_yaml_deploys_this_folder_as_a_python_function_app() -> None:
    text = (ROOT / "azure.yaml").read_text()
    services = text[text.index("services:") :]
    assert re.search(r"^  api:\n    project: \.\n    language: python\n    host: function$", services, re.M)
    assert "path: infra" in text
    site_tags = by_name("app/function.bicep")["resources"]["site"]["config"]["tags"]
    assert site_tags["function"]["parameters"]["arg_2"] == {"'azd-service-name'": "api"}
