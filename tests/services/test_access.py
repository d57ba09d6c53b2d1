"""Who may do what, on a running tickets + intake server: the whole access table walked for
every role, logins with lock-out, and tenant isolation (hypothesis state machine)."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
import jwt
import pytest
from argon2 import PasswordHasher
from google.protobuf import symbol_database
from sqlalchemy import select
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import (
    dev_escalation_pb2,
    intake_pb2,
    knowledge_pb2,
    notify_pb2,
    sales_pb2,
    tickets_pb2,
)
from helpdesk.v1 import dev_escalation_pb2_grpc as egrpc
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import directory_pb2_grpc as dgrpc
from helpdesk.v1 import intake_pb2_grpc as igrpc
from helpdesk.v1 import knowledge_pb2_grpc as kgrpc
from helpdesk.v1 import sales_pb2_grpc as sgrpc
from helpdesk.v1 import tickets_pb2 as tpb
from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.common.access import ACCESS, PUBLIC, Principal, Role
from services.common.auth import bearer_metadata
from services.common.events import EventPublisher
from services.common.grpc_server import ServiceServer
from services.common.settings import Settings
from services.common.tokens import TokenSigner
from services.intake.app import MIGRATIONS as INTAKE_MIGRATIONS
from services.intake.servicer import IntakeServicer
from services.tickets import models as m
from services.tickets.directory import DirectoryServicer
from services.tickets.knowledge import KnowledgeServicer
from services.tickets.login_guard import Attempts, LoginLimits
from services.tickets.sales_events import SalesEventPublisher
from services.tickets.sales_rpc import SalesServicer
from services.tickets.servicer import TicketServicer
from tests.support import SIGNING_KEY, TicketsStack, dev_escalation_stack, tickets_stack

pytestmark = [pytest.mark.db]

ADMIN = "access-admin-token"
SERVICE = "access-service-token"
SIGNER = TokenSigner(SIGNING_KEY)
ALL_SERVICES = (
    tickets_pb2,
    dpb,
    intake_pb2,
    notify_pb2,
    dev_escalation_pb2,
    knowledge_pb2,
    sales_pb2,
)


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
    publisher = EventPublisher(nats_url, "test-access-sales")
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
            kgrpc.add_KnowledgeServiceServicer_to_server(KnowledgeServicer(stack.sessions), srv)
            sales_out = SalesEventPublisher(stack.sessions, publisher)
            sgrpc.add_SalesServiceServicer_to_server(
                SalesServicer(stack.sessions, sales_out, temporal_client), srv
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
    await publisher.close()
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


def _forged(
    role: str,
    kind: str = "AGENT",
    *,
    key: str = SIGNING_KEY,
    algorithm: str = "HS256",
    expired: bool = False,
) -> str:
    """An access token written by hand, as an attacker holding ``key`` would."""
    now = int(time.time())
    claims = {
        "sub": f"{kind}:1",
        "typ": "access",
        "role": role,
        "org": 0,
        "name": "forged",
        "iss": "helpdesk",
        "aud": "helpdesk",
        "iat": now - 7200,
        "exp": now - 60 if expired else now + 600,
    }
    if algorithm == "none":
        return jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    return jwt.encode(claims, key, algorithm=algorithm)


async def test_tampered_expired_and_foreign_tokens_are_unauthenticated(server: Server) -> None:
    tickets, _ = server.stubs()
    good = token_for(Role.AGENT, server.stack)
    head, body, sig = good.split(".")
    tampered = f"{head}.{body}.{sig[:-2]}{'AA' if sig[-2:] != 'AA' else 'BB'}"
    foreign = TokenSigner("another-deployment-key-0123456789abcdef").access_token(
        Principal(role=Role.TEAM_LEAD, kind="AGENT", id=1)
    )
    refresh_as_access = SIGNER.refresh_token("AGENT", server.stack.agent_id, 1)
    # Whoever holds the signing key still cannot make themselves the service or the admin:
    # only the static tokens carry those roles; nor may any token use another algorithm.
    forged = {
        "SERVICE signed with the key": _forged("SERVICE", "SERVICE"),
        "ADMIN signed with the key": _forged("ADMIN", "ADMIN"),
        "an ADMIN agent signed with the key": _forged("ADMIN"),
        "a SERVICE agent signed with the key": _forged("SERVICE"),
        "a contact as an agent role": _forged("TEAM_LEAD", "CONTACT"),
        "expired": _forged("AGENT", expired=True),
        "alg=none": _forged("SERVICE", "SERVICE", algorithm="none"),
        "alg=none as an agent": _forged("AGENT", algorithm="none"),
        "HS512 with the key": _forged("AGENT", algorithm="HS512"),
        "HS384 with the key": _forged("AGENT", algorithm="HS384"),
    }
    assert (
        jwt.decode(  # the forger's claims are otherwise fine: the role is what is refused
            forged["SERVICE signed with the key"], SIGNING_KEY, ["HS256"], audience="helpdesk"
        )["role"]
        == "SERVICE"
    )
    for what, token in {
        "tampered": tampered,
        "foreign": foreign,
        "refresh as access": refresh_as_access,
        "empty": "",
        "huge": "x" * 5000,
        **forged,
    }.items():
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await tickets.ListTickets(tpb.ListTicketsRequest(), metadata=bearer_metadata(token))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, what
    # ... and the signer never makes one.
    for who in (
        Principal(role=Role.SERVICE, kind="SERVICE", name="service"),
        Principal(role=Role.ADMIN, kind="ADMIN", name="admin"),
        Principal(role=Role.ADMIN, kind="AGENT", id=1),
        Principal(role=Role.USER, kind="AGENT", id=1),
    ):
        with pytest.raises(ValueError, match="no signed token"):
            SIGNER.access_token(who)


async def test_an_admin_agent_gets_no_signed_token(server: Server) -> None:
    """An agent row with role ADMIN (made before this rule) signs in to nothing: ADMIN is the
    admin token's; no new ADMIN agent is made."""
    _, directory = server.stubs()
    code, details = await _status_of(
        directory.CreateAgent(
            dpb.CreateAgentRequest(
                name="Capo", email=f"capo.{uuid.uuid4().hex[:6]}@desk.it", role=pb.AGENT_ROLE_ADMIN
            ),
            metadata=bearer_metadata(ADMIN),
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("role:")
    email = f"vecchio.{uuid.uuid4().hex[:6]}@desk.it"
    async with server.stack.sessions() as session:
        agent = m.Agent(
            name="Vecchio admin",
            email=email,
            email_key=email,
            role="ADMIN",
            created_at=datetime.now(UTC),
        )
        session.add(agent)
        await session.flush()
        await server.stack.credentials.issue(session, "AGENT", agent.id, email)
        await session.commit()
        agent_id = agent.id
    await directory.SetPassword(
        dpb.SetPasswordRequest(
            kind=dpb.PRINCIPAL_KIND_AGENT, id=agent_id, new_password="password-dell-admin"
        ),
        metadata=bearer_metadata(ADMIN),
    )
    code, details = await _status_of(
        directory.Login(dpb.LoginRequest(email=email, password="password-dell-admin"))
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED and "admin token" in details


async def _status_of(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value.code(), err.value.details() or ""


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


async def test_a_flood_of_unknown_logins_leaves_ticket_reads_quick(server: Server) -> None:
    """The acceptance figure: 50 concurrent logins with unknown emails leave
    GetTicket's p99 under 250 ms. Each login comes from its own address (no attempt limit
    applies), so only the hashing pool stands between them and the event loop."""
    tickets, directory = server.stubs()
    ticket_id = await server.stack.new_ticket()
    admin = bearer_metadata(ADMIN)
    await tickets.GetTicket(tpb.GetTicketRequest(id=ticket_id), metadata=admin)
    pool = server.stack.credentials.hashing
    hashed_before = pool.completed
    codes: list[grpc.StatusCode] = []

    async def unknown_login(i: int) -> None:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await directory.Login(
                dpb.LoginRequest(email=f"nessuno{i}@ignoto.it", password="tentativo-123"),
                metadata=(("x-forwarded-for", f"10.9.8.7, 198.51.100.{i}"),),
            )
        codes.append(err.value.code())

    latencies: list[float] = []
    # From a collected heap: a full collection of this large test process (100 ms and
    # more, whatever the logins do) should not land in the measured second by chance.
    gc.collect()
    started = time.perf_counter()
    flood = asyncio.ensure_future(asyncio.gather(*(unknown_login(i) for i in range(50))))
    while not flood.done() or len(latencies) < 20:
        began = time.perf_counter()
        await tickets.GetTicket(tpb.GetTicketRequest(id=ticket_id), metadata=admin)
        latencies.append(time.perf_counter() - began)
        await asyncio.sleep(0.02)
    await flood
    flood_took = time.perf_counter() - started
    p99 = statistics.quantiles(latencies, n=100)[98]
    print(f"GetTicket p99 {p99 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms", end=" ")
    print(f"over {len(latencies)} reads during 50 unknown-email logins ({flood_took:.1f} s)")
    # Hashing on the event loop made a read wait for the whole flood (3.3 s); the scorecard
    # (tests/reliability) holds the 250 ms promise against the whole system. Here, on a test
    # machine whose load stretches everything: no stall, so reads go on during the flood.
    assert p99 < max(1.0, flood_took / 2), (
        f"GetTicket p99 {p99 * 1000:.0f} ms during 50 unknown-email logins "
        f"that took {flood_took:.1f} s"
    )
    # The unknown addresses were hashed like known ones (the same answer, the same work)
    # as far as the pool admitted them; the excess was refused at once, not queued.
    assert set(codes) <= {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.RESOURCE_EXHAUSTED}
    hashed = codes.count(grpc.StatusCode.UNAUTHENTICATED)
    assert hashed >= pool.limit and pool.completed - hashed_before == hashed
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes
    assert pool.in_flight == 0


async def test_login_and_reset_attempts_are_limited_per_source_and_address(
    server: Server,
) -> None:
    _, directory = server.stubs()
    server.stack.credentials.limits = LoginLimits(
        login_per_source=Attempts(3, 60, "from this address"),
        login_per_email=Attempts(2, 60, "for this account"),
        reset_request_per_source=Attempts(2, 60, "from this address"),
        reset_request_per_email=Attempts(1, 60, "for this account"),
    )

    async def login(email: str, source: str) -> grpc.StatusCode:
        code, _ = await _status_of(
            directory.Login(
                dpb.LoginRequest(email=email, password="tentativo-123"),
                metadata=(("x-forwarded-for", source),),
            )
        )
        return code

    # Per address: the third try for one account is refused, whatever its source.
    assert await login("uno@ignoto.it", "192.0.2.1") == grpc.StatusCode.UNAUTHENTICATED
    assert await login("uno@ignoto.it", "192.0.2.2") == grpc.StatusCode.UNAUTHENTICATED
    assert await login("UNO@ignoto.it ", "192.0.2.3") == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Per source: the fourth try from one client is refused, whatever the account. The
    # header's last entry is the client the gateway saw; without it, the gRPC peer.
    assert await login("due@ignoto.it", "6.6.6.6, 192.0.2.9") == grpc.StatusCode.UNAUTHENTICATED
    assert await login("tre@ignoto.it", "192.0.2.9") == grpc.StatusCode.UNAUTHENTICATED
    assert await login("quattro@ignoto.it", "192.0.2.9") == grpc.StatusCode.UNAUTHENTICATED
    code, details = await _status_of(
        directory.Login(
            dpb.LoginRequest(email="cinque@ignoto.it", password="tentativo-123"),
            metadata=(("x-forwarded-for", "192.0.2.9"),),
        )
    )
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "from this address" in details
    # IPv6 clients count per /64.
    for n in (1, 2, 3):
        assert await login(f"v6-{n}@ignoto.it", f"2001:db8:1:2::{n}") == (
            grpc.StatusCode.UNAUTHENTICATED
        )
    assert await login("v6-4@ignoto.it", "2001:db8:1:2::ff") == grpc.StatusCode.RESOURCE_EXHAUSTED

    # Reset requests: the same answer for a known and an unknown address, after the same
    # work (one hash each), and limited too.
    contact = await _contact(directory, server.stack.org_id)
    pool = server.stack.credentials.hashing
    for email in (contact.email, "nessuno@ignoto.it"):
        before = pool.completed
        answer = await directory.RequestPasswordReset(
            dpb.RequestPasswordResetRequest(email=email),
            metadata=(("x-forwarded-for", "203.0.113.5"),),
        )
        assert answer == dpb.RequestPasswordResetResponse()
        assert pool.completed == before + 1, email
    code, _ = await _status_of(
        directory.RequestPasswordReset(
            dpb.RequestPasswordResetRequest(email=contact.email),
            metadata=(("x-forwarded-for", "203.0.113.6"),),
        )
    )
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_wrong_reset_codes_lock_the_account_like_wrong_passwords(server: Server) -> None:
    _, directory = server.stubs()
    contact = await _contact(directory, server.stack.org_id)
    await directory.SetPassword(
        dpb.SetPasswordRequest(
            kind=dpb.PRINCIPAL_KIND_CONTACT, id=contact.id, new_password="una-password-lunga"
        ),
        metadata=bearer_metadata(ADMIN),
    )
    await directory.RequestPasswordReset(dpb.RequestPasswordResetRequest(email=contact.email))
    # The emailed code is secret; the test puts a known one in its place.
    async with server.stack.sessions() as session:
        cred = (
            await session.scalars(
                select(m.Credential).where(m.Credential.email_key == contact.email.lower())
            )
        ).one()
        cred.reset_code_hash = PasswordHasher().hash("12345678")
        await session.commit()

    def reset(code: str) -> Any:
        return directory.ResetPassword(
            dpb.ResetPasswordRequest(
                email=contact.email, code=code, new_password="nuova-password-lunga"
            )
        )

    pool = server.stack.credentials.hashing
    before = pool.completed
    code, _ = await _status_of(
        directory.ResetPassword(
            dpb.ResetPasswordRequest(
                email="nessuno@ignoto.it", code="12345678", new_password="nuova-password-lunga"
            )
        )
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED and pool.completed == before + 1
    for wrong in ("00000001", "00000002", "00000003", "00000004", "00000005"):
        code, details = await _status_of(reset(wrong))
        assert (code, details) == (grpc.StatusCode.UNAUTHENTICATED, "invalid or expired reset code")
    # Locked: the right code no longer works (it was voided), nor the right password.
    code, details = await _status_of(reset("12345678"))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "locked" in details
    code, details = await _status_of(
        directory.Login(dpb.LoginRequest(email=contact.email, password="una-password-lunga"))
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED and "locked" in details
    async with server.stack.sessions() as session:
        cred = (
            await session.scalars(
                select(m.Credential).where(m.Credential.email_key == contact.email.lower())
            )
        ).one()
        assert cred.reset_code_hash == "" and cred.locked_until is not None


async def test_intake_request_ids_are_each_callers_own(server: Server) -> None:
    """Two callers reusing one web request ID each get their own request's ticket; a caller
    reusing its own key for another requester is ALREADY_EXISTS, never that ticket."""
    _, directory = server.stubs()
    intake = igrpc.IntakeServiceStub(server.channel)  # type: ignore[arg-type]
    admin = bearer_metadata(ADMIN)
    beta = await directory.CreateOrganization(
        dpb.CreateOrganizationRequest(name=f"Beta {uuid.uuid4().hex[:6]}"), metadata=admin
    )
    bruno = await _contact(directory, beta.id)
    alfio = await _contact(directory, server.stack.org_id)
    as_bruno = bearer_metadata(
        SIGNER.access_token(
            Principal(role=Role.USER, kind="CONTACT", id=bruno.id, organization_id=beta.id)
        )
    )

    def web(
        email: str, subject: str, key: str = "web-shared"
    ) -> intake_pb2.SubmitWebRequestRequest:
        return intake_pb2.SubmitWebRequestRequest(
            request_id=key, requester_email=email, subject=subject, description="..."
        )

    theirs = await intake.SubmitWebRequest(web(bruno.email, "Di Bruno"), metadata=as_bruno)
    ours = await intake.SubmitWebRequest(web(alfio.email, "Di Alfio"), metadata=admin)
    assert ours.ticket_id != theirs.ticket_id and ours.created
    assert (ours.ticket.organization_id, ours.ticket.subject) == (server.stack.org_id, "Di Alfio")
    again = await intake.SubmitWebRequest(web(alfio.email, "Di Alfio"), metadata=admin)
    assert (again.ticket_id, again.created) == (ours.ticket_id, False)
    code, details = await _status_of(
        intake.SubmitWebRequest(web(bruno.email, "Di Bruno, dall'admin"), metadata=admin)
    )
    assert code == grpc.StatusCode.ALREADY_EXISTS and details.startswith("request_id:")
    # A phone call under the same key is another request too.
    code, _ = await _status_of(
        intake.LogPhoneCall(
            intake_pb2.LogPhoneCallRequest(
                request_id="web-shared",
                organization_id=server.stack.org_id,
                caller_name="Alfio",
                caller_email=alfio.email,
                nature="Stampante",
            ),
            metadata=admin,
        )
    )
    assert code == grpc.StatusCode.ALREADY_EXISTS
    # Customers cannot claim the services' own keys through intake either.
    code, details = await _status_of(
        intake.SubmitWebRequest(
            web(bruno.email, "Furbo", key="email:mid:<x@alfa.it>"), metadata=as_bruno
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("request_id:")


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
