"""The tickets process: TicketService and DirectoryService over gRPC, plus the Temporal
worker hosting the ticket activities on ``TICKETS_TASK_QUEUE``."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import grpc
from temporalio.worker import Worker

from helpdesk.v1 import directory_pb2, knowledge_pb2, sales_pb2, tickets_pb2
from helpdesk.v1 import directory_pb2_grpc as dgrpc
from helpdesk.v1 import knowledge_pb2_grpc as kgrpc
from helpdesk.v1 import sales_pb2_grpc as sgrpc
from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.common import db
from services.common.events import EventPublisher
from services.common.grpc_server import ServiceServer, run_until_signal
from services.common.health import (
    DependencyWatch,
    HealthPort,
    NatsCheck,
    WorkerRunner,
    database_check,
    temporal_check,
)
from services.common.secret_events import SecretPublisher
from services.common.settings import Settings
from services.common.temporal_client import connect as connect_temporal
from services.common.temporal_client import connect_lazy, register_search_attributes
from services.common.tokens import TokenSigner
from services.tickets.activities import TicketActivities
from services.tickets.creation import SecondLevelTimes, TicketCreator
from services.tickets.credentials import Credentials
from services.tickets.desk_digest import ensure_desk_digest
from services.tickets.directory import DirectoryServicer
from services.tickets.knowledge import KnowledgeServicer
from services.tickets.report_mail import ensure_monthly_schedule
from services.tickets.sales_events import SalesEventPublisher
from services.tickets.sales_rpc import SalesServicer
from services.tickets.servicer import TicketServicer
from workflows.contracts import TICKETS_TASK_QUEUE

log = logging.getLogger("helpdesk.tickets")

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_tickets"
# In-flight activities get this long to finish after SIGTERM (terminationGracePeriodSeconds
# in deploy/k8s is longer).
GRACEFUL_SHUTDOWN_TIMEOUT = timedelta(seconds=10)


async def migrate(settings: Settings) -> None:
    await db.upgrade(MIGRATIONS, settings.database_url_for("tickets"), VERSION_TABLE)


async def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM.

    The gRPC port listens at once, NOT_SERVING until the database, Temporal and NATS
    answer (and again while one of them does not); SIGTERM turns it NOT_SERVING, stops
    the worker polling (in-flight activities get the graceful shutdown timeout) and exits.
    """
    engine = db.make_engine(settings.database_url_for("tickets"))
    sessions = db.make_sessionmaker(engine)
    # Lazy: the servicers need the client object before Temporal has to answer.
    client = await connect_lazy(settings.temporal_address, settings.temporal_namespace)
    publisher = EventPublisher(settings.nats_url, "helpdesk-tickets")
    creator = TicketCreator(
        sessions,
        client,
        int(settings.auto_close_after.total_seconds()),
        second_level=SecondLevelTimes(
            start_work_within_seconds=int(settings.start_work_within.total_seconds()),
            remote_update_notice_seconds=int(settings.remote_update_notice.total_seconds()),
            third_party_reminder_days=settings.third_party_reminder_days,
        ),
    )
    activities = TicketActivities(sessions, publisher)
    secrets_out = SecretPublisher(settings.nats_url, "helpdesk-tickets-secrets")
    signer = TokenSigner(settings.token_signing_key())
    credentials = Credentials(sessions, signer, secrets_out)
    sales_events = SalesEventPublisher(sessions, publisher)

    def register(server: grpc.aio.Server) -> None:
        tgrpc.add_TicketServiceServicer_to_server(
            TicketServicer(sessions, client, creator, signer, publisher), server
        )
        dgrpc.add_DirectoryServiceServicer_to_server(
            DirectoryServicer(sessions, credentials), server
        )
        kgrpc.add_KnowledgeServiceServicer_to_server(KnowledgeServicer(sessions), server)
        sales = SalesServicer(sessions, sales_events, client)
        sgrpc.add_SalesServiceServicer_to_server(sales, server)

    server = ServiceServer(
        settings,
        settings.tickets_addr,
        [
            tickets_pb2.DESCRIPTOR.services_by_name["TicketService"].full_name,
            directory_pb2.DESCRIPTOR.services_by_name["DirectoryService"].full_name,
            knowledge_pb2.DESCRIPTOR.services_by_name["KnowledgeService"].full_name,
            sales_pb2.DESCRIPTOR.services_by_name["SalesService"].full_name,
        ],
        register,
    )
    # The worker's health port listens from the start (NOT_SERVING until it polls).
    port = HealthPort.from_env(TICKETS_TASK_QUEUE)
    runner: WorkerRunner | None = None
    nats_check = NatsCheck(settings.nats_url, "helpdesk-tickets-health")
    watch = DependencyWatch(
        server.set_serving,
        {
            "database": database_check(engine),
            "temporal": temporal_check(client),
            "nats": nats_check,
        },
    )
    await server.start()
    if port is not None:
        await port.start()
    log.info("tickets listening on %s (NOT_SERVING until ready)", settings.tickets_addr)
    background: list[asyncio.Task[None]] = []

    async def run() -> None:
        nonlocal runner
        await watch.wait_ready()
        await migrate(settings)
        await register_search_attributes(client, settings.temporal_namespace)
        await ensure_monthly_schedule(client)
        await ensure_desk_digest(client)
        # A worker needs an eagerly connected client of its own (the SDK refuses lazy ones).
        worker = Worker(
            await connect_temporal(settings.temporal_address, settings.temporal_namespace),
            task_queue=TICKETS_TASK_QUEUE,
            activities=[
                activities.record_ticket_change,
                activities.report_organizations,
                activities.send_organization_report,
                activities.send_desk_digest,
                activities.record_maintenance_change,
                activities.record_quote_change,
            ],
            max_concurrent_activities=50,
            graceful_shutdown_timeout=GRACEFUL_SHUTDOWN_TIMEOUT,
        )
        runner = WorkerRunner(worker, "activity", port)
        worker_task = runner.start()
        background.append(asyncio.create_task(creator.reconcile_forever()))
        background.append(asyncio.create_task(watch.run()))
        background.append(asyncio.create_task(sales_events.run_forever()))
        await asyncio.wait([worker_task])
        worker_task.result()

    body = asyncio.create_task(run())
    try:
        await run_until_signal(body)
    finally:
        body.cancel()  # still starting, or waiting on the tasks stopped below
        await server.begin_shutdown()
        for task in background:
            task.cancel()
        if runner is not None:
            await runner.shutdown()
        elif port is not None:
            await port.stop()
        await server.stop(5)
        await nats_check.close()
        await sales_events.close()
        await publisher.close()
        await secrets_out.close()
        await engine.dispose()
