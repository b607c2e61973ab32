"""The sandbox's control surface: a JSON API under /control and a small HTML page at /, loopback only.

It plays the customer and Partner Center: define offers and plans, buy as a test user (or as a CSP partner
for a customer tenant), trigger customer-side changes and lifecycle events, read what Microsoft sees, inspect
webhook deliveries, change settings, inject faults, reset. No authentication: it only answers loopback
callers, and refuses cross-site form posts (an `Origin` header naming another host).

| Method | Path | Body | Answer |
|---|---|---|---|
| GET | /control/health | | `{"status": "ok"}` |
| GET | /control/identities | | publisher tenant/client id, tenants, users (no secrets) |
| GET | /control/offers | | `{"offers": [offer]}` (catalog-file form) |
| PUT | /control/offers/{offerId} | offer (catalog form) | 200 the offer, defined or replaced |
| PUT | /control/offers/{offerId}/plans/{planId} | plan (catalog form) | 200 the offer |
| POST | /control/offers/{offerId}/plans/{planId}/stop-sell | `{"isStopSell"}` | 200 the plan |
| POST | /control/purchases | see (1) | 201 `{"subscriptionId", "token", "landingUrl"}` |
| GET | /control/subscriptions | | `{"subscriptions": [...]}` as GetSubscription shows them |
| GET | /control/subscriptions/{id} | | `{"subscription", "operations"}` (2) |
| POST | /control/subscriptions/{id}/token | | 200 `{"subscriptionId", "token", "landingUrl"}` (3) |
| POST | /control/subscriptions/{id}/change-plan | `{"planId"}` | 200 `{"operationId"}` (4) |
| POST | /control/subscriptions/{id}/change-quantity | `{"quantity"}` | 200 `{"operationId"}` (4) |
| POST | /control/subscriptions/{id}/suspend | | 200 `{"operationId"}` (5) |
| POST | /control/subscriptions/{id}/reinstate | | 200 `{"operationId"}` (5) |
| POST | /control/subscriptions/{id}/unsubscribe | | 200 `{"operationId"}` (5) |
| POST | /control/subscriptions/{id}/renew | | 200 `{"operationId"}` (5), term rolled forward |
| GET | /control/operations/{operationId} | | the operation with `decision` |
| GET | /control/webhooks/deliveries | `?operationId=` | `{"deliveries": [...]}` (6) |
| GET | /control/settings | | the settings (7) |
| PATCH | /control/settings | some settings (7) | 200 all settings |
| GET | /control/faults | | `{"faults": [rule]}` |
| POST | /control/faults | rule (8) | 201 the rule with its `id` and `hits` |
| DELETE | /control/faults | | 204, every rule removed |
| DELETE | /control/faults/{id} | | 204 (404 when unknown) |
| POST | /control/reset | | 204 (9) |
| GET | / | | the HTML control page; its forms post to /page/... and come back |

(1) Direct: `{"offerId"?, "planId", "quantity"?, "buyer"}` with `buyer` a test user's object id or username.
    CSP: `{"offerId"?, "planId", "quantity"?, "partner", "customerTenantId", "customerUser"?}`: purchaser is
    the partner's user, beneficiary the customer tenant, allowedCustomerOperations `["Read"]`.
    Optional `name`, `isTest`, `autoRenew`. `offerId` may be left out when the catalog has one offer.
    `landingUrl` is the landing page URL + `?token=` + the URL-encoded token.
(2) Every operation (not only pending ones) with `decision`: how it ended (publisher PATCH, webhook answer,
    auto-accept, ...).
(3) A fresh purchase token for an existing subscription: the buyer opens "Configure account" again (R7).
(4) Customer-side change (source "Azure"): InProgress operation + webhook; accepted by PATCH Success or
    silence for `autoAcceptSeconds`, refused by PATCH Failure or a 4xx webhook answer (R34, R36, R52).
(5) Acts at once: Succeeded operation and a notify-only webhook.
(6) One entry per attempt: `operationId, action, attempt, url, status` (null when no answer), `error,
    elapsedSeconds, at`.
(7) `webhookUrl, landingUrl, autoAcceptSeconds, ignoreRejections, webhookMaxAttempts,
    webhookBaseDelaySeconds, webhookTimeoutSeconds, pageSize, tokenLifetimeSeconds, publisherId,
    emulatorWireFormat` (answer in the spelling of Microsoft's emulator: docs/wire-variants.md).
(8) `{"operation": Fulfillment API operationId or "*", "kind": "429" | "500" | "hang", "share": 0..1,
    "retryAfter": seconds, "hangSeconds", "seed"?, "maxCount"?}`.
(9) Forgets subscriptions, operations, tokens, deliveries and faults; catalog and settings as at start.

Errors: `{"error": {"code", "message"}}` with 400 (bad input), 403 (not loopback / cross-site), 404, 405.

Modules, one job each: `api` (`ControlApi`: loopback and cross-site checks, routing, refusals),
`json_routes` (the JSON routes), `fault_routes` (fault control, JSON and page forms), `page` (the HTML page
and its forms), `purchases` (buying as a test user or CSP partner), `answers` (JSON, errors, redirects back
to the page), `context` (what the routes act on, and reset).
"""
