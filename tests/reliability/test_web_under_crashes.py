"""Scorecard 1: concurrent web requests while the tickets process is killed (SIGKILL) every
few seconds and the workflow worker once: every request is one ticket, none twice, and
each ticket gets one acknowledgement."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import notify_pb2 as npb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.embedded import EmbeddedProcess
from tests.reliability.conftest import sized
from tests.support import eventually
from tests.system.browser import generated_password, mail_to
from tests.system.conftest import CORE, running_system
from tests.system.harness import System

pytestmark = [pytest.mark.reliability, pytest.mark.system, pytest.mark.timeout(600)]

# Automatic replies are capped at 5 an hour per address: no more requests per contact.
PER_CONTACT = 5


async def restart(sut: System, name: str) -> None:
    sut.kill(name)
    sut.start(name)
    await sut.wait_serving(name)


async def post_until_created(
    client: httpx.AsyncClient, token: str, request_id: str, subject: str
) -> int:
    """What a web client does: retry the same request (same request ID) until it is in."""
    body = {"subject": subject, "description": "Richiesta dal web.", "request_id": request_id}
    while True:
        try:
            reply = await client.post(
                "/api/v1/tickets", json=body, headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError:
            await asyncio.sleep(0.5)
            continue
        if reply.status_code == 201:
            return int(reply.json()["id"])
        assert reply.status_code >= 500, reply.text  # only "try again" is acceptable
        await asyncio.sleep(0.5)


async def test_web_requests_while_tickets_is_killed(
    tmp_path: Path,
    temporal_dev_server: EmbeddedProcess,
    temporal_client: Client,
    nats_url: str,
    database_url: str,
    scorecard: Callable[[str, str], None],
) -> None:
    requests = sized(200, least=20)
    async with running_system(
        tmp_path, temporal_dev_server, nats_url, database_url, (*CORE, "gateway")
    ) as (sut, box):
        directory, md = sut.directory(), sut.metadata
        org = await directory.CreateOrganization(
            dpb.CreateOrganizationRequest(name="Carichi Srl"), metadata=md
        )
        contacts = (requests + PER_CONTACT - 1) // PER_CONTACT
        emails = [f"utente{i}.{uuid.uuid4().hex[:4]}@carichi.it" for i in range(contacts)]
        for i, email in enumerate(emails):
            await directory.AddContact(
                dpb.AddContactRequest(organization_id=org.id, name=f"Utente {i}", email=email),
                metadata=md,
            )
        tokens: list[str] = []
        async with httpx.AsyncClient(base_url=sut.portal_url, timeout=60) as client:
            for email in emails:
                body = await eventually(lambda e=email: mail_to(box, e, "Password:"), timeout=60)
                login = await client.post(
                    "/api/v1/login", json={"email": email, "password": generated_password(body)}
                )
                tokens.append(login.json()["access_token"])

            stop = asyncio.Event()
            kills = 0

            async def chaos() -> None:
                nonlocal kills
                await asyncio.sleep(1)
                await restart(sut, "worker")
                while not stop.is_set():
                    await restart(sut, "tickets")
                    kills += 1
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 3)

            killer = asyncio.create_task(chaos())
            ids = [f"load-{i}-{uuid.uuid4().hex[:8]}" for i in range(requests)]
            try:
                made = await asyncio.gather(
                    *(
                        post_until_created(client, tokens[i // PER_CONTACT], rid, f"Carico {i}")
                        for i, rid in enumerate(ids)
                    )
                )
            finally:
                stop.set()
                await killer

        listed = await sut.tickets().ListTickets(
            tpb.ListTicketsRequest(organization_id=org.id, page_size=500), metadata=md
        )
        subjects = Counter(t.subject for t in listed.tickets)
        assert len(set(made)) == requests
        assert len(listed.tickets) == requests
        assert max(subjects.values()) == 1

        async def acknowledged() -> Counter[int] | None:
            """Acknowledgements per ticket, once every ticket has one."""
            counts: Counter[int] = Counter()
            page = ""
            while True:
                reply = await sut.notify().ListNotifications(
                    npb.ListNotificationsRequest(page_size=500, page_token=page), metadata=md
                )
                counts.update(n.ticket_id for n in reply.notifications if n.template == "created")
                page = reply.next_page_token
                if not page:
                    return counts if set(counts) >= set(made) else None

        counts = await eventually(acknowledged, timeout=120, every=1)
        assert set(counts) == set(made) and set(counts.values()) == {1}
        scorecard(
            "web_requests_under_sigkill",
            f"{requests}/{requests} tickets, 0 duplicates, {requests} acknowledgements, "
            f"tickets killed {kills}x, worker 1x",
        )
