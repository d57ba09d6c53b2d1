"""Health as Kubernetes reads it: readiness behind dependency checks, a health port per worker.

Names on the standard ``grpc.health.v1.Health`` service:

- ``""`` and each served gRPC service name: **readiness**. ``NOT_SERVING`` until every
  dependency of the process (database, Temporal, NATS) answers, again whenever one stops
  answering, and for good once SIGTERM arrives.
- ``liveness``: ``SERVING`` as long as the process answers at all. It never depends on
  another system, so a database outage makes pods unready instead of restarting them.

A Temporal worker has no gRPC service of its own, so it serves the same health service on
a separate port (``HELPDESK_WORKER_HEALTH_ADDR``, off unless set): ``""`` and the task
queue name are ``SERVING`` only while the worker polls; ``liveness`` as above.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.worker import Worker

from services.common import metrics

log = logging.getLogger(__name__)

LIVENESS = "liveness"
WORKER_HEALTH_ENV = "HELPDESK_WORKER_HEALTH_ADDR"
# How often dependencies are checked, and how long one check may take.
CHECK_INTERVAL_SECONDS = 2.0
FIRST_RETRY_SECONDS = 0.1
CHECK_TIMEOUT_SECONDS = 2.0

Check = Callable[[], Awaitable[None]]
"""Returns when the dependency answers; raises (or times out) when it does not."""


def worker_health_addr() -> str | None:
    """``HELPDESK_WORKER_HEALTH_ADDR`` (``0.0.0.0:8081`` in Kubernetes), None when unset."""
    return os.environ.get(WORKER_HEALTH_ENV, "").strip() or None


def status(serving: bool) -> health_pb2.HealthCheckResponse.ServingStatus.ValueType:
    return (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )


# Checks ------------------------------------------------------------------------------


def database_check(engine: AsyncEngine) -> Check:
    async def check() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    return check


def temporal_check(client: Client) -> Check:
    async def check() -> None:
        ok = await client.service_client.check_health(
            timeout=timedelta(seconds=CHECK_TIMEOUT_SECONDS)
        )
        if not ok:
            raise RuntimeError("Temporal frontend reports NOT_SERVING")

    return check


class NatsCheck:
    """Keeps its own NATS connection (reconnecting forever) and reports whether it is up."""

    def __init__(self, url: str, name: str) -> None:
        self._url = url
        self._name = name
        self._task: asyncio.Task[object] | None = None

    async def __call__(self) -> None:
        # Imported here: only processes that use NATS pay for it.
        from services.common.events import connect

        if self._task is None:
            # nats-py retries the first connection forever with max_reconnect_attempts=-1.
            self._task = asyncio.create_task(connect(self._url, self._name))
        if not self._task.done():
            raise RuntimeError(f"NATS at {self._url} does not answer yet")
        nc = self._task.result()
        if not nc.is_connected:  # type: ignore[attr-defined]
            raise RuntimeError(f"NATS at {self._url}: connection lost, reconnecting")
        await nc.flush(timeout=CHECK_TIMEOUT_SECONDS)  # type: ignore[attr-defined]

    async def close(self) -> None:
        if self._task is None:
            return
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        elif self._task.exception() is None:
            with contextlib.suppress(Exception):
                await self._task.result().close()  # type: ignore[attr-defined]
        self._task = None


async def failing(checks: Mapping[str, Check]) -> list[str]:
    """Names of the checks that do not pass now (each bounded by the check timeout)."""

    async def one(name: str, check: Check) -> str | None:
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
        except Exception as err:
            log.debug("%s does not answer: %s", name, err)
            return f"{name} ({err or type(err).__name__})"
        return None

    results = await asyncio.gather(*(one(n, c) for n, c in checks.items()))
    return [r for r in results if r is not None]


class DependencyWatch:
    """Sets readiness from dependency checks: ``wait_ready`` at start, ``run`` afterwards."""

    def __init__(
        self,
        set_serving: Callable[[bool], Awaitable[None]],
        checks: Mapping[str, Check],
        interval: float = CHECK_INTERVAL_SECONDS,
    ) -> None:
        self._set_serving = set_serving
        self._checks = dict(checks)
        self._interval = interval
        self._serving: bool | None = None

    async def wait_ready(self) -> None:
        """Return once every dependency answers (readiness stays NOT_SERVING meanwhile)."""
        said = ""
        # Soon again at first (a connection just opening), then every interval.
        delay = min(FIRST_RETRY_SECONDS, self._interval)
        while True:
            missing = await failing(self._checks)
            if not missing:
                log.info("dependencies answer: %s", ", ".join(self._checks))
                return
            now = ", ".join(missing)
            if now != said:
                log.warning("waiting for %s", now)
                said = now
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._interval)

    async def run(self) -> None:
        """Forever: SERVING while every dependency answers, NOT_SERVING otherwise."""
        while True:
            missing = await failing(self._checks)
            serving = not missing
            if serving != self._serving:
                if missing:
                    log.warning("NOT_SERVING: %s do not answer", ", ".join(missing))
                else:
                    log.info("SERVING: every dependency answers")
                await self._set_serving(serving)
                self._serving = serving
            await asyncio.sleep(self._interval)


# Workers -----------------------------------------------------------------------------


class HealthPort:
    """A gRPC server holding only the standard health service (a worker's health port)."""

    @classmethod
    def from_env(cls, task_queue: str) -> HealthPort | None:
        """The port ``HELPDESK_WORKER_HEALTH_ADDR`` asks for, None when it is unset."""
        addr = worker_health_addr()
        return cls(addr, [task_queue]) if addr else None

    def __init__(self, listen: str, names: list[str]) -> None:
        self.server = grpc.aio.server()
        self.health = health.aio.HealthServicer()  # type: ignore[attr-defined]
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.names = ["", *names]
        self.port = self.server.add_insecure_port(listen)
        if self.port == 0:
            raise RuntimeError(f"cannot listen on {listen}")
        self._stopped = False

    async def start(self) -> None:
        await self.set_serving(False)
        await self.health.set(LIVENESS, status(True))
        await self.server.start()

    async def set_serving(self, serving: bool) -> None:
        for name in self.names:
            await self.health.set(name, status(serving))

    async def stop(self, grace: float = 1.0) -> None:
        """Stop listening (idempotent: the worker's shutdown and the process both may)."""
        if not self._stopped:
            self._stopped = True
            await self.server.stop(grace)


async def is_polling(client: Client, task_queue: str, kind: str, identity: str) -> bool:
    """Whether ``identity`` is among the pollers of ``task_queue`` (``workflow``/``activity``)."""
    queue_type = (
        TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
        if kind == "workflow"
        else TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY
    )
    reply = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=queue_type,
        ),
        timeout=timedelta(seconds=CHECK_TIMEOUT_SECONDS),
    )
    return any(p.identity == identity for p in reply.pollers)


class WorkerRunner:
    """Runs one Temporal worker and reports on its health port whether it polls.

    SERVING once the server lists this worker among the task queue's pollers, and then
    while the worker runs and the Temporal frontend answers. ``shutdown`` (on SIGTERM)
    reports NOT_SERVING, stops polling, gives in-flight activities the worker's
    ``graceful_shutdown_timeout`` to finish, and returns when the worker has stopped.
    """

    def __init__(
        self,
        worker: Worker,
        kind: str,
        port: HealthPort | None,
        interval: float = CHECK_INTERVAL_SECONDS,
    ) -> None:
        self.worker = worker
        self.kind = kind
        self.task_queue = worker.task_queue
        self.port = port
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> asyncio.Task[None]:
        """Start polling; returns the worker's task (it ends only on error or shutdown)."""
        self._task = asyncio.create_task(self.worker.run(), name=f"worker {self.task_queue}")
        metrics.WORKER_POLLING.labels(task_queue=self.task_queue).set(0)
        # Watched for the health port, and for helpdesk_worker_polling when /metrics is served.
        if self.port is not None or metrics.serving():
            self._watch = asyncio.create_task(self._watch_polling(), name="worker health")
        log.info("worker polling %s", self.task_queue)
        return self._task

    async def _polling_now(self, seen: bool) -> bool:
        if self._stopping or self._task is None or self._task.done():
            return False
        client = self.worker.client
        if not seen:
            identity = str(self.worker.config().get("identity") or client.identity)
            return await is_polling(client, self.task_queue, self.kind, identity)
        await temporal_check(client)()
        return True

    async def _watch_polling(self) -> None:
        seen = False
        serving = False
        while not self._stopping:
            try:
                now = await asyncio.wait_for(self._polling_now(seen), CHECK_TIMEOUT_SECONDS * 2)
            except Exception as err:
                log.debug("worker health check failed: %s", err)
                now = False
            seen = seen or now
            if now != serving and not self._stopping:
                if self.port is not None:
                    await self.port.set_serving(now)
                metrics.WORKER_POLLING.labels(task_queue=self.task_queue).set(1 if now else 0)
                log.info("worker health: %s", "SERVING" if now else "NOT_SERVING")
                serving = now
            await asyncio.sleep(self._interval)

    async def shutdown(self) -> None:
        """NOT_SERVING, stop polling, let in-flight activities finish, stop (idempotent)."""
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        metrics.WORKER_POLLING.labels(task_queue=self.task_queue).set(0)
        if self.port is not None:
            await self.port.set_serving(False)
        if self._task is not None and not self._task.done():
            log.info("worker %s: stop polling, finishing in-flight tasks", self.task_queue)
            with contextlib.suppress(Exception):
                await self.worker.shutdown()
        if self._task is not None:
            with contextlib.suppress(BaseException):
                await self._task
        if self.port is not None:
            await self.port.stop()
            self.port = None
        log.info("worker %s stopped", self.task_queue)
