"""The landing journey: Microsoft sends the buyer here with `?token=...` (R1-R16, R60-R62).

`land` resolves the token at once and never stores it, not even in the session (R4): the purchase is
recorded and only its subscription id is remembered. The buyer then signs in with Entra ID (R8) and
`confirm` shows on /api/landing/confirm what they bought, who they are and where we may write to them (R11,
R12). Only that confirmation (a CSRF-checked POST) grants the admin roles and queues the activation, exactly
once: a refresh, the back button or a second visit leads to the subscription's status or management page
instead (R7). `status` shows the activation's progress to the session that confirmed it. `journey` holds
what the three pages share.
"""
