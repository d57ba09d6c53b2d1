"""``TicketService.GetReport`` (seed 002: the report of calls per severity), mixed into
``TicketServicer``: reads the ticket store, hands plain facts to ``report_stats``.

Every figure is about the tickets *received* in ``[period_start, period_end)``: counts
per criticality, priority, channel and kind; per milestone (taken in charge, first
feedback, resolution) how many met or breached their target or are still open, and the
median and 90th percentile of the business time from arrival to the milestone, measured
in the organisation's business calendar (its contract's, or the default one); the hours
spent on them; their satisfaction answers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import grpc
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.access import Role, principal
from services.common.rpc_errors import Context, RpcError, invalid, not_found, rpc_method
from services.tickets import models as m
from services.tickets.convert import name_of, ts, value_of
from services.tickets.quote_report import quote_report
from services.tickets.report_stats import (
    MilestoneFact,
    TicketFacts,
    milestone_outcome,
    ranked_hours,
    summarize,
)
from services.tickets.rpc_helpers import TicketRpcHelpers
from services.tickets.sla_terms import sla_terms_for
from workflows.domain.business_time import Calendar, business_between


def _names(enum: Any) -> list[str]:
    """The plain names of a protobuf enum, in their declared order."""
    return [n for v in enum.DESCRIPTOR.values if (n := name_of(enum, v.number))]


CRITICALITIES = ("CRITICAL", "BLOCKING", "NON_BLOCKING")
PRIORITIES = ("URGENT", "HIGH", "NORMAL", "LOW")


def _business_seconds(cal: Calendar, start: datetime, end: datetime | None) -> float | None:
    if end is None:
        return None
    try:
        return business_between(cal, start, end).total_seconds()
    except ValueError:  # outside the calendar's years: not measured
        return None


def period_of(request: tpb.GetReportRequest | tpb.SendReportRequest) -> tuple[datetime, datetime]:
    """The report's period; ``INVALID_ARGUMENT`` naming the field when unusable."""
    if not request.HasField("period_start"):
        invalid("period_start", "is required")
    if not request.HasField("period_end"):
        invalid("period_end", "is required")
    start = request.period_start.ToDatetime(tzinfo=UTC)
    end = request.period_end.ToDatetime(tzinfo=UTC)
    if end <= start:
        invalid("period_end", "must be after period_start")
    return start, end


class ReportRpcs(TicketRpcHelpers):
    """GetReport."""

    @staticmethod
    def _report_scope(requested: int) -> int:
        """The organisation the caller may report on (0 = all): a referent their own."""
        who = principal()
        if who.role is Role.REFERENT:
            if requested and requested != who.organization_id:
                raise RpcError(
                    grpc.StatusCode.PERMISSION_DENIED,
                    "organization_id: a referent sees their own organisation's report",
                )
            return who.organization_id
        if who.is_customer:  # the access table keeps USERs out; belt and braces
            raise RpcError(grpc.StatusCode.PERMISSION_DENIED, "reports are for referents")
        if requested < 0:
            invalid("organization_id", "must be 0 (all) or an organisation ID")
        return requested

    @rpc_method
    async def GetReport(self, request: tpb.GetReportRequest, context: Context) -> tpb.Report:
        start, end = period_of(request)
        org_id = self._report_scope(request.organization_id)
        async with self.sessions() as session:
            return await build_report(session, org_id, start, end)


async def build_report(
    session: AsyncSession, org_id: int, start: datetime, end: datetime
) -> tpb.Report:
    """The report of ``org_id`` (0: all) over tickets received in ``[start, end)``."""
    org_name = ""
    if org_id:
        org = await session.get(m.Organization, org_id)
        if org is None:
            not_found(f"organization {org_id}")
        org_name = org.name
    t = m.Ticket
    query = (
        select(
            t.organization_id,
            t.criticality,
            t.priority,
            t.channel,
            t.kind,
            t.status,
            t.received_at,
            t.taken_in_charge_at,
            t.taken_in_charge_due,
            t.first_feedback_at,
            t.first_feedback_due,
            t.solved_at,
            t.resolution_due,
            t.breaches,
            t.hours_spent,
            m.Satisfaction.rating,
        )
        .outerjoin(m.Satisfaction, m.Satisfaction.ticket_id == t.id)
        .where(t.received_at >= start, t.received_at < end)
        .order_by(t.id)
    )
    if org_id:
        query = query.where(t.organization_id == org_id)
    calendars: dict[int, Calendar] = {}
    facts: list[TicketFacts] = []
    for r in await session.execute(query):
        cal = calendars.get(r.organization_id)
        if cal is None:
            cal = calendars[r.organization_id] = (
                await sla_terms_for(session, r.organization_id)
            ).calendar
        breached = {str(b.get("target", "")) for b in r.breaches or []}
        finished = r.status == "CLOSED"
        milestones = {}
        for target, due, at in (
            ("TAKEN_IN_CHARGE", r.taken_in_charge_due, r.taken_in_charge_at),
            ("FIRST_FEEDBACK", r.first_feedback_due, r.first_feedback_at),
            ("RESOLUTION", r.resolution_due, r.solved_at),
        ):
            milestones[target] = MilestoneFact(
                milestone_outcome(due, at, target in breached, finished),
                _business_seconds(cal, r.received_at, at),
            )
        facts.append(
            TicketFacts(
                criticality=r.criticality,
                priority=r.priority,
                channel=r.channel,
                kind=r.kind,
                hours_spent=r.hours_spent or 0.0,
                milestones=milestones,
                rating=r.rating,
            )
        )
    figures = summarize(
        facts,
        criticalities=CRITICALITIES,
        priorities=PRIORITIES,
        channels=_names(pb.Channel),
        kinds=_names(pb.TicketKind),
    )
    return tpb.Report(
        organization_id=org_id,
        organization_name=org_name,
        period_start=ts(start),
        period_end=ts(end),
        tickets_received=figures.tickets,
        by_criticality=[tpb.ReportCount(key=k, count=n) for k, n in figures.by_criticality],
        by_priority=[tpb.ReportCount(key=k, count=n) for k, n in figures.by_priority],
        by_channel=[tpb.ReportCount(key=k, count=n) for k, n in figures.by_channel],
        by_kind=[tpb.ReportCount(key=k, count=n) for k, n in figures.by_kind],
        milestones=[
            tpb.MilestoneReport(
                target=value_of(pb.SlaTarget, row.target),
                met=row.met,
                breached=row.breached,
                open=row.open,
                reached=row.reached,
                median_business_seconds=row.median_business_seconds,
                p90_business_seconds=row.p90_business_seconds,
            )
            for row in figures.milestones
        ],
        hours_spent=figures.hours_spent,
        satisfaction_average=figures.satisfaction_average,
        satisfaction_count=figures.satisfaction_count,
        generated_at=ts(datetime.now(UTC)),
        hours_by_agent=await _hours_by(session, m.TimeEntry.agent_id, m.Agent, org_id, start, end),
        hours_by_organization=await _hours_by(
            session, m.Ticket.organization_id, m.Organization, org_id, start, end
        ),
        quotes=await quote_report(session, org_id, start, end),
    )


async def _hours_by(
    session: AsyncSession,
    key: Any,
    named: type[m.Agent] | type[m.Organization],
    org_id: int,
    start: datetime,
    end: datetime,
) -> list[tpb.HoursSpent]:
    """The time entries of the period's tickets summed by ``key`` (an agent, an
    organisation), most hours first; each with its name."""
    t = m.Ticket
    query = (
        select(key, func.sum(m.TimeEntry.hours))
        .join(t, t.id == m.TimeEntry.ticket_id)
        .where(t.received_at >= start, t.received_at < end)
        .group_by(key)
    )
    if org_id:
        query = query.where(t.organization_id == org_id)
    sums = [(int(k or 0), float(h or 0.0)) for k, h in await session.execute(query)]
    ids = [k for k, _ in sums if k]
    names = (
        {
            i: n
            for i, n in await session.execute(select(named.id, named.name).where(named.id.in_(ids)))
        }
        if ids
        else {}
    )
    return [
        tpb.HoursSpent(id=k, name=names.get(k, ""), hours=round(h, 4))
        for k, h in ranked_hours(sums)
    ]
