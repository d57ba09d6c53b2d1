"""The dev_escalation process: ``DevEscalationService`` over gRPC, plus the Temporal worker
hosting the programming-ticket activities on ``DEV_ESCALATION_TASK_QUEUE``."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import grpc
from temporalio.worker import Worker

from helpdesk.v1 import dev_escalation_pb2
from helpdesk.v1 import dev_escalation_pb2_grpc as egrpc
from helpdesk.v1 import directory_pb2_grpc as dgrpc
from services.common import db, telemetry
from services.common.events import EventPublisher
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
from services.common.temporal_client import connect_lazy
from services.dev_escalation.activities import ProgActivities
from services.dev_escalation.directory import Directory
from services.dev_escalation.servicer import DevEscalationServicer
from workflows.prog_contracts import DEV_ESCALATION_TASK_QUEUE

log = logging.getLogger("helpdesk.dev_escalation")

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_dev_escalation"
SERVICE_NAME = dev_escalation_pb2.DESCRIPTOR.services_by_name["DevEscalationService"].full_name
# In-flight activities get this long to finish after SIGTERM (terminationGracePeriodSeconds
# in deploy/k8s is longer).
GRACEFUL_SHUTDOWN_TIMEOUT = timedelta(seconds=10)


async def migrate(settings: Settings) -> None:
    await db.upgrade(MIGRATIONS, settings.database_url_for("dev_escalation"), VERSION_TABLE)


async def serve(settings: Settings) -> None:
    """Run until SIGINT/SIGTERM.

    The gRPC port listens at once, NOT_SERVING until the database, Temporal and NATS
    answer (and again while one of them does not); SIGTERM turns it NOT_SERVING, stops
    the worker polling (in-flight activities get the graceful shutdown timeout) and exits.
    """
    async with Lifecycle("dev-escalation") as life:
        engine = db.make_engine(settings.database_url_for("dev_escalation"))
        life.on_close(engine.dispose)
        sessions = db.make_sessionmaker(engine)
        # Lazy: the servicer needs the client object before Temporal has to answer.
        client = await connect_lazy(settings.temporal_address, settings.temporal_namespace)
        # Recipients and names come from the DirectoryService of the tickets process.
        tickets_channel = telemetry.insecure_channel(settings.tickets_addr)
        life.on_close(lambda: tickets_channel.close(None))
        publisher = EventPublisher(settings.nats_url, "helpdesk-dev-escalation")
        life.on_close(publisher.close)
        directory = Directory(dgrpc.DirectoryServiceStub(tickets_channel), settings.service_token)
        activities = ProgActivities(sessions, publisher, directory)

        def register(server: grpc.aio.Server) -> None:
            egrpc.add_DevEscalationServiceServicer_to_server(
                DevEscalationServicer(sessions, client), server
            )

        server = ServiceServer(settings, settings.dev_escalation_addr, [SERVICE_NAME], register)
        nats_check = NatsCheck(settings.nats_url, "helpdesk-dev-escalation-health")
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
        port = HealthPort.from_env(DEV_ESCALATION_TASK_QUEUE)
        await life.health_port(port)
        log.info(
            "dev-escalation listening on %s (NOT_SERVING until ready)",
            settings.dev_escalation_addr,
        )

        async def run() -> None:
            await watch.wait_ready()
            await migrate(settings)
            # A worker needs an eagerly connected client of its own (the SDK refuses lazy ones).
            worker = Worker(
                await connect_temporal(settings.temporal_address, settings.temporal_namespace),
                task_queue=DEV_ESCALATION_TASK_QUEUE,
                activities=[
                    activities.register_programming_ticket,
                    activities.record_programming_ticket_change,
                ],
                max_concurrent_activities=50,
                graceful_shutdown_timeout=GRACEFUL_SHUTDOWN_TIMEOUT,
            )
            worker_task = life.worker(WorkerRunner(worker, "activity", port))
            life.task(watch.run(), "dependency watch")
            await asyncio.wait([worker_task])
            worker_task.result()

        await life.run(run(), first=server.begin_shutdown)
