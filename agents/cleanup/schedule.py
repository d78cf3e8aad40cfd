"""Cron expressions and their next run in a time zone, correct across DST changes.

The syntax is the one Kubernetes CronJobs take: five fields `minute hour
day-of-month month day-of-week` with `*`, `?` (as `*` in the day fields), lists,
ranges, steps, month and weekday names (7 is also Sunday), and the macros @yearly,
@annually, @monthly, @weekly, @daily, @midnight, @hourly. As in cron, when both day
fields are restricted a day matches if EITHER does.

Times are wall-clock times of the zone. Daylight saving time follows classic cron:
- a fixed time that the spring-forward gap skips (02:30 when clocks jump from 02:00
  to 03:00) runs once, at the first instant after the gap, so a daily job never
  misses a day;
- a fixed time that the fall-back overlap repeats (01:30 twice) runs once, at its
  first occurrence;
- with `*` (or `*/n`) as the hour field a job follows the clock: it runs in both
  passes of a repeated hour, and not at all in a skipped one.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from agents.errors import ConfigError

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# Enough days to meet any valid expression (Feb 29 on a given weekday recurs within 28 years).
_SEARCH_DAYS = 366 * 29
_UTC = dt.UTC


class CronError(ValueError):
    """The expression is not valid cron; the message says which field and why."""


@dataclass(frozen=True)
class Cron:
    """A parsed expression: the allowed values of each field."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_star: bool
    weekdays_star: bool
    hours_star: bool

    def day_matches(self, day: dt.date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.days_star or self.weekdays_star:
            return dom and dow
        return dom or dow


def _value(text: str, names: tuple[str, ...], low: int, high: int, what: str) -> int:
    lowered = text.lower()
    if names and lowered in names:
        return names.index(lowered) + (1 if names is _MONTHS else 0)
    if not text.isdigit():
        raise CronError(f"{what}: {text!r} is not a number" + (" or a name" if names else ""))
    value = int(text)
    if not low <= value <= high:
        raise CronError(f"{what}: {value} is out of range {low}-{high}")
    return value


def _field(
    text: str, low: int, high: int, what: str, names: tuple[str, ...] = ()
) -> tuple[set[int], bool]:
    """One field -> (allowed values, whether it starts with '*' or is '?')."""
    values: set[int] = set()
    star = text.startswith("*") or text == "?"
    for part in text.split(","):
        if not part:
            raise CronError(f"{what}: empty list item in {text!r}")
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{what}: step {step_text!r} must be a number above 0")
            step = int(step_text)
        if base in ("*", "?"):
            if base == "?" and what not in ("day-of-month", "day-of-week"):
                raise CronError(f"{what}: '?' is only allowed in the day fields")
            first, last = low, high
        elif "-" in base:
            start_text, _, end_text = base.partition("-")
            first = _value(start_text, names, low, high, what)
            last = _value(end_text, names, low, high, what)
            if first > last:
                raise CronError(f"{what}: range {base!r} runs backwards")
        else:
            first = _value(base, names, low, high, what)
            last = high if slash else first
        values.update(range(first, last + 1, step))
    return values, star


def parse(expression: str) -> Cron:
    """Parse a cron expression; CronError says what is wrong."""
    text = expression.strip()
    fields = _MACROS.get(text.lower(), text).split()
    if len(fields) != 5:
        raise CronError(
            f"expected 5 fields (minute hour day-of-month month day-of-week) or a macro "
            f"such as @daily, got {len(fields)}"
        )
    minutes, _ = _field(fields[0], 0, 59, "minute")
    hours, hours_star = _field(fields[1], 0, 23, "hour")
    days, days_star = _field(fields[2], 1, 31, "day-of-month")
    months, _ = _field(fields[3], 1, 12, "month", _MONTHS)
    weekdays, weekdays_star = _field(fields[4], 0, 7, "day-of-week", _DAYS)
    if 7 in weekdays:
        weekdays = (weekdays - {7}) | {0}
    return Cron(
        text=text,
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days=frozenset(days),
        months=frozenset(months),
        weekdays=frozenset(weekdays),
        days_star=days_star,
        weekdays_star=weekdays_star,
        hours_star=hours_star,
    )


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA zone `name`; CronError if it is unknown."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise CronError(f"unknown time zone {name!r} (an IANA name such as Asia/Shanghai)")\
            from None


def parse_settings(schedule: str, timezone: str) -> tuple[Cron, zoneinfo.ZoneInfo]:
    """Validate --schedule and --timezone up front; ConfigError names the flag."""
    try:
        cron = parse(schedule)
    except CronError as exc:
        raise ConfigError(f"--schedule: invalid value {schedule!r}: {exc}") from None
    try:
        tz = zone(timezone)
    except CronError as exc:
        raise ConfigError(f"--timezone: {exc}") from None
    return cron, tz


def _gap_end(before: dt.datetime, after: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """The first instant of the new offset between two UTC instants around a transition."""
    lo, hi = before, after
    offset_after = hi.astimezone(tz).utcoffset()
    while (hi - lo) > dt.timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tz).utcoffset() == offset_after:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0)


def _instants(wall: dt.datetime, tz: zoneinfo.ZoneInfo, follow_clock: bool) -> list[dt.datetime]:
    """The UTC instants at which the naive wall time `wall` fires in `tz`."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(_UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(_UTC)
    if first.astimezone(tz).replace(tzinfo=None) != wall:
        # Skipped by a spring-forward gap: fold=1 lands before it, fold=0 after it.
        if follow_clock:
            return []
        return [_gap_end(min(first, second), max(first, second), tz)]
    if first != second and follow_clock:
        return [first, second]  # repeated by a fall-back overlap
    return [first]


def next_run(cron: Cron, after: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """The first run strictly after the aware instant `after`, as an aware UTC datetime."""
    after_utc = after.astimezone(_UTC)
    day = after_utc.astimezone(tz).date() - dt.timedelta(days=1)
    for _ in range(_SEARCH_DAYS):
        if cron.day_matches(day):
            best: dt.datetime | None = None
            for hour in cron.hours:
                for minute in cron.minutes:
                    wall = dt.datetime(day.year, day.month, day.day, hour, minute)
                    for instant in _instants(wall, tz, cron.hours_star):
                        if instant > after_utc and (best is None or instant < best):
                            best = instant
            if best is not None:
                return best
        day += dt.timedelta(days=1)
    raise CronError(f"{cron.text!r} never runs (no matching day within {_SEARCH_DAYS} days)")
