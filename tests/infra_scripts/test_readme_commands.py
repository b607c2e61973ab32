"""The shell blocks of README.md and infra/README.md can be pasted as they are: bash parses them, shellcheck
finds nothing, they hold no <placeholder> to fill in, and every az command in them parses the way the real CLI
parses it (the stand-in's table; `make check-az` runs them through azure-cli itself)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from tests.infra_scripts.fake_az import load_table, parse_arguments, split_command
from tests.infra_scripts.shell_blocks import (
    DOCS_WITH_COMMANDS,
    ROOT,
    az_commands_in_docs,
    commands_of,
    logical_lines,
    shell_blocks,
)

BLOCKS = [(f"{doc}:{line}", code) for doc in DOCS_WITH_COMMANDS for line, code in shell_blocks(ROOT / doc)]
PLACEHOLDER = re.compile(r"<[a-z][a-z -]*>")
# The azd environment values the README's azd path sets, and the template parameters they must feed.
AZD_VALUES = {
    "AZURE_ENV_NAME": "environmentName",
    "AZURE_LOCATION": "location",
    "PUBLISHER_TENANT_ID": "publisherTenantId",
    "FULFILLMENT_CLIENT_ID": "fulfillmentClientId",
    "SSO_CLIENT_ID": "ssoClientId",
    "ALERT_EMAIL": "alertEmail",
    "SSO_CLIENT_SECRET": "ssoClientSecret",
}


def test_the_docs_have_deployment_blocks() -> None:
    assert len(BLOCKS) >= 5
    assert any("infra/deploy.sh" in code for _, code in BLOCKS)


@pytest.mark.parametrize(("where", "code"), BLOCKS, ids=[where for where, _ in BLOCKS])
def test_bash_parses_the_block(where: str, code: str) -> None:
    checked = subprocess.run(["bash", "-n"], input=code, capture_output=True, text=True, check=False)
    assert checked.returncode == 0, f"{where}: {checked.stderr}"


@pytest.mark.parametrize(("where", "code"), BLOCKS, ids=[where for where, _ in BLOCKS])
def test_shellcheck_finds_nothing(where: str, code: str) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (CI installs it: .ci/run)")
    checked = subprocess.run(
        ["shellcheck", "--shell=bash", "-"], input=code, capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, f"{where}:\n{checked.stdout}"


@pytest.mark.parametrize(("where", "code"), BLOCKS, ids=[where for where, _ in BLOCKS])
def test_nothing_to_fill_in(where: str, code: str) -> None:
    assert PLACEHOLDER.findall(code) == [], f"{where}: use a shell variable the block sets instead"


def test_every_az_command_parses() -> None:
    commands = load_table()["commands"]
    problems = []
    for where, argv in az_commands_in_docs():
        try:
            name, rest = split_command(commands, argv)
            parse_arguments(commands[name], rest)
        except Exception as exc:
            problems.append(f"{where}: az {' '.join(argv)}: {exc}")
    assert problems == []
    assert len(az_commands_in_docs()) >= 8


def test_the_command_finder_sees_through_substitutions_and_continuations() -> None:
    script = (
        'app=$(az functionapp list --resource-group "$rg" --query "[0].name" -o tsv)\n'
        'az rest --method get \\\n  --url "/x?a=1" -o table  # a comment\n'
        "cat >f <<JSON\naz not a command\nJSON\n"
        'for r in a b; do az group show --name "$r" >/dev/null; done\n'
    )
    assert commands_of(script, "az") == [
        ["rest", "--method", "get", "--url", "/x?a=1", "-o", "table"],
        ["group", "show", "--name", "$r"],
        ["functionapp", "list", "--resource-group", "$rg", "--query", "[0].name", "-o", "tsv"],
    ]


def test_the_azd_path_sets_what_the_template_reads() -> None:
    parameters_file = ROOT / "infra" / "main.parameters.json"
    if not parameters_file.exists():
        pytest.skip("infra/main.parameters.json is not on this branch: nothing to compare the azd path with")
    parameters = json.loads(parameters_file.read_text(encoding="utf-8"))["parameters"]
    for value, parameter in AZD_VALUES.items():
        assert parameter in parameters, f"main.parameters.json has no {parameter}"
        assert f"${{{value}" in json.dumps(parameters[parameter]), f"{parameter} is not read from {value}"


def test_the_azd_path_keeps_the_sign_in_secret_in_the_azd_environment() -> None:
    """azd fills ${SSO_CLIENT_SECRET=} from its environment file or the shell. Given only to one `azd up`, the
    next `azd up` or `azd provision` finds it empty and removes SSO_CLIENT_SECRET from the app: sign-in 500s.
    So the README stores it with `azd env set`, and no azd command gets a value from a one-off variable."""
    blocks = [code for _, code in shell_blocks(ROOT / "README.md") if "azd up" in code]
    assert blocks, "README.md has no azd path"
    for code in blocks:
        stored = {
            argv[2] for argv in commands_of(code, "azd") if argv[:2] == ["env", "set"] and len(argv) > 2
        }
        assert "SSO_CLIENT_SECRET" in stored
        for line in logical_lines(code):
            one_off = re.match(r"\s*((?:[A-Za-z_]\w*=\S*\s+)+)azd\b", line)
            assert one_off is None, f"a value given to one azd command only: {line.strip()}"
