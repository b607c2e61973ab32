"""infra/register-apps.sh against the recording stand-in: what it creates in an empty tenant, that a second
run creates nothing, the federated credential the managed identity needs, and the refusals."""

from __future__ import annotations

import json
import stat

from tests.infra_scripts.conftest import ENV_NAME, TENANT, Cloud

FULFILLMENT = f"{ENV_NAME}-fulfillment"
SIGNIN = f"{ENV_NAME}-signin"
PRINCIPAL = "3c4d5e6f-aaaa-4bbb-8ccc-0d1e2f3a4b5c"
HOST = "func-contoso-saas.azurewebsites.net"
CHANGES = ("create", "update", "reset", "delete")
GRAPH = "00000003-0000-0000-c000-000000000000"
SIGN_IN_SCOPES = {  # openid, profile, email, User.Read
    "37f7f235-527c-4136-accd-4a02d197296e",
    "14dad69e-099b-42c9-810b-d002981feec1",
    "64a6cdd6-aab1-4aaf-94b8-3cc8405e90d0",
    "e1fe6dd8-ba31-4d61-89e7-88639da4683d",
}


def changes(cloud: Cloud) -> list[str]:
    return [command for command in cloud.commands() if command.split()[-1] in CHANGES]


def argv_of(cloud: Cloud, command: str) -> list[list[str]]:
    return [call["argv"] for call in cloud.calls() if call.get("command") == command]


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_an_empty_tenant_gets_both_apps_the_principal_and_a_secret_nobody_sees(cloud: Cloud) -> None:
    run = cloud.run("register-apps.sh")

    fulfillment = cloud.app_named(FULFILLMENT)
    signin = cloud.app_named(SIGNIN)
    assert fulfillment["signInAudience"] == "AzureADMyOrg"
    assert signin["signInAudience"] == "AzureADandPersonalMicrosoftAccount"
    assert signin["api"]["requestedAccessTokenVersion"] == 2
    (graph,) = signin["requiredResourceAccess"]
    assert graph["resourceAppId"] == GRAPH
    assert {access["id"] for access in graph["resourceAccess"]} == SIGN_IN_SCOPES
    assert {access["type"] for access in graph["resourceAccess"]} == {"Scope"}
    # R45: the app registered in Partner Center has a service principal in its own tenant.
    assert [sp["appId"] for sp in cloud.state["servicePrincipals"]] == [fulfillment["appId"]]
    assert argv_of(cloud, "ad sp create") == [
        ["ad", "sp", "create", "--id", fulfillment["appId"], "--query", "id", "-o", "tsv"]
    ]
    # The console's roles, which the app counts only for staff of this tenant (shared/domain/operators.py).
    assert {(r["value"], r["isEnabled"], tuple(r["allowedMemberTypes"])) for r in signin["appRoles"]} == {
        ("Publisher.Admin", True, ("User",)),
        ("Publisher.Reader", True, ("User",)),
    }
    assert fulfillment["appRoles"] == []
    # No managed identity and no host yet: neither a federated credential nor a redirect URI.
    assert fulfillment["federatedIdentityCredentials"] == []
    assert signin["web"]["redirectUris"] == []

    (password,) = cloud.state["issued_passwords"]
    secret_file = cloud.state_dir / "sso-client-secret"
    assert secret_file.read_text().strip() == password
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert password not in run.stdout + run.stderr
    assert all(password not in " ".join(call["argv"]) for call in cloud.calls())
    (reset,) = argv_of(cloud, "ad app credential reset")
    assert "--append" in reset  # never replaces credentials someone else made

    assert (cloud.state_dir / "apps.env").read_text().splitlines() == [
        f"PUBLISHER_TENANT_ID={TENANT}",
        f"FULFILLMENT_CLIENT_ID={fulfillment['appId']}",
        f"SSO_CLIENT_ID={signin['appId']}",
    ]
    assert f"Microsoft Entra tenant ID        {TENANT}" in run.stdout
    assert f"Microsoft Entra application ID   {fulfillment['appId']}" in run.stdout


def test_a_second_run_finds_everything_and_changes_nothing(cloud: Cloud) -> None:
    cloud.run("register-apps.sh", MANAGED_IDENTITY_PRINCIPAL_ID=PRINCIPAL, FUNCTION_APP_HOSTNAME=HOST)
    before = cloud.state
    cloud.forget_calls()

    run = cloud.run("register-apps.sh", MANAGED_IDENTITY_PRINCIPAL_ID=PRINCIPAL, FUNCTION_APP_HOSTNAME=HOST)

    assert changes(cloud) == []
    after = cloud.state
    assert after["applications"] == before["applications"]
    assert after["servicePrincipals"] == before["servicePrincipals"]
    assert "found" in run.stdout
    assert "created" not in run.stdout


def test_the_federated_credential_trusts_the_managed_identity_as_the_code_asks_for_it(cloud: Cloud) -> None:
    cloud.run("register-apps.sh", MANAGED_IDENTITY_PRINCIPAL_ID=PRINCIPAL)

    (credential,) = cloud.app_named(FULFILLMENT)["federatedIdentityCredentials"]
    # shared/fulfillment/credentials.py: ManagedIdentityCredential(client_id=MANAGED_IDENTITY_CLIENT_ID) gets
    # a token for api://AzureADTokenExchange; Entra issues it with iss = the tenant's v2.0 authority and
    # sub = the identity's object (principal) id.
    assert credential["issuer"] == f"https://login.microsoftonline.com/{TENANT}/v2.0"
    assert credential["subject"] == PRINCIPAL
    assert credential["audiences"] == ["api://AzureADTokenExchange"]
    (call,) = [call for call in cloud.calls() if call.get("command") == "ad app federated-credential create"]
    assert option(call["argv"], "--id") == cloud.app_named(FULFILLMENT)["appId"]
    sent = call["files"][option(call["argv"], "--parameters")]
    assert json.loads(sent["content"])["subject"] == PRINCIPAL


def test_a_new_managed_identity_moves_the_credential_instead_of_adding_one(cloud: Cloud) -> None:
    cloud.run("register-apps.sh", MANAGED_IDENTITY_PRINCIPAL_ID=PRINCIPAL)
    cloud.forget_calls()

    replacement = "9f8e7d6c-bbbb-4ccc-8ddd-5e4f3a2b1c0d"
    cloud.run("register-apps.sh", MANAGED_IDENTITY_PRINCIPAL_ID=replacement)

    (credential,) = cloud.app_named(FULFILLMENT)["federatedIdentityCredentials"]
    assert credential["subject"] == replacement
    assert changes(cloud) == ["ad app federated-credential update"]


def test_the_redirect_uri_is_added_beside_the_ones_already_there(cloud: Cloud) -> None:
    cloud.run("register-apps.sh")
    cloud.forget_calls()
    signin = cloud.app_named(SIGNIN)
    state = cloud.state
    for app in state["applications"]:
        if app["appId"] == signin["appId"]:
            app["web"]["redirectUris"] = ["https://staging.contoso.example/api/auth/callback"]
    cloud.change(applications=state["applications"])

    run = cloud.run("register-apps.sh", FUNCTION_APP_HOSTNAME=HOST)

    assert cloud.app_named(SIGNIN)["web"]["redirectUris"] == [
        "https://staging.contoso.example/api/auth/callback",
        f"https://{HOST}/api/auth/callback",
    ]
    assert changes(cloud) == ["ad app update"]
    assert f"Landing page URL                 https://{HOST}/api/landing" in run.stdout
    assert f"Connection webhook               https://{HOST}/api/webhook" in run.stdout


def test_graph_propagation_delays_are_waited_out(cloud: Cloud) -> None:
    cloud.change(propagation_lag=3)

    run = cloud.run("register-apps.sh", MANAGED_IDENTITY_PRINCIPAL_ID=PRINCIPAL)

    fulfillment = cloud.app_named(FULFILLMENT)
    assert [sp["appId"] for sp in cloud.state["servicePrincipals"]] == [fulfillment["appId"]]
    attempts = [call["status"] for call in cloud.calls() if call.get("command") == "ad sp create"]
    assert attempts == [1, 1, 1, 0]
    assert run.stderr.count("has not propagated it yet") >= 3


def test_graph_propagation_that_outlasts_the_retries_fails_with_azs_message(cloud: Cloud) -> None:
    cloud.change(propagation_lag=10)

    run = cloud.run("register-apps.sh", check=False)

    assert run.returncode != 0
    assert "does not exist" in run.stderr
    assert (
        sum(1 for call in cloud.calls() if call.get("command") == "ad sp create") == 5
    )  # 4 delays, then done


def test_a_rotation_adds_a_secret_and_names_the_old_ones(cloud: Cloud) -> None:
    cloud.run("register-apps.sh")
    first = cloud.app_named(SIGNIN)["passwordCredentials"][0]["keyId"]

    run = cloud.run("register-apps.sh", ROTATE_SSO_SECRET="1")

    assert len(cloud.app_named(SIGNIN)["passwordCredentials"]) == 2
    newest = cloud.state["issued_passwords"][-1]
    assert (cloud.state_dir / "sso-client-secret").read_text().strip() == newest
    assert f"--key-id {first}" in run.stdout


def test_an_app_with_the_wrong_audience_is_reported_not_changed(cloud: Cloud) -> None:
    cloud.run("register-apps.sh")
    state = cloud.state
    for app in state["applications"]:
        if app["displayName"] == FULFILLMENT:
            app["signInAudience"] = "AzureADMultipleOrgs"
    cloud.change(applications=state["applications"])
    cloud.forget_calls()

    run = cloud.run("register-apps.sh", check=False)

    assert run.returncode != 0
    assert "AzureADMultipleOrgs, not AzureADMyOrg" in run.stderr
    assert changes(cloud) == []


def test_two_apps_with_the_same_name_stop_the_script(cloud: Cloud) -> None:
    cloud.run("register-apps.sh")
    state = cloud.state
    twin = dict(cloud.app_named(FULFILLMENT), appId="0badc0de-0000-4000-8000-000000000000", id="x")
    cloud.change(applications=[*state["applications"], twin])

    run = cloud.run("register-apps.sh", check=False)

    assert run.returncode != 0
    assert f"Several app registrations are named '{FULFILLMENT}'" in run.stderr


def test_a_tenant_other_than_the_publishers_is_refused(cloud: Cloud) -> None:
    run = cloud.run(
        "register-apps.sh", check=False, PUBLISHER_TENANT_ID="00000000-0000-0000-0000-00000000beef"
    )

    assert run.returncode != 0
    assert "az login --tenant 00000000-0000-0000-0000-00000000beef" in run.stderr
    assert changes(cloud) == []


def test_values_from_elsewhere_are_checked_before_anything_is_asked(cloud: Cloud) -> None:
    wrong_identity = cloud.run("register-apps.sh", check=False, MANAGED_IDENTITY_PRINCIPAL_ID="func-contoso")
    wrong_host = cloud.run("register-apps.sh", check=False, FUNCTION_APP_HOSTNAME=f"https://{HOST}/")

    assert wrong_identity.returncode == wrong_host.returncode == 2
    assert "a GUID" in wrong_identity.stderr
    assert "no scheme" in wrong_host.stderr
    assert cloud.calls() == []


def test_console_roles_beside_someone_elses_roles_are_left_to_a_person(cloud: Cloud) -> None:
    cloud.run("register-apps.sh")
    theirs = {"id": "0d6f1e2a-1111-4222-8333-444455556666", "value": "Billing.Viewer", "isEnabled": True}
    applications = cloud.state["applications"]
    for app in applications:
        if app["displayName"] == SIGNIN:
            app["appRoles"] = [{**theirs, "allowedMemberTypes": ["User"]}]
    cloud.change(applications=applications)
    cloud.forget_calls()

    run = cloud.run("register-apps.sh")

    assert [r["value"] for r in cloud.app_named(SIGNIN)["appRoles"]] == ["Billing.Viewer"]
    assert "add Publisher.Admin and Publisher.Reader to them by hand" in run.stderr
    assert changes(cloud) == []
