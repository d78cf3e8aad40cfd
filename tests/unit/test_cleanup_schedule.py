"""cleanup.schedule: cron parsing and the next run in a zone, across DST changes."""

from __future__ import annotations

import datetime as dt

import pytest

from agents.cleanup.schedule import CronError, next_run, parse, parse_settings, zone
from agents.errors import ConfigError

UTC = dt.UTC


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, *,
        second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_fields_lists_ranges_steps_names() -> None:
    cron = parse("*/15 1,13 1-7 jan-mar,DEC mon-fri")
    assert cron.minutes == (0, 15, 30, 45)
    assert cron.hours == (1, 13)
    assert cron.days == frozenset(range(1, 8))
    assert cron.months == frozenset({1, 2, 3, 12})
    assert cron.weekdays == frozenset({1, 2, 3, 4, 5})
    assert parse("0 0 * * 7").weekdays == frozenset({0})  # 7 is Sunday too
    assert parse("0 0 ? * 5-7").weekdays == frozenset({0, 5, 6})
    assert parse("5/20 * * * *").minutes == (5, 25, 45)
    daily = parse("@daily")
    assert (daily.minutes, daily.hours, daily.days_star, daily.weekdays_star) == (
        (0,), (0,), True, True)


@pytest.mark.parametrize("expression,message", [
    ("* * * *", "expected 5 fields"),
    ("60 * * * *", "minute: 60 is out of range 0-59"),
    ("0 24 * * *", "hour: 24"),
    ("0 0 0 * *", "day-of-month: 0"),
    ("0 0 * 13 *", "month: 13"),
    ("0 0 * foo *", "month: 'foo' is not a number or a name"),
    ("*/0 * * * *", "step '0'"),
    ("5-1 * * * *", "runs backwards"),
    ("? * * * *", "only allowed in the day fields"),
    ("1,,2 * * * *", "empty list item"),
    ("@reboot", "expected 5 fields"),
])
def test_invalid_expressions(expression: str, message: str) -> None:
    with pytest.raises(CronError, match=message):
        parse(expression)


def test_the_guides_schedule_in_shanghai() -> None:
    # 15 1 * * * in Asia/Shanghai (UTC+8, no DST) is 17:15 UTC of the day before.
    cron, tz = parse_settings("15 1 * * *", "Asia/Shanghai")
    assert next_run(cron, utc(2026, 11, 26, 20, 0), tz) == utc(2026, 11, 27, 17, 15)
    assert next_run(cron, utc(2026, 11, 27, 17, 15), tz) == utc(2026, 11, 28, 17, 15)
    assert next_run(cron, utc(2026, 11, 27, 17, 14, second=59), tz) == utc(2026, 11, 27, 17, 15)


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    cron, tz = parse("0 0 13 * 5"), zone("UTC")
    # From Monday 2026-11-02: Friday the 6th comes before the 13th.
    assert next_run(cron, utc(2026, 11, 2), tz) == utc(2026, 11, 6)
    assert next_run(cron, utc(2026, 11, 12, 1), tz) == utc(2026, 11, 13)
    # One restricted, the other '*': both must match (the 13th only).
    assert next_run(parse("0 0 13 * *"), utc(2026, 11, 2), tz) == utc(2026, 11, 13)


def test_spring_forward_gap_runs_once_after_the_gap() -> None:
    # Europe/Berlin jumps from 02:00 CET to 03:00 CEST on 2026-03-29 (01:00 UTC).
    tz = zone("Europe/Berlin")
    cron = parse("30 2 * * *")
    assert next_run(cron, utc(2026, 3, 28, 12), tz) == utc(2026, 3, 29, 1, 0)
    assert next_run(cron, utc(2026, 3, 29, 1, 0), tz) == utc(2026, 3, 30, 0, 30)
    # Two fixed times in the gap still run once.
    many = parse("0,30 2 * * *")
    assert next_run(many, utc(2026, 3, 28, 12), tz) == utc(2026, 3, 29, 1, 0)
    assert next_run(many, utc(2026, 3, 29, 1, 0), tz) == utc(2026, 3, 30, 0, 0)
    # A time after the gap is not disturbed.
    assert next_run(parse("30 3 * * *"), utc(2026, 3, 28, 12), tz) == utc(2026, 3, 29, 1, 30)


def test_fall_back_overlap_runs_a_fixed_time_once() -> None:
    # America/New_York goes from 02:00 EDT back to 01:00 EST on 2026-11-01 (06:00 UTC):
    # 01:30 happens at 05:30 UTC and again at 06:30 UTC.
    tz = zone("America/New_York")
    cron = parse("30 1 * * *")
    first = next_run(cron, utc(2026, 10, 31, 12), tz)
    assert first == utc(2026, 11, 1, 5, 30)
    assert next_run(cron, first, tz) == utc(2026, 11, 2, 6, 30)  # not 06:30 on the 1st


def test_a_wildcard_hour_follows_the_clock_through_changes() -> None:
    tz = zone("America/New_York")
    hourly = parse("0 * * * *")
    # Fall back: 01:00 EDT (05:00 UTC), then 01:00 EST (06:00 UTC), then 02:00 EST.
    assert next_run(hourly, utc(2026, 11, 1, 4, 30), tz) == utc(2026, 11, 1, 5)
    assert next_run(hourly, utc(2026, 11, 1, 5), tz) == utc(2026, 11, 1, 6)
    assert next_run(hourly, utc(2026, 11, 1, 6), tz) == utc(2026, 11, 1, 7)
    # Spring forward on 2026-03-08: 01:00 EST (06:00 UTC), then 03:00 EDT (07:00 UTC).
    assert next_run(hourly, utc(2026, 3, 8, 6), tz) == utc(2026, 3, 8, 7)


def test_a_daily_job_never_misses_a_day_across_a_year_of_changes() -> None:
    tz = zone("Europe/Berlin")
    cron = parse("30 2 * * *")
    moment = utc(2026, 1, 1)
    days = set()
    for _ in range(365):
        moment = next_run(cron, moment, tz)
        local = moment.astimezone(tz)
        days.add(local.date())
        assert (local.hour, local.minute) in {(2, 30), (3, 0)}
    assert len(days) == 365


def test_settings_errors_name_the_flag() -> None:
    with pytest.raises(ConfigError, match="--schedule"):
        parse_settings("61 * * * *", "UTC")
    with pytest.raises(ConfigError, match="--timezone: unknown time zone 'Mars/Olympus'"):
        parse_settings("0 1 * * *", "Mars/Olympus")
    with pytest.raises(ConfigError, match="--timezone"):
        parse_settings("0 1 * * *", "../etc/passwd")


def test_an_expression_that_never_runs() -> None:
    with pytest.raises(CronError, match="never runs"):
        next_run(parse("0 0 31 2 *"), utc(2026, 1, 1), zone("UTC"))
