"""Seed 002's satisfaction survey and report of calls, over a real in-process gRPC server
with the ticket workflow on the Temporal dev server (and notify on NATS for the survey
email): a scripted life of a few tickets, then ``GetReport`` says what was done; the survey
token answers once, may change its answer for 7 days, and refuses bad ratings."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from nats.js.api import DeliverPolicy
from sqlalchemy import select, update

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.access import Principal, Role
from services.common.auth import bearer_metadata
from services.common.events import EventPublisher
from services.common.tokens import TokenSigner
from services.notify.app import NotifyApp
from services.notify.notifier import RetryPolicy
from services.tickets import models as m
from tests.services.notify_fixtures import (
    PORTAL_URL,
    CollectingHandler,
    Received,
    Relay,
    body_of,
    make_event,
    make_settings,
    notification_id,
    publish,
)
from tests.services.ticket_api import ADMIN_TOKEN, SERVICE_TOKEN, SIGNER, Api
from tests.support import SIGNING_KEY, TicketsStack, eventually
from workflows.domain.business_time import SEED_000, business_between

pytestmark = [pytest.mark.db, pytest.mark.timeout(180)]

MD = bearer_metadata(ADMIN_TOKEN)
ROME = ZoneInfo("Europe/Rome")


async def _code(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    return err.value.code(), err.value.details() or ""


def _stamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _rome(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ROME).astimezone(UTC)


def _customer_md(stack: TicketsStack, contact_id: int, role: Role = Role.USER) -> Any:
    who = Principal(
        role=role, kind="CONTACT", id=contact_id, organization_id=stack.org_id, name="x"
    )
    return bearer_metadata(SIGNER.access_token(who))


async def _new_contact(stack: TicketsStack, role: str = "USER") -> int:
    async with stack.sessions() as session:
        contact = m.Contact(
            organization_id=stack.org_id,
            name=f"Luigi {role.title()}",
            email=f"luigi.{uuid.uuid4().hex[:6]}@rossi.it",
            email_key=uuid.uuid4().hex,
            role=role,
            locale="it",
            created_at=datetime.now(UTC),
        )
        session.add(contact)
        await session.commit()
        return contact.id


# -- a scripted life -------------------------------------------------------------------


async def _create(api: Api, subject: str, criticality: int, channel: int, kind: int) -> pb.Ticket:
    return await api.tickets.CreateTicket(
        tpb.CreateTicketRequest(
            request_id=uuid.uuid4().hex,
            subject=subject,
            description="Scripted life",
            requester_id=api.stack.contact_id,
            criticality=criticality,
            channel=channel,
            kind=kind,
        ),
        metadata=MD,
    )


async def _work_and_close(api: Api, ticket_id: int, hours: list[float], confirm: bool) -> None:
    stack = api.stack
    agent = tpb.Actor(kind=pb.AUTHOR_KIND_AGENT, id=stack.agent_id)
    await api.tickets.AssignTicket(
        tpb.AssignTicketRequest(ticket_id=ticket_id, assignee_id=stack.agent_id), metadata=MD
    )
    await api.tickets.AddComment(
        tpb.AddCommentRequest(
            ticket_id=ticket_id,
            request_id=uuid.uuid4().hex,
            visibility=pb.COMMENT_VISIBILITY_PUBLIC,
            author=agent,
            body="Stiamo verificando il problema.",
        ),
        metadata=MD,
    )
    for n, h in enumerate(hours):
        await api.tickets.LogTime(
            tpb.LogTimeRequest(
                ticket_id=ticket_id, request_id=f"t{ticket_id}-{n}", hours=h, actor=agent
            ),
            metadata=MD,
        )
    await api.tickets.ChangeStatus(
        tpb.ChangeStatusRequest(ticket_id=ticket_id, status=pb.TICKET_STATUS_SOLVED, actor=agent),
        metadata=MD,
    )
    if confirm:
        closed = await api.tickets.ConfirmSolution(
            tpb.ConfirmSolutionRequest(
                ticket_id=ticket_id,
                actor=tpb.Actor(kind=pb.AUTHOR_KIND_CONTACT, id=stack.contact_id),
            ),
            metadata=MD,
        )
    else:
        closed = await api.tickets.ChangeStatus(
            tpb.ChangeStatusRequest(
                ticket_id=ticket_id, status=pb.TICKET_STATUS_CLOSED, actor=agent
            ),
            metadata=MD,
        )
    assert closed.status == pb.TICKET_STATUS_CLOSED


def _counts(items: Any) -> dict[str, int]:
    return {c.key: c.count for c in items}


def _milestones(report: tpb.Report) -> dict[str, tpb.MilestoneReport]:
    return {pb.SlaTarget.Name(x.target).removeprefix("SLA_TARGET_"): x for x in report.milestones}


def _expected_quantiles(values: list[float]) -> tuple[float, float]:
    low, high = sorted(values)
    return (low + high) / 2, low + (high - low) * 0.9


async def test_report_figures_match_a_scripted_life(api: Api) -> None:
    stack = api.stack
    start = datetime.now(UTC) - timedelta(minutes=1)
    t1 = await _create(
        api,
        "Gestionale bloccato",
        pb.CRITICALITY_BLOCKING,
        pb.CHANNEL_EMAIL,
        pb.TICKET_KIND_INCIDENT,
    )
    t2 = await _create(
        api,
        "Come si esporta?",
        pb.CRITICALITY_NON_BLOCKING,
        pb.CHANNEL_PHONE,
        pb.TICKET_KIND_QUESTION,
    )
    t3 = await _create(
        api, "Fatture sparite", pb.CRITICALITY_CRITICAL, pb.CHANNEL_PORTAL, pb.TICKET_KIND_BUG
    )
    await _work_and_close(api, t1.id, [1.5], confirm=True)
    await _work_and_close(api, t2.id, [0.5, 0.25], confirm=False)
    for ticket_id, rating in ((t1.id, 4), (t2.id, 2)):
        await api.tickets.SubmitSatisfaction(
            tpb.SubmitSatisfactionRequest(token=SIGNER.survey_token(ticket_id), rating=rating)
        )
    end = datetime.now(UTC) + timedelta(minutes=1)

    report = await api.tickets.GetReport(
        tpb.GetReportRequest(
            organization_id=stack.org_id, period_start=_stamp(start), period_end=_stamp(end)
        ),
        metadata=MD,
    )
    assert report.tickets_received == 3
    assert report.organization_name.startswith("Rossi Srl")
    assert _counts(report.by_criticality) == {"CRITICAL": 1, "BLOCKING": 1, "NON_BLOCKING": 1}
    assert [c.key for c in report.by_criticality] == ["CRITICAL", "BLOCKING", "NON_BLOCKING"]
    assert _counts(report.by_priority) == {"URGENT": 1, "HIGH": 1, "NORMAL": 1}
    assert _counts(report.by_channel) == {"EMAIL": 1, "PHONE": 1, "PORTAL": 1}
    assert _counts(report.by_kind) == {"INCIDENT": 1, "QUESTION": 1, "BUG": 1}
    assert report.hours_spent == pytest.approx(2.25)
    assert report.satisfaction_count == 2
    assert report.satisfaction_average == pytest.approx(3.0)

    rows = {t: await stack.ticket(t) for t in (t1.id, t2.id, t3.id)}
    for stored in rows.values():
        assert stored.taken_in_charge_due is not None and stored.first_feedback_due is not None
    figures = _milestones(report)
    # Two tickets were taken in charge and answered at once; the third is still NEW.
    for target, attr in (
        ("TAKEN_IN_CHARGE", "taken_in_charge_at"),
        ("FIRST_FEEDBACK", "first_feedback_at"),
    ):
        row = figures[target]
        assert (row.met, row.breached, row.open, row.reached) == (2, 0, 1, 2), target
        spans = [
            business_between(SEED_000, rows[t].received_at, getattr(rows[t], attr)).total_seconds()
            for t in (t1.id, t2.id)
        ]
        median, p90 = _expected_quantiles(spans)
        assert row.median_business_seconds == pytest.approx(median)
        assert row.p90_business_seconds == pytest.approx(p90)
    resolution = figures["RESOLUTION"]
    assert resolution.reached == 2
    if rows[t1.id].resolution_due is not None:  # timed by the business-hours plan
        assert (resolution.met, resolution.breached, resolution.open) == (2, 0, 1)

    # All organisations (staff): the same three tickets here; a period before them: none.
    everything = await api.tickets.GetReport(
        tpb.GetReportRequest(period_start=_stamp(start), period_end=_stamp(end)), metadata=MD
    )
    assert everything.tickets_received == 3 and everything.organization_id == 0
    before = await api.tickets.GetReport(
        tpb.GetReportRequest(
            period_start=_stamp(start - timedelta(days=30)), period_end=_stamp(start)
        ),
        metadata=MD,
    )
    assert before.tickets_received == 0 and before.satisfaction_average == 0
    assert all(x.reached == 0 and x.median_business_seconds == 0 for x in before.milestones)

    # Business time is measured on the calendar: the two closed tickets, moved to a week of
    # March 2025 (their workflows have ended, so nothing rewrites them).
    async with stack.sessions() as session:
        await session.execute(
            update(m.Ticket)
            .where(m.Ticket.id == t1.id)
            .values(
                # Friday 17:55; taken in charge Monday 09:00 = 35 + 30 business minutes.
                received_at=_rome("2025-03-07T17:55"),
                taken_in_charge_at=_rome("2025-03-10T09:00"),
                taken_in_charge_due=_rome("2025-03-10T12:00"),
                # Monday 10:00, after its due time: breached though no breach was recorded.
                first_feedback_at=_rome("2025-03-10T10:00"),
                first_feedback_due=_rome("2025-03-10T09:30"),
                # Tuesday 09:30: 35 min + Monday's 8 h 30 + 60 min.
                solved_at=_rome("2025-03-11T09:30"),
                resolution_due=_rome("2025-03-12T09:30"),
                breaches=[],
            )
        )
        await session.execute(
            update(m.Ticket)
            .where(m.Ticket.id == t2.id)
            .values(
                # Monday 08:00, before opening: clocks from 08:30.
                received_at=_rome("2025-03-10T08:00"),
                taken_in_charge_at=_rome("2025-03-10T08:45"),
                taken_in_charge_due=_rome("2025-03-10T12:30"),
                first_feedback_at=_rome("2025-03-10T13:30"),  # lunch: 4 h 30 counted
                first_feedback_due=_rome("2025-03-10T16:30"),
                solved_at=_rome("2025-03-10T15:30"),  # 4 h 30 + 1 h
                resolution_due=None,  # not timed: not counted
                breaches=[
                    {
                        "target": "RESOLUTION",
                        "due_at": "2025-03-10T14:00:00+00:00",
                        "recorded_at": "2025-03-10T14:00:00+00:00",
                    }
                ],
            )
        )
        await session.commit()
    march = await api.tickets.GetReport(
        tpb.GetReportRequest(
            period_start=_stamp(_rome("2025-03-01T00:00")),
            period_end=_stamp(_rome("2025-04-01T00:00")),
        ),
        metadata=MD,
    )
    assert march.tickets_received == 2 and march.hours_spent == pytest.approx(2.25)
    figures = _milestones(march)
    expected = {
        "TAKEN_IN_CHARGE": ((2, 0, 0), [65 * 60, 15 * 60]),
        "FIRST_FEEDBACK": ((1, 1, 0), [125 * 60, 270 * 60]),
        "RESOLUTION": ((1, 0, 0), [605 * 60, 330 * 60]),
    }
    for target, ((met, breached, still_open), spans) in expected.items():
        row = figures[target]
        assert (row.met, row.breached, row.open) == (met, breached, still_open), target
        median, p90 = _expected_quantiles([float(s) for s in spans])
        assert row.reached == 2
        assert row.median_business_seconds == pytest.approx(median), target
        assert row.p90_business_seconds == pytest.approx(p90), target


async def test_report_access_and_bad_periods(api: Api) -> None:
    stack = api.stack
    now = datetime.now(UTC)
    period = {"period_start": _stamp(now - timedelta(days=1)), "period_end": _stamp(now)}
    code, details = await _code(
        api.tickets.GetReport(
            tpb.GetReportRequest(period_start=_stamp(now), period_end=_stamp(now - timedelta(1))),
            metadata=MD,
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "period_end" in details
    code, details = await _code(
        api.tickets.GetReport(tpb.GetReportRequest(period_end=_stamp(now)), metadata=MD)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "period_start" in details
    code, _ = await _code(
        api.tickets.GetReport(tpb.GetReportRequest(organization_id=999, **period), metadata=MD)
    )
    assert code == grpc.StatusCode.NOT_FOUND

    referent = _customer_md(stack, await _new_contact(stack, "REFERENT"), Role.REFERENT)
    own = await api.tickets.GetReport(tpb.GetReportRequest(**period), metadata=referent)
    assert own.organization_id == stack.org_id  # 0 means their own organisation
    code, _ = await _code(
        api.tickets.GetReport(
            tpb.GetReportRequest(organization_id=stack.org_id + 1, **period), metadata=referent
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    user = _customer_md(stack, stack.contact_id)
    code, _ = await _code(api.tickets.GetReport(tpb.GetReportRequest(**period), metadata=user))
    assert code == grpc.StatusCode.PERMISSION_DENIED


# -- the survey ------------------------------------------------------------------------


async def _closed_ticket(api: Api) -> int:
    ticket = await _create(
        api,
        "Stampa lenta",
        pb.CRITICALITY_NON_BLOCKING,
        pb.CHANNEL_EMAIL,
        pb.TICKET_KIND_INCIDENT,
    )
    await _work_and_close(api, ticket.id, [], confirm=True)
    return ticket.id


async def _answers(api: Api, ticket_id: int) -> tuple[m.Satisfaction | None, list[str]]:
    async with api.stack.sessions() as session:
        answer = await session.get(m.Satisfaction, ticket_id)
        events = (
            await session.scalars(
                select(m.TicketEvent.detail).where(
                    m.TicketEvent.ticket_id == ticket_id, m.TicketEvent.type == "satisfaction"
                )
            )
        ).all()
        return answer, list(events)


async def test_the_survey_token_answers_once_changes_for_seven_days(api: Api) -> None:
    ticket_id = await _closed_ticket(api)
    token = SIGNER.survey_token(ticket_id)

    # A bad rating is refused and nothing is stored.
    for bad in (0, 6, -1):
        code, details = await _code(
            api.tickets.SubmitSatisfaction(tpb.SubmitSatisfactionRequest(token=token, rating=bad))
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "rating" in details
    assert await _answers(api, ticket_id) == (None, [])

    # No bearer token needed: the survey token is the credential.
    first = await api.tickets.SubmitSatisfaction(
        tpb.SubmitSatisfactionRequest(token=token, rating=4, comment="Rapidi")
    )
    assert (first.ticket_id, first.rating, first.comment, first.changed) == (
        ticket_id,
        4,
        "Rapidi",
        False,
    )
    assert first.changeable_until.ToDatetime() - first.first_answered_at.ToDatetime() == (
        timedelta(days=7)
    )
    changed = await api.tickets.SubmitSatisfaction(
        tpb.SubmitSatisfactionRequest(token=token, rating=5, comment="Anzi, ottimi")
    )
    assert changed.changed and changed.rating == 5
    assert changed.first_answered_at == first.first_answered_at
    ticket = await api.tickets.GetTicket(tpb.GetTicketRequest(id=ticket_id), metadata=MD)
    assert (ticket.satisfaction_rating, ticket.satisfaction_comment) == (5, "Anzi, ottimi")
    history = await api.tickets.GetTicketHistory(
        tpb.GetTicketHistoryRequest(ticket_id=ticket_id), metadata=MD
    )
    survey_events = [e for e in history.events if e.type == "satisfaction"]
    assert [e.detail for e in survey_events] == [
        "rated 4/5: Rapidi",
        "rated 5/5 (was 4/5): Anzi, ottimi",
    ]
    assert history.events[-1].type == "satisfaction"
    assert all(e.actor_kind == pb.AUTHOR_KIND_CONTACT for e in survey_events)

    # A bad rating on a change is refused too, and changes nothing.
    code, _ = await _code(
        api.tickets.SubmitSatisfaction(tpb.SubmitSatisfactionRequest(token=token, rating=9))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    answer, details = await _answers(api, ticket_id)
    assert answer is not None and answer.rating == 5 and len(details) == 2

    # Seven days after the first answer it can no longer change.
    async with api.stack.sessions() as session:
        await session.execute(
            update(m.Satisfaction)
            .where(m.Satisfaction.ticket_id == ticket_id)
            .values(first_answered_at=datetime.now(UTC) - timedelta(days=7, minutes=1))
        )
        await session.commit()
    code, details = await _code(
        api.tickets.SubmitSatisfaction(tpb.SubmitSatisfactionRequest(token=token, rating=1))
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "changed until" in details
    answer, details = await _answers(api, ticket_id)
    assert answer is not None and answer.rating == 5 and len(details) == 2


async def test_survey_credentials_and_preconditions(api: Api) -> None:
    stack = api.stack
    open_ticket = await _create(
        api,
        "Ancora aperto",
        pb.CRITICALITY_NON_BLOCKING,
        pb.CHANNEL_EMAIL,
        pb.TICKET_KIND_QUESTION,
    )
    code, details = await _code(
        api.tickets.SubmitSatisfaction(
            tpb.SubmitSatisfactionRequest(token=SIGNER.survey_token(open_ticket.id), rating=3)
        )
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "NEW" in details

    ticket_id = await _closed_ticket(api)
    login = SIGNER.access_token(Principal(role=Role.USER, kind="CONTACT", id=stack.contact_id))
    for bad in (
        "not-a-token",
        login,  # a login token is no survey token
        TokenSigner("another-signing-key-0123456789abcdef").survey_token(ticket_id),
        SIGNER.survey_token(ticket_id, ttl=-1),  # expired
    ):
        code, details = await _code(
            api.tickets.SubmitSatisfaction(tpb.SubmitSatisfactionRequest(token=bad, rating=3))
        )
        assert code == grpc.StatusCode.UNAUTHENTICATED and "token" in details
    # A survey token does not log in either.
    code, _ = await _code(
        api.tickets.GetTicket(
            tpb.GetTicketRequest(id=ticket_id),
            metadata=bearer_metadata(SIGNER.survey_token(ticket_id)),
        )
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED
    # By ticket_id: no token at all, an agent, a colleague of the requester: refused.
    by_id = tpb.SubmitSatisfactionRequest(ticket_id=ticket_id, rating=3)
    code, _ = await _code(api.tickets.SubmitSatisfaction(by_id))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    agent = bearer_metadata(
        SIGNER.access_token(Principal(role=Role.AGENT, kind="AGENT", id=stack.agent_id))
    )
    code, _ = await _code(api.tickets.SubmitSatisfaction(by_id, metadata=agent))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    colleague = _customer_md(stack, await _new_contact(stack))
    code, _ = await _code(api.tickets.SubmitSatisfaction(by_id, metadata=colleague))
    assert code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND)
    assert await _answers(api, ticket_id) == (None, [])

    # The requester, logged in; then intake (the service token) for an emailed answer.
    mine = await api.tickets.SubmitSatisfaction(
        by_id, metadata=_customer_md(stack, stack.contact_id)
    )
    assert mine.rating == 3 and not mine.changed
    service = bearer_metadata(SERVICE_TOKEN)
    requester = tpb.Actor(kind=pb.AUTHOR_KIND_CONTACT, id=stack.contact_id)
    by_mail = await api.tickets.SubmitSatisfaction(
        tpb.SubmitSatisfactionRequest(ticket_id=ticket_id, rating=2, actor=requester),
        metadata=service,
    )
    assert by_mail.rating == 2 and by_mail.changed
    stranger = tpb.Actor(kind=pb.AUTHOR_KIND_CONTACT, id=stack.contact_id + 1000)
    code, _ = await _code(
        api.tickets.SubmitSatisfaction(
            tpb.SubmitSatisfactionRequest(ticket_id=ticket_id, rating=1, actor=stranger),
            metadata=service,
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, details = await _code(
        api.tickets.SubmitSatisfaction(
            tpb.SubmitSatisfactionRequest(
                token=SIGNER.survey_token(ticket_id), ticket_id=open_ticket.id, rating=1
            )
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "ticket_id" in details
    answer, details = await _answers(api, ticket_id)
    assert answer is not None and answer.rating == 2 and answer.source == "SERVICE"
    assert len(details) == 2


# -- the survey email ----------------------------------------------------------------------


@dataclass
class Mailbox:
    handler: CollectingHandler
    address: str

    def surveys(self) -> list[Received]:
        return [r for r in self.handler.received if "X-Helpdesk-Survey" in r.message]


@pytest.fixture
def mailbox(relay: Relay) -> Mailbox:
    """The loopback relay (``tests/services/conftest.py``), read for surveys."""
    return Mailbox(relay.handler, relay.address)


@pytest.fixture
async def notify_app(
    tmp_path: Path, database_url: str, nats_url: str, mailbox: Mailbox
) -> AsyncIterator[NotifyApp]:
    """Notify with its own durable (new messages only), signing with the tickets' key."""
    settings = dataclasses.replace(
        make_settings(
            tmp_path / "notify",
            database_url if database_url.startswith("postgres") else "",
            nats_url,
            mailbox.address,
        ),
        signing_key=SIGNING_KEY,
    )
    app = NotifyApp(
        settings,
        durable=f"notify-survey-{uuid.uuid4().hex[:8]}",
        deliver_policy=DeliverPolicy.NEW,
        retry=RetryPolicy(base_delay=0.1, max_delay=0.5),
    )
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


# The survey links to the portal (HELPDESK_PORTAL_URL, by default the gateway's address),
# its token in the link.
SURVEY_LINK = re.escape(PORTAL_URL) + r"/survey\?token=([\w.-]+)"
TOKEN_LINE = re.compile(r"Rispondi con un clic: " + SURVEY_LINK)


async def test_notify_sends_the_survey_on_closed(
    notify_app: NotifyApp, mailbox: Mailbox, nats_url: str
) -> None:
    publisher = EventPublisher(nats_url, "test-survey")
    try:
        merged = make_event("closed", ticket_id=41, close_reason="MERGED")
        event = make_event("closed", ticket_id=42, close_reason="CONFIRMED")
        await publish(publisher, merged)
        await publish(publisher, event)
        await eventually(lambda: len(mailbox.handler.received) >= 3, timeout=20)
    finally:
        await publisher.close()
    [survey] = mailbox.surveys()  # none for the merged ticket
    msg = survey.message
    assert msg["X-Helpdesk-Survey"] == "42" and msg["X-Helpdesk-Ticket"] == "42"
    assert msg["Subject"] == "[#42] Questionario di gradimento: La stampante in rete non stampa"
    assert msg["Message-ID"] == notification_id(
        notify_app, event["event_id"], "survey", event["ticket_id"]
    )
    assert msg["Message-ID"].startswith("<notify.survey.")
    assert "<ticket-42@helpdesk.test>" in msg["References"]
    assert msg["Auto-Submitted"] == "auto-generated"
    body = body_of(msg)
    assert "da 1 (per nulla) a 5 (moltissimo)" in body
    assert "rispondi a questa email scrivendo soltanto un numero da 1 a 5" in body
    found = TOKEN_LINE.search(body)
    assert found, body
    assert TokenSigner(SIGNING_KEY).survey_ticket(found.group(1)) == 42


async def test_a_closed_ticket_mails_a_survey_whose_token_answers(
    api: Api, notify_app: NotifyApp, mailbox: Mailbox
) -> None:
    """The whole loop: the ticket closes, notify mails the survey, its token answers."""
    ticket_id = await _closed_ticket(api)
    await eventually(lambda: mailbox.surveys(), timeout=30)
    [survey] = mailbox.surveys()
    assert survey.message["X-Helpdesk-Survey"] == str(ticket_id)
    found = TOKEN_LINE.search(body_of(survey.message))
    assert found
    answer = await api.tickets.SubmitSatisfaction(
        tpb.SubmitSatisfactionRequest(token=found.group(1), rating=5, comment="Grazie")
    )
    assert answer.ticket_id == ticket_id and answer.rating == 5
