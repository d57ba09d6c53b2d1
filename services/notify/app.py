"""The notify process assembled: store, gRPC server, JetStream consumer, health."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from nats.js.api import DeliverPolicy
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import make_engine, make_sessionmaker, upgrade
from services.common.grpc_server import ServiceServer
from services.common.settings import Settings
from services.notify.consumer import DURABLE, EventConsumer
from services.notify.mailer import Mailer, make_mailer
from services.notify.notifier import Notifier, RetryPolicy
from services.notify.render import Renderer
from services.notify.server import SERVICE_NAME, NotifyServicer, register
from services.notify.store import DeliveryStore

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "alembic_version_notify"
HEALTH_INTERVAL_SECONDS = 5.0
STOP_TIMEOUT_SECONDS = 30.0


class NotifyApp:
    """Starts and stops every part of the notify service in the right order."""

    def __init__(
        self,
        settings: Settings,
        *,
        durable: str = DURABLE,
        deliver_policy: DeliverPolicy = DeliverPolicy.ALL,
        retry: RetryPolicy | None = None,
        mailer: Mailer | None = None,
    ) -> None:
        self.settings = settings
        self._durable = durable
        self._deliver_policy = deliver_policy
        self._retry = retry or RetryPolicy()
        self._mailer = mailer
        self._engine: AsyncEngine | None = None
        self._store: DeliveryStore | None = None
        self._server: ServiceServer | None = None
        self._consumer: EventConsumer | None = None
        self._consumer_task: asyncio.Task[None] | None = None
        self._health_task: asyncio.Task[None] | None = None
        self._serving = False

    @property
    def port(self) -> int:
        """The gRPC port actually bound (useful with ``:0``)."""
        if self._server is None:
            raise RuntimeError("NotifyApp.start() first")
        return self._server.port

    @property
    def store(self) -> DeliveryStore:
        """The delivery log."""
        if self._store is None:
            raise RuntimeError("NotifyApp.start() first")
        return self._store

    async def start(self) -> None:
        """Listen (NOT_SERVING), migrate, connect to NATS, then report SERVING and consume."""
        settings = self.settings
        if not (settings.admin_token or settings.service_token):
            log.warning("no admin or service token configured: every RPC will be refused")
        url = settings.database_url_for("notify")
        self._engine = make_engine(url)
        self._store = DeliveryStore(make_sessionmaker(self._engine))
        self._server = ServiceServer(
            settings, settings.notify_addr, [SERVICE_NAME], register(NotifyServicer(self._store))
        )
        await self._server.start()
        log.info("gRPC %s listening on port %d", SERVICE_NAME, self._server.port)
        await upgrade(MIGRATIONS_DIR, url, VERSION_TABLE)
        notifier = Notifier(
            self._store,
            Renderer(settings.auto_close_after),
            self._mailer or make_mailer(settings),
            settings.mail_from,
            self._retry,
        )
        self._consumer = EventConsumer(
            settings.nats_url,
            notifier,
            durable=self._durable,
            deliver_policy=self._deliver_policy,
            retry=self._retry,
        )
        await self._consumer.start()
        await self._store.ping()
        await self._set_serving(True)
        self._consumer_task = asyncio.create_task(self._consumer.run(), name="notify-consumer")
        self._health_task = asyncio.create_task(self._watch_health(), name="notify-health")
        relay = settings.smtp_relay or f"maildir {settings.data_dir / 'maildir'}"
        log.info("notify ready: mail via %s, from %s", relay, settings.mail_from)

    @property
    def consumer_task(self) -> asyncio.Task[None]:
        """The consumer loop; it ends only on error or stop."""
        if self._consumer_task is None:
            raise RuntimeError("NotifyApp.start() first")
        return self._consumer_task

    async def _set_serving(self, serving: bool) -> None:
        if self._server is not None and serving != self._serving:
            await self._server.set_serving(serving)
            self._serving = serving
            log.info("health: %s", "SERVING" if serving else "NOT_SERVING")

    async def _healthy(self) -> bool:
        if self._consumer is None or not self._consumer.connected or self._store is None:
            return False
        try:
            await asyncio.wait_for(self._store.ping(), HEALTH_INTERVAL_SECONDS)
        except Exception as err:
            log.warning("database does not answer: %s", err)
            return False
        return True

    async def _watch_health(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_INTERVAL_SECONDS)
            await self._set_serving(await self._healthy())

    async def stop(self) -> None:
        """Report NOT_SERVING, finish the message in hand, close everything (idempotent)."""
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
            self._health_task = None
        if self._server is not None:
            await self._set_serving(False)
        if self._consumer is not None:
            self._consumer.request_stop()
            task = self._consumer_task
            if task is not None and not task.done():
                if not self._consumer.busy:
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(task, STOP_TIMEOUT_SECONDS)
            self._consumer_task = None
            await self._consumer.close()
            self._consumer = None
        if self._server is not None:
            await self._server.stop()
            self._server = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
        log.info("notify stopped")
