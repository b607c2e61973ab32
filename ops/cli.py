"""`python -m ops`: argument parsing and dispatch. Each command lives in its own module and calls a workflow.

    python -m ops subscriptions list [--status S] [--plan P] [--offer O] [--tenant T] [--search T] [--limit N]
    python -m ops subscriptions show ID
    python -m ops reconcile [--subscription ID]
    python -m ops deadletters list [--reason R] [--source parking|deadletter] [--subscription ID] [--limit N]
    python -m ops deadletters replay [KEY|MESSAGE_ID ...] [--all] [--reason R] [--source S] [--subscription I]
    python -m ops deadletters discard [KEY|MESSAGE_ID ...] [--all] [--only-reason R] ... --reason WHY
    python -m ops activation retry ID

Every command takes `--json` (one JSON document on stdout) and, on the local stack, `--as NAME` (who the
audit trail names); against Azure the audit names the account `az login` signed in.
Exit status: 0 done, 1 refused or partly failed (the output says which), 2 a usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Callable, Sequence

from ops import activation, dead_letters, environment, reconcile, subscriptions
from ops.render import print_error
from shared.app_context import services
from shared.config import ConfigurationError

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    common.add_argument(
        "--as", dest="operator", metavar="NAME", help="who the audit trail names (local stack only)"
    )
    parser = argparse.ArgumentParser(
        prog="python -m ops", description="Operate the marketplace SaaS app: the local stack, or Azure."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    subscriptions.add_commands(commands, common)
    reconcile.add_commands(commands, common)
    dead_letters.add_commands(commands, common)
    activation.add_commands(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    environment.prepare()
    try:
        args.operator = _operator(args.operator)
    except environment.OperatorNameRefusedError as exc:
        print_error(str(exc))
        return 2
    # One correlation id per invocation: the worker's log lines for what this command queued carry it.
    args.correlation_id = f"ops-{uuid.uuid4()}"
    handler: Handler = args.handler
    try:
        return handler(args)
    except ConfigurationError as exc:
        print_error(str(exc))
        return 1
    except KeyboardInterrupt:
        print_error("interrupted")
        return 130


def _operator(explicit: str | None) -> str:
    if environment.uses_azure_identity():
        return environment.signed_in_operator(services().azure_credential, explicit, os.environ)
    return environment.operator_name(explicit)


if __name__ == "__main__":  # pragma: no cover - `python -m ops` goes through ops/__main__.py
    sys.exit(main())
