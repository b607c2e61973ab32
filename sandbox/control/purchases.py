"""Buying as the control surface does it: a direct purchase by a test user, or a CSP partner buying for a
customer tenant, and how Microsoft names those people in `purchaser` and `beneficiary`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sandbox.control.answers import ControlError
from sandbox.control.context import ControlContext
from sandbox.identities import TestUser
from sandbox.marketplace.records import SUBSCRIBED, WireParty
from sandbox.marketplace.seeding import SeedRequest
from sandbox.marketplace.service import Marketplace


def party_of(user: TestUser) -> WireParty:
    """How Microsoft names a user in `purchaser`/`beneficiary`; users without a mailbox show their UPN."""
    puid = uuid.uuid5(uuid.NAMESPACE_OID, user.object_id).hex[:16].upper()
    return WireParty(
        email_id=user.mail or user.username, object_id=user.object_id, tenant_id=user.tenant_id, puid=puid
    )


def buy(context: ControlContext, body: Mapping[str, Any]) -> dict[str, Any]:
    """A direct purchase (`buyer`) or a CSP purchase (`partner` + `customerTenantId`)."""
    marketplace = context.marketplace
    offer_id = body.get("offerId") or _default_offer_id(marketplace)
    if "partner" in body:
        purchaser = party_of(_user(context, body["partner"]))
        beneficiary = _customer(context, body.get("customerTenantId"), body.get("customerUser"))
    else:
        purchaser = beneficiary = party_of(_user(context, body.get("buyer")))
    purchase = marketplace.purchase(
        offer_id=str(offer_id),
        plan_id=_required_text(body, "planId"),
        quantity=body.get("quantity"),
        purchaser=purchaser,
        beneficiary=beneficiary,
        csp="partner" in body,
        name=body.get("name"),
        is_test=bool(body.get("isTest", False)),
        auto_renew=bool(body.get("autoRenew", True)),
    )
    return token_answer(marketplace, purchase.subscription_id, purchase.token)


def seed_request(context: ControlContext, body: Mapping[str, Any]) -> SeedRequest:
    """`{"planId", "count", "quantity"?, "status"?: Subscribed, "buyer"?, "offerId"?}`: who bought them
    is the named test user (the first one when none is named)."""
    buyer = body.get("buyer") or context.identities.users[0].username
    return SeedRequest(
        offer_id=str(body.get("offerId") or _default_offer_id(context.marketplace)),
        plan_id=_required_text(body, "planId"),
        count=body.get("count", 0),  # checked by the marketplace
        quantity=body.get("quantity"),
        status=str(body.get("status") or SUBSCRIBED),
        party=party_of(_user(context, buyer)),
    )


def token_answer(marketplace: Marketplace, subscription_id: str, token: str) -> dict[str, Any]:
    return {"subscriptionId": subscription_id, "token": token, "landingUrl": marketplace.landing_url(token)}


def _user(context: ControlContext, reference: Any) -> TestUser:
    """A test user by object id or username (case-insensitive)."""
    wanted = str(reference or "").strip().lower()
    for user in context.identities.users:
        if wanted in {user.object_id.lower(), user.username.lower()}:
            return user
    raise ControlError(400, "BadRequest", f"no test user {reference!r} in the identities file")


def _customer(context: ControlContext, tenant_id: Any, user_reference: Any) -> WireParty:
    """The CSP customer: a named user, else the tenant's first user, else a stand-in admin."""
    tenant = context.identities.tenant(str(tenant_id or ""))
    if tenant is None:
        raise ControlError(400, "BadRequest", f"customerTenantId {tenant_id!r} is not a known tenant")
    if user_reference:
        user = _user(context, user_reference)
        if user.tenant_id != tenant.tenant_id:
            raise ControlError(400, "BadRequest", f"{user.username} is not in tenant {tenant.tenant_id}")
        return party_of(user)
    users = [u for u in context.identities.users if u.tenant_id == tenant.tenant_id]
    if users:
        return party_of(users[0])
    admin = str(uuid.uuid5(uuid.NAMESPACE_OID, f"{tenant.tenant_id}/admin"))
    return WireParty(
        f"admin@{tenant.tenant_id}.example", admin, tenant.tenant_id, admin.replace("-", "")[:16]
    )


def _default_offer_id(marketplace: Marketplace) -> str:
    offers = marketplace.offers()
    if len(offers) != 1:
        raise ControlError(400, "BadRequest", "offerId is required when the catalog has several offers")
    return offers[0].offer_id


def _required_text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ControlError(400, "BadRequest", f"'{key}' is required")
    return value
