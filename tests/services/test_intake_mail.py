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
import contextlib
import dataclasses
import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import grpc
import nats
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
from services.common.events import EventPublisher, ensure_stream
from services.common.grpc_server import ServiceServer
from services.common.settings import Settings, async_database_url
from services.common.temporal_client import connect, register_search_attributes
from services.intake import claims
from services.intake.app import MIGRATIONS as INTAKE_MIGRATIONS
from services.intake.app import VERSION_TABLE as INTAKE_VERSION_TABLE
from services.intake.mail_processor import MailProcessor
from services.intake.mailparse import Limits
from services.intake.models import InboundMessage, SalesRequest
from services.intake.parse_worker import ParseWorkers
from services.intake.smtp import store_message
from services.tickets import models as m
from services.tickets.directory import DirectoryServicer
from services.tickets.servicer import TicketServicer
from tests.conftest import PG_URL
from tests.grpc_faults import Faults
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
    address: str  # the tickets server (for processors of a test's own)
    nats_url: str

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
                contact.email_key = contact_email.lower()  # found by its address, as in life
                await session.commit()
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
                f"127.0.0.1:{server.port}",
                nats_url,
            )
            await stop.wait()
            await processor.close()
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
                ticket_id=ticket, status=pb.TICKET_STATUS_CLOSED, actor=agent, hours_spent=0.5
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

_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80)
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
        'Content-Type: multipart/mixed; boundary="b"',
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


# -- helpers for processors of a test's own -------------------------------------------


@asynccontextmanager
async def own_processor(
    world: MailWorld, faults: Faults | None = None, **options: Any
) -> AsyncIterator[MailProcessor]:
    channel = grpc.aio.insecure_channel(world.address, interceptors=[faults] if faults else [])
    processor = MailProcessor(
        world.intake,
        tgrpc.TicketServiceStub(channel),  # type: ignore[arg-type]
        dgrpc.DirectoryServiceStub(channel),  # type: ignore[arg-type]
        SERVICE_TOKEN,
        asyncio.Event(),
        "helpdesk.localhost",
        events=world.processor.events,
        our_addresses={SUPPORT},
        **options,
    )
    try:
        yield processor
    finally:
        await processor.close()
        await channel.close(None)


async def stored(world: MailWorld, raw: bytes, mail_from: str = "sender@rossi.it") -> str:
    return (await store_message(world.intake, raw, mail_from, [SUPPORT]))[0]


async def rows(world: MailWorld, ids: list[str]) -> list[InboundMessage]:
    async with world.intake() as session:
        found = {
            r.id: r
            for r in await session.scalars(select(InboundMessage).where(InboundMessage.id.in_(ids)))
        }
    return [found[i] for i in ids]


async def drain(processor: MailProcessor, world: MailWorld, ids: list[str], **kw: Any) -> None:
    """Process until none of ``ids`` waits any more."""
    deadline = asyncio.get_running_loop().time() + 60
    while any(r.status == "RECEIVED" for r in await rows(world, ids)):
        assert asyncio.get_running_loop().time() < deadline, "still waiting"
        if not await processor.process_pending(**kw):
            await asyncio.sleep(0.1)


async def mail_events(nats_url: str, kind: str) -> list[dict[str, Any]]:
    """Every ``helpdesk.mail.<kind>`` event now in the stream, in order."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await ensure_stream(js)
        sub = await js.subscribe(f"helpdesk.mail.{kind}", ordered_consumer=True)
        found = []
        while True:
            try:
                msg = await sub.next_msg(timeout=0.5)
            except nats.errors.TimeoutError:
                break
            found.append(json.loads(msg.data))
        await sub.unsubscribe()
        return found
    finally:
        await nc.close()


def _with_files(sender: str, subject: str, body: str, files: list[tuple[str, str, bytes]]) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@rossi.it>"
    msg.set_content(body)
    for name, ctype, content in files:
        maintype, subtype = ctype.split("/", 1)
        msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


# -- one mail must not jam intake -----------------------------------------------------


def test_failing_mail_gives_up_and_never_holds_the_mail_behind_it(world: MailWorld) -> None:
    """The tickets service answers INTERNAL to three mails (poison): each waits after a
    failed attempt while the mail behind it goes on, and ends FAILED after three."""

    async def scenario() -> None:
        faults = Faults("VELENO-7f3a")
        options = {"retry_base": timedelta(seconds=1), "max_failures": 3}
        async with own_processor(world, faults, **options) as processor:
            poison = [
                await stored(world, _mail(world.contact_email, f"VELENO-7f3a {n}", "x"))
                for n in range(3)
            ]
            normal = [
                await stored(world, _mail(world.contact_email, f"Richiesta {n}", f"REL-{n}"))
                for n in range(2)
            ]
            # One pass of three: the poisoned mails, first in line, wait for a later
            # attempt; the next pass takes the mail behind them at once.
            assert not await processor.process_pending(batch=3)
            assert await processor.process_pending(batch=3)
            assert [r.status for r in await rows(world, normal)] == ["TICKET_CREATED"] * 2
            waiting = await rows(world, poison)
            assert [(r.status, r.failures) for r in waiting] == [("RECEIVED", 1)] * 3
            assert all(r.next_attempt_at is not None and not r.claimed_by for r in waiting)
            await drain(processor, world, poison, batch=3)
        ended = await rows(world, poison)
        assert [r.status for r in ended] == ["FAILED"] * 3
        assert all(
            r.detail == "gave up after 3 failed attempts: INTERNAL: poisoned by the test"
            for r in ended
        ), [r.detail for r in ended]
        assert faults.refused == 9  # three attempts each, no more

    world.call(scenario)


def test_a_mail_that_cannot_be_parsed_in_time_becomes_a_ticket_from_its_headers(
    world: MailWorld,
) -> None:
    """A parse that overruns is killed with its worker; the mail still becomes a ticket,
    from its headers, saying it was not read whole; the mail behind it is not held."""
    # The bounds that keep such HTML from being parsed are off: only the time limit holds.
    unbounded = Limits(max_html_depth=10**9, max_html_chars=10**9)
    bomb = (
        f"From: {world.contact_email}\r\nTo: {SUPPORT}\r\nSubject: Pagina enorme\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@rossi.it>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n"
    ).encode() + b"<b><div>" * 48_000  # 16 s to parse unbounded

    async def scenario() -> None:
        workers = ParseWorkers(workers=1, timeout=1.0)
        async with own_processor(world, parser=workers, limits=unbounded) as processor:
            ids = [
                await stored(world, bomb),
                await stored(world, _mail(world.contact_email, "Dopo", "Il PC non parte.")),
            ]
            started = time.monotonic()
            await drain(processor, world, ids)
            took = time.monotonic() - started
            assert workers.killed == 1
        assert took < 10, took
        first, second = await rows(world, ids)
        assert (first.status, second.status) == ("TICKET_CREATED", "TICKET_CREATED")
        async with world.store() as session:
            ticket = await session.get(m.Ticket, first.ticket_id)
            assert ticket is not None
            assert ticket.subject == "Pagina enorme"
            assert ticket.description == (
                "(messaggio senza testo)\n\n"
                "Il messaggio non è stato letto per intero (not parsed within 1s)."
            )

    world.call(scenario)


# -- memory: bytes in flight -------------------------------------------------------------


def test_the_bytes_of_mail_in_flight_are_bounded(world: MailWorld) -> None:
    """Mail of four domains at once, about 140 KB each, against a 300 KB budget: two are
    worked on at a time, never three; a mail larger than the whole budget goes alone."""

    async def scenario() -> None:
        async with own_processor(world, max_bytes_in_flight=300_000) as processor:
            files = [("dump.bin", "application/octet-stream", os.urandom(100_000))]
            ids = [
                await stored(
                    world,
                    _with_files(world.contact_email, f"Dump {n}", "in allegato", files),
                    f"robot@dominio{n}.example",
                )
                for n in range(4)
            ]
            sizes = [len(r.raw) for r in await rows(world, ids)]
            assert await processor.process_pending()
            assert [r.status for r in await rows(world, ids)] == ["TICKET_CREATED"] * 4
            assert 2 * min(sizes) <= processor.budget.peak <= 300_000, processor.budget.peak
            big = await stored(
                world,
                _with_files(
                    world.contact_email,
                    "Dump grande",
                    "in allegato",
                    [("big.bin", "application/octet-stream", os.urandom(300_000))],
                ),
                "robot@grande.example",
            )
            assert await processor.process_pending()
            [row] = await rows(world, [big])
            assert row.status == "TICKET_CREATED"
            assert processor.budget.peak == len(row.raw) and processor.budget.used == 0

    world.call(scenario)


# -- replicas -------------------------------------------------------------------------------


def test_two_replicas_hand_each_mail_on_once(world: MailWorld) -> None:
    async def scenario() -> None:
        one, two = Faults(), Faults()
        async with (
            own_processor(world, one, replica="replica-1") as first,
            own_processor(world, two, replica="replica-2") as second,
        ):
            # Both pick up the same mail at the same moment: one of them works on it.
            files = [("foto.jpg", "image/jpeg", os.urandom(5000))]
            raced = await stored(
                world, _with_files(world.contact_email, "Schermo nero", "foto", files)
            )
            results = await asyncio.gather(first.process(raced), second.process(raced))
            assert sorted(results) == [False, True]
            [row] = await rows(world, [raced])
            assert row.status == "TICKET_CREATED" and not row.claimed_by
            async with world.store() as session:
                attachments = await session.scalar(
                    select(func.count(m.Attachment.id)).where(
                        m.Attachment.ticket_id == row.ticket_id
                    )
                )
            assert attachments == 1

            # Both drain the same backlog (three domains, two mails each).
            backlog = [
                await stored(
                    world,
                    _mail(world.contact_email, f"Richiesta {n}", f"REL-{n}"),
                    f"utente@dominio{n % 3}.example",
                )
                for n in range(6)
            ]
            for _ in range(20):
                await asyncio.gather(first.process_pending(), second.process_pending())
                if all(r.status != "RECEIVED" for r in await rows(world, backlog)):
                    break
            assert [r.status for r in await rows(world, backlog)] == ["TICKET_CREATED"] * 6
            handed_on = one.calls + two.calls
            assert handed_on == Counter({"CreateTicket": 7}), handed_on

            # A replica whose lease ran out cannot write over what another recorded.
            late = await stored(world, _mail(world.contact_email, "Rete lenta", "lenta"))
            assert await claims.claim(
                world.intake, InboundMessage, late, "replica-3", timedelta(seconds=0.3)
            )
            assert not await first.process(late)  # held by replica 3
            await asyncio.sleep(0.4)
            assert await first.process(late)  # its lease ran out: replica 1 takes it
            async with world.intake() as session:
                assert not await claims.write_back(
                    session, InboundMessage, late, "replica-3", status="FAILED"
                )
                await session.commit()
            [row] = await rows(world, [late])
            assert row.status == "TICKET_CREATED"

    world.call(scenario)


# -- files over the limit or refused ------------------------------------------------------


def test_a_file_over_the_limit_is_named_and_the_ticket_made_without_it(
    world: MailWorld,
) -> None:
    """The ticket (or comment) is made without the file, names it, and notify is asked to
    tell the sender which files were left out."""
    # A small per-file limit stands for the system's 20 MiB (the same path).
    limits = Limits(max_attachment_bytes=100_000)
    odd_type = "application/" + "x" * 150  # a content type the tickets service refuses
    files = [
        ("video.mp4", "video/mp4", os.urandom(150_000)),
        ("foto.jpg", "image/jpeg", os.urandom(1000)),
        ("strano.bin", odd_type, b"dati"),
    ]
    note = "Allegato non accettato: video.mp4 (146 KiB, oltre il limite di 98 KiB)"

    async def scenario() -> None:
        async with own_processor(world, limits=limits) as processor:
            new = await stored(
                world, _with_files(world.contact_email, "Filmato", "Vi mando i file.", files)
            )
            assert await processor.process(new)
            [row] = await rows(world, [new])
            assert row.status == "TICKET_CREATED", row.detail
            reply = await stored(
                world,
                _with_files(
                    world.contact_email, f"Re: [#{row.ticket_id}] Filmato", "Eccolo.", files[:1]
                ),
            )
            assert await processor.process(reply)
            [commented] = await rows(world, [reply])
            assert (commented.status, commented.ticket_id) == ("COMMENT_ADDED", row.ticket_id)
        async with world.store() as session:
            ticket = await session.get(m.Ticket, row.ticket_id)
            assert ticket is not None
            assert ticket.description == f"Vi mando i file.\n\n{note}"
            kept = await session.execute(
                select(m.Attachment.filename, m.Attachment.content_type)
                .where(m.Attachment.ticket_id == row.ticket_id)
                .order_by(m.Attachment.filename)
            )
            assert kept.all() == [
                ("foto.jpg", "image/jpeg"),
                ("strano.bin", "application/octet-stream"),
            ]
        [comment] = world_comments = [c for c in await _comments(world, row.ticket_id)]
        assert comment.body == f"Eccolo.\n\n{note}", world_comments
        # The sender is told twice, once for each mail, which file was left out and why.
        told = [
            e
            for e in await mail_events(world.nats_url, "attachments_refused")
            if e["ticket_id"] == row.ticket_id
        ]
        assert [e["files"] for e in told] == [[note.removeprefix("Allegato non accettato: ")]] * 2
        assert {e["sender"] for e in told} == {world.contact_email}
        assert len({e["event_id"] for e in told}) == 2

    world.call(scenario)


async def _comments(world: MailWorld, ticket_id: int) -> list[m.Comment]:
    async with world.store() as session:
        return list(
            await session.scalars(
                select(m.Comment)
                .where(m.Comment.ticket_id == ticket_id)
                .order_by(m.Comment.created_at)
            )
        )


# -- who may write to which ticket by mail --------------------------------------------------


def test_mail_joins_only_a_ticket_its_sender_may_see(world: MailWorld) -> None:
    """As in the portal: own tickets, all of them for a REFERENT, the department's when
    the organisation shares them; any other tag opens a ticket of the sender's own."""
    ticket = world.ticket_id  # Mario's, "Stampante bloccata"
    colleague = world.call(
        lambda: world.directory.AddContact(
            dpb.AddContactRequest(
                organization_id=world.org_id,
                name="Luca Bianchi",
                email="luca.bianchi@rossi.it",
                department="Magazzino",
            ),
            metadata=ADMIN,
        )
    )
    referent = world.call(
        lambda: world.directory.AddContact(
            dpb.AddContactRequest(
                organization_id=world.org_id,
                name="Anna Verdi",
                email="anna.verdi@rossi.it",
                role=pb.CONTACT_ROLE_REFERENT,
            ),
            metadata=ADMIN,
        )
    )
    before = world.counts()
    # A colleague quoting Mario's ticket: a ticket of Luca's own, Mario's untouched.
    quoting = world.ingest(_mail(colleague.email, f"Re: [#{ticket}] Stampante", "Anche io."))
    assert quoting.status == "TICKET_CREATED", quoting.detail
    assert quoting.ticket_id != ticket
    assert world.comments(ticket) == []
    # The referent sees the whole organisation: the mail is a comment on it.
    joined = world.ingest(_mail(referent.email, f"Re: [#{ticket}] Stampante", "Seguo io."))
    assert (joined.status, joined.ticket_id) == ("COMMENT_ADDED", ticket)

    async def share_department(department: str) -> None:
        async with world.store() as session:
            org = await session.get(m.Organization, world.org_id)
            mario = (
                await session.scalars(
                    select(m.Contact).where(m.Contact.email == world.contact_email)
                )
            ).one()
            assert org is not None
            org.department_sees_tickets = True
            mario.department = department
            await session.commit()

    world.call(lambda: share_department("Magazzino"))
    shared = world.ingest(_mail(colleague.email, f"Re: [#{ticket}] Stampante", "Stesso guasto."))
    assert (shared.status, shared.ticket_id) == ("COMMENT_ADDED", ticket)

    # Mario's closed ticket, from another department now: no follow-up that names it.
    world.call(lambda: share_department("Amministrazione"))
    closed = world.ingest(_mail(world.contact_email, "Fattura riservata", "Il bilancio."))
    agent = tpb.Actor(kind=pb.AUTHOR_KIND_AGENT, id=world.agent_id)
    world.call(
        lambda: world.tickets.AssignTicket(
            tpb.AssignTicketRequest(ticket_id=closed.ticket_id, assignee_id=world.agent_id),
            metadata=ADMIN,
        )
    )
    world.call(
        lambda: world.tickets.ChangeStatus(
            tpb.ChangeStatusRequest(
                ticket_id=closed.ticket_id,
                status=pb.TICKET_STATUS_CLOSED,
                actor=agent,
                hours_spent=0.5,
            ),
            metadata=ADMIN,
        )
    )
    guessed = world.ingest(_mail(colleague.email, f"[#{closed.ticket_id}] domanda", "Info?"))
    assert guessed.status == "TICKET_CREATED", guessed.detail

    async def subject_of(ticket_id: int) -> tuple[str, int, int]:
        async with world.store() as session:
            row = await session.get(m.Ticket, ticket_id)
            assert row is not None
            return row.subject, row.requester_id, row.follow_up_of or 0

    assert world.call(lambda: subject_of(guessed.ticket_id)) == (
        f"[#{closed.ticket_id}] domanda",
        colleague.id,
        0,
    )
    after = world.counts()
    assert after.tickets == before.tickets + 3  # Luca's two, Mario's closed one
    assert after.comments == before.comments + 2


# -- delivery reports -----------------------------------------------------------------------


def test_only_a_report_with_an_empty_return_path_is_a_bounce(world: MailWorld) -> None:
    corpus = Path(__file__).resolve().parents[1] / "data" / "email" / "dsn_bounce.eml"

    def report() -> bytes:
        return corpus.read_bytes().replace(
            b"<20261123090500.1A2B3C@mx.rossi.it>", f"<{uuid.uuid4().hex}@mx.rossi.it>".encode()
        )

    forged = world.ingest(report(), mail_from="postmaster@rossi.it")
    assert forged.status == "IGNORED", forged
    assert "return path" in forged.detail
    real = world.ingest(report(), mail_from="<>")  # how aiosmtpd reports MAIL FROM:<>
    assert real.status == "BOUNCE", real
    assert world.ingest(report(), mail_from="").status == "BOUNCE"  # SubmitEmail's "<>"
    bounces = world.call(lambda: mail_events(world.nats_url, "bounce"))
    assert len(bounces) == 2  # the forged report published nothing


# -- order: a reply waits only for the mail it answers -------------------------------------


def _mail_with_id(
    sender: str, subject: str, body: str, message_id: str = "", **headers: str
) -> tuple[bytes, str]:
    """A mail and its Message-ID (a new one unless given)."""
    message_id = message_id or f"<{uuid.uuid4().hex}@rossi.it>"
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes(), message_id


async def comment_bodies(world: MailWorld, ticket_id: int) -> list[str]:
    """``MailWorld.comments`` from inside the world's loop."""
    async with world.store() as session:
        found = await session.scalars(
            select(m.Comment.body)
            .where(m.Comment.ticket_id == ticket_id)
            .order_by(m.Comment.created_at, m.Comment.id)
        )
        return list(found)


class Together(Faults):
    """Holds each CreateTicket until ``width`` of them are in flight at once (or
    ``patience`` seconds went by): a processor that made them one after another would
    wait that long for each."""

    def __init__(self, width: int, patience: float = 10.0) -> None:
        super().__init__()
        self.width = width
        self.patience = patience
        self.in_flight = 0
        self.widest = 0
        self.arrived = asyncio.Event()

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        if not str(method).endswith("/CreateTicket"):
            return await super().intercept_unary_unary(continuation, details, request)
        self.in_flight += 1
        self.widest = max(self.widest, self.in_flight)
        if self.in_flight >= self.width:
            self.arrived.set()
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), self.patience)
            return await super().intercept_unary_unary(continuation, details, request)
        finally:
            self.in_flight -= 1


def test_a_reply_right_after_its_original_comments_on_it_and_new_mail_goes_at_once(
    world: MailWorld,
) -> None:
    """All stored before one pass: the reply (In-Reply-To) and the reply to the reply
    (References) wait for the original and comment on the ticket it opens; the same
    sender's two new requests are made at the same time, as two tickets; two mails that
    name each other (forged) do not wait for each other forever (the first of them, a
    reply by its headers, goes after its sender's mail before it)."""
    sender = world.contact_email

    async def scenario() -> None:
        together = Together(width=2)
        async with own_processor(world, together) as processor:
            original, original_mid = _mail_with_id(sender, "Scanner fermo", "Non scansiona.")
            reply, reply_mid = _mail_with_id(
                sender,
                "Re: Scanner fermo",
                "Dimenticavo: è il modello X.",
                In_Reply_To=original_mid,
            )
            again, _ = _mail_with_id(
                sender,
                "Re: Scanner fermo",
                "Ora fa anche rumore.",
                In_Reply_To=reply_mid,
                References=f"{original_mid} {reply_mid}",
            )
            other, _ = _mail_with_id(sender, "Monitor sfarfalla", "Lo schermo lampeggia.")
            first_mid, second_mid = (f"<{uuid.uuid4().hex}@rossi.it>" for _ in range(2))
            first, _ = _mail_with_id(
                sender, "Rete lenta", "Lentissima.", first_mid, In_Reply_To=second_mid
            )
            second, _ = _mail_with_id(
                sender, "Posta lenta", "Lentissima.", second_mid, In_Reply_To=first_mid
            )
            ids = [await stored(world, raw) for raw in (original, reply, again, other, first)]
            ids.append(await stored(world, second))
            assert await processor.process_pending()
            made = await rows(world, ids)
            statuses = [r.status for r in made]
            assert statuses == [
                *("TICKET_CREATED", "COMMENT_ADDED", "COMMENT_ADDED"),
                *("TICKET_CREATED", "TICKET_CREATED", "COMMENT_ADDED"),
            ], [(r.status, r.detail) for r in made]
            opened = made[0].ticket_id
            assert made[1].ticket_id == made[2].ticket_id == opened
            assert made[3].ticket_id not in (0, opened)
            assert made[5].ticket_id == made[4].ticket_id
            # The two new requests were handed on together, not one after another.
            assert together.widest == 2, together.widest
            assert together.calls == Counter({"CreateTicket": 3, "AddComment": 3})
        assert await comment_bodies(world, opened) == [
            "Dimenticavo: è il modello X.",
            "Ora fa anche rumore.",
        ]

    world.call(scenario)


class SlowComment(Faults):
    """Holds the AddComment whose request holds ``slow`` for ``seconds``: a processor that
    handed on the next reply alongside it would record that one first."""

    def __init__(self, slow: str, seconds: float = 1.5) -> None:
        super().__init__()
        self.slow = slow
        self.seconds = seconds

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        if str(method).endswith("/AddComment") and self.slow in str(request):
            await asyncio.sleep(self.seconds)
        return await super().intercept_unary_unary(continuation, details, request)


def test_one_persons_quick_replies_are_comments_in_the_order_they_came(
    world: MailWorld,
) -> None:
    """Two replies of one customer stored before one pass, the first threaded by its
    headers, the second only by the ticket in its subject: they are the ticket's comments in
    the order they came, though the first takes longer to hand on."""
    sender = world.contact_email

    async def scenario() -> None:
        async with own_processor(world, SlowComment("Dimenticavo")) as processor:
            original, original_mid = _mail_with_id(sender, "Scanner fermo", "Non scansiona.")
            opened_id = await stored(world, original)
            assert await processor.process_pending()
            [opened] = await rows(world, [opened_id])
            ticket = opened.ticket_id
            first, _ = _mail_with_id(
                sender,
                "Re: Scanner fermo",
                "Dimenticavo: è il modello X.",
                In_Reply_To=original_mid,
            )
            second, _ = _mail_with_id(sender, f"Re: [#{ticket}] Scanner fermo", "Ora fa rumore.")
            ids = [await stored(world, raw) for raw in (first, second)]
            assert await processor.process_pending()
            made = await rows(world, ids)
            assert [(r.status, r.ticket_id) for r in made] == [("COMMENT_ADDED", ticket)] * 2
        assert await comment_bodies(world, ticket) == [
            "Dimenticavo: è il modello X.",
            "Ora fa rumore.",
        ]

    world.call(scenario)


def test_a_reply_waits_for_an_original_that_failed_or_another_replica_holds(
    world: MailWorld,
) -> None:
    """The original failed once (INTERNAL): its reply is not started, not even claimed,
    while the mail behind it goes on; once the original's ticket is made on its next
    attempt, the reply comments on it. The same while another replica holds the original."""
    sender = world.contact_email

    async def scenario() -> None:
        faults = Faults("GUASTO-91c2")
        async with own_processor(world, faults, retry_base=timedelta(seconds=1)) as processor:
            original, original_mid = _mail_with_id(sender, "Server giù", "GUASTO-91c2")
            reply, _ = _mail_with_id(
                sender, "Re: Server giù", "È ancora giù.", In_Reply_To=original_mid
            )
            other, _ = _mail_with_id(sender, "Toner", "Finito il toner.")
            ids = [await stored(world, raw) for raw in (original, reply, other)]
            assert await processor.process_pending()
            waiting = await rows(world, ids)
            assert [(r.status, r.failures, r.attempts) for r in waiting] == [
                ("RECEIVED", 1, 1),
                ("RECEIVED", 0, 0),
                ("TICKET_CREATED", 0, 0),
            ]
            assert not waiting[1].claimed_by
            # Passes before the original is due again leave the reply alone.
            assert not await processor.process_pending()
            faults.marker = ""  # the tickets service is well again
            await drain(processor, world, ids)
            done = await rows(world, ids)
            expected = ["TICKET_CREATED", "COMMENT_ADDED", "TICKET_CREATED"]
            assert [r.status for r in done] == expected
            assert done[1].ticket_id == done[0].ticket_id

            # Another replica holds the original: its reply waits for that replica.
            original, original_mid = _mail_with_id(sender, "VPN", "La VPN non si collega.")
            reply, _ = _mail_with_id(sender, "Re: VPN", "Ancora niente.", In_Reply_To=original_mid)
            ids = [await stored(world, raw) for raw in (original, reply)]
            assert await claims.claim(
                world.intake, InboundMessage, ids[0], "replica-9", timedelta(seconds=1)
            )
            assert not await processor.process_pending()
            assert [r.status for r in await rows(world, ids)] == ["RECEIVED", "RECEIVED"]
            await asyncio.sleep(1.1)  # replica 9 died: its lease runs out
            await drain(processor, world, ids)
            done = await rows(world, ids)
            assert [r.status for r in done] == ["TICKET_CREATED", "COMMENT_ADDED"]
            assert done[1].ticket_id == done[0].ticket_id

    world.call(scenario)


def test_the_running_processor_threads_a_reply_and_stops_cleanly(world: MailWorld) -> None:
    """``run_forever``: mail is started as it arrives, a reply still waits for its
    original; a duplicate of the original (the same Message-ID sent again) changes
    nothing."""
    sender = world.contact_email

    async def scenario() -> None:
        async with own_processor(world) as processor:
            pump = asyncio.create_task(processor.run_forever(idle=0.5))
            try:
                original, original_mid = _mail_with_id(sender, "Badge", "Il badge non apre.")
                reply, _ = _mail_with_id(
                    sender, "Re: Badge", "Nemmeno il secondo.", In_Reply_To=original_mid
                )
                ids = [await stored(world, original), await stored(world, reply)]
                assert (await store_message(world.intake, original, sender, [SUPPORT]))[1] is False
                processor.wake.set()
                deadline = time.monotonic() + 60
                while any(r.status == "RECEIVED" for r in await rows(world, ids)):
                    assert time.monotonic() < deadline, "still waiting"
                    await asyncio.sleep(0.1)
            finally:
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump
        done = await rows(world, ids)
        assert [r.status for r in done] == ["TICKET_CREATED", "COMMENT_ADDED"]
        assert done[1].ticket_id == done[0].ticket_id
        assert await comment_bodies(world, done[0].ticket_id) == ["Nemmeno il secondo."]

    world.call(scenario)
