"""GET /api/console: the overview an operator opens first (figures, and the same figures as pictures);
POST /api/console/sweep: an administrator asks for a reconciliation sweep now."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

import azure.functions as func

from shared.domain import wording
from shared.domain.console_stats import Activity
from shared.entrypoints.console.visit import OperatorVisit, console_error, open_console, open_console_action
from shared.logs import get_logger, log_context
from shared.queueing.messages import QueueUnavailableError
from shared.web import charts, notices
from shared.web.pages import redirect
from shared.workflows.console_overview import Overview, overview
from shared.workflows.reconcile import request_sweep

log = get_logger(__name__)
LIST = "/api/console/subscriptions"
HOME = "/api/console"


def handle_overview(req: func.HttpRequest) -> func.HttpResponse:
    visit = open_console(req)
    if isinstance(visit, func.HttpResponse):
        return visit
    figures = overview(ports=visit.app.overview_ports)
    log.info(
        "console overview",
        extra={"subscriptions": figures.total, "problems": len(figures.problems)},
    )
    return visit.render(
        "console_overview.html",
        by_status=figures.by_status,
        total=figures.total,
        figures=figures,
        charts=_charts(figures),
        list_url=list_url,
        refresh_after=2 if figures.counting else 0,
        sweeps=figures.sweeps,
        sweep_notice=SWEEP_QUEUED if _sweep_asked(visit, req) else "",
    )


SWEEP_QUEUED = (
    "Sweep queued. The worker runs it with the app's own access to Microsoft; reload this page to see its "
    "counts, and the subscriptions' pages for what it repaired."
)


def _sweep_asked(visit: OperatorVisit, req: func.HttpRequest) -> bool:
    return notices.verified(visit.session, HOME, req.params, ("notice",)).get("notice") == "sweep"


def handle_sweep(req: func.HttpRequest) -> func.HttpResponse:
    """Queues a sweep for the worker (admins, CSRF-checked, confirmed); audited with who asked."""
    opened = open_console_action(req)
    if isinstance(opened, func.HttpResponse):
        return opened
    visit, form = opened
    if form.get("confirm") != "yes":
        return console_error(400, "Please confirm", "Tick the box to confirm, then send the form again.")
    correlation_id = f"console-{uuid.uuid4()}"
    with log_context(correlation_id=correlation_id):
        try:
            request_sweep(
                requested_by=visit.actor,
                correlation_id=correlation_id,
                events=visit.app.queue,
                audit=visit.app.audit,
            )
        except QueueUnavailableError:
            log.exception("console sweep not queued: the events queue refused it")
            return console_error(
                503,
                "The sweep could not be queued",
                "Nothing was started. The events queue did not take the request; the app's log says why.",
                "Try again in a minute. The scheduled sweep still runs on its own.",
            )
        log.info("console sweep requested")
    return redirect(f"{HOME}?{notices.signed_query(visit.session, HOME, {'notice': 'sweep'})}")


def list_url(**filters: str) -> str:
    """The subscription list filtered by `filters` (the link behind a figure)."""
    return f"{LIST}?{urlencode(filters)}" if filters else LIST


def _charts(figures: Overview) -> dict[str, object]:
    def day(d: object) -> str:
        return f"{d:%b %d}"

    pictures: dict[str, object] = {
        "status": charts.horizontal_bars(
            "Subscriptions by status",
            [(wording.status_name(status), count) for status, count in figures.by_status.items()],
        ),
        "offer": charts.horizontal_bars("Subscriptions by offer", list(figures.by_offer.items())),
        "plan": charts.horizontal_bars("Subscriptions by plan", list(figures.by_plan.items())),
        "p50": charts.bars_per_day(
            "Webhook-to-answer latency per day, median (seconds)",
            [(day(d.day), d.p50_seconds) for d in figures.latency],
            unit=" s",
        ),
        "p99": charts.bars_per_day(
            "Webhook-to-answer latency per day, 99th percentile (seconds)",
            [(day(d.day), d.p99_seconds) for d in figures.latency],
            unit=" s",
        ),
    }
    for kind in Activity:
        per_day = figures.activity[kind]
        pictures[kind.value] = charts.bars_per_day(
            f"{kind.value.capitalize()}s per day, last {len(figures.days)} days",
            [(day(d), float(n)) for d, n in per_day.items()],
        )
    return pictures
