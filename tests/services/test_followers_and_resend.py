"""The people around a ticket, through the real parts: the tickets service in-process (its
workflow on the Temporal dev server, a real database), notify on nats-server mailing a
loopback SMTP server, and intake's mail processor for the ``Cc`` of a mail.

- followers (CC): added by an agent or by a mail's ``Cc``, only the organisation's own
  contacts; they receive the public answers and status emails, never internal notes;
- answers re-sent by the ticket's ID (seed 000), each recorded as a resend of the
  original delivery;
- a merge mails the merged ticket's requester, who then follows the surviving ticket.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import grpc
import pytest
from aiosmtpd.controller import Controller
from nats.js.api import DeliverPolicy
from sqlalchemy import select
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2_grpc as dgrpc
from helpdesk.v1 import notify_pb2, notify_pb2_grpc
from helpdesk.v1 import tickets_pb2 as tpb
from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.common import db
from services.common.access import Principal, Role
from services.common.auth import bearer_metadata
from services.common.embedded import free_port
from services.common.events import EventPublisher
from services.common.grpc_server import ServiceServer
from services.common.settings import Settings, async_database_url
from services.common.tokens import TokenSigner
from services.intake.app import MIGRATIONS as INTAKE_MIGRATIONS
from services.intake.app import VERSION_TABLE as INTAKE_VERSION_TABLE
from services.intake.mail_processor import MailProcessor
from services.intake.models import InboundMessage
from services.intake.smtp import store_message
from services.notify.app import NotifyApp
from services.notify.notifier import RetryPolicy
from services.tickets import models as m
from services.tickets.creation import NewTicket
from services.tickets.directory import DirectoryServicer
from services.tickets.servicer import TicketServicer
from tests.services.test_notify import CollectingHandler, Received, body_of, make_settings
from tests.support import SIGNING_KEY, TicketsStack, eventually, tickets_stack

pytestmark = [pytest.mark.db, pytest.mark.timeout(120)]

ADMIN = "people-admin-token"
SERVICE = "people-service-token"
SUPPORT = "assistenza@helpdesk.localhost"
SIGNER = TokenSigner(SIGNING_KEY)
# An answer's files are mailed up to this much together (small, to test the limit cheaply).
MAIL_FILES_LIMIT = 256 * 1024


@dataclass
class Desk:
    stack: TicketsStack
    tickets: tgrpc.TicketServiceStub
    notify: notify_pb2_grpc.NotifyServiceStub
    mail: CollectingHandler
    processor: MailProcessor
    intake: Any  # intake's session factory
    agent: Any  # an agent's bearer metadata
    mario: str  # the requester of the stack's tickets
    luisa: str  # a colleague at the same organisation
    piero: str  # another colleague
    stranger: str  # a contact of another organisation

    def to(self, address: str, template: str = "") -> list[Received]:
        """The emails ``address`` received (of ``template``, read from the Message-ID)."""
        return [
            r
            for r in self.mail.received
            if address in r.rcpt_tos
            and (not template or str(r.message["Message-ID"]).startswith(f"<notify.{template}."))
        ]

    async def contact_id(self, email: str) -> int:
        async with self.stack.sessions() as session:
            found = await session.scalar(select(m.Contact.id).where(m.Contact.email_key == email))
            assert found is not None
            return int(found)


async def _contact(stack: TicketsStack, org_id: int, name: str, email: str) -> str:
    async with stack.sessions() as session:
        session.add(
            m.Contact(
                organization_id=org_id,
                name=name,
                email=email,
                email_key=email.lower(),
                role="USER",
                locale="it",
                created_at=datetime.now(UTC),
            )
        )
        await session.commit()
    return email


@pytest.fixture
def smtp() -> Iterator[tuple[CollectingHandler, str]]:
    handler = CollectingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, f"127.0.0.1:{port}"
    finally:
        controller.stop()


@pytest.fixture
async def desk(
    tmp_path: Path,
    temporal_client: Client,
    database_url: str,
    nats_url: str,
    smtp: tuple[CollectingHandler, str],
) -> AsyncIterator[Desk]:
    handler, relay = smtp
    settings = dataclasses.replace(
        Settings.from_env(),
        admin_token=ADMIN,
        service_token=SERVICE,
        signing_key=SIGNING_KEY,
        nats_url=nats_url,
    )
    publisher = EventPublisher(nats_url, "test-people")
    async with tickets_stack(temporal_client, database_url, nats_url) as stack:

        def register(server: grpc.aio.Server) -> None:
            tgrpc.add_TicketServiceServicer_to_server(
                TicketServicer(stack.sessions, temporal_client, stack.creator, SIGNER, publisher),
                server,
            )
            dgrpc.add_DirectoryServiceServicer_to_server(
                DirectoryServicer(stack.sessions, stack.credentials), server
            )

        server = ServiceServer(settings, "127.0.0.1:0", [], register)
        await server.start()
        # Notify downloads answers' files from this tickets service (the service token).
        notify_settings = dataclasses.replace(
            make_settings(
                tmp_path / "notify",
                database_url if database_url.startswith("postgres") else "",
                nats_url,
                relay,
            ),
            admin_token=ADMIN,
            service_token=SERVICE,
            signing_key=SIGNING_KEY,
            tickets_addr=f"127.0.0.1:{server.port}",
            mail_max_attachment_bytes=MAIL_FILES_LIMIT,
        )
        notify = NotifyApp(
            notify_settings,
            durable=f"notify-people-{uuid.uuid4().hex[:8]}",
            deliver_policy=DeliverPolicy.NEW,
            retry=RetryPolicy(base_delay=0.1, max_delay=0.5),
        )
        await notify.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        notify_channel = grpc.aio.insecure_channel(f"127.0.0.1:{notify.port}")
        intake_url = async_database_url(
            database_url if database_url.startswith("postgres") else f"sqlite:///{tmp_path}/in.db"
        )
        await db.upgrade(INTAKE_MIGRATIONS, intake_url, INTAKE_VERSION_TABLE)
        engine = db.make_engine(intake_url)
        intake = db.make_sessionmaker(engine)
        processor = MailProcessor(
            intake,
            tgrpc.TicketServiceStub(channel),  # type: ignore[arg-type]
            dgrpc.DirectoryServiceStub(channel),  # type: ignore[arg-type]
            SERVICE,
            asyncio.Event(),
            "helpdesk.localhost",
            our_addresses={SUPPORT},
        )
        async with stack.sessions() as session:
            mario = await session.get(m.Contact, stack.contact_id)
            assert mario is not None
            mario.email_key = mario.email.lower()  # found by its address, as in life
            other = m.Organization(
                name="Altra Spa",
                name_key=uuid.uuid4().hex,
                email_domains=["altra.it"],
                closed_ticket_policy="FOLLOW_UP",
                locale="it",
                created_at=datetime.now(UTC),
            )
            session.add(other)
            await session.commit()
            mario_email, other_id = mario.email.lower(), other.id
        agent = Principal(role=Role.AGENT, kind="AGENT", id=stack.agent_id, name="Anna")
        try:
            yield Desk(
                stack,
                tgrpc.TicketServiceStub(channel),
                notify_pb2_grpc.NotifyServiceStub(notify_channel),
                handler,
                processor,
                intake,
                bearer_metadata(SIGNER.access_token(agent)),
                mario_email,
                await _contact(stack, stack.org_id, "Luisa Bianchi", "luisa@rossi.it"),
                await _contact(stack, stack.org_id, "Piero Verdi", "piero@rossi.it"),
                await _contact(stack, other_id, "Esterno Neri", "esterno@altra.it"),
            )
        finally:
            await processor.close()
            await engine.dispose()
            await channel.close(None)
            await notify_channel.close(None)
            await notify.stop()
            await server.stop(1)
    await publisher.close()


async def _code(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code()


async def _answer(desk: Desk, ticket_id: int, body: str, internal: bool = False) -> str:
    reply = await desk.tickets.AddComment(
        tpb.AddCommentRequest(
            ticket_id=ticket_id,
            body=body,
            visibility=pb.COMMENT_VISIBILITY_INTERNAL if internal else pb.COMMENT_VISIBILITY_PUBLIC,
        ),
        metadata=desk.agent,
    )
    return str(reply.comment.id)


async def _taken(desk: Desk, subject: str) -> int:
    ticket_id = await desk.stack.new_ticket(subject)
    await desk.tickets.AssignTicket(
        tpb.AssignTicketRequest(ticket_id=ticket_id, assignee_id=desk.stack.agent_id),
        metadata=desk.agent,
    )
    return ticket_id


async def test_followers_get_answers_and_status_mails_never_internal_notes(desk: Desk) -> None:
    ticket_id = await _taken(desk, "Il gestionale si blocca")
    add = tpb.AddFollowerRequest(ticket_id=ticket_id, email="Luisa@Rossi.it", request_id="f1")
    ticket = await desk.tickets.AddFollower(add, metadata=desk.agent)
    assert [(f.email, f.name, f.source) for f in ticket.followers] == [
        ("luisa@rossi.it", "Luisa Bianchi", "AGENT")
    ]
    # Again, by the same key or another: still one follower, one line in the history.
    await desk.tickets.AddFollower(add, metadata=desk.agent)
    second = tpb.AddFollowerRequest(ticket_id=ticket_id, email="luisa@rossi.it", request_id="f2")
    assert len((await desk.tickets.AddFollower(second, metadata=desk.agent)).followers) == 1
    read = await desk.tickets.GetTicket(tpb.GetTicketRequest(id=ticket_id), metadata=desk.agent)
    assert [f.email for f in read.followers] == ["luisa@rossi.it"]
    history = await desk.tickets.GetTicketHistory(
        tpb.GetTicketHistoryRequest(ticket_id=ticket_id), metadata=desk.agent
    )
    assert [e.detail for e in history.events if e.type == "follower_added"] == [
        "Luisa Bianchi <luisa@rossi.it> follows the ticket"
    ]
    # Refused, changing nothing: another organisation's contact, unknown people and
    # tickets, a customer doing desk work.
    refused = [
        (tpb.AddFollowerRequest(ticket_id=ticket_id, email=desk.stranger), desk.agent),
        (tpb.AddFollowerRequest(ticket_id=ticket_id, email="chi@rossi.it"), desk.agent),
        (tpb.AddFollowerRequest(ticket_id=ticket_id, contact_id=999_999), desk.agent),
        (tpb.AddFollowerRequest(ticket_id=999_999, email=desk.piero), desk.agent),
        (tpb.AddFollowerRequest(ticket_id=ticket_id), desk.agent),
    ]
    codes = [await _code(desk.tickets.AddFollower(r, metadata=md)) for r, md in refused]
    assert codes == [
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
    ]
    customer = Principal(
        role=Role.USER, kind="CONTACT", id=desk.stack.contact_id, organization_id=desk.stack.org_id
    )
    customer_md = bearer_metadata(SIGNER.access_token(customer))
    code = await _code(
        desk.tickets.AddFollower(
            tpb.AddFollowerRequest(ticket_id=ticket_id, email=desk.piero), metadata=customer_md
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED

    await _answer(desk, ticket_id, "Nota interna: verificare la licenza.", internal=True)
    await _answer(desk, ticket_id, "Riavvii il server del gestionale, per favore.")
    await desk.tickets.ChangeStatus(
        tpb.ChangeStatusRequest(ticket_id=ticket_id, status=pb.TICKET_STATUS_SOLVED),
        metadata=desk.agent,
    )
    await eventually(lambda: len(desk.to(desk.luisa, "solved")) == 1)
    for person in (desk.mario, desk.luisa):
        [answer] = desk.to(person, "agent_reply")
        assert "Riavvii il server del gestionale" in body_of(answer.message)
        # The follower's copy says why it came; the requester's does not.
        assert ("Ricevi questo messaggio in copia" in body_of(answer.message)) == (
            person == desk.luisa
        )
        assert f"[#{ticket_id}]" in str(answer.message["Subject"])
        assert len(desk.to(person, "solved")) == 1
    # Each one their own email (one delivery row each), and never the internal note.
    assert all(len(r.rcpt_tos) == 1 for r in desk.mail.received)
    assert not any("verificare la licenza" in body_of(r.message) for r in desk.mail.received)

    # Removed, Luisa hears no more; Piero, added after, does.
    removed = await desk.tickets.RemoveFollower(
        tpb.RemoveFollowerRequest(ticket_id=ticket_id, email=desk.luisa), metadata=desk.agent
    )
    assert list(removed.followers) == []
    await desk.tickets.RemoveFollower(  # removing again changes nothing
        tpb.RemoveFollowerRequest(ticket_id=ticket_id, email=desk.luisa), metadata=desk.agent
    )
    await desk.tickets.ReopenTicket(
        tpb.ReopenTicketRequest(
            ticket_id=ticket_id,
            actor=tpb.Actor(kind=pb.AUTHOR_KIND_CONTACT, id=desk.stack.contact_id),
        ),
        metadata=customer_md,
    )
    await _answer(desk, ticket_id, "Primo messaggio dopo la rimozione.")
    await desk.tickets.AddFollower(
        tpb.AddFollowerRequest(ticket_id=ticket_id, email=desk.piero), metadata=desk.agent
    )
    await _answer(desk, ticket_id, "Secondo messaggio, anche per Piero.")
    # Events are mailed in order: once Piero has the second, the first was handled.
    await eventually(lambda: desk.to(desk.piero, "agent_reply"))
    assert len(desk.to(desk.mario, "agent_reply")) == 3
    assert len(desk.to(desk.luisa, "agent_reply")) == 1
    [piero] = desk.to(desk.piero, "agent_reply")
    assert "anche per Piero" in body_of(piero.message)


async def _log(desk: Desk, ticket_id: int) -> list[notify_pb2.Notification]:
    listed = await desk.notify.ListNotifications(
        notify_pb2.ListNotificationsRequest(ticket_id=ticket_id),
        metadata=bearer_metadata(ADMIN),
    )
    return list(listed.notifications)


async def test_answers_are_resent_by_ticket_id_as_resends_of_the_originals(desk: Desk) -> None:
    ticket_id = await _taken(desk, "Fattura elettronica scartata")
    first = await _answer(desk, ticket_id, "Controlli la partita IVA del cliente.")
    note = await _answer(desk, ticket_id, "Interno: forse un bug.", internal=True)
    second = await _answer(desk, ticket_id, "Corretto: reinvii la fattura.")
    await eventually(lambda: len(desk.to(desk.mario, "agent_reply")) == 2)
    originals = {
        str(r.message["Message-ID"]): body_of(r.message) for r in desk.to(desk.mario, "agent_reply")
    }

    request = tpb.ResendAnswersRequest(ticket_id=ticket_id, request_id="lost-1")
    done = await desk.tickets.ResendAnswers(request, metadata=desk.agent)
    assert list(done.comment_ids) == [first, second]
    assert done.recipient_email == desk.mario
    await eventually(lambda: len(desk.to(desk.mario, "answer_resent")) == 2)
    mails = desk.to(desk.mario, "answer_resent")
    for mail, text in zip(mails, ["partita IVA", "reinvii la fattura"], strict=True):
        body = body_of(mail.message)
        assert text in body and "ti inviamo di nuovo la risposta" in body
        # In the thread of the email it re-sends.
        assert mail.message["In-Reply-To"] in originals
        assert text in originals[mail.message["In-Reply-To"]]
        assert f"[#{ticket_id}]" in str(mail.message["Subject"])
    assert not any("forse un bug" in body_of(r.message) for r in desk.mail.received)

    # A retry sends nothing again; the same key for something else is refused.
    assert (await desk.tickets.ResendAnswers(request, metadata=desk.agent)).comment_ids == [
        first,
        second,
    ]
    other = tpb.ResendAnswersRequest(
        ticket_id=ticket_id, request_id="lost-1", recipient_email=desk.luisa
    )
    assert await _code(desk.tickets.ResendAnswers(other, metadata=desk.agent)) == (
        grpc.StatusCode.ALREADY_EXISTS
    )
    # One answer to a colleague of the same organisation.
    to_luisa = tpb.ResendAnswersRequest(
        ticket_id=ticket_id, comment_id=second, recipient_email="LUISA@rossi.it"
    )
    assert (await desk.tickets.ResendAnswers(to_luisa, metadata=desk.agent)).comment_ids == [second]
    await eventually(lambda: desk.to(desk.luisa, "answer_resent"))
    [luisa] = desk.to(desk.luisa, "answer_resent")
    assert "reinvii la fattura" in body_of(luisa.message)
    assert len(desk.to(desk.mario, "answer_resent")) == 2  # the retry sent nothing

    # The delivery log: each resend names the delivery it re-sends.
    log = await _log(desk, ticket_id)
    by_id = {n.id: n for n in log}
    resends = [n for n in log if n.template == "answer_resent"]
    assert [n.recipient for n in resends] == [desk.mario, desk.mario, desk.luisa]
    for n in resends:
        original = by_id[n.resend_of]
        assert original.template == "agent_reply" and original.recipient == desk.mario
        assert n.resend_of_message_id == original.message_id
        assert n.event_type == "answers_resent"
    assert all(not n.resend_of for n in log if n.template != "answer_resent")
    history = await desk.tickets.GetTicketHistory(
        tpb.GetTicketHistoryRequest(ticket_id=ticket_id), metadata=desk.agent
    )
    assert [e.detail for e in history.events if e.type == "answers_resent"] == [
        f"2 answer(s) re-sent to Mario Rossi <{desk.mario}>",
        "1 answer(s) re-sent to Luisa Bianchi <luisa@rossi.it>",
    ]

    # Refused: outside the organisation, unknown ticket or comment, an internal note.
    bad = [
        tpb.ResendAnswersRequest(ticket_id=ticket_id, recipient_email=desk.stranger),
        tpb.ResendAnswersRequest(ticket_id=ticket_id, recipient_email="nessuno@esempio.it"),
        tpb.ResendAnswersRequest(ticket_id=999_999),
        tpb.ResendAnswersRequest(ticket_id=ticket_id, comment_id="no-such-comment"),
        tpb.ResendAnswersRequest(ticket_id=ticket_id, comment_id=note),
    ]
    assert [await _code(desk.tickets.ResendAnswers(r, metadata=desk.agent)) for r in bad] == [
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.INVALID_ARGUMENT,
    ]
    fresh = await desk.stack.new_ticket("Nessuna risposta ancora")
    no_answers = tpb.ResendAnswersRequest(ticket_id=fresh)
    assert await _code(desk.tickets.ResendAnswers(no_answers, metadata=desk.agent)) == (
        grpc.StatusCode.FAILED_PRECONDITION
    )


async def test_a_merge_tells_the_merged_requester_who_then_follows_the_survivor(
    desk: Desk,
) -> None:
    survivor = await _taken(desk, "La stampante non stampa")
    row, _ = await desk.stack.creator.create(
        NewTicket(
            request_id=uuid.uuid4().hex,
            subject="Stampante ferma al secondo piano",
            description="Non stampa",
            requester_id=await desk.contact_id(desk.luisa),
            channel="EMAIL",
            priority="NORMAL",
        )
    )
    merged = await desk.tickets.MergeTickets(
        tpb.MergeTicketsRequest(
            source_ticket_id=row.id, target_ticket_id=survivor, reason="stesso problema"
        ),
        metadata=desk.agent,
    )
    assert merged.id == survivor
    assert [(f.email, f.source) for f in merged.followers] == [(desk.luisa, "MERGE")]
    await eventually(lambda: desk.to(desk.luisa, "merged_into"))
    [told] = desk.to(desk.luisa, "merged_into")
    assert str(told.message["Subject"]) == (
        f"[#{row.id}] Richiesta unita alla #{survivor}: Stampante ferma al secondo piano"
    )
    assert f"della richiesta #{survivor}" in body_of(told.message)
    assert not desk.to(desk.mario, "merged_into")

    # The survivor's answers now reach the merged ticket's requester too.
    await _answer(desk, survivor, "Sostituito il toner: ora stampa.")
    await eventually(lambda: desk.to(desk.luisa, "agent_reply"))
    [answer] = desk.to(desk.luisa, "agent_reply")
    assert f"[#{survivor}]" in str(answer.message["Subject"])
    assert "Sostituito il toner" in body_of(answer.message)
    await eventually(lambda: desk.to(desk.mario, "agent_reply"))


def _mail(sender: str, subject: str, body: str, **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@rossi.it>"
    for name, value in headers.items():
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes()


async def _ingest(desk: Desk, raw: bytes, sender: str) -> int:
    stored, new = await store_message(desk.intake, raw, sender, [SUPPORT])
    assert new
    await desk.processor.process(stored)
    async with desk.intake() as session:
        row = await session.get(InboundMessage, stored)
        assert row is not None and row.ticket_id, row and row.detail
        return int(row.ticket_id)


async def test_the_cc_of_a_mail_from_the_organisation_follows_its_ticket(desk: Desk) -> None:
    cc = f"Luisa <{desk.luisa}>, {desk.stranger}, sconosciuto@rossi.it, {SUPPORT}"
    raw = _mail(desk.mario, "Il backup non parte", "Da stamattina.", Cc=cc)
    ticket_id = await _ingest(desk, raw, desk.mario)
    read = await desk.tickets.GetTicket(tpb.GetTicketRequest(id=ticket_id), metadata=desk.agent)
    # Only the organisation's own contact: not the other company's, not a stranger, not us.
    assert [(f.email, f.source) for f in read.followers] == [(desk.luisa, "EMAIL_CC")]

    # A reply in the thread with another colleague in Cc: Piero follows too.
    reply = _mail(
        desk.mario,
        f"Re: [#{ticket_id}] Il backup non parte",
        "Aggiungo Piero.",
        Cc=desk.piero,
    )
    assert await _ingest(desk, reply, desk.mario) == ticket_id
    read = await desk.tickets.GetTicket(tpb.GetTicketRequest(id=ticket_id), metadata=desk.agent)
    assert [f.email for f in read.followers] == [desk.luisa, desk.piero]
    await _answer(desk, ticket_id, "Il backup è ripartito.")
    await eventually(lambda: desk.to(desk.piero, "agent_reply") and desk.to(desk.luisa))
    assert not desk.to(desk.stranger)
