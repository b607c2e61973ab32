"""`deadletters list | replay | discard`: the parking queue and the events queue's dead-letter sub-queue.

Entries are named by key (`parking:12`, `deadletter:7`, as `list` shows) or by message id (every entry
with that id, or with that original id for a replay that failed again). `replay` and `discard` act on the
named entries, or on all that pass `--all` / the filters; `discard` needs `--reason`, kept in the audit trail.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ops.render import print_error, print_json, print_table, short, with_progress
from shared.app_context import services
from shared.domain.dead_letters import DeadLetterEntry, DeadLetterSelection, DeadLetterSource
from shared.workflows.dead_letters import (
    DeadLetterOutcome,
    DeadLetterResult,
    NothingSelectedError,
    discard_dead_letters,
    list_dead_letters,
    replay_dead_letters,
    select_dead_letters,
)

SOURCES = [source.value for source in DeadLetterSource]


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("deadletters", help="parked and dead-lettered messages").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    listing = group.add_parser("list", parents=[common], help="both sources, parking first")
    _filters(listing, reason_flag="--reason")
    listing.add_argument("--limit", type=int, default=None)
    listing.set_defaults(handler=list_entries)
    replay = group.add_parser("replay", parents=[common], help="send copies to the events queue, then remove")
    _selection(replay, reason_flag="--reason")
    replay.set_defaults(handler=replay_entries)
    discard = group.add_parser("discard", parents=[common], help="remove for good, with a reason")
    _selection(discard, reason_flag="--only-reason")
    discard.add_argument("--reason", dest="why", required=True, help="why (kept in the audit trail)")
    discard.set_defaults(handler=discard_entries)


def _filters(parser: argparse.ArgumentParser, *, reason_flag: str) -> None:
    parser.add_argument(
        reason_flag, dest="reason", default="", help="only entries with this dead-letter reason"
    )
    parser.add_argument(
        "--source", choices=SOURCES, help="only the parking queue or the dead-letter sub-queue"
    )
    parser.add_argument("--subscription", default="", metavar="ID", help="only this subscription's entries")


def _selection(parser: argparse.ArgumentParser, *, reason_flag: str) -> None:
    parser.add_argument("ids", nargs="*", metavar="KEY|MESSAGE_ID")
    parser.add_argument("--all", dest="everything", action="store_true", help="every entry the filters pass")
    _filters(parser, reason_flag=reason_flag)


def _selected(args: argparse.Namespace) -> DeadLetterSelection:
    return DeadLetterSelection(
        ids=frozenset(getattr(args, "ids", ()) or ()),
        everything=getattr(args, "everything", False),
        reason=args.reason,
        source=DeadLetterSource(args.source) if args.source else None,
        subscription_id=args.subscription,
    )


def list_entries(args: argparse.Namespace) -> int:
    entries = list_dead_letters(_selected(args), ports=services().dead_letter_ports, limit=args.limit)
    if args.json:
        print_json([_entry_json(entry) for entry in entries])
        return 0
    print_table(
        f"{len(entries)} dead letter(s)",
        (
            "key",
            "reason",
            "description",
            "kind",
            "subscription",
            "message id",
            "first enqueued",
            "dead-lettered",
            "deliveries",
            "body",
        ),
        (
            (
                e.key,
                e.reason,
                short(e.description, 60),
                e.kind,
                e.subscription_id,
                e.original_message_id,
                e.first_enqueued_at,
                e.dead_lettered_at,
                e.delivery_count,
                short(_body(e), 60),
            )
            for e in entries
        ),
    )
    return 0


def replay_entries(args: argparse.Namespace) -> int:
    ports = services().dead_letter_ports
    chosen = _chosen(args)
    if chosen is None:
        return 1
    results = list(
        replay_dead_letters(
            with_progress(chosen, "replaying", shown=not args.json),
            operator=args.operator,
            correlation_id=args.correlation_id,
            ports=ports,
        )
    )
    return _report(args, results)


def discard_entries(args: argparse.Namespace) -> int:
    if not args.why.strip():
        print_error("--reason must say why; it is kept in the subscription's audit trail")
        return 1
    chosen = _chosen(args)
    if chosen is None:
        return 1
    results = list(
        discard_dead_letters(
            with_progress(chosen, "discarding", shown=not args.json),
            reason=args.why,
            operator=args.operator,
            correlation_id=args.correlation_id,
            ports=services().dead_letter_ports,
        )
    )
    return _report(args, results)


def _chosen(args: argparse.Namespace) -> list[DeadLetterEntry] | None:
    try:
        chosen = select_dead_letters(_selected(args), ports=services().dead_letter_ports)
    except NothingSelectedError as exc:
        print_error(str(exc))
        return None
    missing = set(args.ids) - {i for e in chosen for i in (e.key, e.message_id, e.original_message_id)}
    if missing:
        print_error(f"no dead letter named {', '.join(sorted(missing))}")
        return None
    return chosen


def _report(args: argparse.Namespace, results: list[DeadLetterResult]) -> int:
    if args.json:
        print_json(
            [
                {
                    "key": r.entry.key,
                    "messageId": r.entry.message_id,
                    "outcome": r.outcome,
                    "replayMessageId": r.replay_message_id,
                    "error": r.error,
                }
                for r in results
            ]
        )
    else:
        print_table(
            f"{len(results)} dead letter(s)",
            ("key", "message id", "subscription", "outcome", "replay message id", "error"),
            (
                (
                    r.entry.key,
                    r.entry.message_id,
                    r.entry.subscription_id,
                    r.outcome,
                    r.replay_message_id,
                    r.error,
                )
                for r in results
            ),
        )
    # An error on a settled entry (its outcome not audited) fails the command too: someone must look.
    failed = any(r.outcome is DeadLetterOutcome.FAILED or r.error for r in results)
    return 1 if failed else 0


def _entry_json(entry: DeadLetterEntry) -> dict[str, Any]:
    return {
        "key": entry.key,
        "source": entry.source,
        "sequenceNumber": entry.sequence_number,
        "reason": entry.reason,
        "description": entry.description,
        "kind": entry.kind,
        "subscriptionId": entry.subscription_id,
        "sessionId": entry.session_id,
        "messageId": entry.message_id,
        "originalMessageId": entry.original_message_id,
        "operationId": entry.operation_id,
        "correlationId": entry.correlation_id,
        "firstEnqueuedAt": entry.first_enqueued_at,
        "deadLetteredAt": entry.dead_lettered_at,
        "deliveryCount": entry.delivery_count,
        "applicationProperties": entry.application_properties,
        "body": entry.body,
    }


def _body(entry: DeadLetterEntry) -> str:
    return json.dumps(dict(entry.body), separators=(",", ":"), sort_keys=True)
