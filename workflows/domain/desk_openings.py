"""When the desk opens after being closed (pure logic, workflow-safe): the instants the
opening digest is sent at, and since when the desk was closed before each.

An opening is the start of an open span that follows closed time: the morning after a
night or a weekend, the afternoon after the lunch break. Spans that touch (``12:00``
closing and ``12:00`` opening, midnight between two open days) are one stretch, not an
opening.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from workflows.domain.business_time import Calendar, _compiled, _local_day, _spans, _utc

# How far back to look for the previous closing; a longer closure counts from here.
LOOKBACK = timedelta(days=31)


@dataclass(frozen=True)
class Opening:
    """The desk opens at ``opened_at`` after being closed since ``closed_since``."""

    opened_at: datetime
    closed_since: datetime


def next_opening_after(cal: Calendar, instant: datetime) -> Opening:
    """The first opening strictly after ``instant`` (UTC results)."""
    t, c = _utc(instant), _compiled(cal)
    day = _local_day(c, t - LOOKBACK)
    previous_end: datetime | None = None
    while True:
        for start, end in _spans(c, day):
            if start > t and (previous_end is None or start > previous_end):
                return Opening(start, previous_end or start - LOOKBACK)
            previous_end = end
        day += timedelta(days=1)


def next_digest(cal: Calendar, after: datetime, now: datetime) -> Opening:
    """The opening whose digest goes next, after the one of ``after``: the first opening
    after ``after`` or, when several have passed by ``now`` (the workers were away), the
    last of those, its closure reaching back to the first missed one's: one catch-up digest
    instead of a stale one per missed opening."""
    first = next_opening_after(cal, after)
    opening = first
    while True:
        following = next_opening_after(cal, opening.opened_at)
        if following.opened_at > now:
            return Opening(opening.opened_at, first.closed_since)
        opening = following
