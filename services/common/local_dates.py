"""Dates as the desk's people read them: the desk's time zone (Europe/Rome), Italian or
English day and month names. One home for the names, used by notify's emails and the
web gateway's pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Instants are shown on the customers' clock.
try:
    DISPLAY_ZONE: Any = ZoneInfo("Europe/Rome")
except ZoneInfoNotFoundError:  # no tz database: UTC, and the texts say so
    DISPLAY_ZONE = UTC

WEEKDAYS = {
    "it": ("lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
MONTHS = {
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


def language(locale: str) -> str:
    """``en`` for English, else ``it`` (the default)."""
    return "en" if locale == "en" else "it"


def month_name(month: int, locale: str) -> str:
    """``novembre`` / ``November`` for month 11."""
    return MONTHS[language(locale)][month - 1]


def weekday_name(when: datetime, locale: str) -> str:
    """``venerdì`` / ``Friday``."""
    return WEEKDAYS[language(locale)][when.weekday()]
