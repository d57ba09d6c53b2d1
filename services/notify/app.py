"""The notify process assembled: store, gRPC server, JetStream consumers, health.

Durable consumers run side by side: ``notify`` on the ticket events,
``notify-secrets`` on the short-lived secrets stream (credentials, reset codes),
``<durable>-progticket`` on the programming-ticket events (``services.notify.progticket``) and
``<durable>-sales`` on the sales office's (``services.notify.sales_out``).
They start together, all count for health, and stopping stops them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import grpc
from nats.js.api import DeliverPolicy
from sqlalchemy.ext.asyncio import AsyncEngine

from helpdesk.v1 import directory_pb2_grpc as dgrpc
from helpdesk.v1 import sales_pb2_grpc as sgrpc
from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.common import telemetry
from services.common.db import make_engine, make_sessionmaker, upgrade
from services.common.grpc_server import ServiceServer
from services.common.settings import Settings
from services.common.tokens import TokenSigner
from services.notify.agent_alerts import AgentAlerter, AgentAlerts
from services.notify.consumer import DURABLE, EventConsumer, JetStreamConsumer
from services.notify.im_out import ImOut
from services.notify.mail_events import MailEventConsumer
from services.notify.mail_files import CommentFiles
from services.notify.mailer import Mailer, make_mailer
from services.notify.maintenance_out import MaintenanceEventConsumer, MaintenanceNotifier
from services.notify.notifier import Notifier, RetryPolicy
from services.notify.progticket import ProgEventConsumer, ProgNotifier
from services.notify.quote_mails import QuoteMails
from services.notify.render import Renderer
from services.notify.reports_out import ReportEventConsumer, ReportNotifier
from services.notify.sales_out import SalesEventConsumer, SalesNotifier
from services.notify.secrets import DURABLE as SECRETS_DURABLE
from services.notify.secrets import SecretConsumer, SecretNotifier
from services.notify.server import SERVICE_NAME, NotifyServicer, register
from services.notify.store import DeliveryStore
from services.notify.ticket_notes import TicketNotes

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
        secrets_durable: str = SECRETS_DURABLE,
        deliver_policy: DeliverPolicy = DeliverPolicy.ALL,
        retry: RetryPolicy | None = None,
        mailer: Mailer | None = None,
    ) -> None:
        self.settings = settings
        self._durable = durable
        self._secrets_durable = secrets_durable
        self._deliver_policy = deliver_policy
        self._retry = retry or RetryPolicy()
        self._mailer = mailer
        self._engine: AsyncEngine | None = None
        self._store: DeliveryStore | None = None
        self._server: ServiceServer | None = None
        self._consumer: EventConsumer | None = None
        self._consumer_task: asyncio.Task[None] | None = None
        self._secrets_consumer: SecretConsumer | None = None
        self._secrets_task: asyncio.Task[None] | None = None
        self._mail_consumer: MailEventConsumer | None = None
        self._mail_task: asyncio.Task[None] | None = None
        self._prog_consumer: ProgEventConsumer | None = None
        self._sales_consumer: SalesEventConsumer | None = None
        self._sales_task: asyncio.Task[None] | None = None
        self._prog_task: asyncio.Task[None] | None = None
        self._report_consumer: ReportEventConsumer | None = None
        self._report_task: asyncio.Task[None] | None = None
        # Planned remote updates (seed 000).
        self._maintenance_consumer: MaintenanceEventConsumer | None = None
        self._maintenance_task: asyncio.Task[None] | None = None
        self._health_task: asyncio.Task[None] | None = None
        self._tickets_channel: grpc.aio.Channel | None = None
        self._im: ImOut | None = None  # Telegram / WhatsApp out
        self._agent_alerts: AgentAlerts | None = None  # the desk's agents told
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
        # Link tokens are signed with the key the tickets service checks them with.
        signer = TokenSigner(settings.token_signing_key())
        renderer = Renderer(
            settings.auto_close_after,
            signer.survey_token,
            settings.portal_url,
            link_tokens=signer.link_token,
        )
        # Answers' files are downloaded from TicketService (the service token); the same
        # channel carries the bounce notes and the directory lookups below.
        self._tickets_channel = telemetry.insecure_channel(settings.tickets_addr)
        ticket_stub = tgrpc.TicketServiceStub(self._tickets_channel)
        mailer = self._mailer or make_mailer(settings)
        notifier = Notifier(
            self._store,
            renderer,
            mailer,
            settings.mail_from,
            self._retry,
            signing_key=settings.token_signing_key(),
            files=CommentFiles(
                ticket_stub, settings.service_token, settings.mail_max_attachment_bytes
            ),
        )
        self._consumer = EventConsumer(
            settings.nats_url,
            notifier,
            durable=self._durable,
            deliver_policy=self._deliver_policy,
            retry=self._retry,
        )
        self._secrets_consumer = SecretConsumer(
            settings.nats_url,
            SecretNotifier(notifier, renderer),
            durable=self._secrets_durable,
            deliver_policy=self._deliver_policy,
            retry=self._retry,
        )
        # Bounces become internal notes on their tickets (TicketService, the service token).
        notes = TicketNotes(ticket_stub, settings.service_token)
        self._mail_consumer = MailEventConsumer(
            settings.nats_url,
            notifier,
            self._store,
            notes,
            durable=f"{self._durable}-mail",
            deliver_policy=self._deliver_policy,
            retry=self._retry,
        )
        await self._consumer.start()
        await self._secrets_consumer.start()
        self._prog_consumer = ProgEventConsumer(
            settings.nats_url,
            ProgNotifier(notifier, renderer),
            durable=f"{self._durable}-progticket",
            deliver_policy=self._deliver_policy,
            retry=self._retry,
        )
        await self._mail_consumer.start()
        await self._prog_consumer.start()
        self._im = ImOut(
            settings,
            make_sessionmaker(self._engine),
            self._store,
            dgrpc.DirectoryServiceStub(self._tickets_channel),
            durable=self._durable,
            deliver_policy=self._deliver_policy,
            retry=self._retry,
        )
        await self._im.start()
        self._agent_alerts = AgentAlerts(
            settings.nats_url,
            make_sessionmaker(self._engine),
            AgentAlerter(
                notifier,
                renderer,
                self._im.delivery,
                dgrpc.DirectoryServiceStub(self._tickets_channel),
                settings.service_token,
                settings.token_signing_key(),
                settings.mail_from,
            ),
            durable=self._durable,
            deliver_policy=self._deliver_policy,
            retry=self._retry,
        )
        await self._agent_alerts.start()
        self._report_consumer = ReportEventConsumer(
            settings.nats_url,
            ReportNotifier(notifier, renderer),
            durable=f"{self._durable}-report",
            deliver_policy=self._deliver_policy,
            retry=self._retry,
        )
        await self._report_consumer.start()
        self._maintenance_consumer = MaintenanceEventConsumer(
            settings.nats_url,
            MaintenanceNotifier(notifier, renderer),
            durable=f"{self._durable}-maintenance",
            deliver_policy=self._deliver_policy,
            retry=self._retry,
        )
        await self._maintenance_consumer.start()
        self._sales_consumer = SalesEventConsumer(
            settings.nats_url,
            SalesNotifier(notifier, renderer),
            quotes=QuoteMails(
                self._store,
                renderer,
                mailer,
                settings.mail_from,
                self._retry,
                signing_key=settings.token_signing_key(),
                sales=sgrpc.SalesServiceStub(self._tickets_channel),
                service_token=settings.service_token,
            ),
            durable=f"{self._durable}-sales",
            deliver_policy=self._deliver_policy,
            retry=self._retry,
        )
        await self._sales_consumer.start()
        await self._store.ping()
        await self._set_serving(True)
        self._consumer_task = asyncio.create_task(self._consumer.run(), name="notify-consumer")
        self._secrets_task = asyncio.create_task(
            self._secrets_consumer.run(), name="notify-secrets-consumer"
        )
        self._mail_task = asyncio.create_task(
            self._mail_consumer.run(), name="notify-mail-consumer"
        )
        self._prog_task = asyncio.create_task(
            self._prog_consumer.run(), name="notify-progticket-consumer"
        )
        self._report_task = asyncio.create_task(
            self._report_consumer.run(), name="notify-report-consumer"
        )
        self._maintenance_task = asyncio.create_task(
            self._maintenance_consumer.run(), name="notify-maintenance-consumer"
        )
        self._sales_task = asyncio.create_task(
            self._sales_consumer.run(), name="notify-sales-consumer"
        )
        self._health_task = asyncio.create_task(self._watch_health(), name="notify-health")
        relay = settings.smtp_relay or f"maildir {settings.data_dir / 'maildir'}"
        log.info("notify ready: mail via %s, from %s", relay, settings.mail_from)

    @property
    def consumer_task(self) -> asyncio.Task[None]:
        """The ticket consumer loop; it ends only on error or stop."""
        if self._consumer_task is None:
            raise RuntimeError("NotifyApp.start() first")
        return self._consumer_task

    @property
    def consumer_tasks(self) -> tuple[asyncio.Task[None], ...]:
        """Every consumer loop (tickets, secrets, and those configured: intake's mail,
        programming tickets, reports, maintenance windows); any ending is an error."""
        if self._consumer_task is None or self._secrets_task is None:
            raise RuntimeError("NotifyApp.start() first")
        mail = (self._mail_task,) if self._mail_task is not None else ()
        prog = (self._prog_task,) if self._prog_task is not None else ()
        report = (self._report_task,) if self._report_task is not None else ()
        maintenance = (self._maintenance_task,) if self._maintenance_task is not None else ()
        sales = (self._sales_task,) if self._sales_task is not None else ()
        return (
            self._consumer_task,
            self._secrets_task,
            *mail,
            *prog,
            *report,
            *maintenance,
            *sales,
        )

    async def _set_serving(self, serving: bool) -> None:
        if self._server is not None and serving != self._serving:
            await self._server.set_serving(serving)
            self._serving = serving
            log.info("health: %s", "SERVING" if serving else "NOT_SERVING")

    async def _healthy(self) -> bool:
        consumers = (
            self._consumer,
            self._secrets_consumer,
            self._mail_consumer,
            self._prog_consumer,
            self._report_consumer,
            self._maintenance_consumer,
            self._sales_consumer,
        )
        if self._store is None or any(c is None or not c.connected for c in consumers):
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
        running: list[tuple[JetStreamConsumer[Any], asyncio.Task[None] | None]] = [
            (c, t)
            for c, t in (
                (self._consumer, self._consumer_task),
                (self._secrets_consumer, self._secrets_task),
                (self._mail_consumer, self._mail_task),
                (self._prog_consumer, self._prog_task),
                (self._report_consumer, self._report_task),
                (self._maintenance_consumer, self._maintenance_task),
                (self._sales_consumer, self._sales_task),
            )
            if c is not None
        ]
        if self._agent_alerts is not None:  # before IM: it sends through IM's sender
            await self._agent_alerts.stop()
            self._agent_alerts = None
        if self._im is not None:
            await self._im.stop()
            self._im = None
        for consumer, _ in running:
            consumer.request_stop()
        await asyncio.gather(*(self._stop_consumer(c, t) for c, t in running))
        self._consumer, self._consumer_task = None, None
        self._secrets_consumer, self._secrets_task = None, None
        self._mail_consumer, self._mail_task = None, None
        self._prog_consumer, self._prog_task = None, None
        self._report_consumer, self._report_task = None, None
        self._maintenance_consumer, self._maintenance_task = None, None
        self._sales_consumer, self._sales_task = None, None
        if self._server is not None:
            await self._server.stop()
            self._server = None
        if self._tickets_channel is not None:
            await self._tickets_channel.close(None)
            self._tickets_channel = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
        log.info("notify stopped")

    @staticmethod
    async def _stop_consumer(
        consumer: JetStreamConsumer[Any], task: asyncio.Task[None] | None
    ) -> None:
        """Let the message in hand finish (cancel an idle loop), then disconnect."""
        if task is not None and not task.done():
            if not consumer.busy:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, STOP_TIMEOUT_SECONDS)
        await consumer.close()
