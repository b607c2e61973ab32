"""The audit row of a publisher's decision on a plan or quantity change: written by the worker after its
answer, or by the re-check for a change answered while the worker was behind. A decision an operator made
in the console names them (`decided_by` on the inbox record), whichever path writes the row."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.domain.audit import AuditAction, AuditEntry, AuditSource
from shared.domain.inbox import InboxRecord
from shared.domain.subscription import Operation
from shared.workflows.sync import utcnow

if TYPE_CHECKING:
    from shared.workflows.ports import AuditLog


def audit_decision(audit: AuditLog, record: InboxRecord, operation: Operation, correlation_id: str) -> None:
    audit.append(
        AuditEntry(
            subscription_id=operation.subscription_id,
            at=utcnow(),
            action=AuditAction.decision_on(operation.action),
            source=AuditSource.OPERATOR if record.decided_by else AuditSource.PUBLISHER_POLICY,
            operation_id=operation.id,
            changes={"decision": (None, record.decision), "reason": (None, record.reason)},
            correlation_id=correlation_id,
            actor=record.decided_by,
        )
    )
