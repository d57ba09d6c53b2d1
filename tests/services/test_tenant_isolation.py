"""A stateful property test (hypothesis): two organisations, random sequences of calls by
random principals, on a real tickets server. No customer ever reads or writes another
organisation's ticket (or, as a plain user, a colleague's), and no internal comment ever
reaches a customer."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import grpc
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import directory_pb2_grpc as dgrpc
from helpdesk.v1 import tickets_pb2 as tpb
from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.common.access import Principal, Role
from services.common.auth import bearer_metadata
from services.common.embedded import EmbeddedProcess
from services.common.grpc_server import ServiceServer
from services.common.settings import Settings
from services.common.temporal_client import connect, register_search_attributes
from services.common.tokens import TokenSigner
from services.tickets.directory import DirectoryServicer
from services.tickets.servicer import TicketServicer
from tests.conftest import PG_URL
from tests.support import SIGNING_KEY, tickets_stack

pytestmark = [pytest.mark.db]

T = TypeVar("T")
ADMIN = bearer_metadata("isolation-admin")
SIGNER = TokenSigner(SIGNING_KEY)


@dataclass
class Person:
    contact_id: int
    org_id: int
    role: Role

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return bearer_metadata(
            SIGNER.access_token(
                Principal(
                    role=self.role, kind="CONTACT", id=self.contact_id, organization_id=self.org_id
                )
            )
        )

    def may_see(self, ticket: TicketFact) -> bool:
        if ticket.org_id != self.org_id:
            return False
        return self.role is Role.REFERENT or ticket.requester_id == self.contact_id


@dataclass
class TicketFact:
    id: int
    org_id: int
    requester_id: int


@dataclass
class World:
    """A tickets server running in its own event loop thread."""

    loop: asyncio.AbstractEventLoop
    tickets: tgrpc.TicketServiceStub
    directory: dgrpc.DirectoryServiceStub
    people: list[Person]
    agent_id: int
    tickets_made: list[TicketFact] = field(default_factory=list)

    def call(self, make: Callable[[], Awaitable[T]]) -> T:
        """Make and await a gRPC call on the server's loop (calls belong to their loop)."""

        async def go() -> T:
            return await make()

        return asyncio.run_coroutine_threadsafe(go(), self.loop).result(timeout=120)


async def _database(tmp: Path) -> tuple[str, str]:
    if not PG_URL:
        return f"sqlite:///{tmp / 'isolation.db'}", ""
    name = f"hd_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return f"{PG_URL.rsplit('/', 1)[0]}/{name}", name


@pytest.fixture
def world(tmp_path: Path, temporal_dev_server: EmbeddedProcess, nats_url: str) -> Iterator[World]:
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
                admin_token="isolation-admin",
                service_token="isolation-service",
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
            directory = dgrpc.DirectoryServiceStub(channel)  # type: ignore[arg-type]
            other = await directory.CreateOrganization(
                dpb.CreateOrganizationRequest(name="Bianchi SpA"), metadata=ADMIN
            )
            people = [Person(stack.contact_id, stack.org_id, Role.USER)]
            for org, role in (
                (stack.org_id, pb.CONTACT_ROLE_USER),
                (stack.org_id, pb.CONTACT_ROLE_REFERENT),
                (other.id, pb.CONTACT_ROLE_USER),
                (other.id, pb.CONTACT_ROLE_REFERENT),
            ):
                c = await directory.AddContact(
                    dpb.AddContactRequest(
                        organization_id=org,
                        name="P",
                        email=f"p{uuid.uuid4().hex[:8]}@x.it",
                        role=role,
                    ),
                    metadata=ADMIN,
                )
                people.append(Person(c.id, org, Role(pb.ContactRole.Name(role).split("_")[-1])))
            made["world"] = World(
                loop,
                tgrpc.TicketServiceStub(channel),  # type: ignore[arg-type]
                directory,
                people,
                stack.agent_id,
            )
            await stop.wait()
            await channel.close(None)
            await server.stop(1)
        if pg_name:
            admin = await asyncpg.connect(PG_URL)
            await admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
            await admin.close()

    done = asyncio.run_coroutine_threadsafe(serve(), loop)
    while "world" not in made:
        if done.done():
            done.result()
        threading.Event().wait(0.1)
    yield made["world"]
    loop.call_soon_threadsafe(made["stop"].set)
    done.result(timeout=60)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


class Isolation(RuleBasedStateMachine):
    world: World

    @initialize()
    def start(self) -> None:
        self.internal_bodies: set[str] = set()

    def person(self, data: st.DataObject) -> Person:
        return data.draw(st.sampled_from(self.world.people))

    @rule(data=st.data())
    def customer_opens_a_ticket(self, data: st.DataObject) -> None:
        who = self.person(data)
        made = self.world.call(
            lambda: self.world.tickets.CreateTicket(
                tpb.CreateTicketRequest(subject="richiesta", requester_id=0), metadata=who.metadata
            )
        )
        assert made.organization_id == who.org_id and made.requester_id == who.contact_id
        self.world.tickets_made.append(TicketFact(made.id, who.org_id, who.contact_id))

    @rule(data=st.data(), internal=st.booleans())
    def agent_writes(self, data: st.DataObject, internal: bool) -> None:
        if not self.world.tickets_made:
            return
        ticket = data.draw(st.sampled_from(self.world.tickets_made))
        body = f"{'INTERNO' if internal else 'PUBBLICO'}-{uuid.uuid4().hex[:6]}"
        if internal:
            self.internal_bodies.add(body)
        self.world.call(
            lambda: self.world.tickets.AddComment(
                tpb.AddCommentRequest(
                    ticket_id=ticket.id,
                    body=body,
                    author=tpb.Actor(kind=pb.AUTHOR_KIND_AGENT, id=self.world.agent_id),
                    visibility=pb.COMMENT_VISIBILITY_INTERNAL
                    if internal
                    else pb.COMMENT_VISIBILITY_PUBLIC,
                ),
                metadata=ADMIN,
            )
        )

    @rule(data=st.data())
    def customer_reads_or_writes_a_ticket(self, data: st.DataObject) -> None:
        if not self.world.tickets_made:
            return
        who = self.person(data)
        ticket = data.draw(st.sampled_from(self.world.tickets_made))
        action = data.draw(st.sampled_from(["get", "comments", "history", "comment"]))
        calls = {
            "get": lambda: self.world.tickets.GetTicket(
                tpb.GetTicketRequest(id=ticket.id), metadata=who.metadata
            ),
            "comments": lambda: self.world.tickets.ListComments(
                tpb.ListCommentsRequest(ticket_id=ticket.id, include_internal=True),
                metadata=who.metadata,
            ),
            "history": lambda: self.world.tickets.GetTicketHistory(
                tpb.GetTicketHistoryRequest(ticket_id=ticket.id), metadata=who.metadata
            ),
            "comment": lambda: self.world.tickets.AddComment(
                tpb.AddCommentRequest(ticket_id=ticket.id, body="dal cliente"),
                metadata=who.metadata,
            ),
        }
        try:
            reply = self.world.call(calls[action])
        except grpc.aio.AioRpcError as err:
            assert not who.may_see(ticket), f"{who} refused {action} on {ticket}: {err}"
            assert err.code() == grpc.StatusCode.NOT_FOUND  # existence is not revealed
            return
        assert who.may_see(ticket), f"{who} could {action} {ticket}"
        text = str(reply)
        assert not any(body in text for body in self.internal_bodies), text

    @rule(data=st.data())
    def customer_lists(self, data: st.DataObject) -> None:
        who = self.person(data)
        org = data.draw(st.sampled_from([0, *{p.org_id for p in self.world.people}]))
        page = self.world.call(
            lambda: self.world.tickets.ListTickets(
                tpb.ListTicketsRequest(organization_id=org, page_size=500), metadata=who.metadata
            )
        )
        facts = {t.id: t for t in self.world.tickets_made}
        for ticket in page.tickets:
            assert who.may_see(facts[ticket.id]), f"{who} listed {ticket.id}"
        if org in (0, who.org_id):
            expected = {t.id for t in self.world.tickets_made if who.may_see(t)}
            assert {t.id for t in page.tickets} == expected


def test_no_cross_organisation_access_and_no_internal_notes(world: World) -> None:
    Isolation.world = world
    run_state_machine_as_test(
        Isolation,
        settings=settings(
            max_examples=6,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
