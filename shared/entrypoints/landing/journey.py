"""What the landing pages share: where the purchase waits in the session, and how a lost buyer starts over.

Only the subscription id is remembered between the pages, never the purchase token (R4).
"""

from __future__ import annotations

# Where `land` leaves the subscription id for `confirm`, in the signed session cookie.
LANDING_SESSION_KEY = "landing_subscription_id"
CONFIRM_PATH = "/api/landing/confirm"
# Every landing page that cannot go on sends the buyer back to Microsoft: only a fresh link carries a token.
REOPEN_HINT = (
    "Open the SaaS subscription again in the Azure portal or the Microsoft 365 admin center and choose "
    "Configure account or Manage account."
)
