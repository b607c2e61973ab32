"""`subscriptions list` and `subscriptions show`: the stored mirror, its inbox operations, its audit trail."""

from __future__ import annotations

import argparse
from typing import Any

from ops.render import print_error, print_json, print_table, short
from shared.app_context import services
from shared.domain.subscription import Subscription
from shared.domain.subscription_query import SubscriptionQuery
from shared.workflows.subscription_views import find_subscriptions, subscription_detail

DEFAULT_LIMIT = 100


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    group = commands.add_parser("subscriptions", help="stored subscriptions").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    listing = group.add_parser("list", parents=[common], help="subscriptions matching the filters")
    listing.add_argument("--status", default="", help="Subscribed, Suspended, Unsubscribed, ...")
    listing.add_argument("--plan", default="")
    listing.add_argument("--offer", default="")
    listing.add_argument("--tenant", default="", help="purchaser's or beneficiary's tenant id")
    listing.add_argument("--search", default="", help="part of an id, name, offer, plan, tenant or e-mail")
    listing.add_argument("--id", default="", help="part of the subscription id")
    listing.add_argument("--name", default="", help="part of the subscription's name")
    listing.add_argument("--buyer", default="", help="part of either party's e-mail address")
    listing.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help=f"at most (default {DEFAULT_LIMIT})"
    )
    listing.set_defaults(handler=list_subscriptions)
    show = group.add_parser("show", parents=[common], help="one subscription, its operations and audit trail")
    show.add_argument("subscription_id", metavar="ID")
    show.set_defaults(handler=show_subscription)


def list_subscriptions(args: argparse.Namespace) -> int:
    query = SubscriptionQuery(
        status=args.status,
        plan=args.plan,
        offer=args.offer,
        tenant=args.tenant,
        search=args.search,
        id=args.id,
        name=args.name,
        buyer=args.buyer,
        limit=args.limit if args.limit > 0 else None,
    )
    if not query.status_is_known():
        print_error(f"unknown status {args.status!r}")
        return 1
    problems = query.problems()
    if problems:
        print_error(problems[0])
        return 1
    found = find_subscriptions(query, ports=services().subscription_view_ports)
    if args.json:
        print_json(found)
        return 0
    print_table(
        f"{len(found)} subscription(s)",
        ("id", "name", "offer", "plan", "seats", "status", "beneficiary", "last synced"),
        (_row(sub) for sub in found),
    )
    return 0


def _row(sub: Subscription) -> tuple[Any, ...]:
    who = sub.beneficiary.email or sub.beneficiary.tenant_id
    return (
        sub.id,
        short(sub.name, 30),
        sub.offer_id,
        sub.plan_id,
        sub.quantity,
        sub.status,
        who,
        sub.last_synced_at,
    )


def show_subscription(args: argparse.Namespace) -> int:
    detail = subscription_detail(args.subscription_id, ports=services().subscription_view_ports)
    if detail is None:
        print_error(f"no stored subscription {args.subscription_id}")
        return 1
    if args.json:
        print_json(detail)
        return 0
    sub = detail.subscription
    fields = (
        "id",
        "name",
        "offer_id",
        "plan_id",
        "quantity",
        "status",
        "activation_requested_at",
        "activated_at",
        "last_operation_id",
        "last_operation_action",
        "last_synced_at",
    )
    print_table(f"subscription {sub.id}", ("field", "value"), ((f, getattr(sub, f)) for f in fields))
    print_table(
        "operations (inbox)",
        ("operation", "action", "state", "decision", "outcome", "source", "created"),
        (
            (o.operation_id, o.action, o.state, o.decision, o.outcome, o.source, o.created_at)
            for o in detail.operations
        ),
    )
    print_table(
        "audit trail",
        ("at", "action", "source", "by", "operation", "changes"),
        (
            (e.at, e.action, e.source, e.actor, e.operation_id, short(_changes(e.changes), 80))
            for e in detail.audit
        ),
    )
    return 0


def _changes(changes: Any) -> str:
    return "; ".join(f"{name}: {old} → {new}" for name, (old, new) in changes.items())
