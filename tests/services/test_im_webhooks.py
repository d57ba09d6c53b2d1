"""Telegram and WhatsApp in and out, over real HTTP on loopback.

The webhook listener and the processor of intake run against a real tickets server
(in-process gRPC, the ticket workflow on the Temporal dev server, a real database,
nats-server); the Bot API and the Cloud API are a local aiohttp server
(``tests/im_fake_provider.py``). Payloads are shaped as the providers document them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import re
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import grpc
import nats
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import directory_pb2_grpc as dgrpc
from helpdesk.v1 import intake_pb2 as ipb
from helpdesk.v1 import intake_pb2_grpc as igrpc
from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.common import db
from services.common.auth import bearer_metadata
from services.common.events import (
    EventPublisher,
    SecretPublisher,
    ensure_secrets_stream,
    ensure_stream,
)
from services.common.grpc_server import ServiceServer
from services.common.settings import Settings, async_database_url
from services.intake.app import MIGRATIONS as INTAKE_MIGRATIONS
from services.intake.app import VERSION_TABLE as INTAKE_VERSION_TABLE
from services.intake.app import Servicer as IntakeServicer
from services.intake.im_media import MediaFetcher
from services.intake.im_models import ImUpdate
from services.intake.im_processor import ImProcessor
from services.intake.webhooks import WebhookServer
from services.notify.app import MIGRATIONS_DIR as NOTIFY_MIGRATIONS
from services.notify.app import VERSION_TABLE as NOTIFY_VERSION_TABLE
from services.notify.im_out import (
    ImDelivery,
    ImEventConsumer,
    ImSender,
    ImSendError,
    ImStore,
    SendPolicy,
)
from services.notify.notifier import RetryPolicy
from services.notify.store import DeliveryStore
from services.tickets import models as m
from services.tickets.directory import DirectoryServicer
from services.tickets.servicer import TicketServicer
from tests.grpc_faults import Faults
from tests.im_fake_provider import BOT_TOKEN, PHONE_ID, WA_TOKEN, FakeProvider
from tests.support import SIGNING_KEY, tickets_stack

pytestmark = [pytest.mark.db]

ADMIN_TOKEN = "im-admin"
SERVICE_TOKEN = "im-service"
ADMIN = bearer_metadata(ADMIN_TOKEN)
TG_SECRET = "tg-webhook-secret"
WA_SECRET = "wa-app-secret"
WA_VERIFY = "wa-verify-token"


@dataclass
class World:
    url: str  # the webhook listener
    provider: FakeProvider
    processor: ImProcessor
    intake: async_sessionmaker[AsyncSession]
    store: async_sessionmaker[AsyncSession]
    tickets: tgrpc.TicketServiceStub
    directory: dgrpc.DirectoryServiceStub
    intake_rpc: igrpc.IntakeServiceStub
    nats_url: str
    org_id: int
    contact: dpb.Contact
    settings: Settings
    http: aiohttp.ClientSession
    address: str  # the tickets server, for processors of a test's own

    async def telegram(self, update: dict[str, Any], secret: str = TG_SECRET) -> int:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
        async with self.http.post(
            f"{self.url}/webhooks/telegram", json=update, headers=headers
        ) as r:
            return r.status

    async def whatsapp(self, body: dict[str, Any], secret: str = WA_SECRET) -> int:
        raw = json.dumps(body).encode()
        sig = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        async with self.http.post(
            f"{self.url}/webhooks/whatsapp",
            data=raw,
            headers={"X-Hub-Signature-256": sig, "Content-Type": "application/json"},
        ) as r:
            return r.status

    async def process(self, timeout: float = 60) -> None:
        """Process until nothing stored is left (a busy tickets service is retried)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            while await self.processor.process_pending():
                pass
            pending = [u.id for u in await self.updates() if u.status == "RECEIVED"]
            if not pending:
                return
            assert asyncio.get_running_loop().time() < deadline, f"still unprocessed: {pending}"
            await asyncio.sleep(0.2)

    async def updates(self) -> list[ImUpdate]:
        async with self.intake() as session:
            return list(await session.scalars(select(ImUpdate).order_by(ImUpdate.received_at)))

    async def count_tickets(self) -> int:
        async with self.store() as session:
            return int(await session.scalar(select(func.count(m.Ticket.id))) or 0)

    async def tickets_of(self, contact_id: int) -> list[m.Ticket]:
        async with self.store() as session:
            rows = await session.scalars(
                select(m.Ticket).where(m.Ticket.requester_id == contact_id).order_by(m.Ticket.id)
            )
            return list(rows)

    async def comments(self, ticket_id: int) -> list[m.Comment]:
        async with self.store() as session:
            rows = await session.scalars(
                select(m.Comment)
                .where(m.Comment.ticket_id == ticket_id)
                .order_by(m.Comment.created_at)
            )
            return list(rows)

    async def link(self, contact_id: int, provider: int, im_id: str) -> None:
        await self.directory.LinkContactIm(
            dpb.LinkContactImRequest(contact_id=contact_id, provider=provider, id=im_id),
            metadata=ADMIN,
        )

    async def add_contact(self, name: str, email: str) -> dpb.Contact:
        return await self.directory.AddContact(
            dpb.AddContactRequest(organization_id=self.org_id, name=name, email=email),
            metadata=ADMIN,
        )


async def im_events(nats_url: str, kind: str = ">") -> list[dict[str, Any]]:
    """Every ``helpdesk.im.<kind>`` event now in the stream, in order."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await ensure_stream(js)
        sub = await js.subscribe(f"helpdesk.im.{kind}", ordered_consumer=True)
        found = []
        while True:
            try:
                msg = await sub.next_msg(timeout=0.5)
            except nats.errors.TimeoutError:
                break
            found.append(json.loads(msg.data))
        await sub.unsubscribe()
        return found
    finally:
        await nc.close()


async def secret_events(nats_url: str) -> list[dict[str, Any]]:
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await ensure_secrets_stream(js)
        sub = await js.subscribe("helpdesk.secret.im_link_code", ordered_consumer=True)
        found = []
        while True:
            try:
                msg = await sub.next_msg(timeout=0.5)
            except nats.errors.TimeoutError:
                break
            found.append(json.loads(msg.data))
        await sub.unsubscribe()
        return found
    finally:
        await nc.close()


async def said_to(world: World, chat_id: str) -> list[str]:
    return [
        e["template"] for e in await im_events(world.nats_url, "send") if e["chat_id"] == chat_id
    ]


def settings_for(provider: FakeProvider, **changes: Any) -> Settings:
    return dataclasses.replace(
        Settings.from_env(),
        admin_token=ADMIN_TOKEN,
        service_token=SERVICE_TOKEN,
        signing_key=SIGNING_KEY,
        telegram_bot_token=BOT_TOKEN,
        telegram_webhook_secret=TG_SECRET,
        telegram_api_base=provider.base,
        whatsapp_app_secret=WA_SECRET,
        whatsapp_verify_token=WA_VERIFY,
        whatsapp_access_token=WA_TOKEN,
        whatsapp_api_base=provider.base,
        whatsapp_phone_number_id=PHONE_ID,
        critical_keywords=("bloccato", "fermo", "internet down", "critical", "down"),
        **changes,
    )


@pytest.fixture
async def world(temporal_client: Client, database_url: str, nats_url: str) -> AsyncIterator[World]:
    provider = FakeProvider()
    await provider.start()
    async with tickets_stack(temporal_client, database_url, nats_url) as stack:
        cfg = settings_for(provider)
        url = async_database_url(database_url)
        await db.upgrade(INTAKE_MIGRATIONS, url, INTAKE_VERSION_TABLE)
        engine = db.make_engine(url)
        intake = db.make_sessionmaker(engine)
        # The intake servicer calls the tickets service on this same server (stubs below).
        intake_servicer = IntakeServicer(intake, None, None, SERVICE_TOKEN)  # type: ignore[arg-type]

        def register(server: grpc.aio.Server) -> None:
            tgrpc.add_TicketServiceServicer_to_server(
                TicketServicer(stack.sessions, temporal_client, stack.creator), server
            )
            dgrpc.add_DirectoryServiceServicer_to_server(
                DirectoryServicer(stack.sessions, stack.credentials), server
            )
            igrpc.add_IntakeServiceServicer_to_server(intake_servicer, server)

        server = ServiceServer(cfg, "127.0.0.1:0", [], register)
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        tickets = tgrpc.TicketServiceStub(channel)
        directory = dgrpc.DirectoryServiceStub(channel)
        intake_servicer.tickets = tickets  # type: ignore[assignment]
        intake_servicer.directory = directory  # type: ignore[assignment]
        events = EventPublisher(nats_url, "test-intake-im")
        secrets_out = SecretPublisher(nats_url, "test-intake-im-secrets")
        media = MediaFetcher(cfg)
        wake = asyncio.Event()
        processor = ImProcessor(
            intake,
            tickets,  # type: ignore[arg-type]
            directory,  # type: ignore[arg-type]
            SERVICE_TOKEN,
            wake,
            media,
            events,
            secrets_out,
            cfg.critical_keywords,
        )
        webhooks = WebhookServer(cfg, intake, wake)
        await webhooks.start("127.0.0.1", 0)
        contact = await directory.GetContact(
            dpb.GetContactRequest(id=stack.contact_id), metadata=ADMIN
        )
        async with aiohttp.ClientSession() as http:
            yield World(
                f"http://127.0.0.1:{webhooks.port}",
                provider,
                processor,
                intake,
                stack.sessions,
                tickets,
                directory,
                igrpc.IntakeServiceStub(channel),
                nats_url,
                stack.org_id,
                contact,
                cfg,
                http,
                f"127.0.0.1:{server.port}",
            )
        await webhooks.stop()
        await media.close()
        await events.close()
        await secrets_out.close()
        await channel.close(None)
        await server.stop(1)
        await engine.dispose()
    await provider.stop()


def tg_update(
    update_id: int,
    text: str = "",
    *,
    user: int = 555,
    chat: int | None = None,
    chat_type: str = "private",
    edited: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """A Bot API ``Update`` with a ``Message`` (https://core.telegram.org/bots/api#update)."""
    message: dict[str, Any] = {
        "message_id": update_id * 10,
        "from": {
            "id": user,
            "is_bot": False,
            "first_name": "Mario",
            "last_name": "Rossi",
            "language_code": "it",
        },
        "chat": {"id": chat if chat is not None else user, "type": chat_type}
        | ({"title": "Rossi Srl - assistenza"} if chat_type != "private" else {})
        | ({"first_name": "Mario"} if chat_type == "private" else {}),
        "date": 1767225600,
        **extra,
    }
    if text:
        message["text"] = text
    if edited:
        message["edit_date"] = 1767225700
        return {"update_id": update_id, "edited_message": message}
    return {"update_id": update_id, "message": message}


def wa_body(
    *, messages: list[dict[str, Any]] | None = None, statuses: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A Cloud API webhook notification (``whatsapp_business_account``)."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "390200000000", "phone_number_id": PHONE_ID},
    }
    if messages:
        value["contacts"] = [
            {"profile": {"name": "Lucia Verdi"}, "wa_id": msg["from"]} for msg in messages
        ]
        value["messages"] = messages
    if statuses:
        value["statuses"] = statuses
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA_ID", "changes": [{"value": value, "field": "messages"}]}],
    }


def wa_text(msg_id: str, text: str, sender: str = "393331234567") -> dict[str, Any]:
    return {
        "from": sender,
        "id": msg_id,
        "timestamp": "1767225600",
        "type": "text",
        "text": {"body": text},
    }


# -- the listener: secrets, signatures, bad bodies, duplicates ----------------------------


async def test_wrong_secret_or_signature_is_403_and_stores_nothing(world: World) -> None:
    assert await world.telegram(tg_update(1, "ciao"), secret="wrong") == 403
    assert await world.telegram(tg_update(1, "ciao"), secret="") == 403
    body = wa_body(messages=[wa_text("wamid.1", "ciao")])
    assert await world.whatsapp(body, secret="not-the-app-secret") == 403
    async with world.http.post(f"{world.url}/webhooks/whatsapp", json=body) as r:
        assert r.status == 403  # no signature at all
    assert await world.updates() == []


async def test_malformed_json_is_400_and_health_answers(world: World) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
    for raw in (b"{not json", b"[1, 2]", b'{"no_update_id": true}'):
        async with world.http.post(
            f"{world.url}/webhooks/telegram", data=raw, headers=headers
        ) as r:
            assert r.status == 400
    raw = b"{broken"
    sig = "sha256=" + hmac.new(WA_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    async with world.http.post(
        f"{world.url}/webhooks/whatsapp", data=raw, headers={"X-Hub-Signature-256": sig}
    ) as r:
        assert r.status == 400
    assert await world.updates() == []
    for path in ("/healthz", "/readyz"):
        async with world.http.get(world.url + path) as r:
            assert r.status == 200


async def test_whatsapp_verification_handshake(world: World) -> None:
    ok = {"hub.mode": "subscribe", "hub.verify_token": WA_VERIFY, "hub.challenge": "1158201444"}
    async with world.http.get(f"{world.url}/webhooks/whatsapp", params=ok) as r:
        assert r.status == 200 and await r.text() == "1158201444"
    bad = ok | {"hub.verify_token": "guess"}
    async with world.http.get(f"{world.url}/webhooks/whatsapp", params=bad) as r:
        assert r.status == 403


async def test_a_channel_without_settings_is_off(world: World) -> None:
    off = WebhookServer(
        dataclasses.replace(world.settings, telegram_webhook_secret="", whatsapp_app_secret=""),
        world.intake,
        asyncio.Event(),
    )
    await off.start("127.0.0.1", 0)
    try:
        base = f"http://127.0.0.1:{off.port}"
        async with world.http.post(f"{base}/webhooks/telegram", json=tg_update(9, "x")) as r:
            assert r.status == 404
        async with world.http.get(f"{base}/webhooks/whatsapp") as r:
            assert r.status == 404
    finally:
        await off.stop()


# -- Telegram: linking, the critical tier, comments, edits, photos, duplicates ----------


async def test_unknown_sender_links_by_code_then_opens_a_critical_ticket(world: World) -> None:
    world.contact = await world.add_contact("Paolo Bruni", "paolo.bruni@rossi.it")
    before = await world.count_tickets()
    assert await world.telegram(tg_update(100, "Buongiorno, il gestionale è bloccato")) == 200
    await world.process()
    assert await world.count_tickets() == before  # nothing for an unknown sender
    assert await said_to(world, "555") == ["im_link_request"]

    # An address nobody has: the same answer, and no code is sent anywhere.
    assert await world.telegram(tg_update(101, "nessuno@altrove.it")) == 200
    await world.process()
    assert await secret_events(world.nats_url) == []
    assert (await said_to(world, "555"))[-1] == "im_code_sent"

    assert await world.telegram(tg_update(102, f"la mia email è {world.contact.email}")) == 200
    await world.process()
    codes = await secret_events(world.nats_url)
    assert len(codes) == 1 and codes[0]["recipient"]["email"] == world.contact.email
    code = codes[0]["secret"]
    assert re.fullmatch(r"\d{6}", code)
    wrong = "000000" if code != "000000" else "111111"
    assert await world.telegram(tg_update(103, wrong)) == 200
    await world.process()
    assert (await said_to(world, "555"))[-1] == "im_code_wrong"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.directory.GetContactByIm(
            dpb.GetContactByImRequest(provider=dpb.IM_PROVIDER_TELEGRAM, id="555"), metadata=ADMIN
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND

    assert await world.telegram(tg_update(104, code)) == 200
    await world.process()
    assert (await said_to(world, "555"))[-1] == "im_linked"
    linked = await world.directory.GetContactByIm(
        dpb.GetContactByImRequest(provider=dpb.IM_PROVIDER_TELEGRAM, id="555"), metadata=ADMIN
    )
    assert linked.id == world.contact.id and linked.telegram_user_id == "555"
    # Single use: the same code again is just a message now (the contact is linked).

    # A critical message: an URGENT ticket at once, no question asked.
    update = tg_update(105, "Internet down in tutto l'ufficio, siamo fermi")
    assert await world.telegram(update) == 200
    assert await world.telegram(update) == 200  # Telegram retries: stored once
    await world.process()
    tickets = await world.tickets_of(world.contact.id)
    im_tickets = [t for t in tickets if t.channel == "TELEGRAM"]
    assert len(im_tickets) == 1
    ticket = im_tickets[0]
    assert ticket.criticality == "CRITICAL" and ticket.priority == "URGENT"
    assert ticket.subject == "Internet down in tutto l'ufficio, siamo fermi"
    assert (await said_to(world, "555"))[-1] == "im_ticket_critical"
    chats = await im_events(world.nats_url, "ticket")
    assert [(e["ticket_id"], e["provider"], e["chat_id"]) for e in chats] == [
        (ticket.id, "telegram", "555")
    ]

    # Later messages in the chat are the contact's comments; a photo is an attachment.
    world.provider.files["PHOTO-BIG"] = b"\xff\xd8\xff\xe0 a jpeg"
    photo = tg_update(
        106,
        caption="ecco lo schermo",
        photo=[
            {
                "file_id": "PHOTO-SMALL",
                "file_unique_id": "s",
                "width": 90,
                "height": 90,
                "file_size": 1200,
            },
            {
                "file_id": "PHOTO-BIG",
                "file_unique_id": "b",
                "width": 1280,
                "height": 960,
                "file_size": 11,
            },
        ],
    )
    photo["message"].pop("text", None)
    assert await world.telegram(photo) == 200
    assert await world.telegram(tg_update(107, "il router lampeggia rosso")) == 200
    await world.telegram(photo)  # a duplicate: no second comment
    assert await world.telegram(tg_update(108, "il router lampeggia ROSSO", edited=True)) == 200
    await world.process()
    comments = [c for c in await world.comments(ticket.id) if c.author_kind == "CONTACT"]
    bodies = [c.body for c in comments]
    assert bodies[-3:] == [
        "ecco lo schermo",
        "il router lampeggia rosso",
        "(messaggio modificato / edited message)\nil router lampeggia ROSSO",
    ]
    assert all(c.author_id == world.contact.id for c in comments)
    files = [r for r in world.provider.requests if r.path.endswith("/getFile")]
    assert [r.query["file_id"] for r in files] == ["PHOTO-BIG"]
    async with world.store() as session:
        attachments = list(
            await session.scalars(select(m.Attachment).where(m.Attachment.ticket_id == ticket.id))
        )
    assert [a.content for a in attachments] == [b"\xff\xd8\xff\xe0 a jpeg"]
    assert await world.count_tickets() == before + 1


async def test_question_decides_the_tier_and_oversized_media_is_refused(world: World) -> None:
    await world.link(world.contact.id, dpb.IM_PROVIDER_TELEGRAM, "600")
    assert await world.telegram(tg_update(200, "La stampante non stampa", user=600)) == 200
    await world.process()
    assert (await said_to(world, "600")) == ["im_critical_question"]
    assert [t for t in await world.tickets_of(world.contact.id) if t.channel == "TELEGRAM"] == []
    assert await world.telegram(tg_update(201, "Sì", user=600)) == 200
    await world.process()
    [ticket] = [t for t in await world.tickets_of(world.contact.id) if t.channel == "TELEGRAM"]
    assert ticket.subject == "La stampante non stampa"
    assert ticket.criticality == "CRITICAL" and ticket.priority == "URGENT"

    # Another customer answers "no": BLOCKING, priority HIGH. A 30 MB document is refused.
    other = await world.add_contact("Giulia Neri", "giulia.neri@rossi.it")
    await world.link(other.id, dpb.IM_PROVIDER_TELEGRAM, "601")
    await world.telegram(tg_update(202, "La posta non invia", user=601))
    await world.process()
    await world.telegram(tg_update(203, "no", user=601))
    document = tg_update(
        204,
        user=601,
        caption="il log",
        document={
            "file_id": "DOC-HUGE",
            "file_unique_id": "h",
            "file_name": "server.log",
            "mime_type": "text/plain",
            "file_size": 30 * 1024 * 1024,
        },
    )
    await world.telegram(document)
    await world.process()
    [blocking] = await world.tickets_of(other.id)
    assert blocking.criticality == "BLOCKING" and blocking.priority == "HIGH"
    assert (await said_to(world, "601"))[-1] == "im_media_refused"
    [told] = [e for e in await im_events(world.nats_url, "send") if e["chat_id"] == "601"][-1:]
    assert told["text"] == (
        "Il file «server.log» non è stato accettato (30 MiB, oltre il limite di 20 MiB): "
        "la richiesta è registrata senza. Se serve, ce lo invii di nuovo, entro 20 MiB per file."
    )
    [comment] = [c for c in await world.comments(blocking.id) if c.author_kind == "CONTACT"]
    assert comment.body == (
        "il log\n\nAllegato non accettato: server.log (30 MiB, oltre il limite di 20 MiB)"
    )
    assert not [r for r in world.provider.requests if r.query.get("file_id") == "DOC-HUGE"]


async def test_a_registered_group_counts_as_its_organisation(world: World) -> None:
    group = "-100123456"
    await world.link(world.contact.id, dpb.IM_PROVIDER_TELEGRAM, "700")
    # Not registered yet: ignored.
    await world.telegram(
        tg_update(300, "server down", user=700, chat=int(group), chat_type="supergroup")
    )
    await world.process()
    assert [t for t in await world.tickets_of(world.contact.id) if t.channel == "TELEGRAM"] == []
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await world.intake_rpc.RegisterImGroup(
            ipb.RegisterImGroupRequest(provider="telegram", chat_id=group, organization_id=999),
            metadata=ADMIN,
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    await world.intake_rpc.RegisterImGroup(
        ipb.RegisterImGroupRequest(
            provider="telegram", chat_id=group, organization_id=world.org_id
        ),
        metadata=ADMIN,
    )
    await world.telegram(
        tg_update(301, "server down di nuovo", user=700, chat=int(group), chat_type="supergroup")
    )
    await world.process()
    [ticket] = [t for t in await world.tickets_of(world.contact.id) if t.channel == "TELEGRAM"]
    assert ticket.priority == "URGENT"
    # An unlinked member: asked to link privately, their words an internal note.
    await world.telegram(
        tg_update(302, "confermo, anche da me", user=701, chat=int(group), chat_type="supergroup")
    )
    await world.telegram(
        tg_update(303, "ancora giù", user=701, chat=int(group), chat_type="supergroup")
    )
    await world.process()
    notes = [c for c in await world.comments(ticket.id) if c.author_kind == "SYSTEM"]
    assert [n.visibility for n in notes[-2:]] == ["INTERNAL", "INTERNAL"]
    assert "confermo, anche da me" in notes[-2].body
    assert (await said_to(world, group)).count("im_group_unlinked") == 1
    assert await world.count_tickets() == 1


# -- WhatsApp: text, document, statuses, duplicates ----------------------------------------


async def test_whatsapp_messages_and_status_callbacks(world: World) -> None:
    await world.link(world.contact.id, dpb.IM_PROVIDER_WHATSAPP, "+39 333 123 4567")
    body = wa_body(messages=[wa_text("wamid.A1", "Files corrotti sul server, critical")])
    assert await world.whatsapp(body) == 200
    assert await world.whatsapp(body) == 200  # Meta retries: stored once
    world.provider.files["MEDIA-1"] = b"%PDF-1.7 test"
    doc = {
        "from": "393331234567",
        "id": "wamid.A2",
        "timestamp": "1767225601",
        "type": "document",
        "document": {
            "caption": "il report",
            "filename": "report.pdf",
            "mime_type": "application/pdf",
            "sha256": "abc",
            "id": "MEDIA-1",
        },
    }
    assert await world.whatsapp(wa_body(messages=[doc])) == 200
    await world.process()
    [ticket] = [t for t in await world.tickets_of(world.contact.id) if t.channel == "WHATSAPP"]
    assert ticket.priority == "URGENT"
    comments = [c for c in await world.comments(ticket.id) if c.author_kind == "CONTACT"]
    assert [c.body for c in comments] == ["il report"]
    media_calls = [r for r in world.provider.requests if "MEDIA-1" in r.path]
    assert all(r.headers["Authorization"] == f"Bearer {WA_TOKEN}" for r in media_calls)
    assert len(media_calls) == 2  # the media endpoint, then its URL

    status = {
        "id": "wamid.OUT1",
        "status": "delivered",
        "timestamp": "1767225700",
        "recipient_id": "393331234567",
    }
    assert await world.whatsapp(wa_body(statuses=[status])) == 200
    assert await world.whatsapp(wa_body(statuses=[status])) == 200
    await world.process()
    statuses = await im_events(world.nats_url, "status")
    assert [(s["message_id"], s["status"]) for s in statuses] == [("wamid.OUT1", "delivered")]


# -- out: the Bot API and the Cloud API against the local server ----------------------------


async def test_sender_retries_429_and_5xx_and_paces_each_telegram_chat(
    world: World, database_url: str
) -> None:
    provider = world.provider
    sender = ImSender(world.settings, SendPolicy(base_delay=0.1))
    try:
        provider.failures["/sendMessage"] = [429, 502]
        started = asyncio.get_running_loop().time()
        first = await sender.send("telegram", "555", "Ticket #1: risposta")
        second = await sender.send("telegram", "555", "seconda")
        calls = provider.sent("/sendMessage")
        assert len(calls) == 4  # 429, 502, 200, 200
        assert calls[1].at - calls[0].at >= 0.95  # retry_after honoured
        assert calls[3].at - calls[2].at >= 0.95  # one message a second per chat
        assert asyncio.get_running_loop().time() - started >= 1.9
        assert calls[2].body == {"chat_id": "555", "text": "Ticket #1: risposta"}
        assert calls[2].path == f"/bot{BOT_TOKEN}/sendMessage"
        assert first.startswith("tg:555:") and second != first

        provider.failures["/messages"] = [429, 503]
        wamid = await sender.send("whatsapp", "393331234567", "Risposta")
        wa = provider.sent("/messages")
        assert len(wa) == 3 and wa[1].at - wa[0].at >= 0.95  # Retry-After honoured
        assert wa[2].path == f"/{PHONE_ID}/messages"
        assert wa[2].headers["Authorization"] == f"Bearer {WA_TOKEN}"
        assert wa[2].body == {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "393331234567",
            "type": "text",
            "text": {"preview_url": False, "body": "Risposta"},
        }
        assert wamid.startswith("wamid.")

        provider.failures["/sendMessage"] = [403]
        with pytest.raises(ImSendError) as refused:
            await sender.send("telegram", "556", "bloccato dall'utente")
        assert refused.value.permanent
        provider.failures["/sendMessage"] = [500] * 5
        with pytest.raises(ImSendError) as later:
            await sender.send("telegram", "557", "riprova")
        assert not later.value.permanent
    finally:
        await sender.close()

    # The delivery log: one row per message; WhatsApp statuses move it forward only.
    url = async_database_url(database_url)
    await db.upgrade(NOTIFY_MIGRATIONS, url, NOTIFY_VERSION_TABLE)
    engine = db.make_engine(url)
    try:
        sessions = db.make_sessionmaker(engine)
        store = DeliveryStore(sessions)
        delivery = ImDelivery(store, ImStore(sessions), ImSender(world.settings), RetryPolicy())
        consumer = ImEventConsumer(world.nats_url, delivery)
        send = {
            "event_id": "im-send:x:im_linked:0",
            "type": "send",
            "provider": "whatsapp",
            "chat_id": "393331234567",
            "ticket_id": 0,
            "template": "im_linked",
            "locale": "it",
            "text": "Grazie, l'account è collegato.",
        }

        async def progress() -> None:
            return None

        before = len(provider.sent("/messages"))
        assert await consumer.process(send, progress) is None
        assert await consumer.process(send, progress) is None  # redelivered: not sent again
        assert len(provider.sent("/messages")) == before + 1
        [row] = await store.list_page(ticket_id=0, recipient="", after_id=0, limit=10)
        assert row.channel == "whatsapp" and row.status == "SENT"
        assert row.message_id.startswith("wamid.")
        for status, expected in (
            ("delivered", "DELIVERED"),
            ("read", "READ"),
            ("delivered", "READ"),
        ):
            await consumer.process(
                {
                    "event_id": f"s-{status}",
                    "type": "status",
                    "provider": "whatsapp",
                    "message_id": row.message_id,
                    "status": status,
                },
                progress,
            )
            assert (await store.get(row.id)).status == expected  # type: ignore[union-attr]
        await delivery.sender.close()
    finally:
        await engine.dispose()


# -- update IDs restart; files over the limit; failing updates; replicas -------------------


async def test_a_restarted_update_id_is_a_new_message_and_names_no_file(world: World) -> None:
    """The Bot API starts update IDs again after a quiet week: an update is known by its
    chat and message, and files are named after the message, never the update."""
    await world.link(world.contact.id, dpb.IM_PROVIDER_TELEGRAM, "800")
    assert await world.telegram(tg_update(5, "Il server è down", user=800)) == 200
    await world.process()
    [ticket] = [t for t in await world.tickets_of(world.contact.id) if t.channel == "TELEGRAM"]
    world.provider.files["DOC-77"] = b"%PDF-1.7 il log"
    document = {"file_id": "DOC-77", "file_unique_id": "d77", "mime_type": "application/pdf"}
    again = tg_update(5, user=800, message_id=77, caption="il log", document=document)
    assert await world.telegram(again) == 200
    assert await world.telegram(again) == 200  # Telegram retries it: stored once
    await world.process()
    assert sorted(u.external_id for u in await world.updates()) == ["800:50", "800:77"]
    comments = [c for c in await world.comments(ticket.id) if c.author_kind == "CONTACT"]
    assert [c.body for c in comments] == ["il log"]
    async with world.store() as session:
        names = list(
            await session.scalars(
                select(m.Attachment.filename).where(m.Attachment.ticket_id == ticket.id)
            )
        )
    assert names == ["document-77"]


async def test_whatsapp_files_over_the_limit_or_oddly_typed(world: World) -> None:
    """A document over the system's limit (20 MiB) is named on the ticket and to the
    sender, the ticket is made without it; a MIME type the tickets service would refuse
    does not lose the file."""
    await world.link(world.contact.id, dpb.IM_PROVIDER_WHATSAPP, "+39 333 765 4321")
    sender = "393337654321"
    world.provider.files["MEDIA-BIG"] = b"\0" * (21 * 1024 * 1024)  # never downloaded
    world.provider.files["MEDIA-ODD"] = b"dati"
    world.provider.mime_types["MEDIA-ODD"] = "application/" + "x" * 150

    def document(msg_id: str, media_id: str, name: str, caption: str) -> dict[str, Any]:
        return {
            "from": sender,
            "id": msg_id,
            "timestamp": "1767225600",
            "type": "document",
            "document": {"caption": caption, "filename": name, "id": media_id},
        }

    big = document("wamid.BIG", "MEDIA-BIG", "video.mp4", "Sistema down, ecco il video")
    assert await world.whatsapp(wa_body(messages=[big])) == 200
    await world.process()
    [ticket] = [t for t in await world.tickets_of(world.contact.id) if t.channel == "WHATSAPP"]
    assert ticket.description == (
        "Sistema down, ecco il video\n\n"
        "Allegato non accettato: video.mp4 (21 MiB, oltre il limite di 20 MiB)"
    )
    told = [e for e in await im_events(world.nats_url, "send") if e["chat_id"] == sender]
    assert [e["template"] for e in told] == ["im_ticket_critical", "im_media_refused"]
    assert "(21 MiB, oltre il limite di 20 MiB)" in told[-1]["text"]

    odd = document("wamid.ODD", "MEDIA-ODD", "strano.bin", "e questo")
    assert await world.whatsapp(wa_body(messages=[odd])) == 200
    await world.process()
    [row] = [u for u in await world.updates() if u.external_id == "wamid.ODD"]
    assert row.status == "COMMENT_ADDED", row.detail
    async with world.store() as session:
        kept = (
            await session.execute(
                select(m.Attachment.filename, m.Attachment.content_type).where(
                    m.Attachment.ticket_id == ticket.id
                )
            )
        ).all()
    assert kept == [("strano.bin", "application/octet-stream")]


def own_processor(world: World, channel: grpc.aio.Channel, **options: Any) -> ImProcessor:
    return ImProcessor(
        world.intake,
        tgrpc.TicketServiceStub(channel),  # type: ignore[arg-type]
        dgrpc.DirectoryServiceStub(channel),  # type: ignore[arg-type]
        SERVICE_TOKEN,
        asyncio.Event(),
        world.processor.media,
        world.processor.events,  # type: ignore[arg-type]
        world.processor.secrets_out,
        world.settings.critical_keywords,
        **options,
    )


async def test_a_failing_update_gives_up_and_holds_no_other_chat(world: World) -> None:
    other = await world.add_contact("Giulia Neri", "giulia.neri@rossi.it")
    await world.link(world.contact.id, dpb.IM_PROVIDER_TELEGRAM, "810")
    await world.link(other.id, dpb.IM_PROVIDER_TELEGRAM, "811")
    faults = Faults("VELENO-7f3a")
    channel = grpc.aio.insecure_channel(world.address, interceptors=[faults])
    processor = own_processor(world, channel, max_failures=3, retry_base=timedelta(seconds=0.5))
    try:
        await world.telegram(tg_update(400, "VELENO-7f3a server down", user=810))
        await world.telegram(tg_update(401, "server down anche qui", user=811))
        # One update a pass: the poisoned one, first in line, waits; the next goes on.
        assert not await processor.process_pending(batch=1)
        assert await processor.process_pending(batch=1)
        assert [t.channel for t in await world.tickets_of(other.id)] == ["TELEGRAM"]
        deadline = asyncio.get_running_loop().time() + 30
        while [u for u in await world.updates() if u.status == "RECEIVED"]:
            assert asyncio.get_running_loop().time() < deadline
            if not await processor.process_pending():
                await asyncio.sleep(0.1)
    finally:
        await channel.close(None)
    [poisoned] = [u for u in await world.updates() if u.external_id == "810:4000"]
    assert poisoned.status == "FAILED"
    assert poisoned.detail == "gave up after 3 failed attempts: INTERNAL: poisoned by the test"
    assert faults.refused == 3
    assert [t for t in await world.tickets_of(world.contact.id) if t.channel == "TELEGRAM"] == []


async def test_two_replicas_process_each_update_once(world: World) -> None:
    users = [820, 821, 822]
    for n, user in enumerate(users):
        contact = await world.add_contact(f"Utente {n}", f"utente{n}@rossi.it")
        await world.link(contact.id, dpb.IM_PROVIDER_TELEGRAM, str(user))
    counted = [Faults(), Faults()]
    channels = [grpc.aio.insecure_channel(world.address, interceptors=[f]) for f in counted]
    first, second = (
        own_processor(world, channel, replica=f"replica-{n}")
        for n, channel in enumerate(channels, 1)
    )
    try:
        await world.telegram(tg_update(500, "server down", user=users[0]))
        [update] = await world.updates()
        # Both take up the same update at the same moment: one of them processes it.
        results = await asyncio.gather(first.process(update.id), second.process(update.id))
        assert sorted(results) == [False, True]
        # Then a backlog, three chats with three messages each, drained by both at once.
        for n in range(3):
            for user in users:
                await world.telegram(tg_update(600 + 10 * n + user % 10, f"down {n}", user=user))
        for _ in range(30):
            await asyncio.gather(first.process_pending(), second.process_pending())
            if not [u for u in await world.updates() if u.status == "RECEIVED"]:
                break
    finally:
        for channel in channels:
            await channel.close(None)
    assert {u.status for u in await world.updates()} <= {"TICKET_CREATED", "COMMENT_ADDED"}
    handed_on = counted[0].calls + counted[1].calls
    assert handed_on == Counter({"CreateTicket": 3, "AddComment": 7}), handed_on
    for user in users:
        said = await said_to(world, str(user))
        assert said.count("im_ticket_critical") == 1, (user, said)
