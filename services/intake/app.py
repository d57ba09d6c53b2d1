"""The intake process: ``IntakeService`` over gRPC; channels in."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc
from sqlalchemy import text

from helpdesk.v1 import directory_pb2_grpc as dgrpc
from helpdesk.v1 import intake_pb2
from helpdesk.v1 import intake_pb2_grpc as igrpc
from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.common import db
from services.common.grpc_server import ServiceServer, run_until_signal
from services.common.settings import Settings, split_hostport
from services.intake.servicer import IntakeServicer
from services.intake.smtp import MailProcessor, SupportMailHandler, start_listener

log = logging.getLogger("helpdesk.intake")

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_intake"


async def migrate(settings: Settings) -> None:
    await db.upgrade(MIGRATIONS, settings.database_url_for("intake"), VERSION_TABLE)


async def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM."""
    await migrate(settings)
    engine = db.make_engine(settings.database_url_for("intake"))
    sessions = db.make_sessionmaker(engine)
    channel = grpc.aio.insecure_channel(settings.tickets_addr)
    tickets = tgrpc.TicketServiceStub(channel)
    directory = dgrpc.DirectoryServiceStub(channel)
    servicer = IntakeServicer(sessions, tickets, directory, settings.service_token)
    wake = asyncio.Event()
    mail_handler = SupportMailHandler(sessions, {settings.mail_from, *settings.mail_aliases}, wake)
    processor = MailProcessor(sessions, tickets, directory, settings.service_token, wake)

    def register(server: grpc.aio.Server) -> None:
        igrpc.add_IntakeServiceServicer_to_server(servicer, server)

    server = ServiceServer(
        settings,
        settings.intake_addr,
        [intake_pb2.DESCRIPTOR.services_by_name["IntakeService"].full_name],
        register,
    )
    await server.start()
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    smtp_host, smtp_port = split_hostport(settings.smtp_listen)
    smtp = await start_listener(
        mail_handler, smtp_host, smtp_port, settings.mail_from.rsplit("@", 1)[-1]
    )
    processing = asyncio.create_task(processor.run_forever())
    await server.set_serving(True)
    log.info(
        "intake listening on %s; SMTP on %s for %s",
        settings.intake_addr,
        settings.smtp_listen,
        settings.mail_from,
    )
    try:
        await run_until_signal(processing)
    finally:
        smtp.close()
        processing.cancel()
        await server.stop(5)
        await channel.close(None)
        await engine.dispose()
