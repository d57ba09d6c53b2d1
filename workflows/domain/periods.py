"""Report periods (pure logic, workflow-safe: imported pass-through, as it reads time zones)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

ROME = ZoneInfo("Europe/Rome")


def previous_month(now: datetime) -> tuple[datetime, datetime]:
    """The calendar month before ``now``'s, in Rome time: [its first day 00:00, the next)."""
    local = now.astimezone(ROME)
    end = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = (end - timedelta(days=1)).replace(day=1)
    return start, end
