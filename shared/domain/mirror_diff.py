"""The stored mirror of a subscription beside Microsoft's live view, field by field, in words.

An operator looks for drift (a lost webhook, a change made while the service was down): each row names a
field the way a person reads it, shows both sides as text and says whether they differ. Both sides go through
the same wording, so two values that read the same (a date with and without its time) never show as drift,
and two that read differently always do. Pure: values in, rows out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.domain.subscription import MicrosoftSubscription, Party, Subscription
from shared.domain.wording import NOT_REPORTED, billing_term, status_name, tenant_words

_YES_NO = {True: "Yes", False: "No"}


@dataclass(frozen=True)
class MirrorField:
    """One field compared: its label, a stable key for pages and tests, and both sides as text."""

    key: str
    label: str
    stored: str
    live: str

    @property
    def differs(self) -> bool:
        # Without Microsoft's side (it did not answer) nothing can be said to differ.
        return bool(self.live) and self.stored != self.live


def compare(stored: Subscription, live: MicrosoftSubscription | None) -> list[MirrorField]:
    """Every mirrored field a person checks, in reading order; `differs` marks the drift. Without `live`
    (Microsoft did not say), the stored side alone, with Microsoft's side blank."""
    mine = _fields(stored)
    theirs = _fields(live) if live is not None else {}
    return [
        MirrorField(key, label, _or_missing(text), _or_missing(theirs[key][1]) if theirs else "")
        for key, (label, text) in mine.items()
    ]


def _fields(sub: Subscription | MicrosoftSubscription) -> dict[str, tuple[str, str]]:
    return {
        "name": ("Name", sub.name),
        "status": ("Status", status_name(sub.status)),
        "offer": ("Offer", sub.offer_id),
        "plan": ("Plan", sub.plan_id),
        "quantity": ("Seats", _quantity(sub.quantity)),
        "term": ("Billing term", billing_term(sub.term.unit)),
        "term_start": ("Term starts", _day(sub.term.start)),
        "term_end": ("Term ends", _day(sub.term.end)),
        "auto_renew": ("Renews automatically", _YES_NO[sub.auto_renew]),
        "purchaser": ("Purchaser", _party(sub.purchaser)),
        "beneficiary": ("Beneficiary", _party(sub.beneficiary)),
        "free_trial": ("Free trial", _YES_NO[sub.is_free_trial]),
        "test": ("Test purchase", _YES_NO[sub.is_test]),
    }


def drifted(fields: list[MirrorField]) -> list[MirrorField]:
    return [field for field in fields if field.differs]


def _quantity(quantity: int | None) -> str:
    # A flat-rate plan has no quantity at all, which is not the same as "Not reported".
    return "No seat count (flat rate)" if quantity is None else str(quantity)


def _day(moment: datetime | None) -> str:
    # Terms are whole days (R68); the time Microsoft attaches is midnight and says nothing.
    return moment.date().isoformat() if moment is not None else ""


def _party(party: Party) -> str:
    # The address alone would hide a change of tenant or of the person behind the same address.
    parts = [party.email.strip().lower()]
    if party.tenant_id:
        parts.append(tenant_words(party.tenant_id.strip().lower()))
    if party.object_id:
        parts.append(f"user {party.object_id.strip().lower()}")
    return ", ".join(part for part in parts if part)


def _or_missing(text: str) -> str:
    return text.strip() or NOT_REPORTED
