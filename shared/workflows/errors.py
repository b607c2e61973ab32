"""How a workflow tells the worker what became of a message."""

from __future__ import annotations


class RetryLaterError(RuntimeError):
    """Transient: Service Bus delivers the message again (abandon), up to its max delivery count."""


class PermanentFailureError(RuntimeError):
    """No retry can succeed (forged operation, refused by Microsoft): park the message with this reason."""

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(f"{reason}: {description}")
        self.reason = reason
        self.description = description
