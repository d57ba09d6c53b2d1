"""A worker process with one slow activity, run the way the help-desk workers run
(``WorkerRunner`` with its health port, ``run_until_signal``): for the SIGTERM test.

``python -m tests.deploy.slow_worker`` with HELPDESK_TEMPORAL_ADDRESS,
HELPDESK_WORKER_HEALTH_ADDR, SLOW_WORKER_QUEUE, SLOW_WORKER_DIR (marker files) and
SLOW_WORKER_SECONDS (how long the activity takes).
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.worker import Worker

from services.common.grpc_server import run_until_signal
from services.common.health import HealthPort, WorkerRunner
from services.common.temporal_client import connect

GRACEFUL_SHUTDOWN_TIMEOUT = timedelta(seconds=10)


@activity.defn(name="slow_step")
async def slow_step(seconds: float) -> str:
    marks = Path(os.environ["SLOW_WORKER_DIR"])
    (marks / "started").write_text("")
    # Shielded from nothing: a graceful shutdown lets it run to the end.
    await asyncio.sleep(seconds)
    (marks / "finished").write_text("")
    return "done"


@workflow.defn(name="SlowWorkflow", sandboxed=False)
class SlowWorkflow:
    @workflow.run
    async def run(self, seconds: float) -> str:
        return str(
            await workflow.execute_activity(
                "slow_step", seconds, start_to_close_timeout=timedelta(seconds=120)
            )
        )


async def main() -> None:
    queue = os.environ["SLOW_WORKER_QUEUE"]
    port = HealthPort.from_env(queue)
    if port is not None:
        await port.start()
    client = await connect(os.environ["HELPDESK_TEMPORAL_ADDRESS"])
    worker = Worker(
        client,
        task_queue=queue,
        workflows=[SlowWorkflow],
        activities=[slow_step],
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN_TIMEOUT,
    )
    runner = WorkerRunner(worker, "activity", port, interval=0.5)
    task = runner.start()
    try:
        await run_until_signal(task)
    finally:
        await runner.shutdown()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(main())
