"""The tickets process: TicketService and DirectoryService over gRPC, plus the Temporal
worker hosting the ticket activities on ``TICKETS_TASK_QUEUE``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from pathlib import Path

import grpc
from sqlalchemy import text
from temporalio.worker import Worker

from helpdesk.v1 import directory_pb2, tickets_pb2
from helpdesk.v1 import directory_pb2_grpc as dgrpc
from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.common import db
from services.common.events import EventPublisher
from services.common.grpc_server import ServiceServer, run_until_signal
from services.common.settings import Settings
from services.common.temporal_client import connect as connect_temporal
from services.common.temporal_client import register_search_attributes
from services.tickets.activities import TicketActivities
from services.tickets.creation import TicketCreator
from services.tickets.directory import DirectoryServicer
from services.tickets.servicer import TicketServicer
from workflows.contracts import TICKETS_TASK_QUEUE

log = logging.getLogger("helpdesk.tickets")

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_tickets"


async def migrate(settings: Settings) -> None:
    await db.upgrade(MIGRATIONS, settings.database_url_for("tickets"), VERSION_TABLE)


async def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM."""
    await migrate(settings)
    engine = db.make_engine(settings.database_url_for("tickets"))
    sessions = db.make_sessionmaker(engine)
    client = await connect_temporal(settings.temporal_address, settings.temporal_namespace)
    await register_search_attributes(client, settings.temporal_namespace)
    publisher = EventPublisher(settings.nats_url, "helpdesk-tickets")
    creator = TicketCreator(sessions, client, int(settings.auto_close_after.total_seconds()))
    activities = TicketActivities(sessions, publisher)

    def register(server: grpc.aio.Server) -> None:
        tgrpc.add_TicketServiceServicer_to_server(TicketServicer(sessions, client, creator), server)
        dgrpc.add_DirectoryServiceServicer_to_server(DirectoryServicer(sessions), server)

    server = ServiceServer(
        settings,
        settings.tickets_addr,
        [
            tickets_pb2.DESCRIPTOR.services_by_name["TicketService"].full_name,
            directory_pb2.DESCRIPTOR.services_by_name["DirectoryService"].full_name,
        ],
        register,
    )
    worker = Worker(
        client,
        task_queue=TICKETS_TASK_QUEUE,
        activities=[activities.record_ticket_change],
        max_concurrent_activities=50,
        graceful_shutdown_timeout=timedelta(seconds=10),
    )
    await server.start()
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    await publisher._jetstream()  # fail fast when NATS is unreachable
    await server.set_serving(True)
    log.info("tickets listening on %s", settings.tickets_addr)
    reconciler = asyncio.create_task(creator.reconcile_forever())
    worker_task = asyncio.create_task(worker.run())
    try:
        await run_until_signal(worker_task)
    finally:
        await server.set_serving(False)
        reconciler.cancel()
        with contextlib.suppress(Exception):
            await worker.shutdown()
        await server.stop(5)
        await publisher.close()
        await engine.dispose()
