"""A recording stand-in for the `az` and `func` CLIs, so that infra/*.sh run end to end without Azure.

The tests put two shims first on PATH, `az` and `func`, that run this file as
`python fake_az.py az|func ARGS...`. Each invocation:

1. is parsed the way the real CLI's argparse parser would parse it, from `az_commands.json`: the options,
   value counts, required options and choices of every command the scripts and the README use, extracted
   from the real azure-cli (`make check-az` compares the table with it and runs the real parser over every
   call the tests recorded, see infra/README.md). An unknown command or option, a missing required option or
   a value outside the choices fails with exit status 2, as az does;
2. is recorded (argv, working directory, and the content and mode of every file an argument names) in the JSON
   lines file FAKE_AZ_LOG, and in AZ_CALLS_EXPORT too when `make check-az` sets it;
3. is answered from a small model of the tenant and the subscription kept in the JSON file FAKE_AZ_STATE:
   app registrations, service principals, federated credentials, client secrets, resource groups,
   deployments. The answer is the object the real command returns, filtered by `--query` with JMESPath (as
   knack does, with ordered objects) and printed in the `-o` format with knack's rules.

Entra ID's eventual consistency is modelled too: for `state["propagation_lag"]` calls after an app is created,
every call that names it by `--id` fails with Graph's "does not exist" message.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jmespath

HERE = Path(__file__).resolve().parent
TABLE = HERE / "az_commands.json"
SUBSCRIPTION_SCOPE = re.compile(r"^\s*targetScope\s*=\s*'subscription'", re.MULTILINE)
GRAPH_NOT_FOUND = (
    "Resource '{}' does not exist or one of its queried reference-property objects are not present."
)
# The template's parameters and outputs as agreed with infra/resources.bicep (the template the az path deploys
# into a resource group); the real file is read when present.
CONTRACT_PARAMETERS = {
    "environmentName": True,
    "location": True,
    "publisherTenantId": True,
    "fulfillmentClientId": True,
    "ssoClientId": True,
    "alertEmail": True,
    "sessionSecret": True,
    "ssoClientSecret": False,
    "pythonVersion": False,
    "storageSku": False,
}
CONTRACT_OUTPUTS = (
    "AZURE_FUNCTION_APP_NAME",
    "FUNCTION_APP_HOSTNAME",
    "KEY_VAULT_NAME",
    "MANAGED_IDENTITY_CLIENT_ID",
    "MANAGED_IDENTITY_PRINCIPAL_ID",
    "SERVICEBUS_NAMESPACE",
)


class CliError(Exception):
    """What az prints as `ERROR: ...`, with its exit status (2 for arguments, 1 for everything else)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


# --- Argument parsing, as argparse does it for az's commands.


def load_table(path: Path = TABLE) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _is_option(token: str) -> bool:
    return token.startswith("-") and len(token) > 1 and not re.fullmatch(r"-\d+(\.\d+)?", token)


def split_command(commands: dict[str, Any], argv: list[str]) -> tuple[str, list[str]]:
    """The longest command of the table that argv starts with, and the arguments after it."""
    words: list[str] = []
    for token in argv:
        if _is_option(token):
            break
        words.append(token)
    for size in range(len(words), 0, -1):
        name = " ".join(words[:size])
        if name in commands:
            return name, argv[size:]
    raise CliError(
        f"'{' '.join(words)}' is not a command of the table tests/infra_scripts/az_commands.json "
        "(add it, then run `make check-az` to check it against the real CLI)",
        2,
    )


def parse_arguments(spec: list[dict[str, Any]], tokens: list[str]) -> dict[str, Any]:
    """{dest: value} as argparse would produce it; CliError(status 2) where argparse would stop."""
    by_option = {option: argument for argument in spec for option in argument.get("options", [])}
    values: dict[str, Any] = {}
    stray: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if not _is_option(token):
            stray.append(token)
            continue
        name, equals, inline = token.partition("=") if token.startswith("--") else (token, "", "")
        argument = by_option.get(name)
        if argument is None:
            raise CliError(f"unrecognized arguments: {token}", 2)
        if argument["dest"] == "help":
            raise CliError("--help shows help instead of running the command", 2)
        nargs = argument["nargs"]
        run: list[str] = []
        if equals:
            run = [inline]
        else:
            while index < len(tokens) and not _is_option(tokens[index]):
                run.append(tokens[index])
                index += 1
        taken, rest = _take(nargs, run, name)
        stray.extend(rest)
        for value in taken:
            choices = argument.get("choices")
            if choices and value not in choices:
                raise CliError(f"argument {name}: invalid choice: '{value}' (choose from {choices})", 2)
        many = nargs in ("*", "+") or (isinstance(nargs, int) and nargs > 1)
        value: Any = taken if many else (taken[0] if taken else True)
        if argument.get("append"):
            values.setdefault(argument["dest"], []).append(value)
        else:
            values[argument["dest"]] = value
    if stray:
        raise CliError(f"unrecognized arguments: {' '.join(stray)}", 2)
    missing = [
        "/".join(argument["options"])
        for argument in spec
        if argument.get("required") and argument["dest"] not in values
    ]
    if missing:
        raise CliError(f"the following arguments are required: {', '.join(missing)}", 2)
    return values


def _take(nargs: Any, run: list[str], name: str) -> tuple[list[str], list[str]]:
    if nargs == 0:
        return [], run
    if nargs is None:
        if not run:
            raise CliError(f"argument {name}: expected one argument", 2)
        return run[:1], run[1:]
    if nargs == "?":
        return run[:1], run[1:]
    if nargs == "*":
        return run, []
    if nargs == "+":
        if not run:
            raise CliError(f"argument {name}: expected at least one argument", 2)
        return run, []
    if len(run) < nargs:
        raise CliError(f"argument {name}: expected {nargs} arguments", 2)
    return run[:nargs], run[nargs:]


# --- Output, as knack prints it.


def query(result: Any, expression: str | None) -> Any:
    if expression is None:
        return result
    return jmespath.search(expression, result, jmespath.Options(dict_cls=OrderedDict))


def format_output(result: Any, output: str) -> str:
    if result is None or output == "none":
        return ""
    if output == "tsv":
        return "".join(_tsv_row(row) for row in (result if isinstance(result, list) else [result]))
    return json.dumps(result, ensure_ascii=False, indent=2, sort_keys=True, separators=(",", ": ")) + "\n"


def _tsv_cell(value: Any) -> str:
    if isinstance(value, list):
        return str(len(value))
    if isinstance(value, dict):
        return ""
    return value if isinstance(value, str) else str(value)


def _tsv_row(row: Any) -> str:
    if isinstance(row, OrderedDict):
        cells = [_tsv_cell(value) for value in row.values()]
    elif isinstance(row, dict):
        cells = [_tsv_cell(value) for _, value in sorted(row.items())]
    elif isinstance(row, list):
        cells = [_tsv_cell(value) for value in row]
    elif isinstance(row, bool):
        cells = [str(row).lower()]
    else:
        cells = [_tsv_cell(row)]
    return "\t".join(cells) + "\n"


# --- The model of the tenant and the subscription.


class World:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        for key, empty in (
            ("applications", []),
            ("servicePrincipals", []),
            ("lag", {}),
            ("groups", {}),
            ("deployments", []),
            ("publishes", []),
        ):
            self.data.setdefault(key, empty)

    def save(self) -> None:
        self.path.write_text(json.dumps(self.data, indent=2), encoding="utf-8")

    @property
    def tenant(self) -> str:
        return str(self.data["account"]["tenantId"])

    def app(self, key: str) -> dict[str, Any]:
        """The app whose appId, object id or identifier URI is `key`, after any propagation lag."""
        for app in self.data["applications"]:
            if key in (app["appId"], app["id"], *app.get("identifierUris", [])):
                lag = self.data["lag"].get(app["appId"], 0)
                if lag > 0:
                    self.data["lag"][app["appId"]] = lag - 1
                    raise CliError(GRAPH_NOT_FOUND.format(key))
                return app
        raise CliError(GRAPH_NOT_FOUND.format(key))


def _odata_filter(expression: str) -> tuple[str, str]:
    match = re.fullmatch(r"\s*(displayName|appId)\s+eq\s+'((?:[^']|'')*)'\s*", expression)
    if not match:
        raise CliError(f"the stand-in does not model the filter {expression!r}")
    return match.group(1), match.group(2).replace("''", "'")


def _json_argument(value: str) -> Any:
    """What az reads from an argument that is a JSON file path or in-line JSON."""
    path = Path(value)
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise CliError(f"Failed to parse string as JSON: {value}") from exc


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def need(args: dict[str, Any], dest: str, option: str) -> Any:
    """An argument the command cannot run without (az checks many of these after parsing)."""
    if dest not in args:
        raise CliError(f"{option} is required", 2)
    return args[dest]


Handler = Callable[[World, dict[str, Any]], Any]
HANDLERS: dict[str, Handler] = {}


def handles(command: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        HANDLERS[command] = handler
        return handler

    return register


@handles("account show")
def account_show(world: World, args: dict[str, Any]) -> Any:
    return world.data["account"]


@handles("ad app list")
def app_list(world: World, args: dict[str, Any]) -> Any:
    field, value = _odata_filter(need(args, "query_filter", "--filter"))
    return [app for app in world.data["applications"] if app[field].lower() == value.lower()]


@handles("ad app show")
def app_show(world: World, args: dict[str, Any]) -> Any:
    return world.app(need(args, "identifier", "--id"))


@handles("ad app create")
def app_create(world: World, args: dict[str, Any]) -> Any:
    audience = args.get("sign_in_audience", "AzureADMyOrg")
    version = args.get("requested_access_token_version")
    if audience in ("AzureADandPersonalMicrosoftAccount", "PersonalMicrosoftAccount") and str(version) != "2":
        raise CliError("Property api.requestedAccessTokenVersion is invalid.")
    access = (
        _json_argument(args["required_resource_accesses"]) if "required_resource_accesses" in args else []
    )
    if not isinstance(access, list) or not all(
        isinstance(item, dict) and {"resourceAppId", "resourceAccess"} <= set(item) for item in access
    ):
        raise CliError("requiredResourceAccess must be a list of {resourceAppId, resourceAccess}")
    app = {
        "id": str(uuid.uuid4()),
        "appId": str(uuid.uuid4()),
        "displayName": need(args, "display_name", "--display-name"),
        "signInAudience": audience,
        "api": {"requestedAccessTokenVersion": int(version) if version else None},
        "web": {"redirectUris": list(args.get("web_redirect_uris", []))},
        "requiredResourceAccess": access,
        "passwordCredentials": [],
        "federatedIdentityCredentials": [],
        "identifierUris": [],
        "appRoles": [],
    }
    world.data["applications"].append(app)
    world.data["lag"][app["appId"]] = world.data.get("propagation_lag", 0)
    return _public(app)


def _public(app: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in app.items() if key != "federatedIdentityCredentials"}


@handles("ad app update")
def app_update(world: World, args: dict[str, Any]) -> Any:
    app = world.app(need(args, "identifier", "--id"))
    if "web_redirect_uris" in args:
        app["web"]["redirectUris"] = list(args["web_redirect_uris"])
    if "app_roles" in args:
        roles = _json_argument(args["app_roles"])
        if not isinstance(roles, list) or not all(
            {"id", "value", "allowedMemberTypes"} <= set(r) for r in roles
        ):
            raise CliError("appRoles must be a list of {id, value, allowedMemberTypes, ...}")
        kept = {r["id"] for r in roles}
        if any(r.get("isEnabled") and r["id"] not in kept for r in app.get("appRoles", [])):
            # Graph's rule: an enabled role must be disabled before it can be removed.
            raise CliError("CannotDeleteOrUpdateEnabledEntitlement")
        app["appRoles"] = roles
    return None


@handles("ad sp list")
def sp_list(world: World, args: dict[str, Any]) -> Any:
    field, value = _odata_filter(need(args, "query_filter", "--filter"))
    return [sp for sp in world.data["servicePrincipals"] if sp[field].lower() == value.lower()]


@handles("ad sp create")
def sp_create(world: World, args: dict[str, Any]) -> Any:
    app = world.app(need(args, "identifier", "--id"))
    if any(sp["appId"] == app["appId"] for sp in world.data["servicePrincipals"]):
        raise CliError(
            "Another object with the same value for property servicePrincipalNames already exists."
        )
    principal = {
        "id": str(uuid.uuid4()),
        "appId": app["appId"],
        "displayName": app["displayName"],
        "servicePrincipalType": "Application",
        "appOwnerOrganizationId": world.tenant,
    }
    world.data["servicePrincipals"].append(principal)
    return principal


def _federated_credential(world: World, app: dict[str, Any], value: str) -> dict[str, Any]:
    credential = _json_argument(value)
    if not isinstance(credential, dict) or not {"name", "issuer", "subject", "audiences"} <= set(credential):
        raise CliError("a federated identity credential needs name, issuer, subject and audiences")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{2,119}", credential["name"]):
        raise CliError(f"invalid federated identity credential name {credential['name']!r}")
    if not isinstance(credential["audiences"], list) or len(credential["audiences"]) != 1:
        raise CliError("audiences must hold exactly one value")
    return {"id": str(uuid.uuid4()), "description": None, **credential}


@handles("ad app federated-credential list")
def fic_list(world: World, args: dict[str, Any]) -> Any:
    return world.app(need(args, "app_identifier", "--id"))["federatedIdentityCredentials"]


@handles("ad app federated-credential create")
def fic_create(world: World, args: dict[str, Any]) -> Any:
    app = world.app(need(args, "app_identifier", "--id"))
    credential = _federated_credential(world, app, need(args, "parameters", "--parameters"))
    for existing in app["federatedIdentityCredentials"]:
        if existing["name"] == credential["name"]:
            raise CliError(f"FederatedIdentityCredential with name {credential['name']} already exists.")
        if (existing["issuer"], existing["subject"]) == (credential["issuer"], credential["subject"]):
            raise CliError("FederatedIdentityCredential with the same issuer and subject already exists.")
    app["federatedIdentityCredentials"].append(credential)
    return credential


@handles("ad app federated-credential update")
def fic_update(world: World, args: dict[str, Any]) -> Any:
    app = world.app(need(args, "app_identifier", "--id"))
    key = need(args, "federated_identity_credential_id_or_name", "--federated-credential-id")
    for index, existing in enumerate(app["federatedIdentityCredentials"]):
        if key in (existing["id"], existing["name"]):
            credential = _federated_credential(world, app, need(args, "parameters", "--parameters"))
            credential["id"] = existing["id"]
            app["federatedIdentityCredentials"][index] = credential
            return None
    raise CliError(GRAPH_NOT_FOUND.format(key))


@handles("ad app credential list")
def credential_list(world: World, args: dict[str, Any]) -> Any:
    return [
        dict(item, secretText=None)
        for item in world.app(need(args, "identifier", "--id"))["passwordCredentials"]
    ]


@handles("ad app credential reset")
def credential_reset(world: World, args: dict[str, Any]) -> Any:
    app = world.app(need(args, "identifier", "--id"))
    password = secrets.token_urlsafe(30)
    start = _now()
    credential = {
        "customKeyIdentifier": None,
        "displayName": args.get("display_name"),
        "endDateTime": (start + timedelta(days=365 * int(args.get("years", 1))))
        .isoformat()
        .replace("+00:00", "Z"),
        "hint": password[:3],
        "keyId": str(uuid.uuid4()),
        "startDateTime": start.isoformat().replace("+00:00", "Z"),
    }
    if args.get("append") is not True:
        app["passwordCredentials"] = []
    app["passwordCredentials"].append(credential)
    world.data.setdefault("issued_passwords", []).append(password)
    print(
        "WARNING: The output includes credentials that you must protect. Be sure that you do not include"
        " these credentials in your code or check the credentials into your source control.",
        file=sys.stderr,
    )
    return {"appId": app["appId"], "password": password, "tenant": world.tenant}


@handles("group create")
def group_create(world: World, args: dict[str, Any]) -> Any:
    name = need(args, "rg_name", "--name")
    subscription = world.data["account"]["id"]
    group = {
        "id": f"/subscriptions/{subscription}/resourceGroups/{name}",
        "location": need(args, "location", "--location"),
        "name": name,
        "properties": {"provisioningState": "Succeeded"},
        "tags": dict(tag.split("=", 1) for tag in args.get("tags", []) if "=" in tag),
    }
    world.data["groups"][name] = group
    return group


def template_interface(template: Path) -> tuple[dict[str, bool], tuple[str, ...]]:
    """{parameter: required} and the output names of a Bicep template (its `param` and `output` lines)."""
    text = template.read_text(encoding="utf-8")
    parameters = {
        match.group(1): not (match.group(2) or match.group(3))
        for match in re.finditer(r"^\s*param\s+(\w+)\s+[\w.']+(\?)?[^=\n]*(=)?", text, re.MULTILINE)
    }
    outputs = tuple(re.findall(r"^\s*output\s+(\w+)\s", text, re.MULTILINE))
    return parameters, outputs


def arm_case(name: str) -> str:
    """How ARM gives back an output name: its leading capitals but the last in lower case."""
    match = re.match(r"[A-Z]+", name)
    if not match or len(match.group(0)) < 2:
        return name[:1].lower() + name[1:]
    run = match.group(0)
    return run[:-1].lower() + name[len(run) - 1 :]


def _parameters(world: World, groups: list[list[str]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for group in groups:
        for item in group:
            if item.startswith("@") or Path(item).is_file():
                document = json.loads(Path(item.removeprefix("@")).read_text(encoding="utf-8"))
                for name, entry in document.get("parameters", document).items():
                    values[name] = entry["value"]
            elif "=" in item:
                name, _, value = item.partition("=")
                values[name] = value
            else:
                raise CliError(f"Unable to parse parameter: {item}")
    return values


@handles("deployment group create")
def deployment_create(world: World, args: dict[str, Any]) -> Any:
    group = need(args, "resource_group_name", "--resource-group")
    if group not in world.data["groups"]:
        raise CliError(f"Resource group '{group}' could not be found.")
    template = Path(need(args, "template_file", "--template-file"))
    if not template.is_file():
        raise CliError(f"{template} does not exist")
    if SUBSCRIPTION_SCOPE.search(template.read_text(encoding="utf-8")):
        # ARM validates the scope before anything else: a subscription-scope template (one that creates the
        # resource group, like infra/main.bicep) cannot be deployed into a resource group.
        raise CliError(
            "(InvalidSchema) The template schema 'https://schema.management.azure.com/schemas/2018-05-01/"
            "subscriptionDeploymentTemplate.json#' is not supported. Supported versions are "
            "'2014-04-01-preview,2015-01-01,2019-04-01'. Please use one of the supported schema versions "
            "for deployment."
        )
    declared, outputs = template_interface(template)
    given = _parameters(world, args.get("parameters", []))
    unknown = sorted(set(given) - set(declared))
    missing = sorted(name for name, required in declared.items() if required and name not in given)
    if unknown:
        raise CliError(f"The template parameters {unknown} are not present in the original template")
    if missing:
        raise CliError(f"The template parameters {missing} have no value")
    env = given["environmentName"]
    identity = world.data.get("identity", {})
    canned = {
        "AZURE_FUNCTION_APP_NAME": f"func-{env}",
        "FUNCTION_APP_HOSTNAME": f"func-{env}.azurewebsites.net",
        "KEY_VAULT_NAME": f"kv-{env}",
        "MANAGED_IDENTITY_CLIENT_ID": identity.get("clientId", "11111111-1111-1111-1111-111111111111"),
        "MANAGED_IDENTITY_PRINCIPAL_ID": identity.get("principalId", "22222222-2222-2222-2222-222222222222"),
        "SERVICEBUS_NAMESPACE": f"sb-{env}",
    }
    world.data.setdefault("function_apps", []).append(canned["AZURE_FUNCTION_APP_NAME"])
    name = args.get("deployment_name")
    world.data["deployments"].append({"resourceGroup": group, "name": name, "parameters": given})
    return {
        "id": f"{world.data['groups'][group]['id']}/providers/Microsoft.Resources/deployments/{name}",
        "name": name,
        "properties": {
            "provisioningState": "Succeeded",
            "outputs": {
                arm_case(output): {"type": "String", "value": canned.get(output, "x")} for output in outputs
            },
        },
    }


def func_publish(world: World, argv: list[str], cwd: Path) -> None:
    """`func azure functionapp publish NAME [--python] [--build remote|local]`, as Core Tools parses it."""
    if argv[:3] != ["azure", "functionapp", "publish"] or len(argv) < 4 or _is_option(argv[3]):
        raise CliError(f"the stand-in knows only `func azure functionapp publish <name>`: {argv}", 2)
    options = argv[4:]
    allowed = {"--python": 0, "--build": 1, "--no-build": 0, "--force": 0}
    index = 0
    while index < len(options):
        option = options[index]
        if option not in allowed:
            raise CliError(f"unknown option {option} for func azure functionapp publish", 2)
        index += 1 + allowed[option]
    for needed in ("host.json", "function_app.py", "requirements.txt", ".funcignore"):
        if not (cwd / needed).is_file():
            raise CliError(f"Unable to find project root: {needed} is missing in {cwd}")
    if argv[3] not in world.data.get("function_apps", []):
        raise CliError(f'Can\'t find app with name "{argv[3]}"')
    failures = world.data.get("publish_failures", 0)
    if failures:
        world.data["publish_failures"] = failures - 1
        raise CliError(
            "Error uploading archive (403): the identity cannot write to the deployment storage yet"
        )
    world.data["publishes"].append({"app": argv[3], "cwd": str(cwd)})
    print(f"Deployment successful. Functions in {argv[3]}:")


# --- Entry point.


def _files_named(argv: list[str]) -> Iterator[tuple[str, Path]]:
    for token in argv:
        path = Path(token.removeprefix("@"))
        if token and path.is_absolute() and path.is_file():
            yield token, path


def main(argv: list[str]) -> int:
    tool, arguments = argv[0], argv[1:]
    record: dict[str, Any] = {
        "tool": tool,
        "argv": arguments,
        "cwd": os.getcwd(),
        "files": {
            token: {"content": path.read_text(encoding="utf-8"), "mode": oct(path.stat().st_mode & 0o777)}
            for token, path in _files_named(arguments)
        },
    }
    world = World(Path(os.environ["FAKE_AZ_STATE"]))
    status = 0
    try:
        if tool == "func":
            func_publish(world, arguments, Path.cwd())
        else:
            commands = load_table()["commands"]
            name, rest = split_command(commands, arguments)
            record["command"] = name
            args = parse_arguments(commands[name], rest)
            handler = HANDLERS.get(name)
            if handler is None:
                raise CliError(f"the stand-in parses `az {name}` but does not model it")
            result = query(handler(world, args), args.get("_jmespath_query"))
            sys.stdout.write(format_output(result, args.get("_output_format", "json")))
    except CliError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        status = exc.status
    finally:
        world.save()
        record["status"] = status
        line = json.dumps(record) + "\n"
        for log in (os.environ["FAKE_AZ_LOG"], os.environ.get("AZ_CALLS_EXPORT")):
            if log:  # AZ_CALLS_EXPORT: `make check-az` collects every call for the real parser
                with Path(log).open("a", encoding="utf-8") as file:
                    file.write(line)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
