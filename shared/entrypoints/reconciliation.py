"""The periodic reconciliation sweep (R15, R28, R83): missed webhooks, drift, unconfirmed activations."""

from __future__ import annotations

import uuid

import azure.functions as func

from shared.app_context import services
from shared.logs import get_logger, log_context
from shared.workflows.reconcile import SweepReport, sweep_and_record

log = get_logger(__name__)


def handle_timer(timer: func.TimerRequest) -> SweepReport:
    """Queues one reconcile message per subscription Microsoft lists; the worker does the rest, in order."""

    correlation_id = str(uuid.uuid4())
    with log_context(correlation_id=correlation_id):
        if timer.past_due:
            log.warning("reconciliation sweep is running late")
        app = services()
        return sweep_and_record(correlation_id, ports=app.sweep_ports)
