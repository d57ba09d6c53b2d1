"""Service levels and reports through the real system: a ticket's scripted life
by email, its report figures, and the satisfaction survey answered by replying to its
email. Every service as a process, the Temporal dev server, nats-server, an SMTP relay,
on SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import tickets_pb2 as tpb
from tests.support import eventually
from tests.system.conftest import agent_actor, customer_actor, setup_directory
from tests.system.harness import Mailbox, System
from tests.system.mail_in import deliver, inbound, tickets_of

pytestmark = [pytest.mark.system, pytest.mark.db]


def _ts(when: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(when)
    return stamp


async def test_report_matches_the_life_and_the_survey_is_answered_by_email(
    system: tuple[System, Mailbox],
) -> None:
    sut, box = system
    md = sut.metadata
    tickets = sut.tickets()
    org, contact, agent = await setup_directory(sut, pb.CLOSED_TICKET_POLICY_FOLLOW_UP)
    start = datetime.now(UTC) - timedelta(minutes=1)

    # The customer writes; the agent takes it, answers, logs the time and solves it.
    await asyncio.to_thread(
        deliver, sut, inbound(contact.email, "Errore in stampa", "La fattura non si stampa.")
    )
    [ticket] = await eventually(lambda: tickets_of(sut, contact.email), timeout=60)
    await tickets.AssignTicket(
        tpb.AssignTicketRequest(ticket_id=ticket.id, assignee_id=agent.id), metadata=md
    )
    await tickets.AddComment(
        tpb.AddCommentRequest(
            ticket_id=ticket.id,
            request_id="answer-1",
            author=agent_actor(agent),
            body="Abbiamo corretto la stampante predefinita.",
        ),
        metadata=md,
    )
    await tickets.LogTime(
        tpb.LogTimeRequest(
            ticket_id=ticket.id, request_id="t-1", hours=0.75, actor=agent_actor(agent)
        ),
        metadata=md,
    )
    await tickets.ChangeStatus(
        tpb.ChangeStatusRequest(
            ticket_id=ticket.id, status=pb.TICKET_STATUS_SOLVED, actor=agent_actor(agent)
        ),
        metadata=md,
    )
    await tickets.ConfirmSolution(
        tpb.ConfirmSolutionRequest(ticket_id=ticket.id, actor=customer_actor(contact)),
        metadata=md,
    )

    # The survey arrives; the customer answers by replying with a number.
    survey = await eventually(
        lambda: next(
            (m for m in box.about(ticket.id) if str(m["Message-ID"]).startswith("<notify.survey.")),
            None,
        ),
        timeout=30,
    )
    answer = inbound(
        contact.email,
        f"Re: {survey['Subject']}",
        "5\nGentili e veloci.\n\nIl giorno lun, Assistenza ha scritto:\n> Questionario",
        In_Reply_To=str(survey["Message-ID"]),
        References=str(survey["References"] or ""),
    )
    await asyncio.to_thread(deliver, sut, answer)

    async def rated() -> pb.Ticket | None:
        t = await tickets.GetTicket(tpb.GetTicketRequest(id=ticket.id), metadata=md)
        return t if t.satisfaction_rating else None

    closed = await eventually(rated, timeout=30)
    assert closed.satisfaction_rating == 5
    assert closed.satisfaction_comment == "Gentili e veloci."
    # The reply opened no follow-up ticket.
    assert len(await tickets_of(sut, contact.email)) == 1

    report = await tickets.GetReport(
        tpb.GetReportRequest(
            organization_id=org.id,
            period_start=_ts(start),
            period_end=_ts(datetime.now(UTC) + timedelta(minutes=1)),
        ),
        metadata=md,
    )
    assert report.tickets_received == 1
    assert {c.key: c.count for c in report.by_channel} == {"EMAIL": 1}
    assert {c.key: c.count for c in report.by_priority} == {"NORMAL": 1}
    assert report.hours_spent == pytest.approx(0.75)
    assert (report.satisfaction_average, report.satisfaction_count) == (5.0, 1)
    milestones = {pb.SlaTarget.Name(x.target): x for x in report.milestones}
    for target in ("SLA_TARGET_TAKEN_IN_CHARGE", "SLA_TARGET_FIRST_FEEDBACK"):
        assert (milestones[target].met, milestones[target].breached) == (1, 0)
        assert milestones[target].reached == 1
    resolution = milestones["SLA_TARGET_RESOLUTION"]
    assert (resolution.met, resolution.breached, resolution.reached) == (1, 0, 1)


async def test_the_report_is_mailed_to_the_referents_once_and_monthly_by_schedule(
    system: tuple[System, Mailbox], temporal_client: Client
) -> None:
    sut, box = system
    md = sut.metadata
    org, contact, _ = await setup_directory(sut, pb.CLOSED_TICKET_POLICY_FOLLOW_UP)
    referent = await sut.directory().AddContact(
        dpb.AddContactRequest(
            organization_id=org.id,
            name="Rita Referente",
            email=f"rita.{uuid.uuid4().hex[:6]}@rossi.it",
            role=pb.CONTACT_ROLE_REFERENT,
        ),
        metadata=md,
    )
    await asyncio.to_thread(
        deliver, sut, inbound(contact.email, "Stampante", "La stampante non stampa.")
    )
    await eventually(lambda: tickets_of(sut, contact.email), timeout=60)
    now = datetime.now(UTC)
    request = tpb.SendReportRequest(
        organization_id=org.id,
        period_start=_ts(now - timedelta(days=1)),
        period_end=_ts(now + timedelta(minutes=1)),
        request_id="november",
    )
    sent = await sut.tickets().SendReport(request, metadata=md)
    assert list(sent.recipients) == [referent.email]
    assert sent.report.tickets_received == 1
    await sut.tickets().SendReport(request, metadata=md)  # a retry sends nothing more

    def reports() -> list[Any]:
        return [
            m
            for m in box.messages
            if referent.email in str(m["To"]) and "Rapporto di assistenza" in str(m["Subject"])
        ]

    [mail] = await eventually(reports, timeout=30)
    assert "Richieste ricevute: 1" in mail.get_body(("plain",)).get_content()
    await asyncio.sleep(2)
    assert len(reports()) == 1

    # The tickets process keeps the monthly schedule (1st of the month, 07:00 in Rome).
    schedule = await temporal_client.get_schedule_handle("monthly-reports").describe()
    # The server keeps the cron "0 7 1 * *" as a calendar.
    [when] = schedule.schedule.spec.calendars
    assert [(r.start, r.end) for r in when.day_of_month] == [(1, 1)]
    assert [(r.start, r.end) for r in when.hour] == [(7, 7)]
    assert [(r.start, r.end) for r in when.minute] == [(0, 0)]
    assert schedule.schedule.spec.time_zone_name == "Europe/Rome"
