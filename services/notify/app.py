"""The notify process assembled: store, gRPC server, JetStream consumers, health.

Durable consumers run side by side: ``notify`` on the ticket events,
``notify-secrets`` on the short-lived secrets stream (credentials, reset codes),
``<durable>-progticket`` on the programming-ticket events (``services.notify.progticket``) and
``<durable>-sales`` on the sales office's (``services.notify.sales_out``).
They start together, all count for health, and stopping stops them all.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from nats.js.api import DeliverPolicy

from helpdesk.v1 import directory_pb2_grpc as dgrpc
from helpdesk.v1 import sales_pb2_grpc as sgrpc
from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.common import telemetry
from services.common.db import make_engine, make_sessionmaker, upgrade
from services.common.grpc_server import ServiceServer
from services.common.lifecycle import Lifecycle
from services.common.settings import Settings
from services.common.tokens import TokenSigner
from services.notify.agent_alerts import AgentAlerter, AgentAlerts
from services.notify.consumer import DURABLE, ConsumerGroup, EventConsumer
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


class NotifyApp:
    """Starts and stops every part of the notify service in the right order: what
    ``start`` opens registers its close where it is opened (``Lifecycle``), and ``stop``
    runs them in reverse."""

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
        self._life: Lifecycle | None = None
        self._store: DeliveryStore | None = None
        self._server: ServiceServer | None = None
        # The mail consumers: ticket events, secrets, intake's mail, programming tickets,
        # reports, maintenance windows, the sales office.
        self._mail: ConsumerGroup | None = None
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

    @property
    def consumer_tasks(self) -> tuple[asyncio.Task[None], ...]:
        """Every mail consumer's loop; any ending is an error."""
        if self._mail is None or not self._mail.tasks:
            raise RuntimeError("NotifyApp.start() first")
        return tuple(self._mail.tasks)

    async def start(self) -> None:
        """Listen (NOT_SERVING), migrate, connect to NATS, then report SERVING and consume."""
        settings = self.settings
        if not (settings.admin_token or settings.service_token):
            log.warning("no admin or service token configured: every RPC will be refused")
        life = self._life = Lifecycle("notify")
        await life.__aenter__()
        try:
            await self._start(life, settings)
        except BaseException:
            await self.stop()
            raise

    async def _start(self, life: Lifecycle, settings: Settings) -> None:
        url = settings.database_url_for("notify")
        engine = make_engine(url)
        life.on_close(engine.dispose)
        sessions = make_sessionmaker(engine)  # the delivery log's, IM's and the alerts'
        self._store = store = DeliveryStore(sessions)
        server = self._server = ServiceServer(
            settings, settings.notify_addr, [SERVICE_NAME], register(NotifyServicer(store))
        )
        await server.start()
        life.on_close(server.stop)
        log.info("gRPC %s listening on port %d", SERVICE_NAME, server.port)
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
        # channel carries the bounce notes, the quotes' PDFs and the directory lookups.
        channel = telemetry.insecure_channel(settings.tickets_addr)
        life.on_close(lambda: channel.close(None))
        ticket_stub = tgrpc.TicketServiceStub(channel)
        directory = dgrpc.DirectoryServiceStub(channel)
        mailer = self._mailer or make_mailer(settings)
        life.on_close(mailer.close)  # after every consumer that sends through it
        notifier = Notifier(
            store,
            renderer,
            mailer,
            settings.mail_from,
            self._retry,
            signing_key=settings.token_signing_key(),
            files=CommentFiles(
                ticket_stub, settings.service_token, settings.mail_max_attachment_bytes
            ),
        )
        quotes = QuoteMails(
            store,
            renderer,
            mailer,
            settings.mail_from,
            self._retry,
            signing_key=settings.token_signing_key(),
            sales=sgrpc.SalesServiceStub(channel),
            service_token=settings.service_token,
        )
        options: dict[str, Any] = {"deliver_policy": self._deliver_policy, "retry": self._retry}
        nats = settings.nats_url
        self._mail = mail = ConsumerGroup(
            [
                EventConsumer(nats, notifier, durable=self._durable, **options),
                SecretConsumer(
                    nats,
                    SecretNotifier(notifier, renderer),
                    durable=self._secrets_durable,
                    **options,
                ),
                # Bounces become internal notes on their tickets (the service token).
                MailEventConsumer(
                    nats,
                    notifier,
                    store,
                    TicketNotes(ticket_stub, settings.service_token),
                    durable=f"{self._durable}-mail",
                    **options,
                ),
                ProgEventConsumer(
                    nats,
                    ProgNotifier(notifier, renderer),
                    durable=f"{self._durable}-progticket",
                    **options,
                ),
                ReportEventConsumer(
                    nats,
                    ReportNotifier(notifier, renderer),
                    durable=f"{self._durable}-report",
                    **options,
                ),
                MaintenanceEventConsumer(
                    nats,
                    MaintenanceNotifier(notifier, renderer),
                    durable=f"{self._durable}-maintenance",
                    **options,
                ),
                SalesEventConsumer(
                    nats,
                    SalesNotifier(notifier, renderer),
                    quotes=quotes,
                    durable=f"{self._durable}-sales",
                    **options,
                ),
            ]
        )
        # Each finishes the message in hand, after the chat parts have stopped.
        life.on_close(mail.stop)
        await mail.connect()
        im = ImOut(  # Telegram / WhatsApp out
            settings,
            sessions,
            store,
            directory,
            durable=self._durable,
            **options,
        )
        life.on_close(im.stop)
        await im.start()
        alerts = AgentAlerts(  # the desk's agents told
            nats,
            sessions,
            AgentAlerter(
                notifier,
                renderer,
                im.delivery,
                directory,
                settings.service_token,
                settings.token_signing_key(),
                settings.mail_from,
            ),
            durable=self._durable,
            **options,
        )
        life.on_close(alerts.stop)  # before IM's: it sends through IM's sender
        await alerts.start()
        await store.ping()
        life.on_close(lambda: self._set_serving(False))
        await self._set_serving(True)
        mail.run()
        life.task(self._watch_health(), "notify-health")
        relay = settings.smtp_relay or f"maildir {settings.data_dir / 'maildir'}"
        log.info("notify ready: mail via %s, from %s", relay, settings.mail_from)

    async def _set_serving(self, serving: bool) -> None:
        if self._server is not None and serving != self._serving:
            await self._server.set_serving(serving)
            self._serving = serving
            log.info("health: %s", "SERVING" if serving else "NOT_SERVING")

    async def _healthy(self) -> bool:
        if self._store is None or self._mail is None or not self._mail.connected:
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
        """Report NOT_SERVING, finish the messages in hand, close everything (idempotent)."""
        life, self._life = self._life, None
        if life is None:
            return
        await life.__aexit__(None, None, None)
        self._mail, self._server = None, None
        log.info("notify stopped")


async def serve(settings: Settings) -> None:
    """Run notify until SIGINT/SIGTERM, then stop it cleanly."""
    app = NotifyApp(settings)
    async with Lifecycle("notify process") as life:
        life.on_close(app.stop)

        async def run() -> None:
            await app.start()  # NOT_SERVING until the database and NATS answer
            tasks = app.consumer_tasks
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                if task.done():
                    task.result()  # a consumer loop that ends is an error

        await life.run(run())
