"""Plain helpers of the notify tests (the fixtures are in ``tests/services/conftest.py``):
ticket events as the tickets service publishes them, an SMTP relay on loopback that keeps
what it receives, notify's settings, and waiting for mail and for the delivery log."""

from __future__ import annotations

import asyncio
import email
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from aiosmtpd.controller import Controller

from helpdesk.v1 import notify_pb2, notify_pb2_grpc
from services.common.auth import bearer_metadata
from services.common.embedded import free_port
from services.common.events import STREAM, EventPublisher, connect
from services.common.mail_threading import MessageIds
from services.common.messages.tickets import CommentPayload, TicketEventPayload
from services.common.messages.tickets import subject as ticket_subject
from services.common.settings import Settings
from services.notify.app import NotifyApp
from services.notify.models import DeliveryStatus
from services.notify.notifier import RetryPolicy

ADMIN_TOKEN = "test-admin-token"
SERVICE_TOKEN = "test-service-token"
MAIL_FROM = "assistenza@helpdesk.test"
PORTAL_URL = "http://127.0.0.1:8080"  # HELPDESK_PORTAL_URL's default: the gateway's address
FAST_RETRY = RetryPolicy(base_delay=0.1, max_delay=0.5, max_permanent_attempts=2)
DEADLINE = 15.0
T = TypeVar("T")


# -- events --------------------------------------------------------------------


def make_event(
    kind: str,
    *,
    ticket_id: int = 42,
    event_id: str | None = None,
    locale: str = "it",
    email_address: str = "mario.rossi@acme.test",
    subject: str = "La stampante in rete non stampa",
    close_reason: str = "",
    follow_up_of: int = 0,
    comment: CommentPayload | None = None,
) -> TicketEventPayload:
    """A ticket event as the tickets service publishes it."""
    return {
        "event_id": event_id or f"ticket-{ticket_id}-ev-{uuid.uuid4().hex[:8]}",
        "type": kind,
        "ticket_id": ticket_id,
        "occurred_at": "2026-03-02T09:15:00+00:00",
        "actor_kind": "SYSTEM",
        "actor_id": 0,
        "actor_name": "",
        "from_status": "",
        "to_status": "",
        "detail": "",
        "ticket": {
            "id": ticket_id,
            "display_id": f"#{ticket_id}",
            "subject": subject,
            "status": "NEW",
            "priority": "NORMAL",
            "channel": "EMAIL",
            "organization_id": 1,
            "organization_name": "ACME S.r.l.",
            "requester": {
                "id": 7,
                "name": "Mario Rossi" if locale == "it" else "John Smith",
                "email": email_address,
                "locale": locale,
            },
            "assignee": None,
            "follow_up_of": follow_up_of,
            "close_reason": close_reason,
            "auto_close_at": None,
            "auto_close_after_seconds": 14 * 86400,
        },
        "comment": comment,
    }


def make_comment(visibility: str, author_kind: str, body: str) -> CommentPayload:
    return {
        "id": uuid.uuid4().hex,
        "visibility": visibility,
        "author_kind": author_kind,
        "author_id": 3,
        "author_name": "Laura Bianchi" if author_kind == "AGENT" else "Mario Rossi",
        "body": body,
    }


# -- SMTP relay ------------------------------------------------------------------


@dataclass
class Received:
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class CollectingHandler:
    """An aiosmtpd handler that keeps every message; ``refusals`` scripts RCPT replies."""

    received: list[Received] = field(default_factory=list)
    refusals: dict[str, list[str]] = field(default_factory=dict)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        scripted = self.refusals.get(address)
        if scripted:
            return scripted.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=default_policy)
        assert isinstance(message, EmailMessage)
        self.received.append(Received(list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def subjects(self) -> list[str]:
        return [str(r.message["Subject"]) for r in self.received]


@dataclass
class Relay:
    handler: CollectingHandler
    address: str


@contextmanager
def smtp_relay() -> Iterator[Relay]:
    """A real SMTP server on a free loopback port that collects what it receives."""
    handler = CollectingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield Relay(handler, f"127.0.0.1:{port}")
    finally:
        controller.stop()


# -- notify ----------------------------------------------------------------------


def make_settings(
    data_dir: Path, database_url: str, nats_url: str, smtp_relay: str = ""
) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        temporal_address="127.0.0.1:7233",
        temporal_namespace="default",
        nats_url=nats_url,
        intake_addr="127.0.0.1:0",
        tickets_addr="127.0.0.1:0",
        dev_escalation_addr="127.0.0.1:0",
        notify_addr="127.0.0.1:0",
        smtp_listen="127.0.0.1:0",
        smtp_relay=smtp_relay,
        mail_from=MAIL_FROM,
        webhook_listen="127.0.0.1:0",
        admin_token=ADMIN_TOKEN,
        service_token=SERVICE_TOKEN,
        auto_close_after=timedelta(days=14),
        portal_url=PORTAL_URL,
    )


async def delete_consumer(nats_url: str, durable: str) -> None:
    nc = await connect(nats_url, "test-cleanup")
    try:
        await nc.jetstream().delete_consumer(STREAM, durable)
    finally:
        await nc.close()


async def publish(
    pub: EventPublisher, event: TicketEventPayload, msg_id: str | None = None
) -> None:
    await pub.publish(ticket_subject(event["type"]), msg_id or event["event_id"], dict(event))


def notification_id(app: NotifyApp, event_id: str, template: str, ticket_id: int = 0) -> str:
    """The Message-ID ``app`` writes for ``template`` of ``event_id`` (sealed with its key)."""
    ids = MessageIds(app.settings.token_signing_key(), "helpdesk.test")
    return ids.notification(event_id, template, ticket_id)


async def eventually(probe: Callable[[], T | None], what: str, within: float = DEADLINE) -> T:
    """Poll ``probe`` until it returns something truthy; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out after {within}s waiting for {what}")


async def wait_for_mail(relay: Relay, count: int) -> list[Received]:
    await eventually(lambda: len(relay.handler.received) >= count, f"{count} email(s)")
    return relay.handler.received


async def sent_rows(app: NotifyApp, count: int) -> list[Any]:
    """The first ``count`` rows of the log once they are all SENT (marked just after sending)."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        rows = list(await app.store.list_page(ticket_id=0, recipient="", after_id=0, limit=100))
        if len(rows) >= count and all(r.status == DeliveryStatus.SENT for r in rows[:count]):
            return rows
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {count} SENT deliveries")


def body_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


async def list_notifications(
    port: int, request: notify_pb2.ListNotificationsRequest, token: str | None = ADMIN_TOKEN
) -> notify_pb2.ListNotificationsResponse:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = notify_pb2_grpc.NotifyServiceStub(channel)
        metadata = bearer_metadata(token) if token else None
        return await stub.ListNotifications(request, metadata=metadata, timeout=10)
