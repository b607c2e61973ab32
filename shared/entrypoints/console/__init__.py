"""The publisher's operations console under /api/console: pages for the publisher's own staff (issue 11).

Not /api/admin: the Functions host refuses any route that starts with `admin` (its own admin API lives
there), so a route spelled that way would work under the dev host and vanish in Azure.
"""
