"""Telegram in and out, the whole system: every process on real servers, the Bot
API a local HTTP server. A critical message from a linked contact opens an URGENT ticket,
pages the on-call agent (by email and on their own Telegram account), and the agent's
public reply reaches the chat and the mailbox."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import notify_pb2 as npb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.embedded import EmbeddedProcess
from tests.im_fake_provider import BOT_TOKEN, FakeProvider
from tests.support import eventually
from tests.system.conftest import mail_arrives, running_system
from tests.system.harness import Mailbox, System

pytestmark = [pytest.mark.system, pytest.mark.db]

SECRET = "system-tg-secret"


@pytest.fixture
async def im_system(
    tmp_path: Path,
    temporal_dev_server: EmbeddedProcess,
    temporal_client: Client,
    nats_url: str,
    database_url: str,
) -> AsyncIterator[tuple[System, Mailbox, FakeProvider]]:
    provider = FakeProvider()
    await provider.start()
    try:
        async with running_system(
            tmp_path,
            temporal_dev_server,
            nats_url,
            database_url,
            HELPDESK_TELEGRAM_BOT_TOKEN=BOT_TOKEN,
            HELPDESK_TELEGRAM_WEBHOOK_SECRET=SECRET,
            HELPDESK_TELEGRAM_API_BASE=provider.base,
        ) as (sut, box):
            yield sut, box, provider
    finally:
        await provider.stop()


async def test_critical_telegram_message_pages_on_call_and_the_reply_reaches_the_chat(
    im_system: tuple[System, Mailbox, FakeProvider],
) -> None:
    sut, box, provider = im_system
    directory, md = sut.directory(), sut.metadata
    suffix = uuid.uuid4().hex[:6]
    org = await directory.CreateOrganization(
        dpb.CreateOrganizationRequest(name=f"Rossi Srl {suffix}", email_domains=["rossi.it"]),
        metadata=md,
    )
    contact = await directory.AddContact(
        dpb.AddContactRequest(
            organization_id=org.id,
            name="Mario Rossi",
            email=f"mario.{suffix}@rossi.it",
            telegram_user_id="5550001",
        ),
        metadata=md,
    )
    assert contact.telegram_user_id == "5550001"
    agent = await directory.CreateAgent(
        dpb.CreateAgentRequest(
            name="Anna Bianchi",
            email=f"anna.{suffix}@desk.it",
            role=pb.AGENT_ROLE_AGENT,
            on_call=True,
        ),
        metadata=md,
    )
    await directory.LinkAgentIm(
        dpb.LinkAgentImRequest(agent_id=agent.id, provider=dpb.IM_PROVIDER_TELEGRAM, id="7770001"),
        metadata=md,
    )

    update = {
        "update_id": 900001,
        "message": {
            "message_id": 17,
            "from": {"id": 5550001, "is_bot": False, "first_name": "Mario", "language_code": "it"},
            "chat": {"id": 5550001, "type": "private", "first_name": "Mario"},
            "date": 1767225600,
            "text": "Tutte le postazioni sono ferme, internet down!",
        },
    }
    url = f"http://{sut.env['HELPDESK_WEBHOOK_LISTEN']}/webhooks/telegram"
    async with aiohttp.ClientSession() as http:
        for _ in range(2):  # Telegram's retry: one ticket
            async with http.post(
                url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
            ) as reply:
                assert reply.status == 200

    async def the_ticket() -> pb.Ticket | None:
        page = await sut.tickets().ListTickets(
            tpb.ListTicketsRequest(requester_email=contact.email), metadata=md
        )
        return page.tickets[0] if page.tickets else None

    ticket = await eventually(the_ticket, timeout=60)
    assert ticket.channel == pb.CHANNEL_TELEGRAM and ticket.priority == pb.PRIORITY_URGENT
    # The on-call agent is paged by email and on Telegram; the customer hears back.
    await eventually(
        lambda: [m for m in box.messages if agent.email.lower() in str(m["To"]).lower()],
        timeout=60,
    )
    await eventually(lambda: provider.texts_to("7770001"), timeout=60)
    assert f"#{ticket.id}" in provider.texts_to("7770001")[0]
    await eventually(lambda: provider.texts_to("5550001"), timeout=60)

    await sut.tickets().AddComment(
        tpb.AddCommentRequest(
            ticket_id=ticket.id,
            request_id=uuid.uuid4().hex,
            visibility=pb.COMMENT_VISIBILITY_PUBLIC,
            author=tpb.Actor(kind=pb.AUTHOR_KIND_AGENT, id=agent.id),
            body="Stiamo riavviando il router, 5 minuti.",
        ),
        metadata=md,
    )

    def replied() -> bool:
        return any("Stiamo riavviando il router" in t for t in provider.texts_to("5550001"))

    await eventually(replied, timeout=60)
    await mail_arrives(box, ticket.id, "Stiamo riavviando il router")
    page = await sut.notify().ListNotifications(
        npb.ListNotificationsRequest(ticket_id=ticket.id),
        metadata=md,
    )
    channels = {(n.channel, n.template) for n in page.notifications}
    assert ("telegram", "im_agent_reply") in channels
    assert ("telegram", "im_urgent_page") in channels
    assert ("email", "agent_reply") in channels
    assert (await the_ticket()).id == ticket.id  # still one ticket
