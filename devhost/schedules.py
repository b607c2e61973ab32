"""Timer schedules as the Functions host reads them: NCRONTAB with seconds, after `%SETTING%` is resolved.

An Azure timer schedule has six fields, `{second} {minute} {hour} {day} {month} {day-of-week}`
("0 */30 * * * *" is every 30 minutes), evaluated in UTC unless WEBSITE_TIME_ZONE says otherwise (the dev
host keeps UTC). croniter does the arithmetic, with the seconds field first; the field count is checked
here because croniter also takes five- and seven-field forms that the Functions host refuses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from croniter import croniter

NCRONTAB_FIELDS = 6
_REFERENCE = re.compile(r"%(\w+)%")


class ScheduleError(ValueError):
    """A schedule the Functions host would refuse, or a setting it refers to that is not set."""


def resolve_references(value: str, environ: Mapping[str, str]) -> str:
    """`%NAME%` replaced by the app setting NAME, as the host binds it; an unset one is an error, as there."""

    def setting(match: re.Match[str]) -> str:
        found = environ.get(match[1], "").strip()
        if not found:
            raise ScheduleError(f"the app setting {match[1]} (referred to as {match[0]}) is not set")
        return found

    return _REFERENCE.sub(setting, value or "")


class Schedule:
    """One NCRONTAB expression; `next_after` gives the first occurrence strictly after a moment."""

    def __init__(self, expression: str) -> None:
        fields = expression.split()
        if len(fields) != NCRONTAB_FIELDS:
            raise ScheduleError(
                f"timer schedule {expression!r} has {len(fields)} fields; NCRONTAB needs "
                f"{NCRONTAB_FIELDS}: second minute hour day month day-of-week"
            )
        if not croniter.is_valid(expression, second_at_beginning=True):
            raise ScheduleError(f"timer schedule {expression!r} is not a valid NCRONTAB expression")
        self.expression = " ".join(fields)

    def next_after(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            raise ValueError("schedules are evaluated on aware datetimes (UTC)")
        following: datetime = croniter(self.expression, moment, second_at_beginning=True).get_next(datetime)
        return following

    def __repr__(self) -> str:
        return f"Schedule({self.expression!r})"
