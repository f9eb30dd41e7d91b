"""Is the KCC open? Opening hours from ``gemeente.yml`` ``kcc.openingstijden``
(local Dutch time), closed on Dutch public holidays (``holidays.NL``) and on
the dates in ``kcc.gesloten_op`` (e.g. a municipal closing day).

``KCC_ALWAYS_OPEN`` (tests only, see :mod:`bot.kcc.settings`) overrides it all.
"""
from __future__ import annotations

import datetime as dt
import functools
from typing import Any, Callable, Dict, Optional

import holidays as holidays_lib

from bot import config
from bot.cases.models import LOCAL_TZ
from bot.kcc.settings import forced_open

WEEKDAYS = ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


#: The clock ``is_open()`` asks when no moment is given. Tests replace it
#: (``monkeypatch.setattr(hours, "clock", lambda: moment)``).
clock: Callable[[], dt.datetime] = _utcnow


@functools.lru_cache(maxsize=8)
def _holidays(year: int) -> holidays_lib.HolidayBase:
    return holidays_lib.NL(years=[year])


def _time(value: str) -> dt.time:
    hours, minutes = str(value).split(":")
    return dt.time(int(hours), int(minutes))


def holiday_name(day: dt.date) -> Optional[str]:
    return _holidays(day.year).get(day)


def is_open(at: Optional[dt.datetime] = None, *, gemeente: Optional[Dict[str, Any]] = None,
            use_override: bool = True) -> bool:
    """True when KCC employees are at work at ``at`` (aware; default: now)."""
    if use_override:
        forced = forced_open()
        if forced is not None:
            return forced
    moment = at or clock()
    if moment.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    local = moment.astimezone(LOCAL_TZ)
    kcc = (gemeente if gemeente is not None else config.gemeente()).get("kcc") or {}
    if holiday_name(local.date()) is not None:
        return False
    closed_days = {str(d) for d in (kcc.get("gesloten_op") or [])}
    if local.date().isoformat() in closed_days:
        return False
    hours = (kcc.get("openingstijden") or {}).get(WEEKDAYS[local.weekday()])
    if not hours:
        return False
    start, end = _time(hours[0]), _time(hours[1])
    return start <= local.time().replace(tzinfo=None) < end
