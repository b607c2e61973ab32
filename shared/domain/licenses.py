"""The license check's values: one index entry, and a question that cannot have an answer (pure).

The license index (`shared.storage.licenses`) stores one entry per seat holder and offer, or one per tenant
(`TENANT_WIDE`) for a flat-rate subscription; `shared.domain.access.license_answer` turns an entry's status
into the check's yes or no.
"""

from __future__ import annotations

from dataclasses import dataclass

# The object id of an entry every user of the tenant may use (a flat-rate subscription).
TENANT_WIDE = "*"


class InvalidLicenseQueryError(ValueError):
    """A tenant id, object id or offer id that cannot be a key (and so cannot have a license)."""


@dataclass(frozen=True)
class LicenseEntry:
    """One index row: who (tenant, object id or "*") may use which offer through which subscription."""

    tenant_id: str
    object_id: str
    offer_id: str
    subscription_id: str
    plan_id: str
    status: str
    quantity: int | None = None

    @property
    def tenant_wide(self) -> bool:
        return self.object_id == TENANT_WIDE
