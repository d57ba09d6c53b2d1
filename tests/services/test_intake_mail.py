"""Intake's mail processor against a real tickets server (in-process gRPC, the ticket
workflow on the Temporal dev server, a real database, nats-server): the store-then-process
path a message takes after the SMTP listener (or ``SubmitEmail``) accepted it.

- automatic mail threaded to a ticket becomes an internal system note that moves nothing;
- an organisation may keep unknown senders of its domains out (they are prospects then);
- a property test (hypothesis): random and malformed messages end in one complete outcome
  or in nothing, and processing a message again changes nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import grpc
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import directory_pb2_grpc as dgrpc
from helpdesk.v1 import tickets_pb2 as tpb
from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.common import db
from services.common.auth import bearer_metadata
from services.common.embedded import EmbeddedProcess
from services.common.events import EventPublisher
from services.common.grpc_server import ServiceServer
from services.common.settings import Settings, async_database_url
from services.common.temporal_client import connect, register_search_attributes
from services.intake.app import MIGRATIONS as INTAKE_MIGRATIONS
from services.intake.app import VERSION_TABLE as INTAKE_VERSION_TABLE
from services.intake.models import InboundMessage, SalesRequest
from services.intake.smtp import MailProcessor, store_message
from services.tickets import models as m
from services.tickets.directory import DirectoryServicer
from services.tickets.servicer import TicketServicer
from tests.conftest import PG_URL
from tests.support import SIGNING_KEY, tickets_stack

pytestmark = [pytest.mark.db]

T = TypeVar("T")
ADMIN_TOKEN = "intake-mail-admin"
SERVICE_TOKEN = "intake-mail-service"
ADMIN = bearer_metadata(ADMIN_TOKEN)
SUPPORT = "assistenza@helpdesk.localhost"
OUTCOMES = {
    "TICKET_CREATED",
    "COMMENT_ADDED",
    "NOTE_ADDED",
    "IGNORED",
    "PROSPECT",
    "BOUNCE",
    "FAILED",
}


@dataclass(frozen=True)
class Counts:
    tickets: int
    comments: int
    contacts: int
    sales: int


@dataclass(frozen=True)
class Stored:
    id: str
    new: bool
    status: str
    ticket_id: int
    detail: str


@dataclass
class MailWorld:
    """A tickets server and intake's mail processor, running in their own loop thread."""

    loop: asyncio.AbstractEventLoop
    processor: MailProcessor
    intake: async_sessionmaker[AsyncSession]
    store: async_sessionmaker[AsyncSession]  # the tickets service's (to count what exists)
    tickets: tgrpc.TicketServiceStub
    directory: dgrpc.DirectoryServiceStub
    org_id: int
    contact_email: str
    ticket_id: int  # a ticket of the contact's, open
    agent_id: int

    def call(self, make: Callable[[], Awaitable[T]]) -> T:
        """Run a coroutine on the world's loop (gRPC calls belong to their loop)."""

        async def go() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(go(), self.loop).result(timeout=120)

    def ingest(self, raw: bytes, mail_from: str = "sender@rossi.it") -> Stored:
        """Store (as the SMTP listener does) and process one message."""

        async def go() -> Stored:
            stored, new = await store_message(self.intake, raw, mail_from, [SUPPORT])
            if new:
                await self.processor.process(stored)
            return await self._row(stored, new)

        return self.call(go)

    def process_again(self, stored: str) -> Stored:
        """As if the processor crashed after doing the work and before recording it."""

        async def go() -> Stored:
            async with self.intake() as session:
                row = await session.get(InboundMessage, stored)
                assert row is not None
                row.status = "RECEIVED"
                await session.commit()
            await self.processor.process(stored)
            return await self._row(stored, False)

        return self.call(go)

    async def _row(self, stored: str, new: bool) -> Stored:
        async with self.intake() as session:
            row = await session.get(InboundMessage, stored)
            assert row is not None
            return Stored(stored, new, row.status, row.ticket_id, row.detail)

    def counts(self) -> Counts:
        async def go() -> Counts:
            async with self.store() as session:
                tickets = await session.scalar(select(func.count(m.Ticket.id)))
                comments = await session.scalar(select(func.count(m.Comment.id)))
                contacts = await session.scalar(select(func.count(m.Contact.id)))
            async with self.intake() as session:
                sales = await session.scalar(select(func.count(SalesRequest.id)))
            return Counts(tickets or 0, comments or 0, contacts or 0, sales or 0)

        return self.call(go)

    def comments(self, ticket_id: int) -> list[m.Comment]:
        async def go() -> list[m.Comment]:
            async with self.store() as session:
                rows = await session.scalars(
                    select(m.Comment)
                    .where(m.Comment.ticket_id == ticket_id)
                    .order_by(m.Comment.created_at)
                )
                return list(rows)

        return self.call(go)

    def status_of(self, ticket_id: int) -> str:
        async def go() -> str:
            async with self.store() as session:
                row = await session.get(m.Ticket, ticket_id)
                assert row is not None
                return row.status

        return self.call(go)


async def _database(tmp: Path) -> tuple[str, str]:
    if not PG_URL:
        return f"sqlite:///{tmp / 'intake-mail.db'}", ""
    name = f"hd_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return f"{PG_URL.rsplit('/', 1)[0]}/{name}", name


@pytest.fixture
def world(
    tmp_path: Path, temporal_dev_server: EmbeddedProcess, nats_url: str
) -> Iterator[MailWorld]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    made: dict[str, Any] = {}

    async def serve() -> None:
        stop = asyncio.Event()
        made["stop"] = stop
        url, pg_name = await _database(tmp_path)
        client = await connect(temporal_dev_server.addresses["temporal"])
        await register_search_attributes(client)
        async with tickets_stack(client, url, nats_url) as stack:
            cfg = dataclasses.replace(
                Settings.from_env(),
                admin_token=ADMIN_TOKEN,
                service_token=SERVICE_TOKEN,
                signing_key=SIGNING_KEY,
            )

            def register(server: grpc.aio.Server) -> None:
                tgrpc.add_TicketServiceServicer_to_server(
                    TicketServicer(stack.sessions, client, stack.creator), server
                )
                dgrpc.add_DirectoryServiceServicer_to_server(
                    DirectoryServicer(stack.sessions, stack.credentials), server
                )

            server = ServiceServer(cfg, "127.0.0.1:0", [], register)
            await server.start()
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
            intake_url = async_database_url(url)
            await db.upgrade(INTAKE_MIGRATIONS, intake_url, INTAKE_VERSION_TABLE)
            engine = db.make_engine(intake_url)
            intake = db.make_sessionmaker(engine)
            events = EventPublisher(nats_url, "test-intake")
            tickets = tgrpc.TicketServiceStub(channel)
            directory = dgrpc.DirectoryServiceStub(channel)
            processor = MailProcessor(
                intake,
                tickets,  # type: ignore[arg-type]
                directory,  # type: ignore[arg-type]
                SERVICE_TOKEN,
                asyncio.Event(),
                "helpdesk.localhost",
                events=events,
                our_addresses={SUPPORT},
            )
            async with stack.sessions() as session:
                contact = await session.get(m.Contact, stack.contact_id)
                assert contact is not None
                contact_email = contact.email
            made["world"] = MailWorld(
                loop,
                processor,
                intake,
                stack.sessions,
                tickets,
                directory,
                stack.org_id,
                contact_email,
                await stack.new_ticket("Stampante bloccata"),
                stack.agent_id,
            )
            await stop.wait()
            await events.close()
            await engine.dispose()
            await channel.close(None)
            await server.stop(1)
        if pg_name:
            admin = await asyncpg.connect(PG_URL)
            await admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
            await admin.close()

    done = asyncio.run_coroutine_threadsafe(serve(), loop)
    try:
        while "world" not in made:
            if done.done():
                done.result()
            threading.Event().wait(0.1)
        yield made["world"]
    finally:
        if "stop" in made:
            loop.call_soon_threadsafe(made["stop"].set)
        done.result(timeout=60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def _mail(sender: str, subject: str, body: str, **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@rossi.it>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes()


# -- automatic mail ------------------------------------------------------------------


def test_automatic_mail_threaded_to_a_ticket_is_an_internal_note(world: MailWorld) -> None:
    ticket = world.ticket_id
    before = world.counts()
    status = world.status_of(ticket)
    # An out-of-office answering our acknowledgement: its References name the ticket.
    oof = _mail(
        world.contact_email,
        "Risposta automatica: Richiesta registrata",
        "Sono fuori ufficio fino a lunedì.\n\n> il vostro messaggio",
        Auto_Submitted="auto-replied",
        In_Reply_To="<notify.created.0123456789abcdef0123456789abcdef@helpdesk.localhost>",
        References=f"<ticket-{ticket}@helpdesk.localhost>",
    )
    noted = world.ingest(oof)
    assert (noted.status, noted.ticket_id) == ("NOTE_ADDED", ticket), noted.detail
    [note] = world.comments(ticket)
    assert (note.author_kind, note.visibility) == ("SYSTEM", "INTERNAL")
    assert note.body == (
        f"Risposta automatica da {world.contact_email}: Sono fuori ufficio fino a lunedì."
    )
    assert world.status_of(ticket) == status
    # Processed again (a crash before the outcome was recorded): still one note.
    assert world.process_again(noted.id).status == "NOTE_ADDED"
    assert len(world.comments(ticket)) == 1

    # An auto-responder writing from another mailbox of the organisation's domain, by tag.
    robot = _mail(
        "noreply@rossi.it",
        f"Re: [#{ticket}] Richiesta registrata",
        "Messaggio ricevuto, grazie.",
        Precedence="auto_reply",
    )
    assert world.ingest(robot).status == "NOTE_ADDED"
    assert len(world.comments(ticket)) == 2

    # An out-of-office quoting only our notification's Message-ID, which names the ticket.
    bare = _mail(
        world.contact_email,
        "Fuori ufficio",
        "Rientro il 2 dicembre.",
        Auto_Submitted="auto-replied",
        In_Reply_To=f"<notify.agent_reply.t{ticket}.0123456789abcdef0123456789abcdef"
        "@helpdesk.localhost>",
    )
    assert world.ingest(bare).status == "NOTE_ADDED"
    assert len(world.comments(ticket)) == 3

    # Automatic mail from outside the organisation, or threading to nothing: ignored.
    stranger = _mail(
        "robot@altrove.example",
        f"Re: [#{ticket}] Richiesta registrata",
        "Auto-reply",
        Auto_Submitted="auto-replied",
    )
    unthreaded = _mail(
        world.contact_email, "Fuori ufficio", "Sono in ferie.", Auto_Submitted="auto-replied"
    )
    nowhere = _mail(
        world.contact_email, "Re: [#99999] x", "Sono in ferie.", Auto_Submitted="auto-replied"
    )
    for raw in (stranger, unthreaded, nowhere):
        assert world.ingest(raw).status == "IGNORED"
    after = world.counts()
    assert (after.tickets, after.comments, after.contacts, after.sales) == (
        before.tickets,
        before.comments + 3,
        before.contacts,
        before.sales,
    )
    assert world.status_of(ticket) == status


def test_automatic_mail_for_a_closed_ticket_is_dropped(world: MailWorld) -> None:
    opened = world.ingest(_mail(world.contact_email, "Backup", "Il backup non parte."))
    assert opened.status == "TICKET_CREATED"
    ticket = opened.ticket_id
    agent = tpb.Actor(kind=pb.AUTHOR_KIND_AGENT, id=world.agent_id)
    world.call(
        lambda: world.tickets.AssignTicket(
            tpb.AssignTicketRequest(ticket_id=ticket, assignee_id=world.agent_id), metadata=ADMIN
        )
    )
    world.call(
        lambda: world.tickets.ChangeStatus(
            tpb.ChangeStatusRequest(
                ticket_id=ticket, status=pb.TICKET_STATUS_CLOSED, actor=agent
            ),
            metadata=ADMIN,
        )
    )
    before = world.counts()
    oof = _mail(
        world.contact_email,
        f"Risposta automatica: [#{ticket}] Richiesta chiusa",
        "Sono fuori ufficio.",
        Auto_Submitted="auto-replied",
    )
    dropped = world.ingest(oof)
    assert (dropped.status, dropped.ticket_id) == ("IGNORED", ticket), dropped
    assert world.counts() == before  # no note, and no follow-up ticket either
    assert world.status_of(ticket) == "CLOSED"


# -- the organisation's policy for strangers of its domain -------------------------------


def test_an_organisation_may_keep_strangers_of_its_domain_out(world: MailWorld) -> None:
    found = world.call(
        lambda: world.directory.GetOrganizationByDomain(
            dpb.GetOrganizationByDomainRequest(domain="ROSSI.it"), metadata=ADMIN
        )
    )
    assert found.id == world.org_id and found.add_contacts_by_domain
    for domain, code in (
        ("nowhere.example", grpc.StatusCode.NOT_FOUND),
        ("ssi.it", grpc.StatusCode.NOT_FOUND),  # in "rossi.it", yet not its domain
        ("%.it", grpc.StatusCode.INVALID_ARGUMENT),
        ("", grpc.StatusCode.INVALID_ARGUMENT),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            world.call(
                lambda d=domain: world.directory.GetOrganizationByDomain(  # type: ignore[misc]
                    dpb.GetOrganizationByDomainRequest(domain=d), metadata=ADMIN
                )
            )
        assert err.value.code() == code, domain
    closed = world.call(
        lambda: world.directory.CreateOrganization(
            dpb.CreateOrganizationRequest(
                name="Bianchi SpA", email_domains=["bianchi.it"], add_contacts_by_domain=False
            ),
            metadata=ADMIN,
        )
    )
    assert closed.HasField("add_contacts_by_domain") and not closed.add_contacts_by_domain
    by_domain = world.call(
        lambda: world.directory.GetOrganizationByDomain(
            dpb.GetOrganizationByDomainRequest(domain="bianchi.it"), metadata=ADMIN
        )
    )
    assert by_domain.id == closed.id and not by_domain.add_contacts_by_domain

    before = world.counts()
    outsider = world.ingest(_mail("nuovo@bianchi.it", "Preventivo", "Vorrei un preventivo."))
    assert outsider.status == "PROSPECT", outsider.detail
    colleague = world.ingest(_mail("nuova@rossi.it", "Non stampo", "La stampante è ferma."))
    assert colleague.status == "TICKET_CREATED", colleague.detail
    after = world.counts()
    assert (after.contacts, after.sales, after.tickets) == (
        before.contacts + 1,
        before.sales + 1,
        before.tickets + 1,
    )
    contact = world.call(
        lambda: world.directory.GetContactByEmail(
            dpb.GetContactByEmailRequest(email="nuova@rossi.it"), metadata=ADMIN
        )
    )
    assert contact.organization_id == world.org_id
    with pytest.raises(grpc.aio.AioRpcError) as err:
        world.call(
            lambda: world.directory.GetContactByEmail(
                dpb.GetContactByEmailRequest(email="nuovo@bianchi.it"), metadata=ADMIN
            )
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


# -- property: random and malformed mail through the processor ------------------------

_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80
)
_SENDERS = st.sampled_from(
    [
        "{contact}",
        "Mario Rossi <{contact}>",
        "nuovo.{n}@rossi.it",
        "estraneo.{n}@altrove.example",
        "mailer-daemon@rossi.it",
        SUPPORT,
        "",
        "Mario <rotto@",
        "a@b.c, d@e.f",
        '"x@rossi.it" <y@altrove.example>',
        "=?utf-8?q?Jos=C3=A9?= <{contact}>",
    ]
)
_EXTRA = st.sampled_from(
    [
        "Auto-Submitted: auto-replied",
        "Auto-Submitted: no",
        "Precedence: bulk",
        "List-Id: <lista.rossi.it>",
        "X-Autoreply: yes",
        "X-Loop: assistenza@helpdesk.localhost",
        "In-Reply-To: <ticket-{ticket}@helpdesk.localhost>",
        "References: <ticket-99999@helpdesk.localhost> <x@y>",
        "In-Reply-To: <<<>>>",
        "Content-Language: en",
        "X-Helpdesk-Ticket: {ticket}",
        "Content-Type: multipart/report; report-type=delivery-status; boundary=b",
        "Content-Type: multipart/mixed; boundary=\"b\"",
        "Content-Type: text/html; charset=iso-8859-1",
        "Content-Type: text/plain; charset=x-unknown",
        "Content-Transfer-Encoding: base64",
        "Content-Transfer-Encoding: quoted-printable",
        "MIME-Version: 1.0",
    ]
)
_SUBJECTS = st.one_of(
    _TEXT,
    st.sampled_from(["Re: [#{ticket}] Stampante", "[#99999] altro", "=?utf-8?b?wqk=?=", ""]),
)
_BODIES = st.one_of(
    _TEXT.map(lambda t: t.encode("utf-8")),
    st.binary(max_size=300),
    st.sampled_from(
        [
            b"--b\r\nContent-Type: text/plain\r\n\r\nciao\r\n--b\r\n"
            b"Content-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; x@y\r\n"
            b"Action: failed\r\nStatus: 5.1.1\r\n--b--\r\n",
            b"--b\r\nContent-Type: text/plain\r\n\r\nsenza fine",
            b"=E0=\r\n=ZZ",
            b"////====",
            b"<p>caff\xe8 <script>x</script></p>",
        ]
    ),
)


@st.composite
def messages(draw: st.DrawFn) -> tuple[list[str], bytes, bool]:
    """(header lines with placeholders, body, whether to send a Message-ID), or raw bytes."""
    headers = [f"From: {draw(_SENDERS)}", f"Subject: {draw(_SUBJECTS)}"]
    headers += draw(st.lists(_EXTRA, max_size=4))
    if draw(st.booleans()):
        headers.append(f"X-Random: {draw(_TEXT)}")
    return headers, draw(_BODIES), draw(st.booleans())


def _render(world: MailWorld, headers: list[str], body: bytes, with_id: bool) -> bytes:
    n = uuid.uuid4().hex[:8]
    lines = [
        h.replace("{contact}", world.contact_email)
        .replace("{ticket}", str(world.ticket_id))
        .replace("{n}", n)
        for h in headers
    ]
    if with_id:
        lines.append(f"Message-ID: <{uuid.uuid4().hex}@fuzz.example>")
    head = "\r\n".join(lines).encode("utf-8", "surrogateescape")
    return head + b"\r\n\r\n" + body


def _check_outcome(world: MailWorld, got: Stored, before: Counts, after: Counts) -> None:
    """One complete outcome, or nothing at all."""
    assert got.status in OUTCOMES, got
    delta = Counts(
        after.tickets - before.tickets,
        after.comments - before.comments,
        after.contacts - before.contacts,
        after.sales - before.sales,
    )
    if got.status == "TICKET_CREATED":
        assert (delta.tickets, delta.comments, delta.sales) == (1, 0, 0), (got, delta)
        assert got.ticket_id > 0 and world.status_of(got.ticket_id)
    elif got.status == "COMMENT_ADDED":
        assert (delta.tickets, delta.comments, delta.sales) == (0, 1, 0), (got, delta)
        assert got.ticket_id == world.ticket_id
    elif got.status == "NOTE_ADDED":
        assert (delta.tickets, delta.comments, delta.sales, delta.contacts) == (0, 1, 0, 0)
        note = world.comments(got.ticket_id)[-1]
        assert (note.author_kind, note.visibility) == ("SYSTEM", "INTERNAL")
    elif got.status == "PROSPECT":
        assert delta == Counts(0, 0, 0, 1), (got, delta)
    else:  # IGNORED, BOUNCE, FAILED: nothing written anywhere
        assert delta == Counts(0, 0, 0, 0), (got, delta)
    if got.status not in ("TICKET_CREATED", "COMMENT_ADDED"):
        assert delta.contacts == 0, (got, delta)
    assert delta.contacts <= 1


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(message=messages())
def test_any_message_ends_complete_or_not_at_all_and_once(
    world: MailWorld, message: tuple[list[str], bytes, bool]
) -> None:
    headers, body, with_id = message
    raw = _render(world, headers, body, with_id)
    before = world.counts()
    first = world.ingest(raw)
    after = world.counts()
    event(first.status)
    if first.new:
        _check_outcome(world, first, before, after)
    else:  # hypothesis made the same message again: a duplicate changes nothing
        assert after == before
    # The same message delivered again is a duplicate; processed again, it changes nothing.
    again = world.ingest(raw)
    assert (again.id, again.new) == (first.id, False)
    redone = world.process_again(first.id)
    assert (redone.status, redone.ticket_id) == (first.status, first.ticket_id), (
        first,
        redone,
    )
    assert world.counts() == after
