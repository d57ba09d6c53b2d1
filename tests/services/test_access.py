"""Who may do what, on a running tickets + intake server: the whole access table walked for
every role, logins with lock-out, and tenant isolation (hypothesis state machine)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import symbol_database
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import dev_escalation_pb2, intake_pb2, notify_pb2, tickets_pb2
from helpdesk.v1 import dev_escalation_pb2_grpc as egrpc
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import directory_pb2_grpc as dgrpc
from helpdesk.v1 import intake_pb2_grpc as igrpc
from helpdesk.v1 import tickets_pb2 as tpb
from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.common.access import ACCESS, PUBLIC, Principal, Role
from services.common.auth import bearer_metadata
from services.common.grpc_server import ServiceServer
from services.common.settings import Settings
from services.common.tokens import TokenSigner
from services.intake.app import MIGRATIONS as INTAKE_MIGRATIONS
from services.intake.servicer import IntakeServicer
from services.tickets.directory import DirectoryServicer
from services.tickets.servicer import TicketServicer
from tests.support import SIGNING_KEY, TicketsStack, dev_escalation_stack, tickets_stack

pytestmark = [pytest.mark.db]

ADMIN = "access-admin-token"
SERVICE = "access-service-token"
SIGNER = TokenSigner(SIGNING_KEY)
ALL_SERVICES = (tickets_pb2, dpb, intake_pb2, notify_pb2, dev_escalation_pb2)


@dataclass
class Server:
    channel: grpc.aio.Channel
    stack: TicketsStack

    def stubs(self) -> tuple[tgrpc.TicketServiceStub, dgrpc.DirectoryServiceStub]:
        return (
            tgrpc.TicketServiceStub(self.channel),  # type: ignore[arg-type]
            dgrpc.DirectoryServiceStub(self.channel),
        )  # type: ignore[arg-type]


@pytest.fixture
async def server(
    temporal_client: Client, database_url: str, nats_url: str
) -> AsyncIterator[Server]:
    from services.common import db
    from services.common.settings import async_database_url

    settings = dataclasses.replace(
        Settings.from_env(), admin_token=ADMIN, service_token=SERVICE, signing_key=SIGNING_KEY
    )
    url = async_database_url(database_url)
    await db.upgrade(INTAKE_MIGRATIONS, url, "alembic_version_intake")
    engine = db.make_engine(url)
    from services.common.embedded import free_port

    port_holder = [free_port()]
    async with (
        tickets_stack(temporal_client, database_url, nats_url) as stack,
        dev_escalation_stack(
            temporal_client, database_url, nats_url, f"127.0.0.1:{port_holder[0]}", SERVICE
        ) as dev,
    ):
        loop_channel: list[grpc.aio.Channel] = []

        def register(srv: grpc.aio.Server) -> None:
            tgrpc.add_TicketServiceServicer_to_server(
                TicketServicer(stack.sessions, temporal_client, stack.creator), srv
            )
            dgrpc.add_DirectoryServiceServicer_to_server(
                DirectoryServicer(stack.sessions, stack.credentials), srv
            )
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{port_holder[0]}")
            loop_channel.append(channel)
            igrpc.add_IntakeServiceServicer_to_server(
                IntakeServicer(
                    db.make_sessionmaker(engine),
                    tgrpc.TicketServiceStub(channel),  # type: ignore[arg-type]
                    dgrpc.DirectoryServiceStub(channel),  # type: ignore[arg-type]
                    SERVICE,
                ),
                srv,
            )
            egrpc.add_DevEscalationServiceServicer_to_server(dev.servicer, srv)

        srv = ServiceServer(settings, f"127.0.0.1:{port_holder[0]}", [], register)
        await srv.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}")
        try:
            yield Server(channel, stack)
        finally:
            await channel.close(None)
            for c in loop_channel:
                await c.close(None)
            await srv.stop(1)
    await engine.dispose()


def token_for(role: Role, stack: TicketsStack) -> str:
    if role is Role.ADMIN:
        return ADMIN
    if role is Role.SERVICE:
        return SERVICE
    if role in (Role.USER, Role.REFERENT):
        who = Principal(
            role=role, kind="CONTACT", id=stack.contact_id, organization_id=stack.org_id
        )
    else:
        who = Principal(role=role, kind="AGENT", id=stack.agent_id)
    return SIGNER.access_token(who)


def _methods() -> list[tuple[str, Any, Any]]:
    """(full method name, request class, response class) of every RPC in the contracts."""
    return [(name, req, resp) for name, req, resp, _ in _described_methods()]


def _described_methods() -> list[tuple[str, Any, Any, bool]]:
    """... and whether the server streams its answer."""
    found = []
    db = symbol_database.Default()
    for module in ALL_SERVICES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                found.append(
                    (
                        f"/{service.full_name}/{method.name}",
                        db.GetSymbol(method.input_type.full_name),
                        db.GetSymbol(method.output_type.full_name),
                        method.server_streaming,
                    )
                )
    return found


async def _status(call: Any, request: Any, metadata: Any, streaming: bool) -> grpc.StatusCode:
    """The status of one call, a server-streaming one read to its end."""
    try:
        if streaming:
            async for _ in call(request, metadata=metadata, timeout=30):
                pass
        else:
            await call(request, metadata=metadata, timeout=30)
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def test_every_rpc_of_the_contracts_has_a_row() -> None:
    names = {name for name, _, _ in _methods()}
    assert names == set(ACCESS), names ^ set(ACCESS)


async def test_the_whole_access_table(server: Server) -> None:
    """For every RPC and every role: denied exactly where the table says; no token is
    UNAUTHENTICATED except for the public rows (logging in)."""
    failures = []
    for method, request_cls, response_cls, streaming in _described_methods():
        make = server.channel.unary_stream if streaming else server.channel.unary_unary
        call = make(
            method,
            request_serializer=request_cls.SerializeToString,
            response_deserializer=response_cls.FromString,
        )
        for role in [*Role, None]:
            metadata = bearer_metadata(token_for(role, server.stack)) if role else ()
            code = await _status(call, request_cls(), metadata, streaming)
            if role is None:
                expected_denial = (
                    None if ACCESS[method] == PUBLIC else grpc.StatusCode.UNAUTHENTICATED
                )
            else:
                permitted = ACCESS[method] == PUBLIC or role in ACCESS[method]
                expected_denial = None if permitted else grpc.StatusCode.PERMISSION_DENIED
            denied = code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)
            if expected_denial is None and denied:
                failures.append(f"{method} {role}: {code.name}, expected to be let through")
            if expected_denial is not None and code != expected_denial:
                failures.append(f"{method} {role}: {code.name}, expected {expected_denial.name}")
    assert not failures, "\n".join(failures)


async def test_tampered_expired_and_foreign_tokens_are_unauthenticated(server: Server) -> None:
    tickets, _ = server.stubs()
    good = token_for(Role.AGENT, server.stack)
    head, body, sig = good.split(".")
    tampered = f"{head}.{body}.{sig[:-2]}{'AA' if sig[-2:] != 'AA' else 'BB'}"
    foreign = TokenSigner("another-deployment-key-0123456789abcdef").access_token(
        Principal(role=Role.ADMIN, kind="AGENT", id=1)
    )
    refresh_as_access = SIGNER.refresh_token("AGENT", server.stack.agent_id, 1)
    for token in (tampered, foreign, refresh_as_access, "", "x" * 5000):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await tickets.ListTickets(tpb.ListTicketsRequest(), metadata=bearer_metadata(token))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def _contact(directory: dgrpc.DirectoryServiceStub, org: int, role: int = 0) -> dpb.Contact:
    return await directory.AddContact(
        dpb.AddContactRequest(
            organization_id=org,
            name="Persona",
            email=f"p.{uuid.uuid4().hex[:8]}@rossi.it",
            role=role,
        ),
        metadata=bearer_metadata(ADMIN),
    )


async def test_login_refresh_lock_out_and_set_password(server: Server) -> None:
    _, directory = server.stubs()
    contact = await _contact(directory, server.stack.org_id)
    await directory.SetPassword(
        dpb.SetPasswordRequest(
            kind=dpb.PRINCIPAL_KIND_CONTACT, id=contact.id, new_password="una-password-lunga"
        ),
        metadata=bearer_metadata(ADMIN),
    )
    login = await directory.Login(
        dpb.LoginRequest(email=contact.email.upper(), password="una-password-lunga")
    )
    assert login.role == "USER" and login.organization_id == server.stack.org_id
    me = await directory.GetContact(
        dpb.GetContactRequest(id=contact.id), metadata=bearer_metadata(login.access_token)
    )
    assert me.email == contact.email
    refreshed = await directory.RefreshToken(
        dpb.RefreshTokenRequest(refresh_token=login.refresh_token)
    )
    assert refreshed.access_token

    # Five wrong passwords lock the account, even for the right one afterwards.
    for _ in range(5):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await directory.Login(dpb.LoginRequest(email=contact.email, password="sbagliata!!"))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await directory.Login(dpb.LoginRequest(email=contact.email, password="una-password-lunga"))
    assert "locked" in (err.value.details() or "")

    # A person changes their own password with the current one; the old refresh token dies.
    await directory.SetPassword(
        dpb.SetPasswordRequest(
            kind=dpb.PRINCIPAL_KIND_CONTACT,
            id=contact.id,
            current_password="una-password-lunga",
            new_password="un-altra-password-lunga",
        ),
        metadata=bearer_metadata(login.access_token),
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await directory.RefreshToken(dpb.RefreshTokenRequest(refresh_token=login.refresh_token))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # ... and never someone else's.
    other = await _contact(directory, server.stack.org_id)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await directory.SetPassword(
            dpb.SetPasswordRequest(
                kind=dpb.PRINCIPAL_KIND_CONTACT,
                id=other.id,
                current_password="x",
                new_password="abcdefghijklmno",
            ),
            metadata=bearer_metadata(login.access_token),
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await directory.Login(dpb.LoginRequest(email="nobody@rossi.it", password="whatever-1"))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_customers_see_only_their_own_and_never_internal_notes(server: Server) -> None:
    tickets, directory = server.stubs()
    stack = server.stack
    admin = bearer_metadata(ADMIN)
    other_org = await directory.CreateOrganization(
        dpb.CreateOrganizationRequest(name=f"Bianchi {uuid.uuid4().hex[:6]}"), metadata=admin
    )
    stranger = await _contact(directory, other_org.id)
    colleague = await _contact(directory, stack.org_id)
    referent = await _contact(directory, stack.org_id, pb.CONTACT_ROLE_REFERENT)

    def as_contact(c: dpb.Contact, role: Role = Role.USER) -> tuple[tuple[str, str], ...]:
        return bearer_metadata(
            SIGNER.access_token(
                Principal(role=role, kind="CONTACT", id=c.id, organization_id=c.organization_id)
            )
        )

    mine = await tickets.CreateTicket(
        tpb.CreateTicketRequest(subject="La mia richiesta", requester_id=stack.contact_id),
        metadata=admin,
    )
    agent = tpb.Actor(kind=pb.AUTHOR_KIND_AGENT, id=stack.agent_id)
    await tickets.AddComment(
        tpb.AddCommentRequest(
            ticket_id=mine.id,
            body="nota interna: cliente difficile",
            author=agent,
            visibility=pb.COMMENT_VISIBILITY_INTERNAL,
        ),
        metadata=admin,
    )
    await tickets.AddComment(
        tpb.AddCommentRequest(ticket_id=mine.id, body="Risposta pubblica", author=agent),
        metadata=admin,
    )

    owner = bearer_metadata(token_for(Role.USER, stack))
    seen = await tickets.ListComments(
        tpb.ListCommentsRequest(ticket_id=mine.id, include_internal=True), metadata=owner
    )
    assert [c.body for c in seen.comments] == ["Risposta pubblica"]
    history = await tickets.GetTicketHistory(
        tpb.GetTicketHistoryRequest(ticket_id=mine.id), metadata=owner
    )
    assert [e.type for e in history.events].count("comment_added") == 1

    # Another organisation's contact, and a colleague (plain USER), do not see it at all.
    for outsider in (as_contact(stranger), as_contact(colleague)):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await tickets.GetTicket(tpb.GetTicketRequest(id=mine.id), metadata=outsider)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        listed = await tickets.ListTickets(
            tpb.ListTicketsRequest(organization_id=stack.org_id), metadata=outsider
        )
        assert mine.id not in [t.id for t in listed.tickets]
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await tickets.AddComment(
                tpb.AddCommentRequest(ticket_id=mine.id, body="ciao"), metadata=outsider
            )
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    # The referent sees every ticket of the organisation, still without internal notes.
    as_referent = as_contact(referent, Role.REFERENT)
    listed = await tickets.ListTickets(tpb.ListTicketsRequest(), metadata=as_referent)
    assert mine.id in [t.id for t in listed.tickets]
    seen = await tickets.ListComments(
        tpb.ListCommentsRequest(ticket_id=mine.id, include_internal=True), metadata=as_referent
    )
    assert [c.body for c in seen.comments] == ["Risposta pubblica"]
    # A customer writes only as themselves, and only public comments.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await tickets.AddComment(
            tpb.AddCommentRequest(ticket_id=mine.id, body="finto", author=agent), metadata=owner
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    reply = await tickets.AddComment(
        tpb.AddCommentRequest(ticket_id=mine.id, body="Grazie"), metadata=owner
    )
    assert reply.comment.author_kind == pb.AUTHOR_KIND_CONTACT
    assert reply.comment.author_id == stack.contact_id

    # Audit: every write says who made the call; customers do not see that trail.
    trail = await tickets.GetTicketHistory(
        tpb.GetTicketHistoryRequest(ticket_id=mine.id), metadata=admin
    )
    by = [e.performed_by for e in trail.events if e.type == "comment_added"]
    assert by == ["ADMIN admin", "ADMIN admin", f"USER CONTACT#{stack.contact_id}"]
    theirs = await tickets.GetTicketHistory(
        tpb.GetTicketHistoryRequest(ticket_id=mine.id), metadata=owner
    )
    assert all(e.performed_by == "" for e in theirs.events)


async def test_users_see_their_departments_tickets_when_the_organisation_says_so(
    server: Server,
) -> None:
    tickets, directory = server.stubs()
    admin = bearer_metadata(ADMIN)

    async def org_with(shared: bool) -> tuple[dpb.Contact, dpb.Contact, dpb.Contact]:
        org = await directory.CreateOrganization(
            dpb.CreateOrganizationRequest(
                name=f"Sede {uuid.uuid4().hex[:6]}", department_sees_tickets=shared
            ),
            metadata=admin,
        )
        people = []
        for department in ("Amministrazione", "Amministrazione", "Magazzino"):
            people.append(
                await directory.AddContact(
                    dpb.AddContactRequest(
                        organization_id=org.id,
                        name=department,
                        department=department,
                        email=f"d.{uuid.uuid4().hex[:8]}@sede.it",
                    ),
                    metadata=admin,
                )
            )
        return people[0], people[1], people[2]

    for shared in (True, False):
        author, colleague, other_department = await org_with(shared)
        ticket = await tickets.CreateTicket(
            tpb.CreateTicketRequest(subject="Fattura", requester_id=author.id), metadata=admin
        )

        def md(c: dpb.Contact) -> tuple[tuple[str, str], ...]:
            return bearer_metadata(
                SIGNER.access_token(
                    Principal(
                        role=Role.USER, kind="CONTACT", id=c.id, organization_id=c.organization_id
                    )
                )
            )

        listed = await tickets.ListTickets(tpb.ListTicketsRequest(), metadata=md(colleague))
        assert [t.id for t in listed.tickets] == ([ticket.id] if shared else [])
        if shared:
            got = await tickets.GetTicket(
                tpb.GetTicketRequest(id=ticket.id), metadata=md(colleague)
            )
            assert got.id == ticket.id
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await tickets.GetTicket(
                tpb.GetTicketRequest(id=ticket.id), metadata=md(other_department)
            )
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
