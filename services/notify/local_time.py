"""Instants as customers read them: Europe/Rome, Italian or English day and month names."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Instants are shown on the customers' clock.
try:
    DISPLAY_ZONE: Any = ZoneInfo("Europe/Rome")
except ZoneInfoNotFoundError:  # no tz database: UTC, and the templates say so
    DISPLAY_ZONE = UTC

_WEEKDAYS = {
    "it": ("lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
_MONTHS = {
    "it": (
        "gennaio",
        "febbraio",
        "marzo",
        "aprile",
        "maggio",
        "giugno",
        "luglio",
        "agosto",
        "settembre",
        "ottobre",
        "novembre",
        "dicembre",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}


def local_instant(iso: str) -> datetime:
    when = datetime.fromisoformat(iso)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(DISPLAY_ZONE)


def month_name(month: int, locale: str) -> str:
    """``novembre`` / ``November`` for month 11."""
    return _MONTHS["en" if locale == "en" else "it"][month - 1]


def format_day(when: datetime, locale: str) -> str:
    """``venerdì 27 novembre 2026`` / ``Friday 27 November 2026``."""
    lang = "en" if locale == "en" else "it"
    weekday = _WEEKDAYS[lang][when.weekday()]
    month = _MONTHS[lang][when.month - 1]
    return f"{weekday} {when.day} {month} {when.year}"


def zone_note(locale: str) -> str:
    """``ora italiana`` / ``Italian time`` (``UTC`` without a time-zone database)."""
    if DISPLAY_ZONE is UTC:
        return "UTC"
    return "Italian time" if locale == "en" else "ora italiana"


def format_instant(iso: str, locale: str) -> str:
    """``venerdì 27 novembre 2026 alle 10:30`` / ``Friday 27 November 2026 at 10:30``."""
    when = local_instant(iso)
    word = "at" if locale == "en" else "alle"
    return f"{format_day(when, locale)} {word} {when:%H:%M}"


def format_window(starts_at: str, ends_at: str, locale: str) -> str:
    """``venerdì 27 novembre 2026, 18:00-19:00``; a window across midnight names both days."""
    start, end = local_instant(starts_at), local_instant(ends_at)
    if start.date() == end.date():
        return f"{format_day(start, locale)}, {start:%H:%M}-{end:%H:%M}"
    return f"{format_day(start, locale)}, {start:%H:%M} - {format_day(end, locale)}, {end:%H:%M}"
