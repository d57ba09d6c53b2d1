"""Agents told: the agents on duty of a new ticket, the assignee of an assignment and of the
customer's replies, the previous assignee of a reassignment, and the digest at the desk's
opening, each only to those who keep that kind on.

Real parts: the tickets service (TicketService + DirectoryService over in-process gRPC, the
ticket workflow on a Temporal server, the database), nats-server, the whole notify service
and an SMTP relay on loopback that keeps what it receives.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import grpc
import pytest
from aiosmtpd.controller import Controller
from nats.js.api import DeliverPolicy
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import directory_pb2_grpc as dgrpc
from helpdesk.v1 import tickets_pb2 as tpb
from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.common import db
from services.common.access import Principal, Role
from services.common.auth import bearer_metadata
from services.common.embedded import free_port
from services.common.events import EventPublisher, SecretPublisher
from services.common.grpc_server import ServiceServer
from services.common.messages.tickets import TicketEventPayload
from services.common.settings import Settings, async_database_url
from services.common.tokens import TokenSigner
from services.notify.agent_alerts import TEMPLATES, alerts_for
from services.notify.app import NotifyApp
from services.notify.notifier import RetryPolicy
from services.notify.render import Renderer
from services.notify.rules import PlannedEmail
from services.tickets import models as m
from services.tickets.activities import TicketActivities
from services.tickets.app import MIGRATIONS, VERSION_TABLE
from services.tickets.credentials import Credentials
from services.tickets.directory import DirectoryServicer
from services.tickets.servicer import TicketServicer
from tests.im_fake_provider import BOT_TOKEN, FakeProvider
from tests.support import SIGNING_KEY, TicketsStack, eventually, ticket_events, tickets_stack
from workflows.contracts import (
    DESK_DIGEST_WORKFLOW,
    TICKETS_TASK_QUEUE,
    WORKFLOW_TASK_QUEUE,
    DeskDigestInput,
)
from workflows.desk_digest import DeskDigestWorkflow
from workflows.domain.business_time import SEED_000
from workflows.domain.desk_openings import Opening, next_digest, next_opening_after

ADMIN_TOKEN = "alerts-admin"
SERVICE_TOKEN = "alerts-service"
ADMIN = bearer_metadata(ADMIN_TOKEN)
SIGNER = TokenSigner(SIGNING_KEY)
MAIL_FROM = "assistenza@helpdesk.test"
ROME = "Europe/Rome"

pytestmark = pytest.mark.timeout(120)


# -- the relay -------------------------------------------------------------------------


@dataclass
class Inbox:
    """What the loopback relay received: (recipient, message) for every recipient."""

    mails: list[tuple[str, EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=default_policy)
        assert isinstance(message, EmailMessage)
        for rcpt in envelope.rcpt_tos:
            self.mails.append((rcpt.lower(), message))
        return "250 OK"

    def to(self, address: str, subject_has: str = "") -> list[EmailMessage]:
        return [
            msg
            for rcpt, msg in self.mails
            if rcpt == address.lower() and subject_has in str(msg["Subject"])
        ]


def body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


@dataclass
class Desk:
    stack_sessions: async_sessionmaker[AsyncSession]
    inbox: Inbox
    tickets: tgrpc.TicketServiceStub
    directory: dgrpc.DirectoryServiceStub
    publisher: EventPublisher
    nats_url: str
    customer_id: int
    customer_email: str
    customer_token: str
    agents: dict[str, m.Agent]
    im: FakeProvider


def agent_md(agent: m.Agent, role: Role = Role.AGENT) -> tuple[tuple[str, str], ...]:
    return bearer_metadata(SIGNER.access_token(Principal(role=role, kind="AGENT", id=agent.id)))


async def add_agents(sessions: async_sessionmaker[AsyncSession]) -> dict[str, m.Agent]:
    """Anna and Bruno on duty, Carla a team lead off duty, Dario a developer on call."""
    now = datetime.now(UTC)
    people = {
        "anna": m.Agent(role="AGENT", on_call=True),
        "bruno": m.Agent(role="AGENT", on_call=True),
        "carla": m.Agent(role="TEAM_LEAD", on_call=False),
        "dario": m.Agent(role="DEVELOPER", on_call=True),
    }
    async with sessions() as session:
        for name, agent in people.items():
            address = f"{name}.{uuid.uuid4().hex[:6]}@desk.test"
            agent.name, agent.email, agent.email_key = name.title(), address, address
            agent.created_at = now
            session.add(agent)
        await session.commit()
    return people


def notify_settings(
    tmp_path: Path, database_url: str, nats_url: str, relay: str, tickets: str, im_base: str
) -> Settings:
    return dataclasses.replace(
        Settings.from_env(),
        data_dir=tmp_path,
        database_url=database_url,
        nats_url=nats_url,
        tickets_addr=tickets,
        notify_addr="127.0.0.1:0",
        smtp_relay=relay,
        mail_from=MAIL_FROM,
        admin_token=ADMIN_TOKEN,
        service_token=SERVICE_TOKEN,
        signing_key=SIGNING_KEY,
        telegram_bot_token=BOT_TOKEN,
        telegram_api_base=im_base,
        whatsapp_access_token="",
    )


async def start_notify(settings: Settings) -> NotifyApp:
    app = NotifyApp(
        settings,
        durable=f"notify-alerts-{uuid.uuid4().hex[:8]}",
        deliver_policy=DeliverPolicy.NEW,
        retry=RetryPolicy(base_delay=0.1, max_delay=0.5, max_permanent_attempts=2),
    )
    await asyncio.wait_for(app.start(), 20)
    return app


@pytest.fixture
async def desk(
    temporal_client: Client, database_url: str, nats_url: str, tmp_path: Path
) -> AsyncIterator[Desk]:
    inbox = Inbox()
    relay_port = free_port()
    relay = Controller(inbox, hostname="127.0.0.1", port=relay_port)
    relay.start()
    provider = FakeProvider()
    await provider.start()
    async with tickets_stack(temporal_client, database_url, nats_url) as stack:
        cfg = dataclasses.replace(
            Settings.from_env(),
            admin_token=ADMIN_TOKEN,
            service_token=SERVICE_TOKEN,
            signing_key=SIGNING_KEY,
        )

        def register(server: grpc.aio.Server) -> None:
            tgrpc.add_TicketServiceServicer_to_server(
                TicketServicer(stack.sessions, temporal_client, stack.creator), server
            )
            dgrpc.add_DirectoryServiceServicer_to_server(
                DirectoryServicer(stack.sessions, stack.credentials), server
            )

        server = ServiceServer(cfg, "127.0.0.1:0", [], register)
        await server.start()
        notify = await start_notify(
            notify_settings(
                tmp_path,
                database_url,
                nats_url,
                f"127.0.0.1:{relay_port}",
                f"127.0.0.1:{server.port}",
                provider.base,
            )
        )
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        publisher = EventPublisher(nats_url, "test-agent-alerts")
        contact = await _contact(stack)
        try:
            yield Desk(
                stack.sessions,
                inbox,
                tgrpc.TicketServiceStub(channel),
                dgrpc.DirectoryServiceStub(channel),
                publisher,
                nats_url,
                contact.id,
                contact.email,
                SIGNER.access_token(
                    Principal(
                        role=Role.USER,
                        kind="CONTACT",
                        id=contact.id,
                        organization_id=contact.organization_id,
                    )
                ),
                await add_agents(stack.sessions),
                provider,
            )
        finally:
            await publisher.close()
            await asyncio.wait_for(notify.stop(), 30)
            await channel.close(None)
            await server.stop(1)
    await provider.stop()
    relay.stop()


async def _contact(stack: TicketsStack) -> m.Contact:
    async with stack.sessions() as session:
        contact = await session.get(m.Contact, stack.contact_id)
        assert contact is not None
        return contact


# -- preferences -------------------------------------------------------------------------


@pytest.mark.db
async def test_agents_set_their_own_alerts_and_team_leads_anyones(desk: Desk) -> None:
    anna, bruno, carla = desk.agents["anna"], desk.agents["bruno"], desk.agents["carla"]
    shown = await desk.directory.GetAgent(dpb.GetAgentRequest(id=anna.id), metadata=ADMIN)
    # Nobody configured: everything on.
    assert shown.notifications.digest.email and shown.notifications.new_ticket.im

    off = dpb.AgentNotifications(new_ticket=dpb.NotificationChannels(email=False))
    request = dpb.SetAgentNotificationsRequest(agent_id=bruno.id, notifications=off)
    for _ in range(2):  # the same request twice: the same result
        got = await desk.directory.SetAgentNotifications(request, metadata=agent_md(bruno))
        assert not got.notifications.new_ticket.email
        assert got.notifications.new_ticket.im and got.notifications.assigned.email
    shown = await desk.directory.GetAgent(dpb.GetAgentRequest(id=bruno.id), metadata=ADMIN)
    assert not shown.notifications.new_ticket.email and shown.notifications.new_ticket.im

    # An agent cannot change a colleague's; a team lead can; nobody an unknown agent's.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await desk.directory.SetAgentNotifications(
            dataclasses_copy(request, agent_id=anna.id), metadata=agent_md(bruno)
        )
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    digest_off = dpb.SetAgentNotificationsRequest(
        agent_id=anna.id,
        notifications=dpb.AgentNotifications(digest=dpb.NotificationChannels(email=False)),
    )
    got = await desk.directory.SetAgentNotifications(
        digest_off, metadata=agent_md(carla, Role.TEAM_LEAD)
    )
    assert not got.notifications.digest.email and got.notifications.digest.im
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await desk.directory.SetAgentNotifications(
            dataclasses_copy(digest_off, agent_id=999_999), metadata=ADMIN
        )
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    # Customers never.
    with pytest.raises(grpc.aio.AioRpcError) as customer:
        await desk.directory.SetAgentNotifications(
            digest_off, metadata=bearer_metadata(desk.customer_token)
        )
    assert customer.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Anna's other preferences are untouched by the lead's change.
    shown = await desk.directory.GetAgent(dpb.GetAgentRequest(id=anna.id), metadata=ADMIN)
    assert shown.notifications.new_ticket.email and not shown.notifications.digest.email


def dataclasses_copy(
    request: dpb.SetAgentNotificationsRequest, agent_id: int
) -> dpb.SetAgentNotificationsRequest:
    copy = dpb.SetAgentNotificationsRequest()
    copy.CopyFrom(request)
    copy.agent_id = agent_id
    return copy


# -- ticket alerts -------------------------------------------------------------------------


@pytest.mark.db
async def test_agents_hear_of_new_assigned_replied_and_reassigned_tickets(desk: Desk) -> None:
    anna, bruno, carla = desk.agents["anna"], desk.agents["bruno"], desk.agents["carla"]
    dario = desk.agents["dario"]
    await desk.directory.SetAgentNotifications(
        dpb.SetAgentNotificationsRequest(
            agent_id=bruno.id,
            notifications=dpb.AgentNotifications(new_ticket=dpb.NotificationChannels(email=False)),
        ),
        metadata=agent_md(bruno),
    )
    # Anna is on Telegram, but wants customers' replies by email only.
    await desk.directory.LinkAgentIm(
        dpb.LinkAgentImRequest(agent_id=anna.id, provider=dpb.IM_PROVIDER_TELEGRAM, id="7770001"),
        metadata=ADMIN,
    )
    await desk.directory.SetAgentNotifications(
        dpb.SetAgentNotificationsRequest(
            agent_id=anna.id,
            notifications=dpb.AgentNotifications(customer_reply=dpb.NotificationChannels(im=False)),
        ),
        metadata=agent_md(anna),
    )
    customer = bearer_metadata(desk.customer_token)
    created = await desk.tickets.CreateTicket(
        tpb.CreateTicketRequest(
            request_id=uuid.uuid4().hex,
            subject="La stampante dell'ufficio non stampa",
            description="Errore 42 da stamattina",
            requester_id=desk.customer_id,
            channel=pb.CHANNEL_PORTAL,
        ),
        metadata=customer,
    )
    tid = created.id
    tag = f"[#{tid}]"

    # On duty and keeping new-ticket mail: Anna only (Bruno turned it off, Carla is off
    # duty, Dario is a developer).
    [new] = await eventually(lambda: desk.inbox.to(anna.email, "Nuova richiesta"))
    assert tag in str(new["Subject"]) and "stampante" in str(new["Subject"])
    assert "sei di turno" in body(new)
    await eventually(lambda: desk.inbox.to(desk.customer_email, tag))  # the customer's ack

    await desk.tickets.AssignTicket(
        tpb.AssignTicketRequest(ticket_id=tid, assignee_id=anna.id), metadata=ADMIN
    )
    [assigned] = await eventually(lambda: desk.inbox.to(anna.email, "Assegnata a te"))
    assert tag in str(assigned["Subject"]) and "è assegnata a te" in body(assigned)

    await desk.tickets.AddComment(
        tpb.AddCommentRequest(
            ticket_id=tid,
            request_id=uuid.uuid4().hex,
            visibility=pb.COMMENT_VISIBILITY_PUBLIC,
            body="Ho riavviato ma non stampa ancora",
        ),
        metadata=customer,
    )
    [reply] = await eventually(lambda: desk.inbox.to(anna.email, "Risposta del cliente"))
    assert "Ho riavviato ma non stampa ancora" in body(reply)

    # A team lead gives the ticket to Bruno: Bruno hears of it, and so does Anna.
    await desk.tickets.AssignTicket(
        tpb.AssignTicketRequest(
            ticket_id=tid, assignee_id=bruno.id, take_over=True, reason="Anna è in ferie"
        ),
        metadata=agent_md(carla, Role.TEAM_LEAD),
    )
    [away] = await eventually(lambda: desk.inbox.to(anna.email, "Riassegnata a Bruno"))
    assert "Bruno" in body(away) and "Anna è in ferie" in body(away)
    await eventually(lambda: desk.inbox.to(bruno.email, "Assegnata a te"))

    # A redelivered assignment (a new stream message, the same event) mails nobody again.
    events = await ticket_events(desk.nats_url, tid)
    last_assignment = [e for e in events if e["type"] == "assigned"][-1]
    await desk.publisher.publish(
        "helpdesk.ticket.assigned", f"again-{uuid.uuid4().hex}", last_assignment
    )
    # Then one more customer reply: mailed to Bruno, the holder now, once it is past the
    # redelivered event in the stream.
    await desk.tickets.AddComment(
        tpb.AddCommentRequest(
            ticket_id=tid,
            request_id=uuid.uuid4().hex,
            visibility=pb.COMMENT_VISIBILITY_PUBLIC,
            body="Adesso va, grazie",
        ),
        metadata=customer,
    )
    await eventually(lambda: desk.inbox.to(bruno.email, "Risposta del cliente"))
    assert len(desk.inbox.to(bruno.email, "Assegnata a te")) == 1
    assert len(desk.inbox.to(anna.email, "Riassegnata")) == 1
    assert len(desk.inbox.to(anna.email, "Risposta del cliente")) == 1
    # Nobody else heard anything; the customer got only the usual acknowledgement.
    for other in (carla, dario):
        assert desk.inbox.to(other.email) == []
    assert desk.inbox.to(bruno.email, "Nuova richiesta") == []
    [ack] = desk.inbox.to(desk.customer_email)
    assert tag in str(ack["Subject"]) and "sei di turno" not in body(ack)
    # On Telegram Anna heard of the new ticket, the assignment and the reassignment, never
    # of the customer's reply (turned off), each once.
    texts = desk.im.texts_to("7770001")
    assert [t.split(" ", 2)[1] for t in texts] == ["Nuova", "Assegnata", "Ora"], texts
    assert all(t.startswith(tag) for t in texts)
    # Every agent copy is a message of its own.
    ids = [str(msg["Message-ID"]) for _, msg in desk.inbox.mails]
    assert len(ids) == len(set(ids))


@pytest.mark.unit
def test_who_hears_of_what() -> None:
    def event(kind: str, assignee: int = 0, **extra: Any) -> TicketEventPayload:
        person = {"id": assignee, "name": "X", "email": "x@desk.test", "locale": "it"}
        return json.loads(
            json.dumps(
                {
                    "event_id": "ticket-7-ev-3",
                    "type": kind,
                    "ticket_id": 7,
                    "actor_kind": "AGENT",
                    "actor_id": assignee,
                    "ticket": {
                        "subject": "s",
                        "priority": extra.pop("priority", "NORMAL"),
                        "assignee": person if assignee else None,
                    },
                    "comment": extra.pop("comment", None),
                    **extra,
                }
            )
        )

    kinds = lambda alerts: [(a.kind, a.agent_id) for a in alerts]  # noqa: E731
    assert kinds(alerts_for(event("created"), 0, [1, 2])) == [("new_ticket", 1), ("new_ticket", 2)]
    # URGENT: the on-call page goes instead; assigned at creation: nobody to wake.
    assert alerts_for(event("created", priority="URGENT"), 0, [1]) == []
    assert alerts_for(event("created", assignee=3), 0, [1]) == []
    assert kinds(alerts_for(event("assigned", 3), 5, [])) == [
        ("assigned", 3),
        ("reassigned_away", 5),
    ]
    assert kinds(alerts_for(event("assigned", 3), 3, [])) == [("assigned", 3)]
    customer = {"visibility": "PUBLIC", "author_kind": "CONTACT", "body": "b", "author_name": "c"}
    internal = customer | {"visibility": "INTERNAL"}
    ours = customer | {"author_kind": "AGENT"}
    assert kinds(alerts_for(event("comment_added", 3, comment=customer), 0, [])) == [
        ("customer_reply", 3)
    ]
    for comment in (internal, ours):
        assert alerts_for(event("comment_added", 3, comment=comment), 0, []) == []
    assert alerts_for(event("comment_added", 0, comment=customer), 0, []) == []


@pytest.mark.unit
def test_every_agent_template_reads_in_both_languages() -> None:
    renderer = Renderer(portal_url="http://desk.test")
    ticket = {
        "id": 7, "display_id": "#7", "subject": "Stampante", "status": "OPEN",
        "priority": "HIGH", "channel": "EMAIL", "organization_id": 1,
        "organization_name": "Rossi Srl", "follow_up_of": 0, "close_reason": "",
        "auto_close_at": None, "auto_close_after_seconds": 0,
        "requester": {"id": 1, "name": "Mario", "email": "m@rossi.it", "locale": "it"},
        "assignee": {"id": 2, "name": "Bruno", "email": "b@desk.test", "locale": "it"},
        "assignment_reason": "ferie",
    }  # fmt: skip
    comment = {
        "id": "c", "visibility": "PUBLIC", "author_kind": "CONTACT", "author_id": 1,
        "author_name": "Mario", "body": "Ancora rotta",
    }  # fmt: skip
    event: Any = {
        "event_id": "ticket-7-ev-2", "type": "assigned", "ticket_id": 7, "actor_kind": "AGENT",
        "actor_id": 9, "actor_name": "Carla", "occurred_at": "2026-03-02T09:00:00+00:00",
        "from_status": "NEW", "to_status": "OPEN", "detail": "", "ticket": ticket,
        "comment": comment,
    }  # fmt: skip
    digest = {
        "name": "Anna", "count": 1, "opened_at": "lunedì alle 08:30",
        "closed_since": "venerdì alle 18:30",
        "tickets": [
            {"display_id": "#7", "subject": "Stampante", "organization_name": "Rossi Srl",
             "channel": "EMAIL", "priority": "HIGH", "status": "NEW", "received": "sabato",
             "assignee_name": ""},
        ],
    }  # fmt: skip
    for locale in ("it", "en"):
        for kind, template in TEMPLATES.items():
            planned = PlannedEmail(template, "anna@desk.test", "Anna", locale)
            ctx = (
                digest
                if kind == "digest"
                else renderer.context(event, planned) | {"reason": "ferie", "received_at": ""}
            )
            mail = renderer.render_template(template, locale, ctx)
            assert "Anna" in mail.body, (locale, template)
            assert ("#7" in mail.body) and mail.subject, (locale, template)
            if kind == "assigned":
                assert "Carla" in mail.body and "ferie" in mail.body
            if kind == "customer_reply":
                assert "Ancora rotta" in mail.body


# -- the digest at the desk's opening -------------------------------------------------------


@pytest.mark.unit
def test_openings_follow_the_calendar() -> None:
    # Friday 2026-03-06 at 19:00 in Rome: the next opening is Monday 08:30, closed since
    # Friday 18:30; from Monday 10:00 the next is 14:30 after the lunch break.
    friday = datetime(2026, 3, 6, 18, 0, tzinfo=UTC)
    opening = next_opening_after(SEED_000, friday)
    assert opening.opened_at == datetime(2026, 3, 9, 7, 30, tzinfo=UTC)
    assert opening.closed_since == datetime(2026, 3, 6, 17, 30, tzinfo=UTC)
    after_lunch = next_opening_after(SEED_000, opening.opened_at)
    assert after_lunch.opened_at == datetime(2026, 3, 9, 13, 30, tzinfo=UTC)
    assert after_lunch.closed_since == datetime(2026, 3, 9, 12, 0, tzinfo=UTC)
    # Easter Monday 2026-04-06 is a holiday: from Saturday the next opening is Tuesday.
    easter = next_opening_after(SEED_000, datetime(2026, 4, 4, 10, 0, tzinfo=UTC))
    assert easter.opened_at == datetime(2026, 4, 7, 6, 30, tzinfo=UTC)
    # On time, the next digest is the next opening's; back after two missed openings (the
    # workers were away), one digest at the last of them covers the whole time missed.
    assert next_digest(SEED_000, friday, friday + timedelta(minutes=1)) == opening
    late = next_digest(SEED_000, friday, datetime(2026, 3, 9, 14, 0, tzinfo=UTC))
    assert late == Opening(after_lunch.opened_at, opening.closed_since)


@asynccontextmanager
async def _digest_world(
    env: WorkflowEnvironment, database_url: str, nats_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Inbox, dict[str, m.Agent], async_sessionmaker[AsyncSession], int]]:
    """The tickets store and its activities on the time-skipping server, DirectoryService
    over gRPC, notify and the relay."""
    url = async_database_url(database_url)
    await db.upgrade(MIGRATIONS, url, VERSION_TABLE)
    engine = db.make_engine(url)
    sessions = db.make_sessionmaker(engine)
    now = datetime.now(UTC)
    async with sessions() as session:
        org = m.Organization(
            name="Rossi Srl", name_key=uuid.uuid4().hex, email_domains=["rossi.it"],
            created_at=now,
        )  # fmt: skip
        session.add(org)
        await session.flush()
        contact = m.Contact(
            organization_id=org.id, name="Mario Rossi", email="mario@rossi.it",
            email_key="mario@rossi.it", created_at=now,
        )  # fmt: skip
        session.add(contact)
        await session.commit()
        contact_id = contact.id
    agents = await add_agents(sessions)
    inbox = Inbox()
    relay_port = free_port()
    relay = Controller(inbox, hostname="127.0.0.1", port=relay_port)
    relay.start()
    publisher = EventPublisher(nats_url, "test-desk-digest")
    secrets_out = SecretPublisher(nats_url, "test-desk-digest-secrets")
    cfg = dataclasses.replace(
        Settings.from_env(),
        admin_token=ADMIN_TOKEN,
        service_token=SERVICE_TOKEN,
        signing_key=SIGNING_KEY,
    )
    credentials = Credentials(sessions, SIGNER, secrets_out)

    def register(server: grpc.aio.Server) -> None:
        dgrpc.add_DirectoryServiceServicer_to_server(
            DirectoryServicer(sessions, credentials), server
        )

    server = ServiceServer(cfg, "127.0.0.1:0", [], register)
    await server.start()
    notify = await start_notify(
        notify_settings(
            tmp_path,
            database_url,
            nats_url,
            f"127.0.0.1:{relay_port}",
            f"127.0.0.1:{server.port}",
            "http://127.0.0.1:9",  # no agent here has a messaging account linked
        )
    )
    activities = TicketActivities(sessions, publisher)
    try:
        async with (
            Worker(env.client, task_queue=WORKFLOW_TASK_QUEUE, workflows=[DeskDigestWorkflow]),
            Worker(
                env.client,
                task_queue=TICKETS_TASK_QUEUE,
                activities=[activities.send_desk_digest],
            ),
        ):
            yield inbox, agents, sessions, contact_id
    finally:
        await asyncio.wait_for(notify.stop(), 30)
        await server.stop(1)
        await publisher.close()
        await secrets_out.close()
        await engine.dispose()
        relay.stop()


async def _ticket_at(
    sessions: async_sessionmaker[AsyncSession], contact_id: int, subject: str, at: datetime
) -> int:
    async with sessions() as session:
        contact = await session.get(m.Contact, contact_id)
        assert contact is not None
        row = m.Ticket(
            subject=subject, description="-", organization_id=contact.organization_id,
            requester_id=contact_id, channel="EMAIL", priority="NORMAL", status="NEW",
            received_at=at, updated_at=at,
        )  # fmt: skip
        session.add(row)
        await session.commit()
        return row.id


@pytest.mark.db
@pytest.mark.workflow
async def test_the_desk_opening_digest_goes_once_to_the_agents_on_duty_who_want_it(
    time_skipping_env: WorkflowEnvironment, database_url: str, nats_url: str, tmp_path: Path
) -> None:
    env = time_skipping_env
    async with _digest_world(env, database_url, nats_url, tmp_path) as (
        inbox,
        agents,
        sessions,
        contact_id,
    ):
        anna, bruno = agents["anna"], agents["bruno"]
        async with sessions() as session:
            row = await session.get(m.Agent, bruno.id)
            assert row is not None
            row.notifications_off = ["digest.email"]
            await session.commit()
        start = await env.get_current_time()
        opening = next_opening_after(SEED_000, start)
        while_closed = [
            await _ticket_at(sessions, contact_id, "Server di posta irraggiungibile", t)
            for t in (
                opening.closed_since + timedelta(minutes=5),
                opening.opened_at - timedelta(minutes=1),
            )
        ]
        while_open = await _ticket_at(
            sessions, contact_id, "Ticket di ieri", opening.closed_since - timedelta(minutes=1)
        )
        handle = await env.client.start_workflow(
            DESK_DIGEST_WORKFLOW,
            DeskDigestInput(calendar=SEED_000),
            id=f"desk-digest-{uuid.uuid4().hex[:6]}",
            task_queue=WORKFLOW_TASK_QUEUE,
        )
        # Nothing before the desk opens.
        await env.sleep((opening.opened_at - start) - timedelta(minutes=2))
        await asyncio.sleep(1)
        assert inbox.to(anna.email) == []
        await env.sleep(timedelta(minutes=5))
        [digest] = await eventually(lambda: inbox.to(anna.email, "Apertura dello sportello"))
        text = body(digest)
        for tid in while_closed:
            assert f"#{tid} Server di posta irraggiungibile" in text
        assert f"#{while_open} " not in text
        assert "2 richieste" in str(digest["Subject"])
        # The same opening once more (a restarted workflow): nothing more is mailed.
        again = await env.client.start_workflow(
            DESK_DIGEST_WORKFLOW,
            DeskDigestInput(calendar=SEED_000, last_opening=opening.closed_since),
            id=f"desk-digest-again-{uuid.uuid4().hex[:6]}",
            task_queue=WORKFLOW_TASK_QUEUE,
        )

        async def activity_ran() -> bool:
            history = await again.fetch_history()
            return any(
                e.HasField("activity_task_completed_event_attributes") for e in history.events
            )

        await eventually(activity_ran)
        await asyncio.sleep(2)
        assert len(inbox.to(anna.email, "Apertura")) == 1
        # Bruno turned the digest off, Carla is off duty, Dario is a developer.
        for name in ("bruno", "carla", "dario"):
            assert inbox.to(agents[name].email) == []
        await handle.terminate()
        await again.terminate()
