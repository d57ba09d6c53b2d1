"""Instants as customers read them: Europe/Rome, Italian or English day and month names."""

from __future__ import annotations

from datetime import UTC, datetime

from services.common.local_dates import DISPLAY_ZONE, month_name, weekday_name


def local_instant(iso: str) -> datetime:
    when = datetime.fromisoformat(iso)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(DISPLAY_ZONE)


def format_day(when: datetime, locale: str) -> str:
    """``venerdì 27 novembre 2026`` / ``Friday 27 November 2026``."""
    return f"{weekday_name(when, locale)} {when.day} {month_name(when.month, locale)} {when.year}"


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
