"""The instant-messaging half of the intake process: the webhook listener, the processor
and their publishers, started and stopped together by ``services.intake.app``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.common.events import EventPublisher, SecretPublisher
from services.common.settings import Settings, split_hostport
from services.intake.im_media import MediaFetcher
from services.intake.im_processor import ImProcessor
from services.intake.webhooks import WebhookServer

if TYPE_CHECKING:
    from helpdesk.v1.directory_pb2_grpc import DirectoryServiceAsyncStub
    from helpdesk.v1.tickets_pb2_grpc import TicketServiceAsyncStub

log = logging.getLogger("helpdesk.intake.im")


class ImChannels:
    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        tickets: TicketServiceAsyncStub,
        directory: DirectoryServiceAsyncStub,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.wake = asyncio.Event()
        self.events = EventPublisher(settings.nats_url, "intake-im")
        self.secrets = SecretPublisher(settings.nats_url, "intake-im-secrets")
        self.media = MediaFetcher(settings)
        self.processor = ImProcessor(
            sessions,
            tickets,
            directory,
            settings.service_token,
            self.wake,
            self.media,
            self.events,
            self.secrets,
            settings.critical_keywords,
            retry_base=settings.intake_retry_base,
        )
        self.webhooks = WebhookServer(settings, sessions, self.wake, self._ready)

    async def _ready(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True

    async def start(self) -> asyncio.Task[None]:
        """Listen for webhooks; the returned task processes what they store."""
        host, port = split_hostport(self.settings.webhook_listen)
        await self.webhooks.start(host, port)
        return asyncio.create_task(self.processor.run_forever(), name="intake-im")

    async def stop(self) -> None:
        await self.webhooks.stop()
        await self.media.close()
        for publisher in (self.events, self.secrets):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(publisher.close(), 3)
