"""The workflow worker process (``python -m workflows.worker``): hosts the ticket workflow
on ``WORKFLOW_TASK_QUEUE``. Activities live in the services that own them."""

from __future__ import annotations

import asyncio
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


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox production runs the workflows in (the replay test uses it too).

    Our workflow modules are deterministic and import nothing with side effects: passing
    them through spares the sandbox a re-import per workflow (measured by `make bench`: a
    third of the worker's CPU and memory per open ticket).
    """
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(
            "workflows", "opentelemetry"
        )
    )


def make_worker(client: Client, task_queue: str = WORKFLOW_TASK_QUEUE) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        max_concurrent_workflow_tasks=100,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN_TIMEOUT,
        workflow_runner=workflow_runner(),
    )


async def main() -> None:
    """Poll until SIGTERM; the health port (``HELPDESK_WORKER_HEALTH_ADDR``) says SERVING
    only while polling; SIGTERM stops polling and lets tasks in flight finish."""
    # Imported here: the workflow modules stay free of service plumbing.
    from services.common.health import HealthPort, WorkerRunner
    from services.common.lifecycle import Lifecycle
    from services.common.settings import Settings
    from services.common.temporal_client import connect, register_search_attributes

    settings = Settings.from_env()
    async with Lifecycle("workflow-worker") as life:
        # Listen at once (NOT_SERVING) so that probes reach the process while Temporal is
        # away.
        port = HealthPort.from_env(WORKFLOW_TASK_QUEUE)
        await life.health_port(port)

        async def run() -> None:
            client = await connect(settings.temporal_address, settings.temporal_namespace)
            await register_search_attributes(client, settings.temporal_namespace)
            task = life.worker(WorkerRunner(make_worker(client), "workflow", port))
            await asyncio.wait([task])
            task.result()

        await life.run(run())


if __name__ == "__main__":
    from services.entrypoint import main as start

    sys.exit(start(["workflow-worker"]))
