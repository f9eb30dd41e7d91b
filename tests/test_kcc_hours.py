"""KCC office hours (bot/kcc/hours.py): gemeente.yml hours in Dutch local time,
public holidays closed, and the tests-only KCC_ALWAYS_OPEN override."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot import config
from bot.kcc import hours

NL = ZoneInfo("Europe/Amsterdam")


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=NL)


@pytest.fixture(autouse=True)
def no_override(monkeypatch):
    monkeypatch.delenv("KCC_ALWAYS_OPEN", raising=False)


@pytest.mark.parametrize("moment, expected", [
    (local(2026, 3, 2, 8, 29), False),    # Monday before 8.30
    (local(2026, 3, 2, 8, 30), True),     # opening minute
    (local(2026, 3, 2, 16, 59), True),
    (local(2026, 3, 2, 17, 0), False),    # closing time itself is closed
    (local(2026, 3, 6, 12, 0), True),     # Friday
    (local(2026, 3, 7, 12, 0), False),    # Saturday
    (local(2026, 3, 8, 12, 0), False),    # Sunday
])
def test_opening_hours_from_the_municipality_file(moment, expected):
    assert hours.is_open(moment) is expected


@pytest.mark.parametrize("day, name", [
    (dt.date(2026, 4, 27), "King's Day"),          # a Monday
    (dt.date(2026, 5, 14), "Ascension Day"),       # a Thursday
    (dt.date(2026, 12, 25), "Christmas Day"),      # a Friday
    (dt.date(2026, 4, 6), "Easter Monday"),
])
def test_public_holidays_on_weekdays_are_closed(day, name):
    assert hours.holiday_name(day) == name
    noon = dt.datetime.combine(day, dt.time(12, 0), tzinfo=NL)
    assert hours.is_open(noon) is False
    # The working day before is a normal day.
    before = noon - dt.timedelta(days=1)
    if before.weekday() < 5 and hours.holiday_name(before.date()) is None:
        assert hours.is_open(before) is True


def test_hours_are_local_time_also_across_daylight_saving():
    # 08:00 UTC is 09:00 in winter and 10:00 in summer: open both times.
    assert hours.is_open(dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.timezone.utc)) is True
    assert hours.is_open(dt.datetime(2026, 7, 6, 8, 0, tzinfo=dt.timezone.utc)) is True
    # 15:45 UTC: 16:45 in winter (open), 17:45 in summer (closed).
    assert hours.is_open(dt.datetime(2026, 1, 5, 15, 45, tzinfo=dt.timezone.utc)) is True
    assert hours.is_open(dt.datetime(2026, 7, 6, 15, 45, tzinfo=dt.timezone.utc)) is False


def test_extra_closing_days_and_other_hours_from_the_file():
    g = dict(config.gemeente())
    g["kcc"] = dict(g["kcc"], gesloten_op=["2026-12-24"],
                    openingstijden={"zaterdag": ["10:00", "12:00"]})
    assert hours.is_open(local(2026, 12, 24, 11, 0), gemeente=g) is False   # Thursday, closed day
    assert hours.is_open(local(2026, 3, 7, 11, 0), gemeente=g) is True      # Saturday now open
    assert hours.is_open(local(2026, 3, 2, 11, 0), gemeente=g) is False     # Monday not listed


def test_injected_clock_is_used_when_no_moment_is_given(monkeypatch):
    monkeypatch.setattr(hours, "clock", lambda: local(2026, 4, 27, 10, 0))
    assert hours.is_open() is False
    monkeypatch.setattr(hours, "clock", lambda: local(2026, 4, 28, 10, 0))
    assert hours.is_open() is True


def test_tests_only_override(monkeypatch):
    sunday = local(2026, 3, 8, 3, 0)
    monkeypatch.setenv("KCC_ALWAYS_OPEN", "1")
    assert hours.is_open(sunday) is True
    assert hours.is_open(sunday, use_override=False) is False
    monkeypatch.setenv("KCC_ALWAYS_OPEN", "0")
    assert hours.is_open(local(2026, 3, 2, 10, 0)) is False


def test_naive_moments_are_refused():
    with pytest.raises(ValueError):
        hours.is_open(dt.datetime(2026, 3, 2, 10, 0))
