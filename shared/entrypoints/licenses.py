"""GET /api/licenses/check: may user (tenantId, objectId) use offer `offerId`, and with which plan?

Called by the publisher's own SaaS app, possibly on every request, so it is at most one read of the license
index (`shared.storage.licenses`): each instance reuses an answer for LICENSE_CACHE_SECONDS (10 by default,
the bound on how long a revoked seat may still be allowed here), and the caller may cache it for
`CACHE_SECONDS`. The function key
(auth level FUNCTION) authenticates the caller; the answer names no one but the user asked about.
Described in `docs/license-api.openapi.yaml`.
"""

from __future__ import annotations

import azure.functions as func

from shared.app_context import services
from shared.domain.access import license_answer
from shared.domain.licenses import InvalidLicenseQueryError
from shared.entrypoints.http import error_response, json_response
from shared.logs import get_logger, log_context

log = get_logger(__name__)

CACHE_SECONDS = 60
CACHE_HEADERS = {"Cache-Control": f"private, max-age={CACHE_SECONDS}"}
PARAMETERS = ("tenantId", "objectId", "offerId")


def handle_license_check(req: func.HttpRequest) -> func.HttpResponse:

    missing = [name for name in PARAMETERS if not (req.params.get(name) or "").strip()]
    if missing:
        log.info("license check without parameters", extra={"missing": missing})
        return error_response(400, "missing_parameter", f"required query parameters: {', '.join(missing)}")
    tenant_id, object_id, offer_id = (req.params[name].strip() for name in PARAMETERS)
    with log_context(tenant_id=tenant_id):
        try:
            entry = services().licenses.lookup(tenant_id, object_id, offer_id)
        except InvalidLicenseQueryError as exc:
            log.info("license check with malformed parameters")
            return error_response(400, "invalid_parameter", str(exc))
        allowed, reason = license_answer(entry.status if entry else None)
        log.info("license checked", extra={"allowed": allowed, "reason": reason})
        return json_response(
            {
                "allowed": allowed,
                "subscriptionId": entry.subscription_id if entry else None,
                "planId": entry.plan_id if entry else None,
                "status": entry.status if entry else None,
                "reason": reason,
            },
            headers=CACHE_HEADERS,
        )
