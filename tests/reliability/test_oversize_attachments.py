"""Scorecard 5: large attachments by mail and by Telegram. Under the system's one limit
(20 MiB a file, 25 MiB a request) a 15 MiB mail and two 12 MiB files become tickets with
their files; a file over the limit (21 MiB by mail, 21 MiB by Telegram) leaves a ticket
all the same, with the refused file named on it, and the sender is told (by mail or in
the chat)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from temporalio.client import Client

from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.embedded import EmbeddedProcess
from tests.im_fake_provider import BOT_TOKEN, FakeProvider
from tests.reliability.mail import mail, send
from tests.support import eventually
from tests.system.conftest import CORE, running_system

pytestmark = [pytest.mark.reliability, pytest.mark.system, pytest.mark.timeout(600)]

MiB = 1024 * 1024
SECRET = "reliability-tg-secret"


async def test_large_and_oversize_attachments(
    tmp_path: Path,
    temporal_dev_server: EmbeddedProcess,
    temporal_client: Client,
    nats_url: str,
    database_url: str,
    scorecard: Callable[[str, str], None],
) -> None:
    provider = FakeProvider()
    await provider.start()
    try:
        async with running_system(
            tmp_path,
            temporal_dev_server,
            nats_url,
            database_url,
            CORE,
            # A mail server that takes large mail (encoded, 21 MiB of file is 28 MiB).
            HELPDESK_SMTP_MAX_MESSAGE_BYTES="40MiB",
            HELPDESK_TELEGRAM_BOT_TOKEN=BOT_TOKEN,
            HELPDESK_TELEGRAM_WEBHOOK_SECRET=SECRET,
            HELPDESK_TELEGRAM_API_BASE=provider.base,
        ) as (sut, box):
            directory, md = sut.directory(), sut.metadata
            tag = uuid.uuid4().hex[:6]
            org = await directory.CreateOrganization(
                dpb.CreateOrganizationRequest(name=f"Grandi {tag}", email_domains=["grandi.it"]),
                metadata=md,
            )
            people = {}
            for n, who in enumerate(("quindici", "dodici", "ventuno", "telegram")):
                people[who] = await directory.AddContact(
                    dpb.AddContactRequest(
                        organization_id=org.id,
                        name=who.title(),
                        email=f"{who}.{tag}@grandi.it",
                        telegram_user_id=f"66600{n}" if who == "telegram" else "",
                    ),
                    metadata=md,
                )

            def with_files(who: str, files: dict[str, int]) -> bytes:
                msg = mail(people[who].email, f"Allegati {who}", f"Vedi allegati ({who}).")
                for name, size in files.items():
                    msg.add_attachment(
                        bytes([n % 251 for n in range(4096)]) * (size // 4096),
                        maintype="application",
                        subtype="octet-stream",
                        filename=name,
                    )
                return msg.as_bytes()

            mails = {
                "quindici": with_files("quindici", {"video15.bin": 15 * MiB}),
                "dodici": with_files("dodici", {"a12.bin": 12 * MiB, "b12.bin": 12 * MiB}),
                "ventuno": with_files("ventuno", {"dump21.bin": 21 * MiB}),
            }
            for who, raw in mails.items():
                await asyncio.to_thread(send, sut, raw, people[who].email)

            provider.files["doc-21"] = b"\0" * (21 * MiB)
            update = {
                "update_id": 700001,
                "message": {
                    "message_id": 5,
                    "from": {"id": 666003, "is_bot": False, "first_name": "Tele"},
                    "chat": {"id": 666003, "type": "private", "first_name": "Tele"},
                    "date": 1767225600,
                    "caption": "Il file di log del server",
                    "document": {
                        "file_id": "doc-21",
                        "file_unique_id": "u21",
                        "file_name": "server21.log",
                        "file_size": 21 * MiB,
                    },
                },
            }
            url = f"http://{sut.env['HELPDESK_WEBHOOK_LISTEN']}/webhooks/telegram"
            async with (
                aiohttp.ClientSession() as http,
                http.post(
                    url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
                ) as reply,
            ):
                assert reply.status == 200

            async def ticket_of(who: str) -> tpb.ListTicketsResponse | None:
                page = await sut.tickets().ListTickets(
                    tpb.ListTicketsRequest(requester_email=people[who].email), metadata=md
                )
                return page if page.tickets else None

            made = {
                who: (await eventually(lambda w=who: ticket_of(w), timeout=120)).tickets
                for who in people
            }
            assert all(len(t) == 1 for t in made.values())
            files = {who: sorted(a.filename for a in t[0].attachments) for who, t in made.items()}
            assert files["quindici"] == ["video15.bin"]
            assert files["dodici"] == ["a12.bin", "b12.bin"]
            assert files["ventuno"] == [] and files["telegram"] == []
            assert "dump21.bin" in made["ventuno"][0].description
            assert "server21.log" in made["telegram"][0].description
            # The Telegram sender is told in the chat, the mail sender by an answer to
            # their mail; the senders whose files were all taken get no such answer.
            told_chat = await eventually(
                lambda: [t for t in provider.texts_to("666003") if "server21.log" in t],
                timeout=60,
            )
            assert told_chat

            def refusal_mails() -> list[str]:
                return [
                    m["To"].addresses[0].addr_spec
                    for m in box.messages
                    if "Allegati non accettati" in str(m["Subject"])
                    and "dump21.bin" in m.get_body(preferencelist=("plain",)).get_content()
                ]

            assert await eventually(lambda: refusal_mails(), timeout=60) == [
                people["ventuno"].email
            ]
            scorecard(
                "oversize_attachments",
                "4/4 tickets (15 MiB mail, 2 x 12 MiB, 21 MiB mail, 21 MiB Telegram document); "
                "3 files kept, 2 refused files named on their tickets, the mail sender and "
                "the chat told",
            )
    finally:
        await provider.stop()
