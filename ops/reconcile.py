"""`reconcile [--subscription ID]`: one subscription through the worker now, or the sweep the timer runs."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from ops import environment
from ops.render import print_error, print_json, print_line
from shared.app_context import services
from shared.workflows.operator_requests import UnknownSubscriptionError, request_reconcile
from shared.workflows.reconcile import request_sweep, sweep_and_record


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "reconcile", parents=[common], help="queue reconcile messages (one subscription, or the sweep)"
    )
    parser.add_argument("--subscription", metavar="ID", help="only this stored subscription")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.subscription:
        return _one(args)
    app = services()
    if environment.uses_azure_identity():
        # Against Azure the operator's machine has no Fulfillment API credentials (the app signs in as its
        # managed identity): the worker runs the sweep, and its counts land in the console's overview.
        message = request_sweep(
            requested_by=args.operator, correlation_id=args.correlation_id, events=app.queue, audit=app.audit
        )
        if args.json:
            print_json(
                {"sweepQueued": True, "messageId": message.message_id, "correlationId": args.correlation_id}
            )
        else:
            print_line(
                f"sweep queued for the worker (message {message.message_id}); its counts appear on the"
                f" console's overview and in the log under correlation id {args.correlation_id}"
            )
        return 0
    # The local stack: the sandbox's credentials are at hand, so the sweep runs here and reports at once.
    report = sweep_and_record(args.correlation_id, ports=app.sweep_ports, requested_by=args.operator)
    if args.json:
        print_json({**asdict(report), "correlationId": args.correlation_id})
    else:
        print_line(
            f"sweep: {report.listed} listed by Microsoft, {report.queued} reconcile message(s) queued,"
            f" {report.unknown_locally} unknown here, {report.in_step} left alone (in step"
            f" with Microsoft), {report.malformed} unreadable (see the log; those with an id are"
            f" queued and park if their reconcile fails); correlation id {args.correlation_id}"
        )
    return 0


def _one(args: argparse.Namespace) -> int:
    try:
        message = request_reconcile(
            args.subscription,
            operator=args.operator,
            correlation_id=args.correlation_id,
            ports=services().operator_request_ports,
        )
    except UnknownSubscriptionError as exc:
        print_error(str(exc))
        return 1
    if args.json:
        print_json({"queued": 1, "messageId": message.message_id, "correlationId": args.correlation_id})
    else:
        print_line(f"reconcile queued for {args.subscription} (message {message.message_id})")
    return 0
