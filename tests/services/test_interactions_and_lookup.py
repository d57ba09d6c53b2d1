"""Seed 000's answers by phone and remote session, and the front desk's lookup of callers,
over a real in-process gRPC server (tickets, directory, intake) with the ticket workflow on
the Temporal dev server and notify mailing a loopback SMTP server."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from nats.js.api import DeliverPolicy
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import directory_pb2_grpc as dgrpc
from helpdesk.v1 import intake_pb2 as ipb
from helpdesk.v1 import intake_pb2_grpc as igrpc
from helpdesk.v1 import tickets_pb2 as tpb
from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.common import db
from services.common.access import Principal, Role
from services.common.auth import bearer_metadata
from services.common.embedded import free_port
from services.common.grpc_server import ServiceServer
from services.common.settings import Settings, async_database_url
from services.common.tokens import TokenSigner
from services.intake.app import MIGRATIONS as INTAKE_MIGRATIONS
from services.intake.servicer import IntakeServicer
from services.notify.app import NotifyApp
from services.notify.notifier import RetryPolicy
from services.tickets import models as m
from services.tickets.directory import DirectoryServicer
from services.tickets.servicer import TicketServicer
from tests.services.notify_fixtures import CollectingHandler, Relay, body_of, make_settings
from tests.support import SIGNING_KEY, TicketsStack, eventually, tickets_stack

pytestmark = [pytest.mark.db, pytest.mark.timeout(120)]

ADMIN = "interactions-admin-token"
SERVICE = "interactions-service-token"
SIGNER = TokenSigner(SIGNING_KEY)


@dataclass
class Desk:
    tickets: tgrpc.TicketServiceStub
    directory: dgrpc.DirectoryServiceStub
    intake: igrpc.IntakeServiceStub
    stack: TicketsStack
    mail: CollectingHandler

    def md(self, role: Role = Role.AGENT) -> Any:
        if role in (Role.USER, Role.REFERENT):
            who = Principal(
                role=role,
                kind="CONTACT",
                id=self.stack.contact_id,
                organization_id=self.stack.org_id,
            )
        else:
            who = Principal(role=role, kind="AGENT", id=self.stack.agent_id)
        return bearer_metadata(SIGNER.access_token(who))

    def mails_to(self, address: str) -> list[str]:
        """The subjects of the emails received for ``address``."""
        return [str(r.message["Subject"]) for r in self.mail.received if address in r.rcpt_tos]


@pytest.fixture
def mailbox(relay: Relay) -> tuple[CollectingHandler, str]:
    """The loopback relay (``tests/services/conftest.py``): what it keeps, its address."""
    return relay.handler, relay.address


@pytest.fixture
async def desk(
    tmp_path: Path,
    temporal_client: Client,
    database_url: str,
    nats_url: str,
    mailbox: tuple[CollectingHandler, str],
) -> AsyncIterator[Desk]:
    settings = dataclasses.replace(
        Settings.from_env(), admin_token=ADMIN, service_token=SERVICE, signing_key=SIGNING_KEY
    )
    url = async_database_url(database_url)
    await db.upgrade(INTAKE_MIGRATIONS, url, "alembic_version_intake")
    engine = db.make_engine(url)
    notify = NotifyApp(
        dataclasses.replace(
            make_settings(
                tmp_path / "notify",
                database_url if database_url.startswith("postgres") else "",
                nats_url,
                mailbox[1],
            ),
            signing_key=SIGNING_KEY,
        ),
        durable=f"notify-interactions-{uuid.uuid4().hex[:8]}",
        deliver_policy=DeliverPolicy.NEW,
        retry=RetryPolicy(base_delay=0.1, max_delay=0.5),
    )
    await notify.start()
    port = free_port()
    loop: list[grpc.aio.Channel] = []
    async with tickets_stack(temporal_client, database_url, nats_url) as stack:

        def register(srv: grpc.aio.Server) -> None:
            tgrpc.add_TicketServiceServicer_to_server(
                TicketServicer(stack.sessions, temporal_client, stack.creator, SIGNER), srv
            )
            dgrpc.add_DirectoryServiceServicer_to_server(
                DirectoryServicer(stack.sessions, stack.credentials), srv
            )
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
            loop.append(channel)
            igrpc.add_IntakeServiceServicer_to_server(
                IntakeServicer(
                    db.make_sessionmaker(engine),
                    tgrpc.TicketServiceStub(channel),  # type: ignore[arg-type]
                    dgrpc.DirectoryServiceStub(channel),  # type: ignore[arg-type]
                    SERVICE,
                ),
                srv,
            )

        server = ServiceServer(settings, f"127.0.0.1:{port}", [], register)
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        try:
            yield Desk(
                tgrpc.TicketServiceStub(channel),  # type: ignore[arg-type]
                dgrpc.DirectoryServiceStub(channel),  # type: ignore[arg-type]
                igrpc.IntakeServiceStub(channel),  # type: ignore[arg-type]
                stack,
                mailbox[0],
            )
        finally:
            await channel.close(None)
            for c in loop:
                await c.close(None)
            await server.stop(1)
            await notify.stop()
    await engine.dispose()


async def _code(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code(), err.value.details() or ""


async def _contact(
    stack: TicketsStack, name: str, phone: str = "", org_id: int = 0, email: str = ""
) -> m.Contact:
    async with stack.sessions() as session:
        if not org_id:
            org = m.Organization(
                name=f"Bianchi Spa {uuid.uuid4().hex[:6]}",
                name_key=uuid.uuid4().hex,
                email_domains=[],
                created_at=datetime.now(UTC),
            )
            session.add(org)
            await session.flush()
            org_id = org.id
        address = email or f"{uuid.uuid4().hex[:6]}@bianchi.it"
        contact = m.Contact(
            organization_id=org_id,
            name=name,
            email=address,
            email_key=address.lower(),
            phone=phone,
            role="USER",
            locale="it",
            created_at=datetime.now(UTC),
        )
        session.add(contact)
        await session.commit()
        return contact


# -- phone calls and remote sessions on a ticket ---------------------------------------------


def _call(ticket_id: int, key: str, **fields: Any) -> tpb.RecordInteractionRequest:
    base: dict[str, Any] = {
        "ticket_id": ticket_id,
        "request_id": key,
        "type": pb.INTERACTION_TYPE_PHONE_CALL,
        "direction": pb.CALL_DIRECTION_OUTBOUND,
        "duration_minutes": 15,
        "summary": "Spiegata la procedura di chiusura di fine mese.",
    }
    base.update(fields)
    return tpb.RecordInteractionRequest(**base)


async def test_a_call_is_first_feedback_logged_time_and_mailed_only_when_asked(
    desk: Desk,
) -> None:
    stack = desk.stack
    ticket_id = await stack.new_ticket("La chiusura di fine mese non quadra")
    requester = await desk.tickets.GetTicket(tpb.GetTicketRequest(id=ticket_id), metadata=desk.md())
    assert not requester.milestones.HasField("first_feedback_at")

    # A public call, not mailed: still the first feedback, its 15 minutes logged.
    call = _call(ticket_id, "call-1", contact_id=stack.contact_id)
    first = await desk.tickets.RecordInteraction(call, metadata=desk.md())
    assert first.ticket.milestones.HasField("first_feedback_at")
    assert first.ticket.hours_spent == pytest.approx(0.25)
    assert first.comment.body == "Spiegata la procedura di chiusura di fine mese."
    assert first.comment.visibility == pb.COMMENT_VISIBILITY_PUBLIC
    shown = first.comment.interaction
    assert shown.type == pb.INTERACTION_TYPE_PHONE_CALL
    assert shown.direction == pb.CALL_DIRECTION_OUTBOUND
    assert shown.with_whom == "Mario Rossi"  # the contact, by name
    assert (shown.duration_minutes, shown.contact_id, shown.notify_customer) == (
        15,
        stack.contact_id,
        False,
    )
    # A retry records nothing more.
    again = await desk.tickets.RecordInteraction(call, metadata=desk.md())
    assert again.comment.id == first.comment.id
    assert again.ticket.hours_spent == pytest.approx(0.25)

    # A remote session whose summary the agent emails to the customer.
    session = await desk.tickets.RecordInteraction(
        _call(
            ticket_id,
            "session-1",
            type=pb.INTERACTION_TYPE_REMOTE_SESSION,
            direction=pb.CALL_DIRECTION_UNSPECIFIED,
            with_whom="Ufficio amministrazione",
            duration_minutes=30,
            summary="Corretto il piano dei conti sulla vostra installazione.",
            notify_customer=True,
        ),
        metadata=desk.md(),
    )
    assert session.ticket.hours_spent == pytest.approx(0.75)

    # The customer reads both in the conversation, with type, direction and duration.
    comments = await desk.tickets.ListComments(
        tpb.ListCommentsRequest(ticket_id=ticket_id), metadata=desk.md(Role.USER)
    )
    kinds = [(c.interaction.type, c.interaction.duration_minutes) for c in comments.comments]
    assert kinds == [
        (pb.INTERACTION_TYPE_PHONE_CALL, 15),
        (pb.INTERACTION_TYPE_REMOTE_SESSION, 30),
    ]
    history = await desk.tickets.GetTicketHistory(
        tpb.GetTicketHistoryRequest(ticket_id=ticket_id), metadata=desk.md(Role.USER)
    )
    details = [e.detail for e in history.events if e.type == "comment_added"]
    assert details == [
        "phone call (outbound) with Mario Rossi, 15 min",
        "remote session with Ufficio amministrazione, 30 min",
    ]
    agents_view = await desk.tickets.GetTicketHistory(
        tpb.GetTicketHistoryRequest(ticket_id=ticket_id), metadata=desk.md()
    )
    logged = [e.detail for e in agents_view.events if e.type == "time_logged"]
    assert logged == [
        "0.25 h: phone call (outbound) with Mario Rossi, 15 min",
        "0.5 h: remote session with Ufficio amministrazione, 30 min",
    ]

    # Only the session's summary reaches the requester's mailbox, no copy of the call.
    address = requester.requester_email.lower()
    await eventually(lambda: any("Riepilogo" in s for s in desk.mails_to(address)), timeout=30)
    await asyncio.sleep(1)  # the call's event came first: nothing else may follow
    summaries = [s for s in desk.mails_to(address) if "Riepilogo" in s or "risposta" in s]
    assert summaries == [
        f"[#{ticket_id}] Riepilogo della sessione remota: La chiusura di fine mese non quadra"
    ]
    [mail] = [r.message for r in desk.mail.received if "Riepilogo" in str(r.message["Subject"])]
    body = body_of(mail)
    assert "Corretto il piano dei conti sulla vostra installazione." in body
    assert "durata 30 minuti" in body


async def test_bad_interactions_are_refused_and_change_nothing(desk: Desk) -> None:
    stack = desk.stack
    ticket_id = await stack.new_ticket()
    other = await _contact(stack, "Paolo Verdi")
    refusals = [
        (_call(ticket_id, "a", direction=pb.CALL_DIRECTION_UNSPECIFIED), "direction"),
        (_call(ticket_id, "b", duration_minutes=0), "duration_minutes"),
        (_call(ticket_id, "c", summary=" "), "summary"),
        (_call(ticket_id, "d"), "contact_id"),  # with nobody
        (
            _call(
                ticket_id,
                "e",
                with_whom="x",
                visibility=pb.COMMENT_VISIBILITY_INTERNAL,
                notify_customer=True,
            ),
            "notify_customer",
        ),
    ]
    for request, field in refusals:
        code, details = await _code(desk.tickets.RecordInteraction(request, metadata=desk.md()))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(field), details
    code, _ = await _code(
        desk.tickets.RecordInteraction(
            _call(ticket_id, "f", contact_id=other.id), metadata=desk.md()
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED  # another organisation's contact
    code, _ = await _code(
        desk.tickets.RecordInteraction(_call(10**9, "g", with_whom="x"), metadata=desk.md())
    )
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = await _code(
        desk.tickets.RecordInteraction(
            _call(ticket_id, "h", with_whom="x"), metadata=desk.md(Role.USER)
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED  # customers never record them
    ticket = await desk.tickets.GetTicket(tpb.GetTicketRequest(id=ticket_id), metadata=desk.md())
    assert ticket.hours_spent == 0 and not ticket.milestones.HasField("first_feedback_at")
    comments = await desk.tickets.ListComments(
        tpb.ListCommentsRequest(ticket_id=ticket_id, include_internal=True), metadata=desk.md()
    )
    assert list(comments.comments) == []


# -- the front desk's lookup ---------------------------------------------------------------


async def test_front_desk_finds_callers_and_a_known_caller_needs_only_the_nature(
    desk: Desk,
) -> None:
    stack = desk.stack
    rossi = await _contact(stack, "Mario Rossi", "+39 0932 653167", org_id=stack.org_id)
    tag = uuid.uuid4().hex[:6]
    bianchi = await _contact(
        stack, f"Maria Bianchi {tag}", "0932-686740", email=f"maria.{tag}@bianchi.it"
    )
    front = desk.md(Role.FRONT_DESK)

    # By phone, however it is written: the organisation comes with it.
    for written in ("0932653167", "0039 0932 653 167", "+390932.653167"):
        found = await desk.directory.FindContacts(
            dpb.FindContactsRequest(phone=written), metadata=front
        )
        assert [(c.id, c.organization_id) for c in found.contacts] == [(rossi.id, stack.org_id)]
        assert found.contacts[0].organization_name.startswith("Rossi Srl")
    # By name or email, case-insensitive and partial, across organisations, paged.
    found = await desk.directory.FindContacts(
        dpb.FindContactsRequest(name=f"BIANCHI {tag}"), metadata=front
    )
    assert [c.id for c in found.contacts] == [bianchi.id]
    assert found.contacts[0].organization_name.startswith("Bianchi Spa")
    found = await desk.directory.FindContacts(
        dpb.FindContactsRequest(email=f"A.{tag.upper()}@BIANCHI"), metadata=front
    )
    assert [c.id for c in found.contacts] == [bianchi.id]
    first = await desk.directory.FindContacts(
        dpb.FindContactsRequest(name="mari", page_size=1), metadata=front
    )
    rest = await desk.directory.FindContacts(
        dpb.FindContactsRequest(name="mari", page_size=100, page_token=first.next_page_token),
        metadata=front,
    )
    named = [c.id for c in [*first.contacts, *rest.contacts]]
    assert {rossi.id, bianchi.id} <= set(named) and len(named) == len(set(named))
    for request, field in (
        (dpb.FindContactsRequest(), "phone"),
        (dpb.FindContactsRequest(phone="12 34"), "phone"),
        (dpb.FindContactsRequest(name="x", page_size=1000), "page_size"),
    ):
        code, details = await _code(desk.directory.FindContacts(request, metadata=front))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(field), details
    code, _ = await _code(
        desk.directory.FindContacts(
            dpb.FindContactsRequest(name="mari"), metadata=desk.md(Role.USER)
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED

    # The caller is known by the number: the nature of the request is all that is asked.
    by_phone = await desk.intake.LogPhoneCall(
        ipb.LogPhoneCallRequest(caller_phone="0932 653167", nature="Stampa bloccata"),
        metadata=front,
    )
    assert by_phone.created and by_phone.ticket.requester_id == rossi.id
    assert by_phone.ticket.channel == pb.CHANNEL_PHONE
    # Known by ID, calling from a new number: the number is kept on the contact.
    by_id = await desk.intake.LogPhoneCall(
        ipb.LogPhoneCallRequest(
            contact_id=bianchi.id, caller_phone="333 1234567", nature="Licenza scaduta"
        ),
        metadata=front,
    )
    assert by_id.ticket.requester_id == bianchi.id
    contact = await desk.directory.GetContact(dpb.GetContactRequest(id=bianchi.id), metadata=front)
    assert contact.phone == "333 1234567"
    found = await desk.directory.FindContacts(
        dpb.FindContactsRequest(phone="+39 333 123 4567"), metadata=front
    )
    assert [c.id for c in found.contacts] == [bianchi.id]
    # Unknown callers still give who they are; a wrong organisation is named.
    code, details = await _code(
        desk.intake.LogPhoneCall(
            ipb.LogPhoneCallRequest(caller_phone="0932 000000", nature="Chi sono?"),
            metadata=front,
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("organization_id")
    code, details = await _code(
        desk.intake.LogPhoneCall(
            ipb.LogPhoneCallRequest(
                contact_id=bianchi.id, organization_id=stack.org_id, nature="Altro"
            ),
            metadata=front,
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("contact_id")
    code, _ = await _code(
        desk.intake.LogPhoneCall(
            ipb.LogPhoneCallRequest(contact_id=10**9, nature="Altro"), metadata=front
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND
