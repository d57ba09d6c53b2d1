"""``helpdesk report``: seed 002's report of calls (``TicketService.GetReport``) as a table,
optionally exported as CSV (one ``section,key,value`` row per figure)."""

from __future__ import annotations

import argparse
import csv
import io
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp

from helpdesk.v1 import common_pb2, tickets_pb2
from services.cli import render
from services.cli.client import Client, CliError
from services.cli.commands import Result


def _stamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def report_request(a: argparse.Namespace) -> tickets_pb2.GetReportRequest:
    """``--from`` and ``--to`` are local days, both included: the period ends at the start
    of the day after ``--to``."""
    start: datetime = a.date_from
    end: datetime = (a.date_to + timedelta(days=1)).astimezone()
    return tickets_pb2.GetReportRequest(
        organization_id=a.org or 0, period_start=_stamp(start), period_end=_stamp(end)
    )


def business_duration(seconds: float) -> str:
    """``2h05m`` (business time), ``-`` for nothing measured."""
    if seconds <= 0:
        return "0m"
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


def _target(value: int) -> str:
    return common_pb2.SlaTarget.Name(value).removeprefix("SLA_TARGET_")  # type: ignore[arg-type]


def _day(ts: Timestamp) -> str:
    return render.when(ts)[:10]


def rows(r: tickets_pb2.Report) -> Iterator[tuple[str, str, str]]:
    """Every figure of the report as ``(section, key, value)``."""
    yield "report", "organization_id", str(r.organization_id)
    yield "report", "organization", r.organization_name or "(all)"
    yield "report", "period_start", render.when(r.period_start)
    yield "report", "period_end", render.when(r.period_end)
    yield "tickets", "received", str(r.tickets_received)
    for section, items in (
        ("criticality", r.by_criticality),
        ("priority", r.by_priority),
        ("channel", r.by_channel),
        ("kind", r.by_kind),
    ):
        for c in items:
            yield section, c.key, str(c.count)
    for mr in r.milestones:
        section = f"sla {_target(mr.target)}"
        yield section, "met", str(mr.met)
        yield section, "breached", str(mr.breached)
        yield section, "open", str(mr.open)
        yield section, "reached", str(mr.reached)
        yield section, "median_business_seconds", f"{mr.median_business_seconds:.0f}"
        yield section, "p90_business_seconds", f"{mr.p90_business_seconds:.0f}"
    yield "hours", "spent", f"{r.hours_spent:.2f}"
    yield "satisfaction", "average", f"{r.satisfaction_average:.2f}"
    yield "satisfaction", "count", str(r.satisfaction_count)
    q = r.quotes
    for key, value in (
        ("sent", q.sent),
        ("accepted", q.accepted),
        ("declined", q.declined),
        ("expired", q.expired),
        ("open", q.open),
    ):
        yield "quotes", key, str(value)
    yield "quotes", "accepted_total_eur", q.accepted_total or "0.00"
    for row in q.by_organization:
        yield (
            f"quotes {row.organization_name or row.organization_id}",
            "sent/accepted",
            (f"{row.sent}/{row.accepted}"),
        )


def as_csv(r: tickets_pb2.Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("section", "key", "value"))
    writer.writerows(rows(r))
    return out.getvalue()


def as_text(r: tickets_pb2.Report) -> str:
    who = f"{r.organization_name} ({r.organization_id})" if r.organization_id else "all"
    # The period's end is exclusive: the last day shown is the one before it.
    parts = [
        f"Report: {who}, tickets received {_day(r.period_start)} .. "
        f"{_day(_stamp_minus_one(r.period_end))}",
        f"Tickets received: {r.tickets_received}",
    ]
    for title, items in (
        ("criticality", r.by_criticality),
        ("priority", r.by_priority),
        ("channel", r.by_channel),
        ("kind", r.by_kind),
    ):
        parts.append(render.table([title, "tickets"], [(c.key, c.count) for c in items]))
    parts.append(
        render.table(
            ["milestone", "met", "breached", "open", "reached", "median", "p90"],
            [
                (
                    _target(mr.target),
                    mr.met,
                    mr.breached,
                    mr.open,
                    mr.reached,
                    business_duration(mr.median_business_seconds) if mr.reached else "-",
                    business_duration(mr.p90_business_seconds) if mr.reached else "-",
                )
                for mr in r.milestones
            ],
        )
    )
    satisfaction = (
        f"{r.satisfaction_average:.2f} / 5 ({r.satisfaction_count} answers)"
        if r.satisfaction_count
        else "no answers"
    )
    parts.append(f"Hours spent: {r.hours_spent:.2f}\nSatisfaction: {satisfaction}")
    q = r.quotes
    parts.append(
        f"Quotes: {q.sent} sent, {q.accepted} accepted ({q.accepted_total or '0.00'} EUR), "
        f"{q.declined} declined, {q.expired} expired, {q.open} open"
    )
    return "\n\n".join(parts)


def _stamp_minus_one(ts: Timestamp) -> Timestamp:
    out = Timestamp()
    out.CopyFrom(ts)
    if out.seconds:
        out.seconds -= 1
    return out


def send_request(a: argparse.Namespace) -> tickets_pb2.SendReportRequest:
    """The same period, to email to the referents of ``--org`` (a retry sends once)."""
    if not a.org:
        raise CliError("--email needs --org: a report is mailed to one organisation's referents")
    got = report_request(a)
    return tickets_pb2.SendReportRequest(
        organization_id=a.org,
        period_start=got.period_start,
        period_end=got.period_end,
        request_id=f"cli-{a.org}-{got.period_start.seconds}-{got.period_end.seconds}",
    )


def report(c: Client, a: argparse.Namespace) -> Result:
    sent: list[str] = []
    if getattr(a, "email", False):
        mailed = c.call(c.tickets.SendReport, send_request(a))
        sent = list(mailed.recipients)
    reply = c.call(c.tickets.GetReport, report_request(a))
    if a.csv:
        try:
            Path(a.csv).write_text(as_csv(reply), encoding="utf-8")
        except OSError as err:
            raise CliError(f"--csv {a.csv}: {err.strerror or err}") from None
    text = as_text(reply)
    if a.csv:
        text += f"\n\nCSV written to {a.csv}"
    if getattr(a, "email", False):
        text += "\n\nEmailed to " + (", ".join(sent) if sent else "nobody (no referents)")
    return Result(text, reply)
