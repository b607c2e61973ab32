"""The buyer's portal: signed-in users see and manage the subscriptions they hold a role on (R49, R60-R66).

`pages` renders the home and subscription pages, `actions` checks and dispatches every form post to
`changes` (plan, quantity, cancel), `seats` (seats and admins) or `setup` (CSP setup links, which also serves
the customer's confirm page). `visit` holds what every request shares: session, CSRF, the subscription and
the visitor's roles on it.
"""
