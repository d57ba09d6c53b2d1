"""Scorecard 9: the idempotency-key collisions and the mail-path holes: nothing one
organisation's people do reaches another organisation's tickets (nor a colleague's that
the portal would not show)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import intake_pb2 as ipb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.auth import bearer_metadata
from services.common.embedded import EmbeddedProcess
from tests.reliability.mail import mail, send
from tests.support import eventually
from tests.system.browser import generated_password, mail_to
from tests.system.conftest import CORE, agent_actor, running_system
from tests.system.harness import System

pytestmark = [pytest.mark.reliability, pytest.mark.system, pytest.mark.timeout(600)]


async def person(sut: System, box: object, org_id: int, name: str, email: str) -> str:
    """A contact, signed in with the password of their credentials email: their token."""
    await sut.directory().AddContact(
        dpb.AddContactRequest(organization_id=org_id, name=name, email=email),
        metadata=sut.metadata,
    )
    body = await eventually(lambda: mail_to(box, email, "Password:"), timeout=30)  # type: ignore[arg-type]
    login = await sut.directory().Login(
        dpb.LoginRequest(email=email, password=generated_password(body))
    )
    return str(login.access_token)


async def tickets_of(sut: System, email: str) -> list[pb.Ticket]:
    listed = await sut.tickets().ListTickets(
        tpb.ListTicketsRequest(requester_email=email), metadata=sut.metadata
    )
    return list(listed.tickets)


async def test_nothing_crosses_organisations(
    tmp_path: Path,
    temporal_dev_server: EmbeddedProcess,
    temporal_client: Client,
    nats_url: str,
    database_url: str,
    scorecard: Callable[[str, str], None],
) -> None:
    async with running_system(tmp_path, temporal_dev_server, nats_url, database_url, CORE) as (
        sut,
        box,
    ):
        directory, tickets, md = sut.directory(), sut.tickets(), sut.metadata
        tag = uuid.uuid4().hex[:6]
        org_a = await directory.CreateOrganization(
            dpb.CreateOrganizationRequest(name=f"Alfa {tag}", email_domains=["alfa.it"]),
            metadata=md,
        )
        org_b = await directory.CreateOrganization(
            dpb.CreateOrganizationRequest(name=f"Beta {tag}", email_domains=["beta.it"]),
            metadata=md,
        )
        agent = await directory.CreateAgent(
            dpb.CreateAgentRequest(
                name="Anna", email=f"anna.{tag}@desk.it", role=pb.AGENT_ROLE_AGENT
            ),
            metadata=md,
        )
        alice, alfio = f"alice.{tag}@alfa.it", f"alfio.{tag}@alfa.it"
        bruno = f"bruno.{tag}@beta.it"
        await person(sut, box, org_a.id, "Alice", alice)
        await person(sut, box, org_a.id, "Alfio", alfio)
        bruno_token = await person(sut, box, org_b.id, "Bruno", bruno)
        as_bruno = bearer_metadata(bruno_token)
        attempts = crossed = 0

        # 1. Bruno (Beta) claims the keys intake will use for Alfa's messages.
        victim_id = f"<victim-{tag}@alfa.it>"
        for key in (f"email:mid:{victim_id}", f"im:telegram:{tag}", f"follow-up:1:{tag}"):
            attempts += 1
            try:
                await tickets.CreateTicket(
                    tpb.CreateTicketRequest(
                        request_id=key,
                        subject="Ticket di Bruno",
                        description="x",
                        channel=pb.CHANNEL_PORTAL,
                    ),
                    metadata=as_bruno,
                )
            except grpc.aio.AioRpcError as err:
                assert err.code() in (
                    grpc.StatusCode.INVALID_ARGUMENT,
                    grpc.StatusCode.PERMISSION_DENIED,
                ), err
        # Alfa's mail with that Message-ID makes Alfa's own ticket.
        await asyncio.to_thread(
            send, sut, mail(alice, "Stampante guasta", "La stampante non stampa.", victim_id)
        )
        mine = await eventually(lambda: tickets_of(sut, alice), timeout=60)
        assert [t.organization_id for t in mine] == [org_a.id]
        assert all(t.subject == "Stampante guasta" for t in mine)
        alice_ticket = mine[0]

        # 2. Bruno reuses an intake request ID of Alice's web request.
        attempts += 1
        shared_id = f"web-{tag}"
        theirs = None
        with contextlib.suppress(grpc.aio.AioRpcError):
            theirs = await sut.intake().SubmitWebRequest(
                ipb.SubmitWebRequestRequest(
                    request_id=shared_id,
                    requester_email=bruno,
                    subject="Richiesta di Bruno",
                    description="Da Beta.",
                ),
                metadata=as_bruno,
            )
        ours = await sut.intake().SubmitWebRequest(
            ipb.SubmitWebRequestRequest(
                request_id=shared_id,
                requester_email=alfio,
                subject="Richiesta di Alfio",
                description="Da Alfa.",
            ),
            metadata=md,
        )
        got = await tickets.GetTicket(tpb.GetTicketRequest(id=ours.ticket_id), metadata=md)
        if got.organization_id != org_a.id or (theirs and theirs.ticket_id == ours.ticket_id):
            crossed += 1

        # 3. Alfio (a plain USER of Alfa) quotes Alice's ticket by email: he may not comment
        #    on a colleague's ticket the portal would not show him.
        attempts += 1
        await asyncio.to_thread(
            send,
            sut,
            mail(alfio, f"Re: [#{alice_ticket.id}] anche io", "Commento di Alfio."),
        )
        alfios = await eventually(lambda: tickets_of(sut, alfio), timeout=60)
        comments = await tickets.ListComments(
            tpb.ListCommentsRequest(ticket_id=alice_ticket.id, include_internal=True), metadata=md
        )
        if any("Commento di Alfio" in c.body for c in comments.comments):
            crossed += 1

        # 4. On Alice's closed ticket, Alfio's mail does not open a follow-up that shows
        #    its subject to him.
        await tickets.AssignTicket(
            tpb.AssignTicketRequest(
                ticket_id=alice_ticket.id, assignee_id=agent.id, actor=agent_actor(agent)
            ),
            metadata=md,
        )
        for status in (pb.TICKET_STATUS_SOLVED, pb.TICKET_STATUS_CLOSED):
            await tickets.ChangeStatus(
                tpb.ChangeStatusRequest(
                    ticket_id=alice_ticket.id,
                    status=status,
                    actor=agent_actor(agent),
                    hours_spent=0.5 if status == pb.TICKET_STATUS_CLOSED else 0,
                ),
                metadata=md,
            )
        attempts += 1
        await asyncio.to_thread(
            send, sut, mail(alfio, f"Re: [#{alice_ticket.id}]", "Ancora Alfio. Nuovo problema.")
        )

        async def two_of_alfio() -> list[pb.Ticket] | None:
            found = await tickets_of(sut, alfio)
            return found if len(found) >= len(alfios) + 1 else None

        alfio_now = await eventually(two_of_alfio, timeout=60)
        for t in alfio_now:
            if t.follow_up_of == alice_ticket.id or "Stampante guasta" in t.subject:
                crossed += 1
        assert crossed == 0
        scorecard(
            "organisation_walls",
            f"0 of {attempts} cross-organisation and colleague attempts got through",
        )
