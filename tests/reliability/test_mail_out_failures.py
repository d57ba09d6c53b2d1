"""Scorecard 3: the relay drops the connection right after its 250 for every fifth message,
and notify is killed once: every delivery still ends SENT, and a message that arrives twice
carries its original Message-ID both times (at-least-once, never two different mails)."""

from __future__ import annotations

import email
import email.policy
import uuid
from collections import Counter
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import notify_pb2 as npb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.embedded import EmbeddedProcess, free_port
from tests.reliability.conftest import sized
from tests.support import eventually
from tests.system.conftest import CORE, running_system

pytestmark = [pytest.mark.reliability, pytest.mark.system, pytest.mark.timeout(600)]

PER_CONTACT = 5  # automatic replies allowed per address and hour


class DroppingRelay:
    """Keeps every message; for every fifth it drops the connection as its 250 is due, so
    the sender cannot know the message arrived (and sends it again)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.dropped = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        if len(self.messages) % 5 == 0:
            self.dropped += 1
            server.transport.abort()
        return "250 OK"


async def test_deliveries_survive_dropped_connections_and_a_notify_crash(
    tmp_path: Path,
    temporal_dev_server: EmbeddedProcess,
    temporal_client: Client,
    nats_url: str,
    database_url: str,
    scorecard: Callable[[str, str], None],
) -> None:
    count = sized(60, least=15)
    relay = DroppingRelay()
    port = free_port()
    controller = Controller(relay, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        async with running_system(
            tmp_path,
            temporal_dev_server,
            nats_url,
            database_url,
            CORE,
            HELPDESK_SMTP_RELAY=f"127.0.0.1:{port}",
        ) as (sut, _box):
            directory, tickets, md = sut.directory(), sut.tickets(), sut.metadata
            org = await directory.CreateOrganization(
                dpb.CreateOrganizationRequest(name="Posta Srl"), metadata=md
            )
            contacts = []
            for i in range((count + PER_CONTACT - 1) // PER_CONTACT):
                contacts.append(
                    await directory.AddContact(
                        dpb.AddContactRequest(
                            organization_id=org.id,
                            name=f"Persona {i}",
                            email=f"persona{i}.{uuid.uuid4().hex[:4]}@posta.it",
                        ),
                        metadata=md,
                    )
                )
            made = []
            for i in range(count):
                made.append(
                    (
                        await tickets.CreateTicket(
                            tpb.CreateTicketRequest(
                                request_id=f"mail-out-{i}",
                                subject=f"Richiesta {i}",
                                description="Prova di consegna.",
                                requester_id=contacts[i // PER_CONTACT].id,
                                channel=pb.CHANNEL_PHONE,
                            ),
                            metadata=md,
                        )
                    ).id
                )
                if i == count // 3:
                    sut.kill("notify")
                    sut.start("notify")
            await sut.wait_serving("notify")

            async def all_sent() -> list[npb.Notification] | None:
                reply = await sut.notify().ListNotifications(
                    npb.ListNotificationsRequest(page_size=1000), metadata=md
                )
                acks = [n for n in reply.notifications if n.template == "created"]
                done = len(acks) == count and all(
                    n.status == npb.DELIVERY_STATUS_SENT for n in acks
                )
                return acks if done else None

            acks = await eventually(all_sent, timeout=180, every=1)
            assert sorted(n.ticket_id for n in acks) == sorted(made)
            logged = {n.message_id for n in acks}
            arrived = Counter(
                str(m["Message-ID"]) for m in relay.messages if "[#" in str(m["Subject"])
            )
            assert set(arrived) == logged  # every mail arrived, each under its logged ID
            duplicates = sum(arrived.values()) - len(arrived)
            scorecard(
                "mail_out_dropped_connections",
                f"{count}/{count} SENT, {relay.dropped} connections dropped after 250, "
                f"notify killed 1x, {duplicates} duplicates (all with the original Message-ID)",
            )
    finally:
        controller.stop()
