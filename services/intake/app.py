"""The intake process: ``IntakeService`` over gRPC; channels in."""

from __future__ import annotations

import asyncio
import logging
from email.utils import parseaddr
from pathlib import Path

import grpc

from helpdesk.v1 import directory_pb2_grpc as dgrpc
from helpdesk.v1 import intake_pb2
from helpdesk.v1 import intake_pb2_grpc as igrpc
from helpdesk.v1 import sales_pb2_grpc as sgrpc
from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.common import db, metrics, telemetry
from services.common.events import EventPublisher
from services.common.grpc_server import ServiceServer
from services.common.health import DependencyWatch, database_check
from services.common.lifecycle import Lifecycle
from services.common.settings import Settings, split_hostport
from services.intake.im_app import ImChannels
from services.intake.im_models import ImUpdate
from services.intake.im_rpc import ImGroupRpcs
from services.intake.mail_processor import MailProcessor
from services.intake.models import InboundMessage
from services.intake.sales_forward import SalesForwarder
from services.intake.servicer import IntakeServicer
from services.intake.smtp import SupportMailHandler, start_listener

log = logging.getLogger("helpdesk.intake")


class Servicer(ImGroupRpcs, IntakeServicer):
    """``IntakeService`` with the instant-messaging RPCs (``RegisterImGroup``)."""


MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_intake"


async def migrate(settings: Settings) -> None:
    await db.upgrade(MIGRATIONS, settings.database_url_for("intake"), VERSION_TABLE)


async def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM: NOT_SERVING until the database answers (and while it
    does not), NOT_SERVING for good once SIGTERM arrives."""
    async with Lifecycle("intake") as life:
        engine = db.make_engine(settings.database_url_for("intake"))
        life.on_close(engine.dispose)
        sessions = db.make_sessionmaker(engine)
        channel = telemetry.insecure_channel(settings.tickets_addr)
        life.on_close(lambda: channel.close(None))
        tickets = tgrpc.TicketServiceStub(channel)
        directory = dgrpc.DirectoryServiceStub(channel)
        # The sales office (served by the tickets process): prospects' requests and replies.
        sales = sgrpc.SalesServiceStub(channel)
        forwarder = SalesForwarder(sessions, sales, settings.service_token)
        wake = asyncio.Event()
        support = parseaddr(settings.mail_from)[1] or settings.mail_from
        # Mail events for notify (acknowledgement threading, prospects' replies, bounces).
        events = EventPublisher(settings.nats_url, "intake")
        life.on_close(events.close, timeout=3)
        servicer = Servicer(
            sessions,
            tickets,
            directory,
            settings.service_token,
            mail_wake=wake,
            max_message_bytes=settings.smtp_max_message_bytes,
            support_address=support,
            events=events,
            forwarder=forwarder,
        )
        ours = {support, *settings.mail_aliases}
        mail_handler = SupportMailHandler(
            sessions,
            {*ours, settings.fax_address},
            wake,
            max_message_bytes=settings.smtp_max_message_bytes,
        )
        processor = MailProcessor(
            sessions,
            tickets,
            directory,
            settings.service_token,
            wake,
            our_domain=support.rsplit("@", 1)[-1],
            events=events,
            our_addresses=ours,
            fax_address=settings.fax_address,
            critical_keywords=settings.critical_keywords,
            sales=sales,
            forwarder=forwarder,
            retry_base=settings.intake_retry_base,
        )
        life.on_close(processor.close, timeout=5)  # its parsing children

        def register(server: grpc.aio.Server) -> None:
            igrpc.add_IntakeServiceServicer_to_server(servicer, server)

        server = ServiceServer(
            settings,
            settings.intake_addr,
            [intake_pb2.DESCRIPTOR.services_by_name["IntakeService"].full_name],
            register,
        )
        watch = DependencyWatch(server.set_serving, {"database": database_check(engine)})
        await server.start()
        life.on_close(lambda: server.stop(5))
        im = ImChannels(settings, engine, sessions, tickets, directory)  # Telegram, WhatsApp

        async def run() -> None:
            await watch.wait_ready()
            await migrate(settings)
            smtp_host, smtp_port = split_hostport(settings.smtp_listen)
            smtp = await start_listener(
                mail_handler, smtp_host, smtp_port, settings.mail_from.rsplit("@", 1)[-1]
            )

            async def close_smtp() -> None:
                smtp.close()

            life.on_close(close_smtp)
            processing = life.task(processor.run_forever(), "mail processing")
            life.task(watch.run(), "dependency watch")
            life.on_close(im.stop)  # after its processing task is cancelled
            life.cancelling(await im.start())
            # Sales requests not yet handed over (tickets away, a crash, older rows).
            life.task(forwarder.run_forever(), "sales forwarding")
            if metrics.serving():  # the rows by status, for /metrics
                gauges = metrics.IntakeGauges(sessions, {"mail": InboundMessage, "im": ImUpdate})
                life.task(gauges.run_forever(), "intake gauges")
            log.info(
                "intake listening on %s; SMTP on %s for %s",
                settings.intake_addr,
                settings.smtp_listen,
                settings.mail_from,
            )
            await asyncio.wait([processing])
            processing.result()

        await life.run(run(), first=server.begin_shutdown)
