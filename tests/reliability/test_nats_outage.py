"""Scorecard 4: nats-server is stopped while agents make changes (comments with attachments
among them); once it is back, every event is in the stream once, every mail is sent once
and no attachment is lost."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.embedded import EmbeddedProcess, free_port, start_nats
from tests.reliability.conftest import sized
from tests.support import eventually, stream_events
from tests.system.conftest import CORE, agent_actor, running_system, setup_directory

pytestmark = [pytest.mark.reliability, pytest.mark.system, pytest.mark.timeout(600)]


async def test_changes_during_a_nats_outage_arrive_once(
    tmp_path: Path,
    temporal_dev_server: EmbeddedProcess,
    temporal_client: Client,
    database_url: str,
    scorecard: Callable[[str, str], None],
) -> None:
    changes = sized(100, least=20)
    outage = sized(60, least=15)
    port = free_port()
    nats = start_nats(tmp_path / "nats", port=port)
    nats_url = nats.addresses["nats"]
    try:
        async with running_system(tmp_path, temporal_dev_server, nats_url, database_url, CORE) as (
            sut,
            box,
        ):
            tickets, md = sut.tickets(), sut.metadata
            _org, contact, agent = await setup_directory(sut, pb.CLOSED_TICKET_POLICY_FOLLOW_UP)
            ticket = await tickets.CreateTicket(
                tpb.CreateTicketRequest(
                    request_id=f"outage-{uuid.uuid4().hex[:6]}",
                    subject="Server di posta lento",
                    description="Da stamattina la posta è lenta.",
                    requester_id=contact.id,
                    channel=pb.CHANNEL_PHONE,
                ),
                metadata=md,
            )
            await tickets.AssignTicket(
                tpb.AssignTicketRequest(
                    ticket_id=ticket.id, assignee_id=agent.id, actor=agent_actor(agent)
                ),
                metadata=md,
            )
            nats.stop()
            started = asyncio.get_running_loop().time()

            async def change(i: int) -> None:
                files = (
                    [
                        pb.Attachment(
                            filename=f"log-{i}.txt",
                            content_type="text/plain",
                            content=f"riga {i}\n".encode() * 100,
                        )
                    ]
                    if i % 3 == 0
                    else []
                )
                request = tpb.AddCommentRequest(
                    ticket_id=ticket.id,
                    request_id=f"outage-comment-{i}",
                    visibility=pb.COMMENT_VISIBILITY_PUBLIC,
                    author=agent_actor(agent),
                    body=f"Aggiornamento numero {i}.",
                    attachments=files,
                )
                while True:  # as a client does: "retry with the same request_id"
                    try:
                        await tickets.AddComment(request, metadata=md, timeout=120)
                        return
                    except grpc.aio.AioRpcError as err:
                        if err.code() != grpc.StatusCode.UNAVAILABLE:
                            raise
                        await asyncio.sleep(0.2)

            # The changes are made during the outage (a change may wait for NATS to return).
            made = asyncio.ensure_future(asyncio.gather(*(change(i) for i in range(changes))))
            await asyncio.sleep(max(0.0, outage - (asyncio.get_running_loop().time() - started)))
            nats = start_nats(tmp_path / "nats", port=port)
            await made

            async def all_events() -> list[dict[str, object]] | None:
                found = await stream_events(
                    nats_url,
                    "helpdesk.ticket.>",
                    lambda e: e["ticket_id"] == ticket.id and e["type"] == "comment_added",
                    timeout=5,
                )
                return found if len(found) >= changes else None

            events = await eventually(all_events, timeout=180, every=2)
            ids = Counter(str(e["event_id"]) for e in events)
            assert len(events) == changes and max(ids.values()) == 1

            def mails() -> Counter[str] | None:
                bodies: Counter[str] = Counter()
                for msg in box.about(ticket.id):
                    text = str(msg.get_body(("plain",)).get_content())
                    for i in range(changes):
                        if f"Aggiornamento numero {i}." in text:
                            bodies[str(i)] += 1
                return bodies if len(bodies) == changes else None

            sent = await eventually(mails, timeout=180, every=1)
            await asyncio.sleep(3)  # a duplicate would arrive by now
            sent = mails() or sent
            assert set(sent.values()) == {1}

            comments = await tickets.ListComments(
                tpb.ListCommentsRequest(ticket_id=ticket.id), metadata=md
            )
            files = sorted(a.filename for c in comments.comments for a in c.attachments)
            expected = sorted(f"log-{i}.txt" for i in range(changes) if i % 3 == 0)
            assert files == expected
            scorecard(
                "nats_outage",
                f"{changes} changes during a {outage}s outage: {len(events)} events once, "
                f"{len(sent)} mails once, {len(files)}/{len(expected)} attachments",
            )
    finally:
        nats.stop()
