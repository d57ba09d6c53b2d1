"""``python -m bench.bare_worker workflows|activities TEMPORAL_ADDRESS [--relay HOST:PORT]
[--nats URL] [--metrics PORT]``: one bare worker. With ``--relay`` the activity worker also
hosts ``bare_send_mail`` (``bench.bare_mail``); with ``--nats`` its ``bare_noop`` publishes
that it ran (``bench.bare_publish``); with ``--metrics`` the process serves ``/metrics`` on
that loopback port as the help desk's processes do (``services.common.metrics``: the
Temporal SDK's metrics too, e.g. its sticky cache's)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from bench.bare import (
    BARE_ACTIVITY_QUEUE,
    BARE_WORKFLOW_QUEUE,
    BARE_WORKFLOWS,
    bare_noop,
    bare_workflow_runner,
)


async def _serve(role: str, address: str, relay: str, nats_url: str) -> None:
    client = await Client.connect(address)
    mailer: Any = None
    publisher: Any = None
    if role == "workflows":
        # As workflows.worker.make_worker.
        worker = Worker(
            client,
            task_queue=BARE_WORKFLOW_QUEUE,
            workflows=BARE_WORKFLOWS,
            max_concurrent_workflow_tasks=100,
            graceful_shutdown_timeout=timedelta(seconds=10),
            workflow_runner=bare_workflow_runner(),
        )
    else:
        activities: list[Any] = [bare_noop]
        if nats_url:
            from bench.bare_publish import BarePublisher

            publisher = await BarePublisher.connect(nats_url)
            activities = [publisher.done]
        if relay:
            from bench.bare_mail import BareMailer

            mailer = BareMailer(relay)
            activities.append(mailer.send)
        # As the tickets process's activity worker.
        worker = Worker(
            client,
            task_queue=BARE_ACTIVITY_QUEUE,
            activities=activities,
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
    if mailer is not None:
        await mailer.close()
    if publisher is not None:
        await publisher.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_worker")
    parser.add_argument("role", choices=("workflows", "activities"))
    parser.add_argument("temporal_address")
    parser.add_argument("--relay", default="", help="host:port: also host bare_send_mail")
    parser.add_argument("--nats", default="", help="URL: bare_noop publishes (bare_publish)")
    parser.add_argument("--metrics", type=int, default=0, help="serve /metrics on this port")
    args = parser.parse_args(argv)
    if args.metrics:
        # Before the first client: it keeps the runtime it started on.
        from services.common import metrics

        metrics.start_from_env(
            f"bare-{args.role}", {metrics.METRICS_ADDR_ENV: f"127.0.0.1:{args.metrics}"}
        )
    asyncio.run(_serve(args.role, args.temporal_address, args.relay, args.nats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
