"""The stand-in refuses what the real az refuses, and prints what knack prints.

The table it parses with comes from the real azure-cli; `make check-az` proves the table and every recorded
call against azure-cli's own parser (infra/README.md). These tests hold the stand-in's half of the bargain.
"""

from __future__ import annotations

from collections import OrderedDict

import pytest

from tests.infra_scripts.fake_az import (
    HANDLERS,
    CliError,
    arm_case,
    format_output,
    load_table,
    parse_arguments,
    query,
    split_command,
)

COMMANDS = load_table()["commands"]


def parse(line: list[str]) -> dict:
    name, rest = split_command(COMMANDS, line)
    return parse_arguments(COMMANDS[name], rest)


def test_the_table_comes_from_a_named_azure_cli_and_covers_every_modelled_command() -> None:
    table = load_table()
    assert table["azure-cli"].count(".") == 2
    assert set(HANDLERS) <= set(table["commands"])


def test_a_well_formed_call_parses_to_azs_destinations() -> None:
    args = parse(
        ["ad", "app", "create", "--display-name", "x", "--sign-in-audience", "AzureADMyOrg", "-o", "tsv"]
    )

    assert args == {"display_name": "x", "sign_in_audience": "AzureADMyOrg", "_output_format": "tsv"}
    several = parse(["ad", "app", "update", "--id", "a", "--web-redirect-uris", "https://a", "https://b"])
    assert several["web_redirect_uris"] == ["https://a", "https://b"]
    flag = parse(["ad", "app", "credential", "reset", "--id", "a", "--append", "--years", "1"])
    assert flag["append"] is True
    assert parse(["group", "create", "--name=rg", "-l", "westeurope"])["rg_name"] == "rg"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            ["ad", "app", "create", "--display-name", "x", "--audience", "AzureADMyOrg"],
            "unrecognized arguments",
        ),
        (["ad", "app", "create", "--display-name", "x", "--sign-in-audience", "Everyone"], "invalid choice"),
        (["ad", "app", "create", "--display-name"], "expected one argument"),
        (["ad", "app", "create", "--display-name", "x", "stray"], "unrecognized arguments: stray"),
        (["ad", "app", "create", "--display-name", "x", "-o", "xml"], "invalid choice"),
        (["ad", "app", "create", "--help"], "--help"),
        (["ad", "application", "create"], "not a command of the table"),
        (
            ["monitor", "log-analytics", "query", "-w", "x", "--analytics-query", "y"],
            "not a command of the table",
        ),
    ],
)
def test_what_az_refuses_is_refused_with_status_2(line: list[str], message: str) -> None:
    with pytest.raises(CliError, match=message) as refused:
        parse(line)
    assert refused.value.status == 2


def test_output_follows_knack() -> None:
    rows = query([{"b": "2", "a": "1"}, {"b": "4", "a": "3"}], "[].{b: b, a: a}")
    assert format_output(rows, "tsv") == "2\t1\n4\t3\n"  # a --query hash keeps its order
    assert format_output([{"b": "2", "a": "1"}], "tsv") == "1\t2\n"  # a plain object is sorted by key
    assert format_output(["x", "y"], "tsv") == "x\ny\n"
    assert format_output([["k1", "k2"], ["v1", ""]], "tsv") == "k1\tk2\nv1\t\n"
    assert format_output(True, "tsv") == "true\n"  # alone in its row; "True" inside a row
    assert format_output({"a": [1, 2], "b": {"c": 1}}, "tsv") == "2\t\n"
    assert format_output(None, "tsv") == ""
    assert format_output({"a": 1}, "none") == ""
    assert format_output(OrderedDict(b=1, a=2), "json") == '{\n  "a": 2,\n  "b": 1\n}\n'


def test_output_names_come_back_in_arms_casing() -> None:
    assert arm_case("AZURE_FUNCTION_APP_NAME") == "azurE_FUNCTION_APP_NAME"
    assert arm_case("KEY_VAULT_NAME") == "keY_VAULT_NAME"
    assert arm_case("Public_SSH") == "public_SSH"
