"""Parse the short durations used in configuration: ``14d``, ``12h``, ``30m``, ``20s``."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d{1,9})([dhms])")
# Longer than any promise a help desk makes; keeps due instants far inside datetime's range.
MAX_SECONDS = 10 * 366 * 86400
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> timedelta:
    """Return the duration written as one or more ``<n><unit>`` parts (``1d12h``).

    Raises ``ValueError`` naming the text when it is not such a duration.
    """
    compact = text.strip().replace(" ", "")
    if not compact or _PART.sub("", compact):
        raise ValueError(f"not a duration: {text!r} (use e.g. 14d, 12h, 30m, 20s)")
    seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(compact))
    if seconds <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    if seconds > MAX_SECONDS:
        raise ValueError(f"duration longer than 10 years: {text!r}")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta, locale: str = "it") -> str:
    """Human words for a duration, largest unit first (``14 giorni``, ``2 hours``)."""
    seconds = int(delta.total_seconds())
    names = {
        "it": {
            "d": ("giorno", "giorni"),
            "h": ("ora", "ore"),
            "m": ("minuto", "minuti"),
            "s": ("secondo", "secondi"),
        },
        "en": {
            "d": ("day", "days"),
            "h": ("hour", "hours"),
            "m": ("minute", "minutes"),
            "s": ("second", "seconds"),
        },
    }[locale if locale == "en" else "it"]
    parts: list[str] = []
    for unit, size in _UNITS.items():
        n, seconds = divmod(seconds, size)
        if n:
            one, many = names[unit]
            parts.append(f"{n} {one if n == 1 else many}")
    joiner = " e " if locale != "en" else " and "
    return joiner.join(parts) if parts else names["s"][1].join(["0 ", ""])
