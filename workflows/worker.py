"""The workflow worker process (``python -m workflows.worker``): hosts the ticket workflow
on ``WORKFLOW_TASK_QUEUE``. Activities live in the services that own them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from workflows.contracts import WORKFLOW_TASK_QUEUE
from workflows.desk_digest import DeskDigestWorkflow
from workflows.maintenance import MaintenanceWorkflow
from workflows.progticket import ProgrammingTicketWorkflow
from workflows.quote import QuoteWorkflow
from workflows.reports import MonthlyReportsWorkflow
from workflows.ticket import TicketWorkflow

WORKFLOWS = [
    TicketWorkflow,
    ProgrammingTicketWorkflow,
    MonthlyReportsWorkflow,
    DeskDigestWorkflow,
    MaintenanceWorkflow,
    QuoteWorkflow,
]


# Workflow tasks in flight get this long to finish after SIGTERM (terminationGracePeriodSeconds
# in deploy/k8s is longer).
GRACEFUL_SHUTDOWN_TIMEOUT = timedelta(seconds=10)


def make_worker(client: Client, task_queue: str = WORKFLOW_TASK_QUEUE) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        max_concurrent_workflow_tasks=100,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN_TIMEOUT,
        # Our workflow modules are deterministic and import nothing with side effects:
        # passing them through spares the sandbox a re-import per workflow (measured by
        # `make bench`: a third of the worker's CPU and memory per open ticket).
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(
                "workflows", "opentelemetry"
            )
        ),
    )


async def main() -> None:
    """Poll until SIGTERM; the health port (``HELPDESK_WORKER_HEALTH_ADDR``) says SERVING
    only while polling; SIGTERM stops polling and lets tasks in flight finish."""
    # Imported here: the workflow modules stay free of service plumbing.
    from services.common.grpc_server import run_until_signal
    from services.common.health import HealthPort, WorkerRunner
    from services.common.settings import Settings
    from services.common.temporal_client import connect, register_search_attributes

    settings = Settings.from_env()
    # Listen at once (NOT_SERVING) so that probes reach the process while Temporal is away.
    port = HealthPort.from_env(WORKFLOW_TASK_QUEUE)
    if port is not None:
        await port.start()
    runner: WorkerRunner | None = None

    async def run() -> None:
        nonlocal runner
        client = await connect(settings.temporal_address, settings.temporal_namespace)
        await register_search_attributes(client, settings.temporal_namespace)
        runner = WorkerRunner(make_worker(client), "workflow", port)
        task = runner.start()
        await asyncio.wait([task])
        task.result()

    body = asyncio.create_task(run())
    try:
        await run_until_signal(body)
    finally:
        body.cancel()  # SIGTERM while still connecting
        with contextlib.suppress(BaseException):
            await body
        if runner is not None:
            await runner.shutdown()
        elif port is not None:
            await port.stop()


if __name__ == "__main__":
    from services.common import telemetry

    telemetry.start("workflow-worker")
    asyncio.run(main())
    telemetry.stop()
    # Stopped cleanly: leave without the interpreter's finalization, where a native thread
    # of the gRPC or Temporal core libraries can still call in and abort the process
    # (SIGABRT, "PyGILState_Release ... finalizing"), which would read as a crash.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
