"""GET /api/console: the overview an operator opens first."""

from __future__ import annotations

from collections import Counter

import azure.functions as func

from shared.domain.status import SubscriptionStatus
from shared.entrypoints.console.visit import OperatorVisit, open_console
from shared.logs import get_logger

log = get_logger(__name__)


def handle_overview(req: func.HttpRequest) -> func.HttpResponse:
    visit = open_console(req)
    if isinstance(visit, func.HttpResponse):
        return visit
    by_status = _count_by_status(visit)
    log.info("console overview", extra={"subscriptions": sum(by_status.values())})
    return visit.render("console_overview.html", by_status=by_status, total=sum(by_status.values()))


def _count_by_status(visit: OperatorVisit) -> dict[SubscriptionStatus, int]:
    counts = Counter(subscription.status for subscription in visit.app.subscriptions.list_all())
    return {status: counts.get(status, 0) for status in SubscriptionStatus}
