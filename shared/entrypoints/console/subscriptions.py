"""GET /api/console/subscriptions: find, filter and page through every subscription, or export them as CSV.

One handler answers both: `format=csv` with the same filters streams every matching row as an attachment.
Filters arrive in the query string (a GET form: nothing changes, so no CSRF token). A query that cannot be
answered (an unknown status, a page number that is no page, a text longer than any id or address) gets the
page back with a 400 and a sentence saying what to fix, and a warning in the log. The rows come from the
instance's `SummaryIndex` (see shared/workflows/subscription_views.py for its bounded staleness).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import azure.functions as func

from shared.domain.status import SubscriptionStatus
from shared.domain.subscription_query import (
    MAX_TEXT,
    STATUSES,
    SubscriptionQuery,
    SubscriptionSummary,
    parse_page,
)
from shared.entrypoints.console.visit import open_console
from shared.logs import get_logger
from shared.web.csv_export import csv_lines
from shared.web.security import api_security_headers
from shared.workflows.subscription_views import (
    LIST_UNREADABLE,
    SummaryIndexUnreadableError,
    export_subscriptions,
    search_subscriptions,
)

if TYPE_CHECKING:
    from shared.workflows.subscription_views import SummaryIndex

log = get_logger(__name__)
PAGE_SIZE = 50
# An instance's first read of 10,000 rows takes seconds: past this, the page says so and reloads itself.
FIRST_READ_WAIT_SECONDS = 0.5
STILL_READING = "The subscriptions are still being read on this server; this page reloads in 2 seconds."
LIST = "/api/console/subscriptions"
# The query-string names of the form's fields, and the query field each fills.
FILTERS = {
    "q": "search",
    "id": "id",
    "name": "name",
    "tenant": "tenant",
    "buyer": "buyer",
    "offer": "offer",
    "plan": "plan",
    "status": "status",
}
CSV_HEADER = (
    "id",
    "name",
    "offer",
    "plan",
    "quantity",
    "status",
    "purchaser_email",
    "purchaser_tenant",
    "beneficiary_email",
    "beneficiary_tenant",
    "created_at",
    "last_synced_at",
)


def handle_list(req: func.HttpRequest) -> func.HttpResponse:
    visit = open_console(req)
    if isinstance(visit, func.HttpResponse):
        return visit
    params = _params(req)
    query = _query(params)
    problems = query.problems(for_people=True)
    page = parse_page(params.get("page", ""))
    if page is None:
        problems.append("The page number must be a whole number from 1 up; the list starts again at page 1.")
    wants_csv = params.get("format", "").strip().lower() == "csv"
    if problems:
        log.warning(
            "console list: query refused",
            extra={"problems": problems, "fields": sorted(k for k, v in params.items() if v)},
        )
        if wants_csv:
            return _text(400, "\n".join(problems))
        return visit.render(
            "console_subscriptions.html",
            status=400,
            **_form(params),
            problems=problems,
            rows=[],
            result=None,
            links={},
            csv_url="",
        )
    index = visit.app.subscription_index
    if wants_csv:
        return _csv(query, index)
    assert page is not None
    try:
        result = search_subscriptions(query, page, PAGE_SIZE, index=index, wait=FIRST_READ_WAIT_SECONDS)
    except SummaryIndexUnreadableError:
        # Said in words with the form still usable, not a bare 500; the index logged the cause.
        return visit.render(
            "console_subscriptions.html",
            status=503,
            **_form(params),
            problems=[LIST_UNREADABLE],
            rows=[],
            result=None,
            links={},
            csv_url="",
        )
    if result is None:
        log.info("console list: the instance is still reading the list")
        return visit.render(
            "console_subscriptions.html",
            **_form(params),
            problems=[STILL_READING],
            rows=[],
            result=None,
            links={},
            csv_url="",
            refresh_after=2,
        )
    notices = list(result.notes)
    past_the_end = page > result.page.count
    if past_the_end:
        notices.append(f"Page {page} is past the last page ({result.page.count}); it has no subscriptions.")
    log.info("console list", extra={"matched": result.page.total, "page": page})
    filters = _filters(params)
    return visit.render(
        "console_subscriptions.html",
        **_form(params),
        problems=notices,
        rows=result.rows,
        result=result,
        links={
            # Past the end, "Previous" leads to the last page, not to the (just as empty) page before.
            "previous": _url(filters, page=result.page.count)
            if past_the_end
            else (_url(filters, page=result.page.number - 1) if result.page.has_previous else ""),
            "next": _url(filters, page=result.page.number + 1) if result.page.has_next else "",
        },
        csv_url=_url(filters, format="csv"),
    )


def _params(req: func.HttpRequest) -> dict[str, str]:
    return {name: str(value) for name, value in req.params.items()}


def _query(params: Mapping[str, str]) -> SubscriptionQuery:
    def value(field: str) -> str:
        return next(params.get(name, "") for name, named in FILTERS.items() if named == field)

    return SubscriptionQuery(
        search=value("search"),
        id=value("id"),
        name=value("name"),
        tenant=value("tenant"),
        buyer=value("buyer"),
        offer=value("offer"),
        plan=value("plan"),
        status=value("status"),
    )


def _filters(params: Mapping[str, str]) -> dict[str, str]:
    return {name: params[name].strip() for name in FILTERS if params.get(name, "").strip()}


def _url(filters: Mapping[str, str], **extra: object) -> str:
    return f"{LIST}?{urlencode({**filters, **{k: str(v) for k, v in extra.items()}})}"


def _form(params: Mapping[str, str]) -> dict[str, Any]:
    """What the filter form shows back: each field as typed (cut to what is searched), the status choices."""
    values = {name: params.get(name, "")[:MAX_TEXT] for name in FILTERS}
    chosen = STATUSES.get(values["status"].strip().lower())
    return {
        "values": values,
        "statuses": list(SubscriptionStatus),
        "chosen_status": chosen.value if chosen else "",
        "list_url": LIST,
    }


def _csv(query: SubscriptionQuery, index: SummaryIndex) -> func.HttpResponse:
    try:
        rows = list(export_subscriptions(query, index=index))
    except SummaryIndexUnreadableError:
        return _text(503, LIST_UNREADABLE)
    # The Functions host takes a whole body, so the lines are joined here; 10,000 rows are about 2 MB.
    body = "".join(csv_lines(CSV_HEADER, (_csv_row(row) for row in rows)))
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    log.info("console list exported", extra={"bytes": len(body)})
    return func.HttpResponse(
        body=body.encode("utf-8"),
        status_code=200,
        headers={
            **api_security_headers(),
            "Content-Disposition": f'attachment; filename="subscriptions-{stamp}.csv"',
        },
        mimetype="text/csv",
        charset="utf-8",
    )


def _csv_row(row: SubscriptionSummary) -> tuple[object, ...]:
    return (
        row.id,
        row.name,
        row.offer_id,
        row.plan_id,
        "" if row.quantity is None else row.quantity,
        row.status.value,
        row.purchaser.email,
        row.purchaser.tenant_id,
        row.beneficiary.email,
        row.beneficiary.tenant_id,
        row.created_at.isoformat() if row.created_at else "",
        row.last_synced_at.isoformat() if row.last_synced_at else "",
    )


def _text(status: int, message: str) -> func.HttpResponse:
    return func.HttpResponse(
        body=message + "\n",
        status_code=status,
        headers=api_security_headers(),
        mimetype="text/plain",
        charset="utf-8",
    )
