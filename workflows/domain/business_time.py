"""Business-time arithmetic on a weekly office calendar (pure logic, workflow-safe).

DESIGN.md §2 "Business calendar": weekly opening intervals in a time zone
(Europe/Rome), national holidays (the ``holidays`` package, country IT) and
extra closed days (bridge days). Seeds 000 and 004 give the two office
schedules kept here as presets.

The arithmetic is deterministic: no wall clock, no I/O, no randomness. A
``Calendar`` is plain data (strings, ints, tuples) so it can travel in a
workflow input; its holidays are computed eagerly for ``first_year`` to
``last_year`` when it is built (once per process per country and years),
and instants outside those years raise ``ValueError``.

``holidays`` reads gettext catalogues from disk while it builds a country's
calendar, which the Temporal sandbox forbids: workflow code imports this
module pass-through (``with workflow.unsafe.imports_passed_through():``), so
the presets' holidays are computed once at worker start, outside the sandbox.

Opening intervals are local wall-clock times, so DST changes move them
in UTC. All instants are timezone-aware; results are UTC. An interval is
half-open: open at its start, closed at its end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

__all__ = [
    "SEED_000",
    "SEED_004",
    "Calendar",
    "add_business",
    "add_business_days",
    "business_between",
    "is_open",
    "next_opening",
]

ZERO = timedelta(0)
_HHMM = re.compile(r"(\d{2}):(\d{2})")

# One opening interval: (weekday 0=Monday..6=Sunday, start "HH:MM", end "HH:MM").
# End may be "24:00" (midnight at the end of the day).
Interval = tuple[int, str, str]
# One open span in UTC: [start, end).
Span = tuple[datetime, datetime]


@dataclass(frozen=True)
class Calendar:
    """Weekly opening hours in ``timezone``, closed on holidays and ``closed_dates``.

    ``country`` is an ISO code for ``holidays.country_holidays`` ("" for none);
    ``closed_dates`` are extra closed days (bridge days, company closures) as
    ISO dates. Lists are accepted (as after a JSON round trip) and stored as
    tuples. Raises ``ValueError`` naming the field when something is wrong.
    """

    intervals: tuple[Interval, ...]
    timezone: str = "Europe/Rome"
    country: str = "IT"
    closed_dates: tuple[str, ...] = ()
    first_year: int = 2000
    last_year: int = 2060

    def __post_init__(self) -> None:
        for name in ("intervals", "closed_dates"):
            if not isinstance(getattr(self, name), list | tuple):
                raise _field_error(name, f"expected a list, got {getattr(self, name)!r}")
        for i, item in enumerate(self.intervals):
            if not isinstance(item, list | tuple):
                raise _field_error(f"intervals[{i}]", f"expected (weekday, start, end): {item!r}")
        intervals = tuple(tuple(item) for item in self.intervals)
        object.__setattr__(self, "intervals", intervals)
        object.__setattr__(self, "closed_dates", tuple(self.closed_dates))
        _compiled(self)  # validates, and computes the holidays now


@dataclass(frozen=True)
class _Compiled:
    zone: ZoneInfo
    # weekday -> sorted local (start, end) times; end None means 24:00
    week: tuple[tuple[tuple[time, time | None], ...], ...]
    closed: frozenset[date]
    first: date
    last: date
    # local day -> its open spans in UTC, filled as days are asked for (pure function of the above)
    memo: dict[date, tuple[Span, ...]] = field(default_factory=dict, compare=False, repr=False)


def _field_error(name: str, message: str) -> ValueError:
    return ValueError(f"Calendar.{name}: {message}")


def _parse_time(text: object, name: str, allow_midnight_end: bool) -> tuple[int, time | None]:
    """Minutes since midnight and the wall-clock time (None for "24:00")."""
    match = _HHMM.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise _field_error(name, f"not a time HH:MM: {text!r}")
    hours, minutes = int(match[1]), int(match[2])
    if allow_midnight_end and (hours, minutes) == (24, 0):
        return 24 * 60, None
    if hours > 23 or minutes > 59:
        raise _field_error(name, f"not a time HH:MM: {text!r}")
    return hours * 60 + minutes, time(hours, minutes)


@lru_cache(maxsize=16)
def _country_holidays(country: str, first_year: int, last_year: int) -> frozenset[date]:
    """Every holiday date of ``country`` in the years, computed once per process.

    ``holidays`` reads its gettext catalogues from disk while it builds a
    calendar; the presets below warm this cache when the module is imported.
    """
    found = holidays.country_holidays(country, years=range(first_year, last_year + 1))
    return frozenset(found.keys())


@lru_cache(maxsize=64)
def _compiled(cal: Calendar) -> _Compiled:
    try:
        zone = ZoneInfo(cal.timezone) if isinstance(cal.timezone, str) and cal.timezone else None
    except (ZoneInfoNotFoundError, ValueError, OSError):
        zone = None
    if zone is None:
        raise _field_error("timezone", f"unknown time zone {cal.timezone!r}")

    if not cal.intervals:
        raise _field_error("intervals", "no opening intervals")
    days: list[list[tuple[int, int, time, time | None]]] = [[] for _ in range(7)]
    for i, item in enumerate(cal.intervals):
        name = f"intervals[{i}]"
        if len(item) != 3:
            raise _field_error(name, f"expected (weekday, start, end), got {item!r}")
        weekday, start_text, end_text = item
        if not isinstance(weekday, int) or isinstance(weekday, bool) or not 0 <= weekday <= 6:
            raise _field_error(name, f"weekday must be 0 (Monday) to 6 (Sunday), got {weekday!r}")
        start_min, start = _parse_time(start_text, f"{name}.start", allow_midnight_end=False)
        end_min, end = _parse_time(end_text, f"{name}.end", allow_midnight_end=True)
        if end_min <= start_min:
            raise _field_error(name, f"end {end_text} must be after start {start_text}")
        assert start is not None
        days[weekday].append((start_min, end_min, start, end))
    week: list[tuple[tuple[time, time | None], ...]] = []
    for weekday, found in enumerate(days):
        found.sort(key=lambda x: x[0])
        for before, after in pairwise(found):
            if after[0] < before[1]:
                raise _field_error(
                    "intervals",
                    f"overlapping intervals on weekday {weekday}: "
                    f"{before[2]:%H:%M} and {after[2]:%H:%M}",
                )
        week.append(tuple((start, end) for _, _, start, end in found))

    if not (
        isinstance(cal.first_year, int)
        and isinstance(cal.last_year, int)
        and 1900 <= cal.first_year <= cal.last_year <= 2200
    ):
        raise _field_error(
            "first_year",
            f"need 1900 <= first_year <= last_year <= 2200, "
            f"got {cal.first_year!r}..{cal.last_year!r}",
        )

    closed: set[date] = set()
    if cal.country:
        if not isinstance(cal.country, str):
            raise _field_error("country", f"not a country code: {cal.country!r}")
        try:
            closed |= _country_holidays(cal.country, cal.first_year, cal.last_year)
        except (NotImplementedError, KeyError, AttributeError) as exc:
            raise _field_error("country", f"no holidays for country {cal.country!r}") from exc
    for i, text in enumerate(cal.closed_dates):
        try:
            closed.add(date.fromisoformat(text))
        except (TypeError, ValueError) as exc:
            raise _field_error(f"closed_dates[{i}]", f"not an ISO date: {text!r}") from exc

    return _Compiled(
        zone=zone,
        week=tuple(week),
        closed=frozenset(closed),
        first=date(cal.first_year, 1, 1),
        last=date(cal.last_year, 12, 31),
    )


def _spans(c: _Compiled, day: date) -> tuple[Span, ...]:
    """The open spans of local ``day`` in UTC, in order; none on a closed day."""
    found = c.memo.get(day)
    if found is None:
        if not c.first <= day <= c.last:
            raise ValueError(
                f"{day.isoformat()} is outside the calendar's years {c.first.year}..{c.last.year}"
            )
        found = c.memo[day] = _day_spans(c, day)
    return found


def _day_spans(c: _Compiled, day: date) -> tuple[Span, ...]:
    if day in c.closed:
        return ()
    spans: list[Span] = []
    for start, end in c.week[day.weekday()]:
        s = datetime.combine(day, start, tzinfo=c.zone).astimezone(UTC)
        if end is None:
            e = datetime.combine(day + timedelta(days=1), time(0), tzinfo=c.zone)
        else:
            e = datetime.combine(day, end, tzinfo=c.zone)
        e = e.astimezone(UTC)
        # A wall time inside a DST gap can fold an interval; keep spans ordered and disjoint.
        if spans and s < spans[-1][1]:
            s = spans[-1][1]
        if e > s:
            spans.append((s, e))
    return tuple(spans)


def _utc(instant: datetime, name: str = "instant") -> datetime:
    if not isinstance(instant, datetime):
        raise ValueError(f"{name} must be a datetime, got {instant!r}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {instant.isoformat()}")
    return instant.astimezone(UTC)


def _local_day(c: _Compiled, instant: datetime) -> date:
    return instant.astimezone(c.zone).date()


def is_open(cal: Calendar, instant: datetime) -> bool:
    """True when ``instant`` falls inside an opening interval (start included, end not)."""
    t, c = _utc(instant), _compiled(cal)
    return any(s <= t < e for s, e in _spans(c, _local_day(c, t)))


def next_opening(cal: Calendar, instant: datetime) -> datetime:
    """The first open instant at or after ``instant`` (``instant`` itself when open)."""
    t, c = _utc(instant), _compiled(cal)
    day = _local_day(c, t)
    while True:
        for s, e in _spans(c, day):
            if e > t:
                return max(s, t)
        day += timedelta(days=1)


def add_business(cal: Calendar, start: datetime, duration: timedelta) -> datetime:
    """The instant when ``duration`` of open time has elapsed after ``start``.

    A start in closed time begins counting at the next opening. When the
    duration runs out exactly at the end of an interval the result is that
    end, not the next opening. A zero duration returns ``start`` (in UTC).
    """
    t = _utc(start, "start")
    if duration < ZERO:
        raise ValueError(f"duration must not be negative, got {duration}")
    if duration == ZERO:
        return t
    c = _compiled(cal)
    remaining = duration
    day = _local_day(c, t)
    while True:
        for s, e in _spans(c, day):
            if e <= t:
                continue
            begin = max(s, t)
            available = e - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        day += timedelta(days=1)


def add_business_days(cal: Calendar, start: datetime, days: int) -> datetime:
    """The same local time of day ``days`` open days after ``start``'s day.

    Days without any opening (weekends, holidays, closed dates) are not
    counted; when the resulting instant is closed, the next opening.
    """
    t = _utc(start, "start")
    if days < 0:
        raise ValueError(f"days must not be negative, got {days}")
    c = _compiled(cal)
    local = t.astimezone(c.zone)
    day, counted = local.date(), 0
    while counted < days:
        day += timedelta(days=1)
        if _spans(c, day):
            counted += 1
    candidate = datetime.combine(day, local.time(), tzinfo=c.zone).astimezone(UTC)
    return next_opening(cal, candidate)


def business_between(cal: Calendar, a: datetime, b: datetime) -> timedelta:
    """Open time in ``[a, b)``; zero when ``b <= a``."""
    ta, tb = _utc(a, "a"), _utc(b, "b")
    if tb <= ta:
        return ZERO
    c = _compiled(cal)
    total = ZERO
    day, last = _local_day(c, ta), _local_day(c, tb)
    while day <= last:
        for s, e in _spans(c, day):
            lo, hi = max(s, ta), min(e, tb)
            if hi > lo:
                total += hi - lo
        day += timedelta(days=1)
    return total


def _weekdays(*hours: tuple[str, str]) -> tuple[Interval, ...]:
    return tuple((weekday, start, end) for weekday in range(5) for start, end in hours)


# Seed 000: Monday to Friday 08:30-13:00 and 14:30-18:30.
SEED_000 = Calendar(intervals=_weekdays(("08:30", "13:00"), ("14:30", "18:30")))
# Seed 004: Monday to Friday 07:30-12:00 and 13:30-17:00, "salvo festività e ponti".
SEED_004 = Calendar(intervals=_weekdays(("07:30", "12:00"), ("13:30", "17:00")))
