"""When is a child ready: SERVING on the gRPC health service, polling its Temporal task queue,
or answering 200 on its HTTP readiness path."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from services.common.settings import split_hostport
from services.launcher.children import Child


class StartupError(Exception):
    """Something did not come up; the message says what and where to look."""

    def __init__(self, message: str, log_path: Path | None = None, log_offset: int = 0) -> None:
        super().__init__(message)
        # The log that tells why, and where this run's part of it starts.
        self.log_path = log_path
        self.log_offset = log_offset


class ChildDied(Exception):
    """A child exited when it should be running."""

    def __init__(self, child: Child) -> None:
        super().__init__(f"{child.name} exited with code {child.proc.returncode}")
        self.child = child


def dial_address(listen: str) -> str:
    """The address to reach a server listening on ``listen`` (wildcards become loopback)."""
    host, port = split_hostport(listen)
    if host in ("0.0.0.0", "", "[::]", "::"):
        host = "127.0.0.1"
    return f"{host}:{port}"


async def health_status(address: str, service: str, deadline: float = 2.0) -> str:
    """The health status name (``SERVING``, ...) of ``service`` at ``address``, or the gRPC
    code name (``UNAVAILABLE``, ``NOT_FOUND``) when the check itself fails."""
    async with grpc.aio.insecure_channel(dial_address(address)) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            request = health_pb2.HealthCheckRequest(service=service)
            reply = await stub.Check(request, timeout=deadline)
        except grpc.aio.AioRpcError as err:
            return str(err.code().name)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


async def wait_serving(
    child: Child, address: str, services: tuple[str, ...], within: float
) -> None:
    """Until every name in ``services`` is SERVING at ``address``; raises ``ChildDied`` if the
    child exits first and ``StartupError`` after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last: dict[str, str] = {}
    while True:
        if not child.alive():
            raise ChildDied(child)
        for service in services:
            last[service] = await health_status(address, service)
        if all(status == "SERVING" for status in last.values()):
            return
        if loop.time() > deadline:
            states = ", ".join(f"{s or '(server)'}={st}" for s, st in last.items())
            raise StartupError(
                f"{child.name} (pid {child.pid}) is not SERVING on {address} after {within:.0f}s"
                f" ({states}); see its log {child.log_path}",
                child.log_path,
                child.log_offset,
            )
        await asyncio.sleep(0.25)


async def has_pollers(client: Client, namespace: str, task_queue: str, kind: str) -> bool:
    """Whether a worker polls ``task_queue`` for ``kind`` tasks ("workflow" or "activity")."""
    queue_type = (
        TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW
        if kind == "workflow"
        else TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY
    )
    reply = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=queue_type,
        )
    )
    return len(reply.pollers) > 0


async def wait_polling(
    child: Child,
    client: Client,
    namespace: str,
    queues: tuple[tuple[str, str], ...],
    within: float,
) -> None:
    """Until a worker polls each ``(task_queue, kind)``; same errors as ``wait_serving``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        if not child.alive():
            raise ChildDied(child)
        missing = [
            f"{queue} ({kind})"
            for queue, kind in queues
            if not await has_pollers(client, namespace, queue, kind)
        ]
        if not missing:
            return
        if loop.time() > deadline:
            raise StartupError(
                f"{child.name} (pid {child.pid}) does not poll {', '.join(missing)} after"
                f" {within:.0f}s; see its log {child.log_path}",
                child.log_path,
                child.log_offset,
            )
        await asyncio.sleep(0.5)


async def http_status(url: str, deadline: float = 2.0) -> str:
    """The HTTP status (``200``, ``503``) of ``GET url``, or why there is none."""
    timeout = aiohttp.ClientTimeout(total=deadline)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, allow_redirects=False) as reply,
        ):
            return str(reply.status)
    except TimeoutError:
        return "no answer"
    except aiohttp.ClientError as err:
        return type(err).__name__


async def wait_http(child: Child, url: str, within: float) -> None:
    """Until ``GET url`` answers 200; same errors as ``wait_serving``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        if not child.alive():
            raise ChildDied(child)
        last = await http_status(url)
        if last == "200":
            return
        if loop.time() > deadline:
            raise StartupError(
                f"{child.name} (pid {child.pid}) does not answer 200 on {url} after"
                f" {within:.0f}s (last: {last}); see its log {child.log_path}",
                child.log_path,
                child.log_offset,
            )
        await asyncio.sleep(0.25)
