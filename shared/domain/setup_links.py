"""CSP setup links (R65) as values: a stored link, and why a code cannot be used (pure).

The store (`shared.storage.setup_links`) creates, checks and claims them; the workflow
(`shared.workflows.setup_links`) decides who may accept one; the portal turns each refusal reason into its
own page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

UNKNOWN = "unknown"
EXPIRED = "expired"
USED = "used"
# Set by the workflow, not the store: the link is fine but the visitor is not of the customer's tenant.
OTHER_TENANT = "other-tenant"


class SetupLinkError(LookupError):
    """The code cannot be used; `reason` is "unknown", "expired", "used" or "other-tenant"."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"setup link {reason}")
        self.reason = reason


@dataclass(frozen=True)
class SetupLink:
    """A stored link: only the code's hash is kept, and `etag` guards the single claim."""

    code_hash: str
    subscription_id: str
    created_by: str
    expires_at: datetime
    used_at: datetime | None = None
    used_by: str = ""
    etag: str = ""
