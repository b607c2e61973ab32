"""Checks the `az` stand-in against the real Azure CLI: run by `make check-az` with the Python of a throwaway
venv that has azure-cli installed (never the project's venv, never in Azure).

    <azure-cli venv>/bin/python tests/infra_scripts/az_real_check.py CALLS.jsonl [--write]

1. Every az call the scripts made in the tests (CALLS.jsonl, recorded by the stand-in, with the files they
   named) and every az command in the docs' shell blocks goes through azure-cli's own parser: the command
   table is loaded and argparse parses the arguments, type conversions and required options included; the
   command itself never runs (the parse is stopped by an event handler), so no login or network is needed.
2. For each command seen, the options the parser knows (names, value counts, required, choices) are
   compared with tests/infra_scripts/az_commands.json, the stand-in's table; `--write` rewrites the table.

Exits 1 with the list of what does not parse or does not match.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from shell_blocks import az_commands_in_docs  # noqa: E402

TABLE = HERE / "az_commands.json"


class _Parsed(Exception):  # noqa: N818 -- a signal, not an error
    pass


def _describe(action: argparse.Action) -> dict[str, Any]:
    nargs = action.nargs
    if nargs is None and isinstance(action, argparse._StoreConstAction | argparse._HelpAction):
        nargs = 0
    return {
        "options": sorted(action.option_strings),
        "dest": action.dest,
        "nargs": nargs,
        "required": bool(action.required),
        "choices": sorted(str(choice) for choice in action.choices) if action.choices else None,
        "append": isinstance(action, argparse._AppendAction),
    }


def real_parse(argv: list[str]) -> tuple[str | None, list[dict[str, Any]], str]:
    """(command name or None, its options, what az printed) for one az invocation, parsed but not run."""
    from azure.cli.core import get_default_cli
    from knack.events import EVENT_INVOKER_POST_PARSE_ARGS

    cli = get_default_cli()
    seen: dict[str, Any] = {}

    def stop(cli_ctx: Any, **kwargs: Any) -> None:
        command = kwargs["command"]
        parser = cli_ctx.invocation.parser.subparser_map[command]
        seen["command"] = command
        seen["options"] = [_describe(action) for action in parser._actions if action.option_strings]
        raise _Parsed

    cli.register_event(EVENT_INVOKER_POST_PARSE_ARGS, stop)
    printed = io.StringIO()
    with contextlib.redirect_stderr(printed), contextlib.suppress(SystemExit):
        cli.invoke(argv, out_file=io.StringIO())
    return seen.get("command"), seen.get("options", []), printed.getvalue()


def output_problems() -> list[str]:
    """Where the stand-in's --query and -o differ from knack's, on results shaped like the scripts'."""
    import fake_az
    from jmespath import Options
    from knack.output import format_json, format_tsv
    from knack.query import CLIQuery
    from knack.util import CommandResultItem

    samples: list[tuple[Any, str | None]] = [
        ([{"appId": "a", "displayName": "x"}, {"appId": "b", "displayName": "y"}], "[].appId"),
        ([{"name": "n", "subject": "s", "issuer": "i"}], "[].[name, subject, issuer]"),
        (
            [{"endDateTime": "2027", "keyId": "k", "displayName": "d"}],
            "[?displayName=='d'].[endDateTime, keyId]",
        ),
        (
            {"properties": {"outputs": {"azurE_X": {"value": "1"}, "keY_Y": {"value": ""}}}},
            "[keys(properties.outputs), values(properties.outputs)[].value]",
        ),
        ({"web": {"redirectUris": []}}, "web.redirectUris"),
        ({"b": [1, 2], "a": {"c": 1}, "d": True, "e": None, "f": "\u00e9"}, None),
        ([{"b": "1", "a": "2"}], "[].{b: b, a: a}"),
        (True, None),
        ({"tenantId": "t"}, "missing"),
    ]
    problems = []
    for result, expression in samples:
        queried = result
        if expression:  # as knack's query event handler does it
            queried = CLIQuery.jmespath_type(expression).search(result, Options(collections.OrderedDict))
        ours = fake_az.query(result, expression)
        for name, knack_format in (("tsv", format_tsv), ("json", format_json)):
            expected = "" if queried is None else knack_format(CommandResultItem(queried))
            if fake_az.format_output(ours, name) != expected:
                problems.append(
                    f"-o {name} --query {expression!r}: the stand-in prints differently from knack"
                )
    return problems


def _with_files(call: dict[str, Any], folder: Path) -> list[str]:
    """The call's argv with each file it named recreated (content and mode) in `folder`."""
    argv = []
    for index, token in enumerate(call["argv"]):
        named = call.get("files", {}).get(token)
        if named is None:
            argv.append(token)
            continue
        path = folder / f"{index}-{Path(token.removeprefix('@')).name}"
        path.write_text(named["content"], encoding="utf-8")
        path.chmod(int(named["mode"], 8))
        argv.append(("@" if token.startswith("@") else "") + str(path))
    return argv


def main() -> int:
    arguments = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    arguments.add_argument("calls", type=Path, help="JSON lines of recorded calls (tests/infra_scripts)")
    arguments.add_argument("--write", action="store_true", help="rewrite az_commands.json from the real CLI")
    options = arguments.parse_args()

    os.environ.setdefault("AZURE_CORE_COLLECT_TELEMETRY", "false")
    os.environ.setdefault("AZURE_CORE_NO_COLOR", "true")
    config = tempfile.mkdtemp(prefix="azcli-config-")
    os.environ["AZURE_CONFIG_DIR"] = config
    from azure.cli.core import __version__ as cli_version

    calls = [
        json.loads(line) for line in options.calls.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    invocations = [("recorded call", call) for call in calls if call["tool"] == "az"]
    invocations += [(where, {"argv": argv}) for where, argv in az_commands_in_docs()]
    table: dict[str, list[dict[str, Any]]] = {}
    problems: list[str] = []
    seen: set[tuple[str, ...]] = set()
    with tempfile.TemporaryDirectory(prefix="az-files-") as folder:
        for where, call in invocations:
            argv = _with_files(call, Path(folder))
            if tuple(call["argv"]) in seen:
                continue
            seen.add(tuple(call["argv"]))
            command, described, printed = real_parse(argv)
            if command is None:
                problems.append(f"{where}: az {' '.join(call['argv'])}\n    {printed.strip()}")
                continue
            table[command] = described
    print(f"azure-cli {cli_version}: {len(seen)} distinct az invocations parsed, {len(table)} commands")

    committed = json.loads(TABLE.read_text(encoding="utf-8")) if TABLE.exists() else {"commands": {}}
    fresh = {"azure-cli": cli_version, "commands": dict(sorted(table.items()))}
    if options.write:
        TABLE.write_text(json.dumps(fresh, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {TABLE.relative_to(HERE.parents[1])}")
    else:
        for command in sorted(set(table) | set(committed["commands"])):
            if table.get(command) != committed["commands"].get(command):
                problems.append(
                    f"az {command}: the stand-in's table differs from azure-cli {cli_version} "
                    "(run make check-az AZ_CHECK_WRITE=1 and review the diff)"
                )
    problems += output_problems()
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
