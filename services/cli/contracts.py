"""``helpdesk calendar``, ``helpdesk sla-plan`` and ``helpdesk contract``: business hours,
SLA targets and the organisations' contracts.

    helpdesk calendar create NAME --preset SEED_000
    helpdesk calendar create NAME --hours "mon-fri 08:30-13:00,14:30-18:30" [--tz Europe/Rome]
                                  [--country IT|none] [--closed 2026-12-07,2026-12-24]
    helpdesk calendar list
    helpdesk sla-plan create NAME --urgent 15/60/480 --high 60/240/960 --normal ... --low ...
    helpdesk sla-plan list
    helpdesk contract set ORG --calendar ID --plan ID [--policy reopen]
                              [--pending-reminder-days N] [--pending-auto-solve-days M]
    helpdesk contract show ORG
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from datetime import date

from helpdesk.v1 import common_pb2, directory_pb2
from services.cli import enums, render
from services.cli.args import Verbs
from services.cli.client import Client
from services.cli.commands import PAGE_SIZE, Result, pages

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES = {
    **{d: i for i, d in enumerate(DAYS)},
    **{
        d: i
        for i, d in enumerate(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        )
    },
    # Italian, as the seeds write them.
    **{d: i for i, d in enumerate(("lun", "mar", "mer", "gio", "ven", "sab", "dom"))},
}
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_TARGET_PART = re.compile(r"(\d+)\s*(m|min|h)?")


def _hhmm(text: str) -> str:
    match = _TIME.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a time HH:MM: {text!r}")
    hours, minutes = int(match[1]), int(match[2])
    if not ((hours <= 23 and minutes <= 59) or (hours, minutes) == (24, 0)):
        raise argparse.ArgumentTypeError(f"not a time HH:MM: {text!r}")
    return f"{hours:02d}:{minutes:02d}"


def _days(text: str) -> list[int]:
    """``mon-fri``, ``mon,wed,fri``, ``sat``, ``lun-ven``: weekday numbers (0 = Monday)."""
    found: list[int] = []
    for part in text.lower().split(","):
        first, dash, last = part.strip().partition("-")
        try:
            a = _DAY_NAMES[first.strip()]
            b = _DAY_NAMES[last.strip()] if dash else a
        except KeyError:
            raise argparse.ArgumentTypeError(
                f"not a day or day range: {part.strip()!r} (use {', '.join(DAYS)}, e.g. mon-fri)"
            ) from None
        if b < a:
            raise argparse.ArgumentTypeError(f"day range goes backwards: {part.strip()!r}")
        found += [d for d in range(a, b + 1) if d not in found]
    return found


def opening_hours(text: str) -> list[tuple[int, str, str]]:
    """``"mon-fri 08:30-13:00,14:30-18:30; sat 09:00-12:00"``: (weekday, start, end) each.

    Groups are separated by ``;``; in each, the days come first, then the time ranges.
    (An argparse ``type``: the server checks overlaps and empty intervals.)
    """
    intervals: list[tuple[int, str, str]] = []
    for group in text.split(";"):
        group = group.strip()
        if not group:
            continue
        days, _, times = group.partition(" ")
        if not times.strip():
            raise argparse.ArgumentTypeError(
                f"expected DAYS HH:MM-HH:MM[,HH:MM-HH:MM...], got {group!r}"
            )
        spans = []
        for span in times.replace(" ", "").split(","):
            start, dash, end = span.partition("-")
            if not dash:
                raise argparse.ArgumentTypeError(f"not a time range HH:MM-HH:MM: {span!r}")
            spans.append((_hhmm(start), _hhmm(end)))
        intervals += [(d, start, end) for d in _days(days) for start, end in spans]
    if not intervals:
        raise argparse.ArgumentTypeError("no opening hours given")
    return intervals


def closed_dates(text: str) -> list[str]:
    """``2026-12-07,2026-12-24``: ISO dates."""
    found = []
    for part in text.split(","):
        if not part.strip():
            continue
        try:
            found.append(date.fromisoformat(part.strip()).isoformat())
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {part!r}") from None
    return found


def targets(text: str) -> tuple[int, int, int]:
    """``15/60/480``: business minutes to take in charge / first feedback / resolution.
    Each may end in ``m`` or ``h`` (``15m/1h/8h``)."""
    parts = text.split("/")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(
            f"expected TAKEN/FEEDBACK/RESOLUTION in business minutes (e.g. 15/60/480): {text!r}"
        )
    minutes = []
    for part in parts:
        match = _TARGET_PART.fullmatch(part.strip().lower())
        if match is None or int(match[1]) <= 0:
            raise argparse.ArgumentTypeError(f"not a positive duration: {part!r} in {text!r}")
        minutes.append(int(match[1]) * (60 if match[2] == "h" else 1))
    return minutes[0], minutes[1], minutes[2]


def non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def _positive(text: str) -> int:
    value = non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be a positive ID: {text!r}")
    return value


# Commands ----------------------------------------------------------------------


def calendar_create(c: Client, a: argparse.Namespace) -> Result:
    request = directory_pb2.CreateCalendarRequest(
        name=a.name,
        time_zone=a.tz or "",
        intervals=[
            directory_pb2.OpeningInterval(weekday=d, start=s, end=e) for d, s, e in a.hours or []
        ],
        closed_dates=a.closed or [],
        preset=a.preset or "",
    )
    if a.country is not None:
        request.country = "" if a.country.lower() in ("", "none", "-") else a.country.upper()
    cal = c.call(c.directory.CreateCalendar, request)
    return Result(calendar_text(cal), cal)


def calendar_list(c: Client, a: argparse.Namespace) -> Result:
    items = pages(
        c,
        c.directory.ListCalendars,
        directory_pb2.ListCalendarsRequest(page_size=PAGE_SIZE),
        "calendars",
    )
    return Result(calendars_text(items), directory_pb2.ListCalendarsResponse(calendars=items))


def sla_plan_create(c: Client, a: argparse.Namespace) -> Result:
    given = {
        common_pb2.PRIORITY_URGENT: a.urgent,
        common_pb2.PRIORITY_HIGH: a.high,
        common_pb2.PRIORITY_NORMAL: a.normal,
        common_pb2.PRIORITY_LOW: a.low,
    }
    plan = c.call(
        c.directory.CreateSlaPlan,
        directory_pb2.CreateSlaPlanRequest(
            name=a.name,
            targets=[
                directory_pb2.PriorityTargets(
                    priority=p,
                    taken_in_charge_minutes=t[0],
                    first_feedback_minutes=t[1],
                    resolution_minutes=t[2],
                )
                for p, t in given.items()
            ],
        ),
    )
    return Result(sla_plan_text(plan), plan)


def sla_plan_list(c: Client, a: argparse.Namespace) -> Result:
    items = pages(
        c,
        c.directory.ListSlaPlans,
        directory_pb2.ListSlaPlansRequest(page_size=PAGE_SIZE),
        "sla_plans",
    )
    text = "\n\n".join(sla_plan_text(p) for p in items) if items else "(none)"
    return Result(text, directory_pb2.ListSlaPlansResponse(sla_plans=items))


def contract_set(c: Client, a: argparse.Namespace) -> Result:
    contract = c.call(
        c.directory.SetContract,
        directory_pb2.SetContractRequest(
            organization_id=a.org,
            calendar_id=a.calendar or 0,
            sla_plan_id=a.plan or 0,
            closed_ticket_policy=a.policy or common_pb2.CLOSED_TICKET_POLICY_UNSPECIFIED,
            pending_reminder_business_days=a.pending_reminder_days,
            pending_auto_solve_business_days=a.pending_auto_solve_days,
        ),
    )
    return Result(contract_text(contract), contract)


def contract_show(c: Client, a: argparse.Namespace) -> Result:
    contract = c.call(
        c.directory.GetContract, directory_pb2.GetContractRequest(organization_id=a.org)
    )
    return Result(contract_text(contract), contract)


# Output -------------------------------------------------------------------------


def _hours(cal: directory_pb2.Calendar) -> str:
    """``mon-fri 08:30-13:00,14:30-18:30; sat 09:00-12:00`` (the --hours syntax)."""
    by_day: dict[int, list[str]] = {}
    for i in cal.intervals:
        by_day.setdefault(i.weekday, []).append(f"{i.start}-{i.end}")
    groups: list[tuple[list[int], str]] = []
    for day in sorted(by_day):
        spans = ",".join(sorted(by_day[day]))
        if groups and groups[-1][1] == spans and groups[-1][0][-1] == day - 1:
            groups[-1][0].append(day)
        else:
            groups.append(([day], spans))
    parts = []
    for days, spans in groups:
        name = DAYS[days[0]] if len(days) == 1 else f"{DAYS[days[0]]}-{DAYS[days[-1]]}"
        parts.append(f"{name} {spans}")
    return "; ".join(parts)


def calendar_text(cal: directory_pb2.Calendar) -> str:
    return f"Calendar {cal.id}: {cal.name}\n" + render.fields(
        [
            ("hours", _hours(cal)),
            ("time zone", cal.time_zone),
            ("holidays", cal.country or "none"),
            ("closed", ", ".join(cal.closed_dates)),
        ]
    )


def calendars_text(items: Sequence[directory_pb2.Calendar]) -> str:
    return render.table(
        ["id", "name", "time zone", "holidays", "hours", "closed days"],
        (
            [c.id, c.name, c.time_zone, c.country or "none", _hours(c), len(c.closed_dates)]
            for c in items
        ),
    )


def _minutes(value: int) -> str:
    """``15m``, ``1h``, ``1h30``."""
    if value < 60:
        return f"{value}m"
    return f"{value // 60}h{value % 60:02d}" if value % 60 else f"{value // 60}h"


def sla_plan_text(plan: directory_pb2.SlaPlan) -> str:
    head = f"SLA plan {plan.id}: {plan.name} (business time)\n"
    return head + render.table(
        ["priority", "taken in charge", "first feedback", "resolution"],
        (
            [
                enums.PRIORITY.label(t.priority),
                _minutes(t.taken_in_charge_minutes),
                _minutes(t.first_feedback_minutes),
                _minutes(t.resolution_minutes),
            ]
            for t in plan.targets
        ),
    )


def _named(name: str, ident: int) -> str:
    return f"{name} ({ident})" if ident else name


def contract_text(contract: directory_pb2.Contract) -> str:
    def days(n: int) -> str:
        return f"after {n} business day{'s' if n != 1 else ''}" if n else "off"

    head = f"Contract of organisation {contract.organization_id}"
    head += " (default: none set)" if contract.is_default else ""
    summary = render.fields(
        [
            ("calendar", _named(contract.calendar.name, contract.calendar.id)),
            ("plan", _named(contract.sla_plan.name, contract.sla_plan.id)),
            ("closed tickets", enums.CLOSED_TICKET_POLICY.label(contract.closed_ticket_policy)),
            ("pending reminder", days(contract.pending_reminder_business_days)),
            ("pending auto-solve", days(contract.pending_auto_solve_business_days)),
            ("updated", render.when(contract.updated_at)),
        ]
    )
    return "\n".join(
        [head, summary, "", calendar_text(contract.calendar), "", sla_plan_text(contract.sla_plan)]
    )


# Parsers -----------------------------------------------------------------------


def add_commands(verbs: Verbs) -> None:
    """The ``calendar``, ``sla-plan`` and ``contract`` groups of ``helpdesk``."""
    group, leaf = verbs.group, verbs.leaf

    calendar = group("calendar", "business calendars (office hours, holidays, closed days)")
    p = leaf(calendar, "create", calendar_create, "create a business calendar")
    p.add_argument("name")
    hours = p.add_mutually_exclusive_group(required=True)
    hours.add_argument(
        "--preset",
        type=str.upper,
        choices=["SEED_000", "SEED_004"],
        help="SEED_000: Mon-Fri 08:30-13:00, 14:30-18:30; SEED_004: Mon-Fri 07:30-12:00, "
        "13:30-17:00",
    )
    hours.add_argument(
        "--hours",
        type=opening_hours,
        action="extend",
        metavar="SPEC",
        help='e.g. "mon-fri 08:30-13:00,14:30-18:30; sat 09:00-12:00" (repeatable)',
    )
    p.add_argument("--tz", metavar="ZONE", help="time zone (default Europe/Rome)")
    p.add_argument(
        "--country", metavar="CODE", help="national holidays (default IT; none for none)"
    )
    p.add_argument(
        "--closed",
        type=closed_dates,
        action="extend",
        metavar="DATES",
        help="extra closed days (bridge days): 2026-12-07,2026-12-24",
    )
    leaf(calendar, "list", calendar_list, "list business calendars")

    plan = group("sla-plan", "SLA plans: targets per priority in business time")
    p = leaf(plan, "create", sla_plan_create, "create an SLA plan")
    p.add_argument("name")
    for name in ("urgent", "high", "normal", "low"):
        p.add_argument(
            f"--{name}",
            type=targets,
            required=True,
            metavar="T/F/R",
            help="business minutes to take in charge / first feedback / resolution "
            "(e.g. 15/60/480 or 15m/1h/8h)",
        )
    leaf(plan, "list", sla_plan_list, "list SLA plans")

    contract = group("contract", "organisations' support contracts")
    p = leaf(contract, "set", contract_set, "set an organisation's contract")
    p.add_argument("org", type=_positive, metavar="ORG", help="organisation ID")
    p.add_argument("--calendar", type=_positive, metavar="ID", help="default: the default one")
    p.add_argument("--plan", type=_positive, metavar="ID", help="default: the default one")
    p.add_argument(
        "--policy",
        type=enums.CLOSED_TICKET_POLICY,
        metavar="{" + ",".join(enums.CLOSED_TICKET_POLICY.words) + "}",
        help="what a reply to a CLOSED ticket does (default: unchanged)",
    )
    p.add_argument(
        "--pending-reminder-days",
        type=non_negative,
        default=0,
        metavar="N",
        help="remind a PENDING ticket's customer after N business days (default 0: off)",
    )
    p.add_argument(
        "--pending-auto-solve-days",
        type=non_negative,
        default=0,
        metavar="M",
        help="then solve it after M more business days (default 0: off)",
    )
    p = leaf(contract, "show", contract_show, "an organisation's contract (or the default)")
    p.add_argument("org", type=_positive, metavar="ORG", help="organisation ID")
