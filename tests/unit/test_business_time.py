"""Business-time arithmetic on the seed office calendars (DESIGN.md §2)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflows.domain.business_time import (
    SEED_000,
    SEED_004,
    Calendar,
    add_business,
    add_business_days,
    business_between,
    is_open,
    next_opening,
)

pytestmark = pytest.mark.unit

ROME = ZoneInfo("Europe/Rome")
H = timedelta(hours=1)
M = timedelta(minutes=1)
ZERO = timedelta(0)


def rome(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ROME)


def in_rome(instant: datetime) -> datetime:
    return instant.astimezone(ROME)


# -- the worked example -------------------------------------------------------------------


def test_friday_evening_ticket_is_due_monday_late_morning() -> None:
    # 35 minutes on Friday (17:55-18:30), 3 h 25 min on Monday (08:30-11:55).
    due = add_business(SEED_000, rome(2026, 11, 20, 17, 55), 4 * H)
    assert due == rome(2026, 11, 23, 11, 55)
    assert due.tzinfo is UTC
    assert business_between(SEED_000, rome(2026, 11, 20, 17, 55), due) == 4 * H


# -- opening hours ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cal, local, expected",
    [
        (SEED_000, (2026, 11, 23, 8, 29), False),
        (SEED_000, (2026, 11, 23, 8, 30), True),
        (SEED_000, (2026, 11, 23, 12, 59), True),
        (SEED_000, (2026, 11, 23, 13, 0), False),
        (SEED_000, (2026, 11, 23, 14, 30), True),
        (SEED_000, (2026, 11, 23, 18, 29), True),
        (SEED_000, (2026, 11, 23, 18, 30), False),
        (SEED_000, (2026, 11, 21, 10, 0), False),  # Saturday
        (SEED_000, (2026, 11, 22, 10, 0), False),  # Sunday
        (SEED_004, (2026, 11, 23, 7, 30), True),
        (SEED_004, (2026, 11, 23, 12, 0), False),
        (SEED_004, (2026, 11, 23, 13, 29), False),
        (SEED_004, (2026, 11, 23, 13, 30), True),
        (SEED_004, (2026, 11, 23, 17, 0), False),
    ],
)
def test_is_open_follows_the_seed_hours(
    cal: Calendar, local: tuple[int, ...], expected: bool
) -> None:
    assert is_open(cal, rome(*local)) is expected


def test_next_opening() -> None:
    open_now = rome(2026, 11, 23, 9, 0)
    assert next_opening(SEED_000, open_now) == open_now
    assert next_opening(SEED_000, rome(2026, 11, 23, 13, 0)) == rome(2026, 11, 23, 14, 30)
    assert next_opening(SEED_000, rome(2026, 11, 20, 18, 30)) == rome(2026, 11, 23, 8, 30)
    assert next_opening(SEED_004, rome(2026, 11, 20, 18, 30)) == rome(2026, 11, 23, 7, 30)
    assert next_opening(SEED_000, rome(2026, 11, 23, 9, 0)).tzinfo is UTC


def test_lunch_break_does_not_count() -> None:
    assert add_business(SEED_000, rome(2026, 11, 23, 12, 0), 2 * H) == rome(2026, 11, 23, 15, 30)
    assert add_business(SEED_004, rome(2026, 11, 23, 11, 0), 2 * H) == rome(2026, 11, 23, 14, 30)
    assert business_between(SEED_000, rome(2026, 11, 23), rome(2026, 11, 24)) == 8 * H + 30 * M
    assert business_between(SEED_004, rome(2026, 11, 23), rome(2026, 11, 24)) == 8 * H


def test_closed_start_counts_from_the_next_opening() -> None:
    assert add_business(SEED_000, rome(2026, 11, 21, 10, 0), H) == rome(2026, 11, 23, 9, 30)


def test_duration_ending_at_closing_time_is_the_closing_time() -> None:
    assert add_business(SEED_000, rome(2026, 11, 23, 16, 30), 2 * H) == rome(2026, 11, 23, 18, 30)


def test_zero_duration_is_the_start_and_negative_is_refused() -> None:
    start = rome(2026, 11, 21, 10, 0)
    assert add_business(SEED_000, start, ZERO) == start
    with pytest.raises(ValueError, match="duration"):
        add_business(SEED_000, start, -M)


def test_business_between_is_zero_when_b_is_not_after_a() -> None:
    a = rome(2026, 11, 23, 10, 0)
    assert business_between(SEED_000, a, a) == ZERO
    assert business_between(SEED_000, a, a - H) == ZERO


# -- holidays and closed days -------------------------------------------------------------


@pytest.mark.parametrize("cal", [SEED_000, SEED_004], ids=["seed000", "seed004"])
@pytest.mark.parametrize(
    "holiday",
    [
        (2027, 3, 29),  # Easter Monday (Pasquetta)
        (2026, 4, 6),  # Easter Monday 2026
        (2028, 4, 25),  # 25 April on a Tuesday
        (2028, 5, 1),  # Labour day, Monday
        (2028, 6, 2),  # Republic day, Friday
        (2028, 8, 15),  # Ferragosto, Tuesday
        (2026, 12, 8),  # Immacolata, Tuesday
        (2026, 12, 25),  # Christmas, Friday
    ],
)
def test_italian_holidays_are_closed(cal: Calendar, holiday: tuple[int, int, int]) -> None:
    day = rome(*holiday)
    assert business_between(cal, day, day + timedelta(days=1)) == ZERO
    assert not is_open(cal, day + 10 * H)


def test_easter_monday_is_skipped() -> None:
    # Easter is Sunday 28 March 2027. Friday 26 March 18:00 + 1 h: 30 min on Friday,
    # the weekend and Easter Monday 29 March closed, 30 min on Tuesday 30 March.
    due = add_business(SEED_000, rome(2027, 3, 26, 18, 0), H)
    assert due == rome(2027, 3, 30, 9, 0)
    due = add_business(SEED_004, rome(2027, 3, 26, 16, 30), H)
    assert due == rome(2027, 3, 30, 8, 0)


def test_ferragosto_and_liberation_day_are_skipped() -> None:
    # Monday 14 August 2028 18:30 -> Tuesday 15 closed -> Wednesday 16 08:30 + 1 h.
    assert add_business(SEED_000, rome(2028, 8, 14, 18, 0), H) == rome(2028, 8, 16, 9, 0)
    # Monday 24 April 2028 -> Tuesday 25 closed.
    assert add_business(SEED_004, rome(2028, 4, 24, 16, 0), 2 * H) == rome(2028, 4, 26, 8, 30)


def test_without_country_holidays_are_working_days() -> None:
    plain = dataclasses.replace(SEED_000, country="")
    easter_monday = rome(2027, 3, 29)
    assert business_between(plain, easter_monday, easter_monday + timedelta(days=1)) == (
        8 * H + 30 * M
    )


@pytest.mark.parametrize("base", [SEED_000, SEED_004], ids=["seed000", "seed004"])
def test_bridge_day_is_closed(base: Calendar) -> None:
    # Monday 7 December 2026 is the bridge between the weekend and the Immacolata (Tuesday 8).
    cal = dataclasses.replace(base, closed_dates=("2026-12-07",))
    friday_evening = rome(2026, 12, 4, 19, 0)
    assert next_opening(cal, friday_evening).astimezone(ROME).date().isoformat() == "2026-12-09"
    assert next_opening(base, friday_evening).astimezone(ROME).date().isoformat() == "2026-12-07"
    assert business_between(cal, rome(2026, 12, 5), rome(2026, 12, 9)) == ZERO
    assert not is_open(cal, rome(2026, 12, 7, 10, 0))


# -- daylight saving time -----------------------------------------------------------------


def test_october_dst_change() -> None:
    # Clocks go back on Sunday 25 October 2026 (CEST +02:00 -> CET +01:00).
    friday = rome(2026, 10, 23, 18, 0)
    monday = rome(2026, 10, 26, 9, 0)
    assert friday.utcoffset() == 2 * H and monday.utcoffset() == H
    # 30 min Friday + 30 min Monday in wall-clock terms, across 63 h of real time.
    assert business_between(SEED_000, friday, monday) == H
    assert add_business(SEED_000, friday, H) == monday
    assert in_rome(add_business(SEED_000, friday, H)).hour == 9
    assert add_business(SEED_000, friday, H) == datetime(2026, 10, 26, 8, 0, tzinfo=UTC)
    assert next_opening(SEED_004, friday) == datetime(2026, 10, 26, 6, 30, tzinfo=UTC)
    # A full working week on either side is the same length.
    assert business_between(SEED_004, rome(2026, 10, 19), rome(2026, 10, 24)) == 40 * H
    assert business_between(SEED_004, rome(2026, 10, 26), rome(2026, 10, 31)) == 40 * H


def test_march_dst_change() -> None:
    # Clocks go forward on Sunday 29 March 2026 (CET +01:00 -> CEST +02:00).
    friday = rome(2026, 3, 27, 18, 0)
    monday = rome(2026, 3, 30, 9, 0)
    assert friday.utcoffset() == H and monday.utcoffset() == 2 * H
    assert business_between(SEED_000, friday, monday) == H
    assert add_business(SEED_000, friday, H) == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    assert add_business(SEED_004, rome(2026, 3, 27, 16, 0), 2 * H) == rome(2026, 3, 30, 8, 30)
    # 2027: the change falls on Easter Sunday, and Easter Monday is closed too.
    assert add_business(SEED_000, rome(2027, 3, 26, 18, 0), H) == datetime(
        2027, 3, 30, 7, 0, tzinfo=UTC
    )


def test_instants_in_other_offsets_are_the_same_instants() -> None:
    utc = datetime(2026, 11, 20, 16, 55, tzinfo=UTC)  # 17:55 in Rome
    assert add_business(SEED_000, utc, 4 * H) == rome(2026, 11, 23, 11, 55)


def test_long_durations() -> None:
    start = rome(2026, 1, 2, 8, 30)
    due = add_business(SEED_000, start, 1000 * H)
    assert is_open(SEED_000, due) or due == next_opening(SEED_000, due - timedelta(seconds=1))
    assert business_between(SEED_000, start, due) == 1000 * H


# -- plain data and validation ------------------------------------------------------------


def test_calendar_travels_as_plain_data() -> None:
    cal = dataclasses.replace(SEED_000, closed_dates=("2026-12-07",))
    data = json.loads(json.dumps(dataclasses.asdict(cal)))
    assert data["intervals"][0] == [0, "08:30", "13:00"]
    again = Calendar(**data)
    assert again == cal
    assert hash(again) == hash(cal)


def test_naive_instants_are_refused() -> None:
    naive = datetime(2026, 11, 23, 10, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        is_open(SEED_000, naive)
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        add_business(SEED_000, naive, H)
    with pytest.raises(ValueError, match="b must be timezone-aware"):
        business_between(SEED_000, rome(2026, 11, 23), naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_opening(SEED_000, naive)


def test_instants_outside_the_calendar_years_are_refused() -> None:
    with pytest.raises(ValueError, match="outside the calendar's years"):
        is_open(SEED_000, rome(2070, 1, 2, 10, 0))


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"timezone": "Europe/Rom"}, "Calendar.timezone"),
        ({"timezone": ""}, "Calendar.timezone"),
        ({"intervals": ()}, "Calendar.intervals"),
        ({"intervals": ((7, "08:00", "12:00"),)}, r"Calendar.intervals\[0\]"),
        ({"intervals": ((-1, "08:00", "12:00"),)}, r"Calendar.intervals\[0\]"),
        ({"intervals": ((0, "8:00", "12:00"),)}, r"Calendar.intervals\[0\].start"),
        ({"intervals": ((0, "08:60", "12:00"),)}, r"Calendar.intervals\[0\].start"),
        ({"intervals": ((0, "24:00", "24:00"),)}, r"Calendar.intervals\[0\].start"),
        ({"intervals": ((0, "08:00", "25:00"),)}, r"Calendar.intervals\[0\].end"),
        ({"intervals": ((0, "12:00", "08:00"),)}, r"Calendar.intervals\[0\]: end"),
        ({"intervals": ((0, "08:00", "08:00"),)}, r"Calendar.intervals\[0\]: end"),
        ({"intervals": ((0, "08:00"),)}, r"Calendar.intervals\[0\]"),
        ({"intervals": ("mon 08:00-12:00",)}, r"Calendar.intervals\[0\]"),
        ({"intervals": None}, "Calendar.intervals"),
        ({"timezone": "Europe"}, "Calendar.timezone"),
        ({"timezone": "../etc/passwd"}, "Calendar.timezone"),
        (
            {"intervals": ((1, "08:00", "12:00"), (1, "11:00", "13:00"))},
            "Calendar.intervals: overlapping",
        ),
        ({"country": "XX"}, "Calendar.country"),
        ({"closed_dates": ("2026-13-01",)}, r"Calendar.closed_dates\[0\]"),
        ({"closed_dates": ("2026-12-07", "yesterday")}, r"Calendar.closed_dates\[1\]"),
        ({"first_year": 2061}, "Calendar.first_year"),
    ],
)
def test_validation_names_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(SEED_000, **changes)  # type: ignore[arg-type]


def test_adjacent_intervals_and_midnight_end_are_allowed() -> None:
    cal = Calendar(
        intervals=((0, "08:00", "12:00"), (0, "12:00", "24:00"), (1, "00:00", "01:00")),
        country="",
    )
    monday = rome(2026, 11, 23)
    assert business_between(cal, monday, monday + timedelta(days=2)) == 17 * H
    assert add_business(cal, rome(2026, 11, 23, 23, 30), H) == rome(2026, 11, 24, 0, 30)


# -- properties ---------------------------------------------------------------------------

CALENDARS = st.sampled_from([SEED_000, SEED_004])
# 2026-2028 covers both DST changes and a spread of holidays, in and out of office hours.
INSTANTS = st.integers(
    min_value=int(datetime(2026, 1, 1, tzinfo=UTC).timestamp()) // 60,
    max_value=int(datetime(2028, 12, 31, tzinfo=UTC).timestamp()) // 60,
).map(lambda minute: datetime.fromtimestamp(minute * 60, tz=UTC))
DURATIONS = st.integers(min_value=0, max_value=300 * 60).map(lambda m: timedelta(minutes=m))
POSITIVE = st.integers(min_value=1, max_value=300 * 60).map(lambda m: timedelta(minutes=m))
PROPERTY = settings(max_examples=200, deadline=None)


def is_interval_end(cal: Calendar, instant: datetime) -> bool:
    return is_open(cal, instant - timedelta(microseconds=1)) and not is_open(cal, instant)


@PROPERTY
@given(cal=CALENDARS, start=INSTANTS, duration=POSITIVE)
def test_due_instant_is_never_in_closed_time(
    cal: Calendar, start: datetime, duration: timedelta
) -> None:
    due = add_business(cal, start, duration)
    assert due.tzinfo is UTC
    assert due > start
    assert is_open(cal, due) or is_interval_end(cal, due)


@PROPERTY
@given(cal=CALENDARS, start=INSTANTS, a=DURATIONS, b=DURATIONS)
def test_add_is_monotonic_in_duration(
    cal: Calendar, start: datetime, a: timedelta, b: timedelta
) -> None:
    shorter, longer = sorted((a, b))
    assert add_business(cal, start, shorter) <= add_business(cal, start, longer)
    if shorter < longer:
        assert add_business(cal, start, shorter) < add_business(cal, start, longer)


@PROPERTY
@given(cal=CALENDARS, s1=INSTANTS, s2=INSTANTS, duration=DURATIONS)
def test_add_is_monotonic_in_start(
    cal: Calendar, s1: datetime, s2: datetime, duration: timedelta
) -> None:
    early, late = sorted((s1, s2))
    assert add_business(cal, early, duration) <= add_business(cal, late, duration)


@PROPERTY
@given(cal=CALENDARS, start=INSTANTS, a=DURATIONS, b=DURATIONS)
def test_add_is_additive(cal: Calendar, start: datetime, a: timedelta, b: timedelta) -> None:
    assert add_business(cal, add_business(cal, start, a), b) == add_business(cal, start, a + b)


@PROPERTY
@given(cal=CALENDARS, start=INSTANTS, duration=DURATIONS)
def test_business_between_undoes_add(cal: Calendar, start: datetime, duration: timedelta) -> None:
    opening = next_opening(cal, start)
    assert is_open(cal, opening)
    assert business_between(cal, opening, add_business(cal, opening, duration)) == duration
    # From closed time too: the closed stretch before the opening counts nothing.
    assert business_between(cal, start, add_business(cal, start, duration)) == duration


@PROPERTY
@given(cal=CALENDARS, a=INSTANTS, b=INSTANTS, c=INSTANTS)
def test_business_between_is_additive_over_splits(
    cal: Calendar, a: datetime, b: datetime, c: datetime
) -> None:
    lo, mid, hi = sorted((a, b, c))
    whole = business_between(cal, lo, hi)
    assert whole == business_between(cal, lo, mid) + business_between(cal, mid, hi)
    assert ZERO <= whole <= hi - lo


@PROPERTY
@given(cal=CALENDARS, start=INSTANTS)
def test_next_opening_is_open_and_nothing_is_skipped(cal: Calendar, start: datetime) -> None:
    opening = next_opening(cal, start)
    assert opening >= start
    assert is_open(cal, opening)
    assert business_between(cal, start, opening) == ZERO
    assert (opening == start) == is_open(cal, start)


# -- business days (third-party reminders) ---------------------------------------------------


def test_two_business_days_after_friday_is_tuesday_same_time() -> None:
    friday = rome(2026, 11, 20, 10, 15)
    assert in_rome(add_business_days(SEED_000, friday, 2)) == rome(2026, 11, 24, 10, 15)


def test_business_days_skip_holidays_and_land_on_an_opening() -> None:
    # 24 Dec 2026 is a Thursday; 25 and 26 Dec are holidays, 27 is Sunday: the next
    # open day is Monday 28, where 19:00 is closed, so Tuesday's opening.
    evening = rome(2026, 12, 24, 19, 0)
    assert in_rome(add_business_days(SEED_000, evening, 1)) == rome(2026, 12, 29, 8, 30)


@given(cal=CALENDARS, start=INSTANTS, days=st.integers(min_value=1, max_value=15))
def test_business_days_land_open_and_grow_with_days(
    cal: Calendar, start: datetime, days: int
) -> None:
    due = add_business_days(cal, start, days)
    assert is_open(cal, due)
    assert due > start
    assert add_business_days(cal, start, days + 1) > due


# -- report periods --------------------------------------------------------------------------


def test_previous_month_is_the_whole_rome_month_before() -> None:
    from workflows.domain.periods import previous_month

    start, end = previous_month(datetime(2026, 12, 1, 6, 0, tzinfo=UTC))  # 07:00 in Rome
    assert (in_rome(start), in_rome(end)) == (rome(2026, 11, 1), rome(2026, 12, 1))
    start, end = previous_month(datetime(2027, 1, 1, 0, 30, tzinfo=UTC))
    assert (in_rome(start), in_rome(end)) == (rome(2026, 12, 1), rome(2027, 1, 1))
