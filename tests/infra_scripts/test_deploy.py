"""infra/deploy.sh end to end against the recording stand-in: the commands in their order, the parameters the
template gets (and how: a private file, never an argument), the finishing touches on the app registrations
from the deployment's outputs, the publish, and a second run that changes nothing in Entra ID."""

from __future__ import annotations

import json
import stat
import subprocess

from tests.infra_scripts.conftest import ENV_NAME, TENANT, Cloud

LOCATION = "westeurope"
ALERTS = "ops@contoso.example"
APP = f"func-{ENV_NAME}"
HOST = f"{APP}.azurewebsites.net"
PRINCIPAL = "6a5b4c3d-cccc-4ddd-8eee-7f8e9d0c1b2a"


def deploy(cloud: Cloud, *, check: bool = True, **env: str):
    return cloud.run("deploy.sh", check=check, AZURE_LOCATION=LOCATION, ALERT_EMAIL=ALERTS, **env)


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_an_empty_subscription_is_deployed_in_order(cloud: Cloud) -> None:
    cloud.change(identity={"principalId": PRINCIPAL, "clientId": "0c1d2e3f-dddd-4eee-8fff-a0b1c2d3e4f5"})

    run = deploy(cloud)

    commands = cloud.commands()
    # Apps first (the template needs their ids), then the group and the deployment, then what the apps need
    # from the deployment's outputs, then the code.
    assert commands.index("ad app create") < commands.index("group create")
    assert commands.index("group create") < commands.index("deployment group create")
    assert commands.index("deployment group create") < commands.index("ad app federated-credential create")
    redirect_update = next(
        i
        for i, call in enumerate(cloud.calls())
        if "--web-redirect-uris" in call["argv"] and "update" in call["argv"]
    )
    deployment_at = next(
        i for i, call in enumerate(cloud.calls()) if call.get("command") == "deployment group create"
    )
    assert deployment_at < redirect_update
    (group,) = [call["argv"] for call in cloud.calls() if call.get("command") == "group create"]
    assert option(group, "--name") == f"rg-{ENV_NAME}"
    assert option(group, "--location") == LOCATION

    (deployment,) = [call for call in cloud.calls() if call.get("command") == "deployment group create"]
    assert option(deployment["argv"], "--resource-group") == f"rg-{ENV_NAME}"
    # The resource-group template: main.bicep is azd's, at subscription scope, and ARM refuses it here.
    assert option(deployment["argv"], "--template-file") == str(cloud.repo / "infra" / "resources.bicep")
    parameters_argument = option(deployment["argv"], "--parameters")
    assert parameters_argument.startswith("@")
    sent = deployment["files"][parameters_argument]
    assert sent["mode"] == "0o600"
    parameters = {name: entry["value"] for name, entry in json.loads(sent["content"])["parameters"].items()}
    fulfillment = cloud.app_named(f"{ENV_NAME}-fulfillment")
    signin = cloud.app_named(f"{ENV_NAME}-signin")
    session_secret = (cloud.state_dir / "session-secret").read_text().strip()
    (sso_secret,) = cloud.state["issued_passwords"]
    assert parameters == {
        "environmentName": ENV_NAME,
        "location": LOCATION,
        "publisherTenantId": TENANT,
        "fulfillmentClientId": fulfillment["appId"],
        "ssoClientId": signin["appId"],
        "alertEmail": ALERTS,
        "sessionSecret": session_secret,
        "ssoClientSecret": sso_secret,
    }
    assert len(session_secret) >= 32  # SESSION_SECRET's minimum (shared/config.py)
    assert stat.S_IMODE((cloud.state_dir / "session-secret").stat().st_mode) == 0o600
    # The parameters file lived in a private temporary folder that is gone.
    assert list(cloud.tmp.iterdir()) == []

    # The outputs came back in ARM's casing (azurE_FUNCTION_APP_NAME) and were still found.
    (credential,) = fulfillment["federatedIdentityCredentials"]
    assert credential["subject"] == PRINCIPAL
    assert credential["issuer"] == f"https://login.microsoftonline.com/{TENANT}/v2.0"
    assert signin["web"]["redirectUris"] == [f"https://{HOST}/api/auth/callback"]

    (publish,) = cloud.calls("func")
    assert publish["argv"] == ["azure", "functionapp", "publish", APP, "--python"]
    assert publish["cwd"] == str(cloud.repo)
    assert cloud.state["publishes"] == [{"app": APP, "cwd": str(cloud.repo)}]

    assert f"Landing page URL                 https://{HOST}/api/landing" in run.stdout
    assert f"Connection webhook               https://{HOST}/api/webhook" in run.stdout
    assert f"Microsoft Entra application ID   {fulfillment['appId']}" in run.stdout

    for secret in (session_secret, sso_secret):
        assert secret not in run.stdout + run.stderr
        for call in cloud.calls() + cloud.calls("func"):
            assert secret not in " ".join(call["argv"])


def test_a_second_deployment_changes_nothing_in_entra_and_keeps_the_secrets(cloud: Cloud) -> None:
    deploy(cloud)
    (first,) = cloud.state["deployments"]
    cloud.forget_calls()

    deploy(cloud)

    changed = [command for command in cloud.commands() if command.startswith("ad ") and "list" not in command]
    assert [command for command in changed if command.split()[-1] in ("create", "update", "reset")] == []
    second = cloud.state["deployments"][-1]
    assert second["parameters"] == first["parameters"]  # same secrets: nobody is signed out by a deployment
    assert len(cloud.state["publishes"]) == 2


def test_a_rotation_is_asked_for_not_implied(cloud: Cloud) -> None:
    deploy(cloud)
    (first,) = cloud.state["deployments"]

    deploy(cloud, ROTATE_SESSION_SECRET="1")

    second = cloud.state["deployments"][-1]
    assert second["parameters"]["sessionSecret"] != first["parameters"]["sessionSecret"]
    assert second["parameters"]["ssoClientSecret"] == first["parameters"]["ssoClientSecret"]


def test_the_storage_redundancy_is_passed_when_asked_for(cloud: Cloud) -> None:
    deploy(cloud, STORAGE_SKU="Standard_LRS")  # a region without availability zones

    (deployment,) = cloud.state["deployments"]
    assert deployment["parameters"]["storageSku"] == "Standard_LRS"


def test_a_first_publish_refused_by_storage_is_tried_again(cloud: Cloud) -> None:
    cloud.change(publish_failures=1)

    run = deploy(cloud)

    assert [call["status"] for call in cloud.calls("func")] == [1, 0]
    assert "trying again" in run.stderr


def test_publishing_gives_up_after_the_last_delay(cloud: Cloud) -> None:
    cloud.change(publish_failures=5)

    run = deploy(cloud, check=False)

    assert run.returncode != 0
    assert len(cloud.calls("func")) == 3  # PUBLISH_RETRY_DELAYS="0 0": three attempts
    assert "run infra/deploy.sh again" in run.stderr


def test_without_the_sign_in_secret_on_this_machine_nothing_is_deployed(cloud: Cloud) -> None:
    cloud.run("register-apps.sh")
    (cloud.state_dir / "sso-client-secret").unlink()
    cloud.forget_calls()

    run = deploy(cloud, check=False)

    assert run.returncode != 0
    assert "ROTATE_SSO_SECRET=1" in run.stderr
    assert "deployment group create" not in cloud.commands()


def test_missing_settings_are_named(cloud: Cloud) -> None:
    run = cloud.run("deploy.sh", check=False, AZURE_LOCATION=LOCATION)

    assert run.returncode != 0
    assert "ALERT_EMAIL" in run.stderr
    assert cloud.calls() == []


def test_a_subscription_scope_template_is_refused_at_group_scope(cloud: Cloud) -> None:
    """As ARM does (InvalidSchema): `az deployment group create` cannot take main.bicep, made for azd."""
    (cloud.repo / "params.json").write_text('{"parameters": {}}', encoding="utf-8")
    cloud.change(groups={f"rg-{ENV_NAME}": {"id": f"/subscriptions/x/resourceGroups/rg-{ENV_NAME}"}})

    refused = subprocess.run(
        [
            "az",
            "deployment",
            "group",
            "create",
            "--resource-group",
            f"rg-{ENV_NAME}",
            "--name",
            ENV_NAME,
            "--template-file",
            str(cloud.repo / "infra" / "main.bicep"),
            "--parameters",
            f"@{cloud.repo / 'params.json'}",
        ],
        cwd=cloud.repo,
        env=cloud.env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert refused.returncode == 1
    assert "InvalidSchema" in refused.stderr
    assert "subscriptionDeploymentTemplate" in refused.stderr
    assert cloud.state["deployments"] == []
