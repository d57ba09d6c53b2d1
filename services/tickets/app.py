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
from services.common.events import EventPublisher, SecretPublisher
from services.common.grpc_server import ServiceServer
from services.common.health import (
    DependencyWatch,
    HealthPort,
    NatsCheck,
    WorkerRunner,
    database_check,
    temporal_check,
)
from services.common.lifecycle import Lifecycle
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
    async with Lifecycle("tickets") as life:
        engine = db.make_engine(settings.database_url_for("tickets"))
        life.on_close(engine.dispose)
        sessions = db.make_sessionmaker(engine)
        # Lazy: the servicers need the client object before Temporal has to answer.
        client = await connect_lazy(settings.temporal_address, settings.temporal_namespace)
        secrets_out = SecretPublisher(settings.nats_url, "helpdesk-tickets-secrets")
        life.on_close(secrets_out.close)
        publisher = EventPublisher(settings.nats_url, "helpdesk-tickets")
        life.on_close(publisher.close)
        sales_events = SalesEventPublisher(sessions, publisher)
        life.on_close(sales_events.close)
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
        signer = TokenSigner(settings.token_signing_key())
        credentials = Credentials(sessions, signer, secrets_out)

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
        nats_check = NatsCheck(settings.nats_url, "helpdesk-tickets-health")
        life.on_close(nats_check.close)
        watch = DependencyWatch(
            server.set_serving,
            {
                "database": database_check(engine),
                "temporal": temporal_check(client),
                "nats": nats_check,
            },
        )
        await server.start()
        life.on_close(lambda: server.stop(5))
        # The worker's health port listens from the start (NOT_SERVING until it polls).
        port = HealthPort.from_env(TICKETS_TASK_QUEUE)
        await life.health_port(port)
        log.info("tickets listening on %s (NOT_SERVING until ready)", settings.tickets_addr)

        async def run() -> None:
            await watch.wait_ready()
            await migrate(settings)
            await register_search_attributes(client, settings.temporal_namespace)
            await ensure_monthly_schedule(client)
            await ensure_desk_digest(client)
            # A worker needs an eagerly connected client of its own (the SDK refuses lazy
            # ones).
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
            worker_task = life.worker(WorkerRunner(worker, "activity", port))
            life.task(creator.reconcile_forever(), "creation reconciler")
            life.task(watch.run(), "dependency watch")
            life.task(sales_events.run_forever(), "sales events")
            await asyncio.wait([worker_task])
            worker_task.result()

        await life.run(run(), first=server.begin_shutdown)
