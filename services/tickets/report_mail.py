"""An organisation's report mailed to its referents (seed 002): published as
``helpdesk.report.ready`` for notify, on demand (``TicketService.SendReport``) or monthly
by the Temporal schedule ``monthly-reports`` this module keeps."""

from __future__ import annotations

import hashlib
import logging
import uuid

import grpc
from google.protobuf.json_format import MessageToDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleSpec,
)

from helpdesk.v1 import tickets_pb2 as tpb
from services.common.access import principal, scoped_key
from services.common.events import EventPublisher
from services.common.messages.reports import ReportEventPayload
from services.common.messages.reports import subject as report_subject
from services.common.messages.tickets import PersonPayload
from services.common.rpc_errors import Context, RpcError, optional_text, require_id, rpc_method
from services.tickets import models as m
from services.tickets.reports import build_report, period_of
from services.tickets.rpc_helpers import TicketRpcHelpers
from workflows.contracts import (
    MONTHLY_REPORTS_SCHEDULE,
    MONTHLY_REPORTS_WORKFLOW,
    REPORT_ORGANIZATIONS,
    SEND_ORGANIZATION_REPORT,
    WORKFLOW_TASK_QUEUE,
    ReportInput,
)

log = logging.getLogger(__name__)

# On the 1st of every month at 07:00, Italian time.
MONTHLY_CRON = "0 7 1 * *"


def report_event_id(inp: ReportInput) -> str:
    """The same organisation, period and key make the same event (sent once)."""
    key = hashlib.sha256(inp.key.encode()).hexdigest()[:16]
    return (
        f"report-{inp.organization_id}-{inp.period_start:%Y%m%d%H%M}"
        f"-{inp.period_end:%Y%m%d%H%M}-{key}"
    )


async def send_report(
    sessions: async_sessionmaker[AsyncSession], publisher: EventPublisher, inp: ReportInput
) -> tuple[tpb.Report, list[PersonPayload]]:
    """Build the report and publish it for the organisation's referents."""
    async with sessions() as session:
        report = await build_report(session, inp.organization_id, inp.period_start, inp.period_end)
        referents = await session.scalars(
            select(m.Contact)
            .where(m.Contact.organization_id == inp.organization_id, m.Contact.role == "REFERENT")
            .order_by(m.Contact.id)
        )
        recipients = [
            PersonPayload(id=c.id, name=c.name, email=c.email, locale=c.locale) for c in referents
        ]
    payload = ReportEventPayload(
        event_id=report_event_id(inp),
        organization_id=inp.organization_id,
        organization_name=report.organization_name,
        period_start=inp.period_start.isoformat(),
        period_end=inp.period_end.isoformat(),
        report=MessageToDict(report, preserving_proto_field_name=True),
        recipients=recipients,
    )
    await publisher.publish(report_subject("ready"), payload["event_id"], payload)
    return report, recipients


class ReportActivities:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], publisher: EventPublisher
    ) -> None:
        self.sessions = sessions
        self.publisher = publisher

    @activity.defn(name=REPORT_ORGANIZATIONS)
    async def report_organizations(self) -> list[int]:
        """The organisations with at least one referent to send a report to."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(m.Contact.organization_id)
                .where(m.Contact.role == "REFERENT")
                .distinct()
                .order_by(m.Contact.organization_id)
            )
            return list(rows)

    @activity.defn(name=SEND_ORGANIZATION_REPORT)
    async def send_organization_report(self, inp: ReportInput) -> int:
        """Publishes one organisation's report; returns how many referents it goes to."""
        _, recipients = await send_report(self.sessions, self.publisher, inp)
        return len(recipients)


async def ensure_monthly_schedule(client: Client) -> bool:
    """Create the ``monthly-reports`` schedule unless it exists; True when created."""
    try:
        await client.create_schedule(
            MONTHLY_REPORTS_SCHEDULE,
            Schedule(
                action=ScheduleActionStartWorkflow(
                    MONTHLY_REPORTS_WORKFLOW,
                    id=MONTHLY_REPORTS_SCHEDULE,
                    task_queue=WORKFLOW_TASK_QUEUE,
                    static_summary="the monthly report to every organisation's referents",
                ),
                spec=ScheduleSpec(cron_expressions=[MONTHLY_CRON], time_zone_name="Europe/Rome"),
            ),
        )
    except ScheduleAlreadyRunningError:
        return False
    log.info("created the schedule %s (%s)", MONTHLY_REPORTS_SCHEDULE, MONTHLY_CRON)
    return True


class ReportMailRpcs(TicketRpcHelpers):
    """SendReport (mixed into ``TicketServicer``)."""

    @rpc_method
    async def SendReport(
        self, request: tpb.SendReportRequest, context: Context
    ) -> tpb.SendReportResponse:
        """Publishes the organisation's report for notify to email to its referents."""
        start, end = period_of(request)
        org_id = require_id("organization_id", request.organization_id)
        key = (
            scoped_key(
                "request_id", optional_text("request_id", request.request_id, 200), principal()
            )
            or uuid.uuid4().hex
        )
        if self.publisher is None:
            raise RpcError(grpc.StatusCode.UNAVAILABLE, "reports cannot be sent from here")
        report, recipients = await send_report(
            self.sessions, self.publisher, ReportInput(org_id, start, end, key)
        )
        return tpb.SendReportResponse(report=report, recipients=[p["email"] for p in recipients])
