"""Reading the administration's forms into Directory requests: pure functions, so that bad
input is refused (``FormProblem``, 400) before anything is sent."""

from __future__ import annotations

import re
from collections.abc import Container, Mapping

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb

WEEKDAYS = {
    "mon": 0,
    "tue": 1,
    "wed": 2,
    "thu": 3,
    "fri": 4,
    "sat": 5,
    "sun": 6,
    "lun": 0,
    "mar": 1,
    "mer": 2,
    "gio": 3,
    "ven": 4,
    "sab": 5,
    "dom": 6,
}
_INTERVAL = re.compile(
    r"^(?P<days>[a-z]{3}(?:\s*-\s*[a-z]{3})?|\d(?:\s*-\s*\d)?)\s+"
    r"(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})$"
)
PRESETS = ("SEED_000", "SEED_004")
SLA_PRIORITIES = (
    (pb.PRIORITY_URGENT, "urgent"),
    (pb.PRIORITY_HIGH, "high"),
    (pb.PRIORITY_NORMAL, "normal"),
    (pb.PRIORITY_LOW, "low"),
)
SLA_TARGETS = ("taken_in_charge_minutes", "first_feedback_minutes", "resolution_minutes")
SLA_DEFAULTS = {
    "urgent": (30, 60, 480),
    "high": (60, 240, 960),
    "normal": (240, 480, 2400),
    "low": (480, 960, 4800),
}
POLICIES = {
    pb.CLOSED_TICKET_POLICY_FOLLOW_UP: "A reply opens a new linked ticket",
    pb.CLOSED_TICKET_POLICY_REOPEN: "A reply reactivates the ticket",
}


class FormProblem(Exception):
    """A form the gateway refuses before calling anything (400), naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def words(raw: str) -> list[str]:
    """Items separated by commas, spaces or new lines."""
    return [w for w in re.split(r"[\s,;]+", raw.strip()) if w]


def _day(token: str) -> int:
    token = token.strip().lower()
    if token.isdigit() and int(token) <= 6:
        return int(token)
    if token in WEEKDAYS:
        return WEEKDAYS[token]
    raise FormProblem("intervals", f"{token!r} is not a weekday")


def intervals(raw: str) -> list[dpb.OpeningInterval]:
    """Lines like ``Mon-Fri 08:30-13:00`` (or ``0 08:30-13:00``, 0 = Monday)."""
    out: list[dpb.OpeningInterval] = []
    for line in raw.splitlines():
        line = line.strip().lower()
        if not line:
            continue
        found = _INTERVAL.match(line)
        if not found:
            raise FormProblem("intervals", f"{line!r} is not like 'Mon-Fri 08:30-13:00'")
        first, _, last = found.group("days").partition("-")
        start_day, end_day = _day(first), _day(last or first)
        if end_day < start_day:
            raise FormProblem("intervals", f"{line!r}: the days go backwards")
        for weekday in range(start_day, end_day + 1):
            out.append(
                dpb.OpeningInterval(
                    weekday=weekday,
                    start=found.group("start").zfill(5),
                    end=found.group("end").zfill(5),
                )
            )
    return out


def calendar_request(form: Mapping[str, str]) -> dpb.CreateCalendarRequest:
    preset = form.get("preset", "")
    if preset and preset not in PRESETS:
        raise FormProblem("preset", "unknown preset")
    request = dpb.CreateCalendarRequest(
        name=form.get("name", "")[:200],
        time_zone=form.get("time_zone", "")[:64],
        country=form.get("country", "").upper()[:8],
        closed_dates=words(form.get("closed_dates", "")),
        preset=preset,
    )
    if not preset:
        request.intervals.extend(intervals(form.get("intervals", "")))
    return request


def minutes(form: Mapping[str, str], name: str) -> int:
    raw = form.get(name, "").strip()
    if not raw.isdigit() or len(raw) > 7:
        raise FormProblem(name, "must be a whole number of minutes")
    return int(raw)


def sla_plan_request(form: Mapping[str, str]) -> dpb.CreateSlaPlanRequest:
    request = dpb.CreateSlaPlanRequest(name=form.get("name", "")[:200])
    for priority, key in SLA_PRIORITIES:
        values = [minutes(form, f"{key}_{target}") for target in SLA_TARGETS]
        request.targets.append(
            dpb.PriorityTargets(
                priority=priority,
                taken_in_charge_minutes=values[0],
                first_feedback_minutes=values[1],
                resolution_minutes=values[2],
            )
        )
    return request


def sla_defaults() -> dict[str, str]:
    return {
        f"{key}_{target}": str(value)
        for key, values in SLA_DEFAULTS.items()
        for target, value in zip(SLA_TARGETS, values, strict=True)
    }


def choice(raw: str, allowed: Container[int], field: str) -> int:
    """A select's value among ``allowed`` (0 when not chosen)."""
    raw = raw.strip()
    if not raw:
        return 0
    if raw.isdigit() and int(raw) in allowed:
        return int(raw)
    raise FormProblem(field, f"{raw!r} is not one of the choices")
