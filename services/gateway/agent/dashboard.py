"""The team lead's dashboard: the desk's load now (from ListTickets), the report of a period
(GetReport) with server-drawn charts and a CSV download, and who is on call.

What the load costs: one pass of ListTickets over every ticket that is not closed, in pages
of 500 (at most ``MAX_PAGES`` pages), each page a read of the tickets service's read model;
the counts are made here. Breaches today and the next business hour are read from each
ticket's SLA clocks, so closed tickets are not counted in them.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import grpc
from fastapi import APIRouter, Request
from fastapi.responses import Response
from markupsafe import Markup

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.local_dates import DISPLAY_ZONE
from services.gateway.agent.charts import Segment, bar_chart, stacked_chart
from services.gateway.agent.tool_pages import (
    Tools,
    bounded_int,
    local_day_start,
    may,
    parse_day,
    role_names,
    timestamp,
    today_local,
)
from services.gateway.forms import read_form, text
from services.gateway.texts import PRIORITY, STATUS, day, translate
from services.gateway.views import STATUS_KEYS
from services.gateway.web import Viewer

NOT_CLOSED = [
    pb.TICKET_STATUS_NEW,
    pb.TICKET_STATUS_OPEN,
    pb.TICKET_STATUS_PENDING,
    pb.TICKET_STATUS_ON_HOLD,
    pb.TICKET_STATUS_SOLVED,
]
# Still in the desk's hands (a solved ticket waits for the customer).
IN_HAND = frozenset(NOT_CLOSED) - {pb.TICKET_STATUS_SOLVED}
MAX_PAGES = 20
BUSINESS_HOUR = 3600
SEVERITY = {
    "CRITICAL": "Critical",
    "BLOCKING": "Blocking",
    "NON_BLOCKING": "Non-blocking",
    "UNSPECIFIED": "Not given",
}
MILESTONES = {
    pb.SLA_TARGET_TAKEN_IN_CHARGE: "Taken in charge",
    pb.SLA_TARGET_FIRST_FEEDBACK: "First feedback",
    pb.SLA_TARGET_RESOLUTION: "Resolution",
}
COMPLIANCE = (("met", "Met"), ("breached", "Breached"), ("open", "Still running"))


@dataclass
class DeskLoad:
    """The counts of the dashboard's first half."""

    total: int = 0
    by_status: list[tuple[str, str, int]] = field(default_factory=list)
    by_priority: list[tuple[str, int]] = field(default_factory=list)
    breached_today: int = 0
    due_next_hour: list[pb.Ticket] = field(default_factory=list)
    by_agent: list[tuple[str, int]] = field(default_factory=list)
    truncated: bool = False


def desk_load(tickets: Iterable[pb.Ticket], now: datetime, locale: str) -> DeskLoad:
    """Counts over tickets that are not closed: per status and priority, breaches whose due
    time fell today (the desk's day), running clocks with at most a business hour left,
    and the tickets in hand per assignee (most first)."""
    start_of_day = datetime.combine(now.astimezone(DISPLAY_ZONE).date(), datetime.min.time())
    start_of_day = start_of_day.replace(tzinfo=DISPLAY_ZONE)
    statuses: Counter[int] = Counter()
    priorities: Counter[int] = Counter()
    agents: Counter[str] = Counter()
    load = DeskLoad()
    for t in tickets:
        load.total += 1
        statuses[t.status] += 1
        priorities[t.priority] += 1
        if t.status in IN_HAND:
            agents[t.assignee_name or translate(locale, "Unassigned")] += 1
        breached = [
            c
            for c in t.sla
            if c.state == pb.SLA_STATE_BREACHED
            and c.due_at.seconds
            and start_of_day <= c.due_at.ToDatetime(tzinfo=UTC) <= now
        ]
        if breached:
            load.breached_today += 1
        soon = [
            c
            for c in t.sla
            if c.state == pb.SLA_STATE_RUNNING
            and c.due_at.seconds
            and 0 < c.remaining_business_seconds <= BUSINESS_HOUR
        ]
        if soon and t.status in IN_HAND:
            load.due_next_hour.append(t)
    load.by_status = [
        (STATUS_KEYS[s], translate(locale, STATUS[s]), statuses[s]) for s in NOT_CLOSED
    ]
    load.by_priority = [
        (translate(locale, label), priorities[p]) for p, label in reversed(PRIORITY.items())
    ]
    if priorities[pb.PRIORITY_UNSPECIFIED]:
        load.by_priority.append((translate(locale, "Not given"), priorities[0]))
    load.by_agent = sorted(agents.items(), key=lambda kv: (-kv[1], kv[0]))
    load.due_next_hour.sort(key=lambda t: t.next_due_at.seconds)
    return load


def _safe_cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    cell = str(value)
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def report_csv(report: tpb.Report) -> str:
    """The report as ``section,key,value`` rows (hours with two decimals)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    rows: list[tuple[str, str, object]] = [
        ("organization", "name", report.organization_name or "all"),
        ("period", "start", report.period_start.ToDatetime(tzinfo=UTC).isoformat()),
        ("period", "end", report.period_end.ToDatetime(tzinfo=UTC).isoformat()),
        ("tickets", "received", report.tickets_received),
    ]
    for section, counts in (
        ("criticality", report.by_criticality),
        ("priority", report.by_priority),
        ("channel", report.by_channel),
        ("kind", report.by_kind),
    ):
        rows.extend((section, c.key, c.count) for c in counts)
    for ms in report.milestones:
        name = pb.SlaTarget.Name(ms.target).removeprefix("SLA_TARGET_")
        rows.extend(
            [
                (f"milestone {name}", "met", ms.met),
                (f"milestone {name}", "breached", ms.breached),
                (f"milestone {name}", "open", ms.open),
                (f"milestone {name}", "reached", ms.reached),
                (
                    f"milestone {name}",
                    "median_business_hours",
                    f"{ms.median_business_seconds / 3600:.2f}",
                ),
                (
                    f"milestone {name}",
                    "p90_business_hours",
                    f"{ms.p90_business_seconds / 3600:.2f}",
                ),
            ]
        )
    rows.append(("hours", "spent", f"{report.hours_spent:.2f}"))
    rows.extend(("hours by agent", h.name or "-", f"{h.hours:.2f}") for h in report.hours_by_agent)
    rows.extend(
        ("hours by organization", h.name or "-", f"{h.hours:.2f}")
        for h in report.hours_by_organization
    )
    rows.append(("satisfaction", "average", f"{report.satisfaction_average:.2f}"))
    rows.append(("satisfaction", "answers", report.satisfaction_count))
    q = report.quotes
    rows.extend(
        ("quotes", key, value)
        for key, value in (
            ("sent", q.sent),
            ("accepted", q.accepted),
            ("declined", q.declined),
            ("expired", q.expired),
            ("open", q.open),
            ("accepted total EUR", q.accepted_total or "0.00"),
        )
    )
    rows.extend(
        ("quotes by organization", row.organization_name or "-", f"{row.sent}/{row.accepted}")
        for row in q.by_organization
    )
    writer.writerow(("section", "key", "value"))
    for section, key, value in rows:
        writer.writerow((_safe_cell(section), _safe_cell(key), _safe_cell(value)))
    return out.getvalue()


@dataclass(frozen=True)
class Period:
    organization_id: int
    start: date
    end: date  # inclusive: the report covers [start, end + 1 day)

    def query(self) -> str:
        return urlencode(
            {
                "org": str(self.organization_id),
                "from": self.start.isoformat(),
                "to": self.end.isoformat(),
            }
        )


def period_of(params: Any) -> Period:
    """The report's organisation and days from the query (this month by default)."""
    today = today_local()
    start = parse_day(str(params.get("from", ""))) or today.replace(day=1)
    end = parse_day(str(params.get("to", ""))) or today
    if end < start:
        start, end = end, start
    return Period(bounded_int(str(params.get("org", ""))), start, end)


def report_charts(report: tpb.Report, locale: str) -> dict[str, Markup]:
    def _(words: str) -> str:
        return translate(locale, words)

    counts = {c.key: c.count for c in report.by_criticality}
    severity = [(_(label), float(counts.get(key, 0))) for key, label in SEVERITY.items()]
    if not counts.get("UNSPECIFIED"):
        severity = severity[:-1]
    compliance = [
        (
            _(MILESTONES.get(ms.target, "")),
            [Segment(key, float(getattr(ms, key)), _(label)) for key, label in COMPLIANCE],
        )
        for ms in report.milestones
    ]
    feedback = next(
        (m for m in report.milestones if m.target == pb.SLA_TARGET_FIRST_FEEDBACK), None
    )
    hours = _("business hours")
    timing = [
        (_("Median"), round((feedback.median_business_seconds if feedback else 0) / 3600, 1)),
        (_("90th percentile"), round((feedback.p90_business_seconds if feedback else 0) / 3600, 1)),
    ]
    return {
        "severity": bar_chart(_("Tickets per severity"), severity),
        "compliance": stacked_chart(_("Service-level compliance per milestone"), compliance),
        "feedback": bar_chart(_("Time to first feedback"), timing, unit=hours, css="bar alt"),
    }


def routes(tools: Tools) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    web, backend = tools.web, tools.backend
    _ = tools._

    async def open_tickets(viewer: Viewer) -> tuple[list[pb.Ticket], bool]:
        found: list[pb.Ticket] = []
        token = ""
        for _page in range(MAX_PAGES):
            reply = await backend.tickets.ListTickets(
                tpb.ListTicketsRequest(statuses=NOT_CLOSED, page_size=500, page_token=token),
                **tools.call(viewer),
            )
            found.extend(reply.tickets)
            token = reply.next_page_token
            if not token:
                return found, False
        return found, True

    async def get_report(viewer: Viewer, period: Period) -> tpb.Report:
        start = local_day_start(period.start)
        end = local_day_start(period.end + timedelta(days=1))
        reply: tpb.Report = await backend.tickets.GetReport(
            tpb.GetReportRequest(
                organization_id=period.organization_id,
                period_start=timestamp(start),
                period_end=timestamp(end),
            ),
            **tools.call(viewer),
        )
        return reply

    async def all_agents(viewer: Viewer) -> list[dpb.Agent]:
        found: list[dpb.Agent] = []
        token = ""
        for _page in range(10):
            reply = await backend.directory.ListAgents(
                dpb.ListAgentsRequest(page_size=200, page_token=token), **tools.call(viewer)
            )
            found.extend(reply.agents)
            token = reply.next_page_token
            if not token:
                break
        return found

    @router.get("/agent/dashboard")
    async def dashboard(request: Request) -> Response:
        viewer = await web.require_staff(request)
        if not may(viewer, "tickets", "GetReport"):
            return tools.forbidden(request)
        locale = web.locale(request)
        period = period_of(request.query_params)
        try:
            tickets, truncated = await open_tickets(viewer)
            report = await get_report(viewer, period)
            orgs = await backend.directory.ListOrganizations(
                dpb.ListOrganizationsRequest(page_size=500), **tools.call(viewer)
            )
            agents = await all_agents(viewer)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise
            return tools.refusal(request, err)
        load = desk_load(tickets, datetime.now(UTC), locale)
        load.truncated = truncated
        notices = {"duty": _(request, "On-call duty is changed.")}
        return web.page(
            request,
            "agent/dashboard.html",
            _(request, "Dashboard"),
            nav="dashboard",
            load=load,
            report=report,
            charts=report_charts(report, locale),
            period=period,
            period_text=f"{day(local_day_start(period.start), locale)} – "
            f"{day(local_day_start(period.end), locale)}",
            orgs=sorted(orgs.organizations, key=lambda o: o.name.lower()),
            agents=agents,
            role_names=role_names(request, web),
            can_set_duty=may(viewer, "directory", "SetAgentDuty"),
            csv_link=f"/agent/dashboard/report.csv?{period.query()}",
            milestone_names={k: _(request, v) for k, v in MILESTONES.items()},
            notice=notices.get(request.query_params.get("n", ""), ""),
        )

    @router.get("/agent/dashboard/report.csv")
    async def report_download(request: Request) -> Response:
        viewer = await web.require_staff(request)
        if not may(viewer, "tickets", "GetReport"):
            return tools.forbidden(request)
        period = period_of(request.query_params)
        try:
            report = await get_report(viewer, period)
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise
            return tools.refusal(request, err)
        name = f"report-{period.organization_id or 'all'}-{period.start}-{period.end}.csv"
        return Response(
            report_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @router.post("/agent/dashboard/duty/{agent_id:int}")
    async def set_duty(request: Request, agent_id: int) -> Response:
        """On call or not (and development lead or not), the other flag kept as it is."""
        viewer = await web.require_staff(request)
        form = await read_form(request)
        web.check_csrf(request, form)
        back = "/agent/admin/agents" if text(form, "back") == "admin" else "/agent/dashboard"
        try:
            agent = await backend.directory.GetAgent(
                dpb.GetAgentRequest(id=agent_id), **tools.call(viewer)
            )
            on_call, lead = agent.on_call, agent.development_lead
            if text(form, "on_call") in ("0", "1"):
                on_call = text(form, "on_call") == "1"
            if text(form, "development_lead") in ("0", "1"):
                lead = text(form, "development_lead") == "1"
            await backend.directory.SetAgentDuty(
                dpb.SetAgentDutyRequest(agent_id=agent_id, on_call=on_call, development_lead=lead),
                **tools.call(viewer),
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.UNAUTHENTICATED:
                raise
            return tools.refusal(request, err)
        return web.redirect(request, f"{back}?n=duty#duty")

    return router
