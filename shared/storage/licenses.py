"""The license index: "may user (tenant, object id) use offer O, with which plan?" answered in one read.

Rows are denormalised copies of what the check needs, kept in step by the writers:
- PartitionKey = tenant id (lower case); RowKey "<object id>|<offer id>" for each seat holder whose identity
  is known (seat assigned to a signed-in user, or bound on first sign-in), and "*|<offer id>" for a flat-rate
  subscription, which every user of the beneficiary tenant may use; a flat-rate subscription of a personal
  Microsoft account gets "<its object id>|<offer id>" instead, as every personal account shares one tenant;
- properties: subscription_id, plan_id, status (Microsoft's), quantity.

The check is one request to one partition asking for exactly those two keys, so its cost does not depend on
how many tenants, users or offers exist. The one writer is `shared.workflows.seats`: when a seat is
assigned, bound or revoked, and (through `shared.workflows.sync.mirror`) when a subscription's plan or status
changes.

When one tenant holds two subscriptions of the same offer (one cancelled, one bought again), a Subscribed
subscription's row is never overwritten by one that is not.

The check is called on every request of the publisher's app, so each instance keeps its answers (licensed
or not) for `cache_seconds` (LICENSE_CACHE_SECONDS): a seat revoked, or a subscription suspended, elsewhere
stops being allowed here within that bound. A write through this instance's index empties its cache at once.
The cache holds at most `CACHE_ENTRIES` answers; when full it starts again empty rather than keep an order.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.domain.access import is_flat_rate, tenant_wide_license
from shared.domain.identity import Person, is_personal_account, is_personal_tenant
from shared.domain.licenses import TENANT_WIDE, InvalidLicenseQueryError, LicenseEntry
from shared.domain.status import SubscriptionStatus
from shared.domain.subscription import Subscription
from shared.logs import get_logger

log = get_logger(__name__)

_ID = re.compile(r"^[a-z0-9._-]{1,128}$")
_OFFER = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
CACHE_ENTRIES = 50_000  # ~ a few MB: one (tenant, user, offer) key and one small entry each


def normalize_id(value: str, what: str) -> str:
    cleaned = (value or "").strip().lower()
    if not _ID.match(cleaned):
        raise InvalidLicenseQueryError(f"{what} must be an Entra id (letters, digits, '-', '.', '_')")
    return cleaned


def normalize_offer(value: str) -> str:
    cleaned = (value or "").strip()
    if not _OFFER.match(cleaned):
        raise InvalidLicenseQueryError("offerId must be letters, digits, '-', '.' or '_'")
    return cleaned


def _row_key(object_id: str, offer_id: str) -> str:
    return f"{object_id}|{offer_id}"


def _own_first(entry: LicenseEntry) -> bool:
    return entry.tenant_wide


def _entry(entity: dict[str, Any]) -> LicenseEntry:
    object_id, _, offer_id = str(entity["RowKey"]).partition("|")
    quantity = entity.get("quantity")
    return LicenseEntry(
        tenant_id=entity["PartitionKey"],
        object_id=object_id,
        offer_id=offer_id,
        subscription_id=str(entity.get("subscription_id", "")),
        plan_id=str(entity.get("plan_id", "")),
        status=str(entity.get("status", "")),
        quantity=int(quantity) if quantity is not None else None,
    )


class LicenseIndex:
    """Reads and writes the license index table; answers lookups from a short per-instance cache.

    :param table_client: the client of an existing table.
    :param cache_seconds: how long an answer may be reused (0: every lookup reads the table).
    :param clock: seconds on a monotonic clock (tests pass their own to step time without sleeping).
    """

    def __init__(
        self,
        table_client: TableClient,
        *,
        cache_seconds: float = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._table = table_client
        self._cache_seconds = cache_seconds
        self._clock = clock
        # (tenant, object id, offer) -> (expires at, answer). Plain dict operations are atomic under the
        # GIL; two threads missing at once both read the table, which is harmless.
        self._cache: dict[tuple[str, str, str], tuple[float, LicenseEntry | None]] = {}

    # --- the check -----------------------------------------------------------------------------------

    def lookup(self, tenant_id: str, object_id: str, offer_id: str) -> LicenseEntry | None:
        """The user's own seat row if any, else the tenant-wide row, in a single request.

        Raises InvalidLicenseQueryError on ids that cannot be keys.
        """
        tid, oid = normalize_id(tenant_id, "tenantId"), normalize_id(object_id, "objectId")
        offer = normalize_offer(offer_id)
        if self._cache_seconds <= 0:
            return self._read(tid, oid, offer)
        key = (tid, oid, offer)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        entry = self._read(tid, oid, offer)
        if len(self._cache) >= CACHE_ENTRIES:
            self._cache = {}
        self._cache[key] = (now + self._cache_seconds, entry)
        return entry

    def _read(self, tid: str, oid: str, offer: str) -> LicenseEntry | None:
        rows = self._table.query_entities(
            # The SDK substitutes @-parameters only where they stand alone between spaces.
            "PartitionKey eq @tid and ( RowKey eq @user or RowKey eq @anyone )",
            parameters={"tid": tid, "user": _row_key(oid, offer), "anyone": _row_key(TENANT_WIDE, offer)},
        )
        # A tenant-wide row in the personal-account tenant (written before personal accounts were told
        # apart) would license every personal account in the world: it never counts.
        found = (_entry(row) for row in rows)
        usable = (e for e in found if not (e.tenant_wide and is_personal_tenant(tid)))
        entries = sorted(usable, key=_own_first)
        return entries[0] if entries else None

    # --- writers -------------------------------------------------------------------------------------

    def put_seat(self, subscription: Subscription, tenant_id: str, object_id: str) -> None:
        """The seat holder (tid+oid) may use the subscription's offer."""
        self._put(subscription, normalize_id(tenant_id, "tenant id"), normalize_id(object_id, "object id"))

    def remove_seat(self, subscription: Subscription, tenant_id: str, object_id: str) -> None:
        self._remove(subscription, normalize_id(tenant_id, "tenant id"), normalize_id(object_id, "object id"))

    def remove_subscription(self, subscription: Subscription, seat_holders: list[Person]) -> None:
        """Deletes every row the subscription wrote (tenant-wide, personal owner, each seat holder); rows
        another subscription owns stay (the retention purge)."""
        beneficiary = (subscription.beneficiary.tenant_id or "").strip().lower()
        if beneficiary and _ID.match(beneficiary):
            self._remove(subscription, beneficiary, TENANT_WIDE)
        owner = subscription.beneficiary
        if is_personal_account(owner) and _ID.match((owner.object_id or "").strip().lower()):
            self.remove_seat(subscription, owner.tenant_id, owner.object_id)
        for holder in seat_holders:
            self.remove_seat(subscription, holder.tenant_id, holder.object_id)
        log.info("license rows removed", extra={"seat_rows": len(seat_holders)})

    def licensed_elsewhere(self, tenant_id: str, object_id: str, subscription_id: str) -> bool:
        """Whether the person holds a seat row of a subscription other than `subscription_id` (one
        partition range read: their rows are "<object id>|<offer>")."""
        oid = normalize_id(object_id, "object id")
        rows = self._table.query_entities(
            "PartitionKey eq @tid and RowKey gt @low and RowKey lt @high",
            # '}' follows '|' in ASCII: every "<oid>|..." key sorts between the two.
            parameters={"tid": normalize_id(tenant_id, "tenant id"), "low": f"{oid}|", "high": f"{oid}}}"},
        )
        return any(row.get("subscription_id") != subscription_id for row in rows)

    def refresh(self, subscription: Subscription, seat_holders: list[Person]) -> None:
        """Rewrites every row of the subscription from its current plan, status and seat holders."""
        beneficiary = (subscription.beneficiary.tenant_id or "").strip().lower()
        if beneficiary and _ID.match(beneficiary):
            if tenant_wide_license(subscription):
                self._put(subscription, beneficiary, TENANT_WIDE)
            else:
                self._remove(subscription, beneficiary, TENANT_WIDE)
        self._refresh_personal_owner(subscription, seat_holders)
        for holder in seat_holders:
            self.put_seat(subscription, holder.tenant_id, holder.object_id)
        log.info("license index refreshed", extra={"seat_rows": len(seat_holders)})

    def _refresh_personal_owner(self, subscription: Subscription, seat_holders: list[Person]) -> None:
        """A flat-rate plan bought by a personal account licenses that account alone (tenant + object id)."""
        owner = subscription.beneficiary
        if not is_personal_account(owner) or not _ID.match((owner.object_id or "").strip().lower()):
            return
        if is_flat_rate(subscription):
            self.put_seat(subscription, owner.tenant_id, owner.object_id)
        elif Person.of(owner.tenant_id, owner.object_id) not in set(seat_holders):
            self.remove_seat(subscription, owner.tenant_id, owner.object_id)

    def _get(self, tenant_id: str, row_key: str) -> dict[str, Any] | None:
        try:
            return self._table.get_entity(tenant_id, row_key)
        except ResourceNotFoundError:
            return None

    def _put(self, subscription: Subscription, tenant_id: str, object_id: str) -> None:
        offer = normalize_offer(subscription.offer_id)
        row_key = _row_key(object_id, offer)
        self._cache = {}  # this instance's own writes are seen at once; others' within cache_seconds
        # A live subscription's row replaces whatever is there, so only one that is not live reads first.
        live = subscription.status is SubscriptionStatus.SUBSCRIBED
        if not live and not self._may_overwrite(self._get(tenant_id, row_key), subscription):
            log.info("license row kept: another subscription of this offer is active")
            return
        entity: dict[str, Any] = {
            "PartitionKey": tenant_id,
            "RowKey": row_key,
            "subscription_id": subscription.id,
            "plan_id": subscription.plan_id,
            "status": subscription.status.value,
            "updated_at": datetime.now(UTC),
        }
        if subscription.quantity is not None:
            entity["quantity"] = subscription.quantity
        self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    @staticmethod
    def _may_overwrite(existing: dict[str, Any] | None, subscription: Subscription) -> bool:
        if existing is None or existing.get("subscription_id") == subscription.id:
            return True
        return not (
            existing.get("status") == SubscriptionStatus.SUBSCRIBED.value
            and subscription.status is not SubscriptionStatus.SUBSCRIBED
        )

    def _remove(self, subscription: Subscription, tenant_id: str, object_id: str) -> None:
        row_key = _row_key(object_id, normalize_offer(subscription.offer_id))
        self._cache = {}
        existing = self._get(tenant_id, row_key)
        # Only this subscription's row: another subscription of the same offer may license the same user.
        if existing is not None and existing.get("subscription_id") == subscription.id:
            self._table.delete_entity(tenant_id, row_key)


def license_table_name(table_seats: str) -> str:
    """Beside the seats table it indexes; deriving the name keeps test prefixes and deployments in step."""
    return f"{table_seats}licenses"
