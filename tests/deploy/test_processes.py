"""The processes behave under Kubernetes: health NOT_SERVING -> SERVING -> NOT_SERVING across
start, dependency loss and SIGTERM; a worker finishes its activity in flight on SIGTERM; the
entry point starts processes by name and refuses the others."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from services.common.embedded import EmbeddedProcess, free_port, start_nats, start_temporal
from services.common.health import LIVENESS
from services.common.temporal_client import connect
from services.entrypoint import main as entrypoint_main
from tests.deploy.k8s import ROOT
from workflows.contracts import WORKFLOW_TASK_QUEUE

BIN = Path(sys.executable).parent
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


# The entry point ----------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize("argv", [["bogus"], [], ["tickets", "intake"]])
def test_entry_point_refuses_unknown_names(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert entrypoint_main(argv) == 2
    err = capsys.readouterr().err
    assert "helpdesk-process" in err and "workflow-worker" in err


@pytest.mark.unit
def test_entry_point_knows_dev_escalation_and_the_gateway() -> None:
    from services.entrypoint import PROCESSES

    assert {"dev-escalation", "gateway"} <= set(PROCESSES)


@pytest.mark.unit
def test_console_script_reports_a_wrong_name() -> None:
    done = subprocess.run(
        [str(BIN / "helpdesk-process"), "tikets"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert "unknown process 'tikets'" in done.stderr


@pytest.mark.db
def test_migrate_runs_every_service_migration_idempotently(
    database_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "HELPDESK_DATA_DIR": str(tmp_path), "HELPDESK_DATABASE_URL": database_url}
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-m", "services.entrypoint", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr
        for service in ("tickets", "intake", "notify", "dev-escalation", "gateway"):
            assert f"{service}: migrated" in done.stderr


# Real servers ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def temporal() -> Iterator[EmbeddedProcess]:
    server = start_temporal(None, ui=False)
    yield server
    server.stop()


@pytest.fixture
async def client(temporal: EmbeddedProcess) -> AsyncIterator[Client]:
    yield await connect(temporal.addresses["temporal"])


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *args],
            env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )


def tail(log: Path, lines: int = 40) -> str:
    """The end of a process's log, for a failure message."""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


async def status(address: str, service: str = "") -> int | None:
    """The health status, or None when nothing answers."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
        except grpc.aio.AioRpcError:
            return None
        return int(reply.status)


async def until(
    address: str,
    wanted: int,
    proc: subprocess.Popen[bytes],
    log: Path,
    service: str = "",
    within: float = 30,
) -> None:
    """Poll the health of ``service`` at ``address`` until it is ``wanted``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last = None
    while loop.time() < deadline:
        assert proc.poll() is None, f"exited {proc.returncode}:\n{tail(log)}"
        last = await status(address, service)
        if last == wanted:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{address} {service!r}: {last} after {within}s\n{tail(log)}")


async def wait_exit(proc: subprocess.Popen[bytes], within: float) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while proc.poll() is None:
        if loop.time() > deadline:
            proc.kill()
            raise AssertionError(f"still running {within}s after SIGTERM")
        await asyncio.sleep(0.1)
    return proc.returncode


@pytest.mark.system
@pytest.mark.timeout(120)
def test_register_search_attributes_is_idempotent(
    temporal: EmbeddedProcess, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "HELPDESK_TEMPORAL_ADDRESS": temporal.addresses["temporal"],
        "HELPDESK_DATA_DIR": str(tmp_path),
    }
    outputs = []
    for _ in range(2):
        done = subprocess.run(
            [str(BIN / "helpdesk-process"), "register-search-attributes"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        outputs.append(done.stderr)
    assert "TicketStatus" in outputs[0] or "already registered" in outputs[0]
    assert "already registered" in outputs[1]


@pytest.mark.system
@pytest.mark.timeout(120)
async def test_tickets_health_follows_dependencies_and_sigterm(
    temporal: EmbeddedProcess, tmp_path: Path
) -> None:
    nats_port = free_port()
    grpc_addr = f"127.0.0.1:{free_port()}"
    worker_addr = f"127.0.0.1:{free_port()}"
    log = tmp_path / "tickets.log"
    proc = spawn(
        ["-m", "services.entrypoint", "tickets"],
        {
            "HELPDESK_DATA_DIR": str(tmp_path),
            "HELPDESK_TEMPORAL_ADDRESS": temporal.addresses["temporal"],
            "HELPDESK_NATS_URL": f"nats://127.0.0.1:{nats_port}",  # nothing there yet
            "HELPDESK_TICKETS_ADDR": grpc_addr,
            "HELPDESK_WORKER_HEALTH_ADDR": worker_addr,
            "HELPDESK_ADMIN_TOKEN": "admin-" + uuid.uuid4().hex,
            "HELPDESK_SERVICE_TOKEN": "service-" + uuid.uuid4().hex,
        },
        log,
    )
    nats: EmbeddedProcess | None = None
    try:
        # Started, but NATS does not answer: listening, alive, not ready; the worker idle.
        await until(grpc_addr, NOT_SERVING, proc, log)
        await until(grpc_addr, SERVING, proc, log, service=LIVENESS)
        await until(worker_addr, NOT_SERVING, proc, log)
        await asyncio.sleep(2.5)  # a few checks later: still not ready
        assert await status(grpc_addr) == NOT_SERVING

        nats = start_nats(None, port=nats_port)
        await until(grpc_addr, SERVING, proc, log)
        await until(grpc_addr, SERVING, proc, log, service="helpdesk.v1.TicketService")
        await until(worker_addr, SERVING, proc, log, service="helpdesk-tickets")

        nats.stop()  # dependency lost: not ready, still alive
        await until(grpc_addr, NOT_SERVING, proc, log)
        assert await status(grpc_addr, LIVENESS) == SERVING

        nats = start_nats(None, port=nats_port)  # back
        await until(grpc_addr, SERVING, proc, log)

        # SIGTERM: NOT_SERVING at once (seen on a watch opened before), then a clean exit.
        async with grpc.aio.insecure_channel(grpc_addr) as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
            first = await watch.read()
            assert first.status == SERVING
            proc.send_signal(signal.SIGTERM)
            seen = await asyncio.wait_for(watch.read(), 10)
            assert seen.status == NOT_SERVING
            watch.cancel()
        assert await wait_exit(proc, 25) == 0, tail(log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if nats is not None:
            nats.stop()


@pytest.mark.system
@pytest.mark.timeout(120)
async def test_worker_finishes_the_activity_in_flight_on_sigterm(
    temporal: EmbeddedProcess, client: Client, tmp_path: Path
) -> None:
    from tests.deploy.slow_worker import GRACEFUL_SHUTDOWN_TIMEOUT

    queue = f"slow-{uuid.uuid4().hex[:8]}"
    health = f"127.0.0.1:{free_port()}"
    log = tmp_path / "worker.log"
    activity_seconds = 4.0
    proc = spawn(
        ["-m", "tests.deploy.slow_worker"],
        {
            "HELPDESK_TEMPORAL_ADDRESS": temporal.addresses["temporal"],
            "HELPDESK_WORKER_HEALTH_ADDR": health,
            "SLOW_WORKER_QUEUE": queue,
            "SLOW_WORKER_DIR": str(tmp_path),
        },
        log,
    )
    try:
        await until(health, SERVING, proc, log, service=queue)
        handle = await client.start_workflow(
            "SlowWorkflow", activity_seconds, id=f"slow-{uuid.uuid4().hex}", task_queue=queue
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while not (tmp_path / "started").exists():
            assert loop.time() < deadline, tail(log)
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        signalled = loop.time()
        await until(health, NOT_SERVING, proc, log, within=5)
        code = await wait_exit(proc, GRACEFUL_SHUTDOWN_TIMEOUT.total_seconds() + 10)
        took = loop.time() - signalled
        assert code == 0, tail(log)
        assert (tmp_path / "finished").exists(), "the activity in flight was cut short"
        # Within the grace period Kubernetes gives it (30 s), and the shutdown timeout.
        assert took < GRACEFUL_SHUTDOWN_TIMEOUT.total_seconds() + 5
        history = await handle.fetch_history()
        completed = [
            e
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        ]
        assert completed, "the result of the activity reached Temporal"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def sigterm_and_watch(address: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM while watching health: NOT_SERVING is reported, then the process exits 0."""
    async with grpc.aio.insecure_channel(address) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        assert (await watch.read()).status == SERVING
        proc.send_signal(signal.SIGTERM)
        assert (await asyncio.wait_for(watch.read(), 10)).status == NOT_SERVING
        watch.cancel()
    assert await wait_exit(proc, 25) == 0, tail(log)


@pytest.mark.system
@pytest.mark.timeout(120)
async def test_intake_health_across_start_and_sigterm(tmp_path: Path) -> None:
    grpc_addr = f"127.0.0.1:{free_port()}"
    log = tmp_path / "intake.log"
    proc = spawn(
        ["-m", "services.entrypoint", "intake"],
        {
            "HELPDESK_DATA_DIR": str(tmp_path),
            "HELPDESK_INTAKE_ADDR": grpc_addr,
            "HELPDESK_TICKETS_ADDR": f"127.0.0.1:{free_port()}",
            "HELPDESK_SMTP_LISTEN": f"127.0.0.1:{free_port()}",
            "HELPDESK_SERVICE_TOKEN": "service-" + uuid.uuid4().hex,
        },
        log,
    )
    try:
        await until(grpc_addr, SERVING, proc, log, service="helpdesk.v1.IntakeService")
        assert await status(grpc_addr, LIVENESS) == SERVING
        await sigterm_and_watch(grpc_addr, proc, log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.system
@pytest.mark.timeout(120)
async def test_workflow_worker_health_waits_for_temporal(tmp_path: Path) -> None:
    temporal_port = free_port()
    health = f"127.0.0.1:{free_port()}"
    log = tmp_path / "worker.log"
    proc = spawn(
        ["-m", "services.entrypoint", "workflow-worker"],
        {
            "HELPDESK_DATA_DIR": str(tmp_path),
            "HELPDESK_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",  # not there yet
            "HELPDESK_WORKER_HEALTH_ADDR": health,
        },
        log,
    )
    server: EmbeddedProcess | None = None
    try:
        await until(health, NOT_SERVING, proc, log, service=WORKFLOW_TASK_QUEUE)
        assert await status(health, LIVENESS) == SERVING
        server = start_temporal(None, port=temporal_port, ui=False)
        await until(health, SERVING, proc, log, service=WORKFLOW_TASK_QUEUE, within=60)
        await sigterm_and_watch(health, proc, log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if server is not None:
            server.stop()


def http_status(url: str) -> int | None:
    """The status of ``GET url``, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return None


async def until_http(
    url: str, wanted: int, proc: subprocess.Popen[bytes], log: Path, within: float = 30
) -> None:
    """Poll ``GET url`` until it answers ``wanted``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last = None
    while loop.time() < deadline:
        assert proc.poll() is None, f"exited {proc.returncode}:\n{tail(log)}"
        last = await asyncio.to_thread(http_status, url)
        if last == wanted:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"GET {url}: {last} after {within}s\n{tail(log)}")


def spawn_gateway(tmp_path: Path) -> tuple[str, subprocess.Popen[bytes], Path]:
    """``helpdesk-process gateway`` whose tickets and intake addresses have nobody there."""
    listen = f"127.0.0.1:{free_port()}"
    log = tmp_path / "gateway.log"
    proc = spawn(
        ["-m", "services.entrypoint", "gateway"],
        {
            "HELPDESK_DATA_DIR": str(tmp_path),
            "HELPDESK_GATEWAY_LISTEN": listen,
            "HELPDESK_TICKETS_ADDR": f"127.0.0.1:{free_port()}",
            "HELPDESK_INTAKE_ADDR": f"127.0.0.1:{free_port()}",
        },
        log,
    )
    return f"http://{listen}", proc, log


@pytest.mark.system
@pytest.mark.timeout(120)
async def test_gateway_is_alive_and_stops_on_sigterm(tmp_path: Path) -> None:
    """/healthz answers while the process runs, whatever the services behind it do."""
    base, proc, log = spawn_gateway(tmp_path)
    try:
        await until_http(f"{base}/healthz", 200, proc, log)
        proc.send_signal(signal.SIGTERM)
        # Requests in flight are finished, then a clean exit like every other process.
        assert await wait_exit(proc, 25) == 0, tail(log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.system
@pytest.mark.timeout(120)
async def test_gateway_is_not_ready_without_the_services_it_calls(tmp_path: Path) -> None:
    """/readyz is 503 while tickets and intake do not answer (Kubernetes routes nothing to
    it), and /healthz stays 200 (it is not restarted for another system's outage)."""
    base, proc, log = spawn_gateway(tmp_path)
    try:
        await until_http(f"{base}/healthz", 200, proc, log)
        await until_http(f"{base}/readyz", 503, proc, log, within=10)
        await asyncio.sleep(1)
        assert await asyncio.to_thread(http_status, f"{base}/readyz") == 503
        assert await asyncio.to_thread(http_status, f"{base}/healthz") == 200
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
