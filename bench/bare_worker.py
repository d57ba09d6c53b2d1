"""``python -m bench.bare_worker workflows|activities TEMPORAL_ADDRESS``: one bare worker."""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import Worker

from bench.bare import BARE_ACTIVITY_QUEUE, BARE_WORKFLOW_QUEUE, BARE_WORKFLOWS, bare_noop


async def _serve(role: str, address: str) -> None:
    client = await Client.connect(address)
    if role == "workflows":
        # As workflows.worker.make_worker.
        worker = Worker(
            client,
            task_queue=BARE_WORKFLOW_QUEUE,
            workflows=BARE_WORKFLOWS,
            max_concurrent_workflow_tasks=100,
            graceful_shutdown_timeout=timedelta(seconds=10),
        )
    else:
        # As the tickets process's activity worker.
        worker = Worker(
            client,
            task_queue=BARE_ACTIVITY_QUEUE,
            activities=[bare_noop],
            max_concurrent_activities=50,
            graceful_shutdown_timeout=timedelta(seconds=10),
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(worker.run())
    await stop.wait()
    await worker.shutdown()
    await task


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("workflows", "activities"):
        print(
            "usage: python -m bench.bare_worker workflows|activities TEMPORAL_ADDRESS",
            file=sys.stderr,
        )
        return 2
    asyncio.run(_serve(argv[0], argv[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
