"""Scorecard 8: two intake processes and two tickets processes on one database (PostgreSQL
in the database run): every mail is one ticket or comment, replies thread as with one
process, each attachment is stored once, even when both intakes receive the same mail."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from temporalio.client import Client

from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.embedded import EmbeddedProcess, free_port
from tests.reliability.conftest import sized
from tests.reliability.mail import mail, send
from tests.reliability.mail_checks import marks_found, settled_statuses
from tests.support import eventually
from tests.system.conftest import CORE, running_system
from tests.system.harness import System

pytestmark = [pytest.mark.reliability, pytest.mark.system, pytest.mark.db, pytest.mark.timeout(900)]


class Second:
    """The environment of the second intake (own ports, the second tickets process)."""

    def __init__(self, sut: System) -> None:
        self.tickets_addr = f"127.0.0.1:{free_port()}"
        self.intake_addr = f"127.0.0.1:{free_port()}"
        self.smtp = f"127.0.0.1:{free_port()}"
        self.sut = sut

    async def start(self) -> None:
        self.sut.start(
            "tickets2",
            like="tickets",
            HELPDESK_TICKETS_ADDR=self.tickets_addr,
        )
        await self.sut.wait_serving("tickets2", address=self.tickets_addr)
        self.sut.start(
            "intake2",
            like="intake",
            HELPDESK_INTAKE_ADDR=self.intake_addr,
            HELPDESK_SMTP_LISTEN=self.smtp,
            HELPDESK_TICKETS_ADDR=self.tickets_addr,
            HELPDESK_WEBHOOK_LISTEN=f"127.0.0.1:{free_port()}",
        )
        await self.sut.wait_serving("intake2", address=self.intake_addr)


async def test_two_of_each_on_one_database(
    tmp_path: Path,
    temporal_dev_server: EmbeddedProcess,
    temporal_client: Client,
    nats_url: str,
    database_url: str,
    scorecard: Callable[[str, str], None],
) -> None:
    count = sized(60, least=20)
    async with running_system(tmp_path, temporal_dev_server, nats_url, database_url, CORE) as (
        sut,
        _box,
    ):
        org = await sut.directory().CreateOrganization(
            dpb.CreateOrganizationRequest(name="Repliche Srl", email_domains=["repliche.it"]),
            metadata=sut.metadata,
        )
        second = Second(sut)
        await second.start()
        first_smtp = sut.env["HELPDESK_SMTP_LISTEN"]

        def deliver(n: int, previous: str) -> str:
            """Mail n, to one intake or the other; every fifth to both (a mail server that
            retried on another MX)."""
            sender = f"persona{n % 4}@repliche.it"
            message_id = f"<rep-{n}-{uuid.uuid4().hex[:6]}@repliche.it>"
            if n % 3 == 1 and previous:
                msg = mail(
                    sender, "Re: richiesta", f"Ancora io. REL-{n}", message_id, In_Reply_To=previous
                )
            else:
                msg = mail(sender, f"Richiesta {n}", f"Nuovo problema. REL-{n}", message_id)
                msg.add_attachment(
                    f"file {n}".encode() * 50,
                    maintype="application",
                    subtype="octet-stream",
                    filename=f"dati-{n}.bin",
                )
            raw = msg.as_bytes()
            targets = (
                [first_smtp, second.smtp] if n % 5 == 0 else [(first_smtp, second.smtp)[n % 2]]
            )
            for target in targets:
                send(sut, raw, sender=sender, retry_for=60, listen=target)
            return message_id

        def run() -> None:
            previous: dict[int, str] = {}
            for n in range(count):
                previous[n % 4] = deliver(n, previous.get(n % 4, ""))

        await asyncio.to_thread(run)

        async def all_marked() -> object:
            found = await marks_found(sut, org.id)
            return found if len(found) >= count else None

        found = await eventually(all_marked, timeout=240, every=2)
        assert sorted(found) == list(range(count))
        assert set(found.values()) == {1}, {n: c for n, c in found.items() if c != 1}
        listed = await sut.tickets().ListTickets(
            tpb.ListTicketsRequest(organization_id=org.id, page_size=500), metadata=sut.metadata
        )
        names = [a.filename for t in listed.tickets for a in t.attachments]
        assert len(names) == len(set(names))
        expected_files = sum(1 for n in range(count) if not (n % 3 == 1 and n >= 4))
        replies = count - expected_files
        threaded = count - len(listed.tickets)
        assert threaded == replies, (threaded, replies)
        statuses = await settled_statuses(tmp_path, database_url, timeout=60)
        assert statuses.get("FAILED", 0) == 0, statuses
        scorecard(
            "two_intakes_two_tickets_one_database",
            f"{count} mails ({sum(1 for n in range(count) if n % 5 == 0)} to both intakes): "
            f"{len(listed.tickets)} tickets, {threaded}/{replies} replies threaded, "
            f"{len(names)} attachments, 0 duplicates",
        )
