"""`activation retry ID`: queue the activation again for a confirmed purchase that is still pending."""

from __future__ import annotations

import argparse
from typing import Any

from ops.render import print_error, print_json, print_line
from shared.app_context import services
from shared.workflows.operator_requests import (
    ActivationNotPendingError,
    UnknownSubscriptionError,
    request_activation_retry,
)


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("activation", help="activations").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    retry = group.add_parser("retry", parents=[common], help="queue a failed activation again")
    retry.add_argument("subscription_id", metavar="ID")
    retry.set_defaults(handler=retry_activation)


def retry_activation(args: argparse.Namespace) -> int:
    try:
        message = request_activation_retry(
            args.subscription_id,
            operator=args.operator,
            correlation_id=args.correlation_id,
            ports=services().operator_request_ports,
        )
    except (UnknownSubscriptionError, ActivationNotPendingError) as exc:
        print_error(str(exc))
        return 1
    if args.json:
        print_json({"queued": 1, "messageId": message.message_id, "correlationId": args.correlation_id})
    else:
        print_line(f"activation queued again for {args.subscription_id} (message {message.message_id})")
    return 0
