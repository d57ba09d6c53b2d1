"""The workflow worker process (``python -m workflows.worker``): hosts the ticket workflow
on ``WORKFLOW_TASK_QUEUE``. Activities live in the services that own them."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from workflows.contracts import WORKFLOW_TASK_QUEUE
from workflows.ticket import TicketWorkflow

WORKFLOWS = [TicketWorkflow]


def make_worker(client: Client, task_queue: str = WORKFLOW_TASK_QUEUE) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        max_concurrent_workflow_tasks=100,
        graceful_shutdown_timeout=timedelta(seconds=10),
    )


async def main() -> None:
    # Imported here: the workflow modules stay free of service plumbing.
    from services.common.grpc_server import run_until_signal
    from services.common.settings import Settings
    from services.common.temporal_client import connect, register_search_attributes

    settings = Settings.from_env()
    client = await connect(settings.temporal_address, settings.temporal_namespace)
    await register_search_attributes(client, settings.temporal_namespace)
    worker = make_worker(client)
    logging.getLogger("helpdesk.worker").info("polling %s", WORKFLOW_TASK_QUEUE)
    task = asyncio.create_task(worker.run())
    try:
        await run_until_signal(task)
    finally:
        await worker.shutdown()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(main())
