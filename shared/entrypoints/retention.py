"""The daily retention purge (R56, R58): personal data of subscriptions Unsubscribed for `RETENTION_DAYS`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import azure.functions as func

from shared.app_context import services
from shared.logs import get_logger, log_context
from shared.workflows.retention import PurgeReport, purge_expired

log = get_logger(__name__)


def handle_timer(timer: func.TimerRequest, *, now: datetime | None = None) -> PurgeReport:
    """Purges every subscription whose retention period has ended; `now` lets a test move the clock."""
    correlation_id = str(uuid.uuid4())
    with log_context(correlation_id=correlation_id):
        if timer.past_due:
            log.warning("retention purge is running late")
        app = services()
        return purge_expired(
            now or datetime.now(UTC),
            app.settings.retention_days,
            correlation_id,
            ports=app.retention_ports,
        )
