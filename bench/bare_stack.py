"""The bare service stack's processes: the help desk's parts for creating a ticket, with
nothing of the help desk's own.

``python -m bench.bare_stack front --port P --temporal ADDR --nats URL --db PATH``: a
``grpc.aio`` server with one raw-bytes method that inserts a row into SQLite through the
help desk's driver settings (``services.common.db.make_engine``: aiosqlite, WAL, writers
queued in-process), commits and starts ``BareStackTicket``; the same process runs the
activity worker (as the tickets process hosts its recording activity), whose one activity
updates the row and publishes ``barestack.created.<id>`` to the JetStream stream
``BARESTACK``.

``python -m bench.bare_stack worker --temporal ADDR``: the workflow worker, its own process
with the help desk's worker settings (``workflows.worker.make_worker``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import nats
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, insert, update
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from bench.bare import bare_workflow_runner
from services.common import db
from services.common.settings import async_database_url

WORKFLOW_QUEUE = "bench-barestack-workflows"
ACTIVITY_QUEUE = "bench-barestack-activities"
STREAM = "BARESTACK"
SUBJECT_PREFIX = "barestack.created."
SERVICE = "bench.BareStack"
METHOD = "Create"
FULL_METHOD = f"/{SERVICE}/{METHOD}"
# As workflows.worker.GRACEFUL_SHUTDOWN_TIMEOUT and the tickets process's.
GRACEFUL_SHUTDOWN_TIMEOUT = timedelta(seconds=10)

TABLE = Table(
    "bare_tickets",
    MetaData(),
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("event_seq", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False),
)


@workflow.defn(name="BareStackTicket")
class BareStackTicket:
    """Runs the one activity that records the row and publishes its event, then completes."""

    @workflow.run
    async def run(self, row_id: int) -> None:
        await workflow.execute_activity(
            "bare_stack_record",
            row_id,
            task_queue=ACTIVITY_QUEUE,
            start_to_close_timeout=timedelta(seconds=30),
        )


class Front:
    """The gRPC method and the activity, sharing one engine, Temporal client and NATS."""

    def __init__(self, sessions: Any, client: Client, js: Any) -> None:
        self.sessions = sessions
        self.client = client
        self.js = js
        self.run_id = uuid.uuid4().hex[:8]

    async def create(
        self, request: bytes, _context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        label = request.decode()
        async with self.sessions() as session:
            res = await session.execute(
                insert(TABLE).values(
                    request_id=f"{self.run_id}:{label}",
                    subject=f"La stampa non parte ({label})",
                    description="Errore 1234 in stampa fattura, versione 5.2.1, Windows 11.",
                    status="NEW",
                    event_seq=0,
                    created_at=datetime.now(UTC),
                )
            )
            await session.commit()
        row_id = int(res.inserted_primary_key[0])
        await self.client.start_workflow(
            "BareStackTicket",
            row_id,
            id=f"barestack-{self.run_id}-{row_id}",
            task_queue=WORKFLOW_QUEUE,
        )
        return str(row_id).encode()

    @activity.defn(name="bare_stack_record")
    async def record(self, row_id: int) -> None:
        async with self.sessions() as session:
            await session.execute(
                update(TABLE).where(TABLE.c.id == row_id).values(status="OPEN", event_seq=1)
            )
            await session.commit()
        event_id = f"{self.run_id}-created-{row_id}"
        body = {"type": "created", "ticket_id": row_id, "event_id": event_id}
        await self.js.publish(
            f"{SUBJECT_PREFIX}{row_id}",
            json.dumps(body).encode(),
            headers={"Nats-Msg-Id": event_id},
            timeout=10,
        )


async def _ensure_stream(js: Any) -> None:
    try:
        await js.stream_info(STREAM)
    except NotFoundError:
        await js.add_stream(StreamConfig(name=STREAM, subjects=[f"{SUBJECT_PREFIX}>"]))


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def serve_front(port: int, temporal: str, nats_url: str, db_path: Path) -> None:
    engine = db.make_engine(async_database_url(f"sqlite:///{db_path}"))
    async with engine.begin() as conn:
        await conn.run_sync(TABLE.metadata.create_all)
    client = await Client.connect(temporal)
    nc = await nats.connect(nats_url, max_reconnect_attempts=-1, reconnect_time_wait=0.5)
    js = nc.jetstream()
    await _ensure_stream(js)
    front = Front(db.make_sessionmaker(engine), client, js)
    # As the tickets process's activity worker.
    worker = Worker(
        client,
        task_queue=ACTIVITY_QUEUE,
        activities=[front.record],
        max_concurrent_activities=50,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN_TIMEOUT,
    )
    worker_task = asyncio.create_task(worker.run())
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE, {METHOD: grpc.unary_unary_rpc_method_handler(front.create)}
            ),
        )
    )
    if server.add_insecure_port(f"127.0.0.1:{port}") == 0:
        raise RuntimeError(f"cannot listen on 127.0.0.1:{port}")
    await server.start()
    print(f"bare stack front on 127.0.0.1:{port}", flush=True)
    await _until_signal()
    await server.stop(5)
    await worker.shutdown()
    await worker_task
    await nc.drain()
    await engine.dispose()


async def serve_worker(temporal: str) -> None:
    client = await Client.connect(temporal)
    # As workflows.worker.make_worker: this module passes through the sandbox as the help
    # desk's workflow modules do (workflows.worker.workflow_runner).
    worker = Worker(
        client,
        task_queue=WORKFLOW_QUEUE,
        workflows=[BareStackTicket],
        max_concurrent_workflow_tasks=100,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN_TIMEOUT,
        workflow_runner=bare_workflow_runner(),
    )
    task = asyncio.create_task(worker.run())
    print("bare stack workflow worker polling", flush=True)
    await _until_signal()
    await worker.shutdown()
    await task


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_stack")
    sub = parser.add_subparsers(dest="role", required=True)
    front = sub.add_parser("front")
    front.add_argument("--port", type=int, required=True)
    front.add_argument("--temporal", required=True)
    front.add_argument("--nats", required=True)
    front.add_argument("--db", type=Path, required=True)
    worker = sub.add_parser("worker")
    worker.add_argument("--temporal", required=True)
    args = parser.parse_args(argv)
    if args.role == "front":
        asyncio.run(serve_front(args.port, args.temporal, args.nats, args.db))
    else:
        asyncio.run(serve_worker(args.temporal))
    return 0


if __name__ == "__main__":
    # Run from the importable module, not ``__main__``: the workflow sandbox re-imports a
    # workflow's module by name.
    from bench import bare_stack

    raise SystemExit(bare_stack.main(sys.argv[1:]))
