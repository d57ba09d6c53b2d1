"""What the scenarios share: servers on free ports, the help desk's processes, the bare
workers, event listening on NATS, process memory, latency statistics."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import nats
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from services.common.embedded import EmbeddedProcess, start_nats, start_temporal
from services.common.temporal_client import connect, register_search_attributes

ROOT = Path(__file__).resolve().parent.parent

# The system tests' harness starts every process exactly as ``make run`` does; the bench uses
# it as is (imported dynamically: it is test code, outside the bench's type checking).
harness: Any = importlib.import_module("tests.system.harness")
PG_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- numbers --------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1), linear between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = q * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def latency_summary(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "p50_ms": round(percentile(ms, 0.5), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else float("nan"),
        "samples": len(ms),
    }


# -- processes ------------------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    """Resident set size of one process (``VmRSS`` in /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


async def wait_idle(
    pids: list[int], timeout: float, window: float = 2.0, busy_fraction: float = 0.03
) -> float:
    """Wait until every process in ``pids`` used under ``busy_fraction`` of a core over
    ``window`` seconds (their backlog is done); returns the seconds waited."""
    start = time.monotonic()
    last = sum(cpu_seconds(p) for p in pids)
    while time.monotonic() - start < timeout:
        await asyncio.sleep(window)
        now = sum(cpu_seconds(p) for p in pids)
        if (now - last) / window < busy_fraction * len(pids):
            break
        last = now
    return time.monotonic() - start


@dataclass
class Proc:
    """A child process started by the bench (its own session, output to a log)."""

    name: str
    popen: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def start_python(name: str, args: list[str], log_dir: Path) -> Proc:
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / f"{name}.log").open("ab") as out:
        popen = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    return Proc(name, popen)


@dataclass
class Servers:
    temporal: EmbeddedProcess
    nats: EmbeddedProcess
    client: Client

    @property
    def temporal_address(self) -> str:
        return self.temporal.addresses["temporal"]

    @property
    def nats_url(self) -> str:
        return self.nats.addresses["nats"]


@asynccontextmanager
async def servers(log_dir: Path | None = None) -> AsyncIterator[Servers]:
    """A fresh Temporal dev server (in memory, headless) and nats-server, on free ports."""
    log_path = None
    if log_dir is not None:
        await asyncio.to_thread(log_dir.mkdir, parents=True, exist_ok=True)
        log_path = log_dir / f"temporal-{uuid.uuid4().hex[:6]}.log"
    # Both at once: each start mostly waits for its server's port to answer.
    temporal, nats_server = await asyncio.gather(
        asyncio.to_thread(start_temporal, None, 0, False, 0, log_path),
        asyncio.to_thread(start_nats, None),
    )
    try:
        client = await connect(temporal.addresses["temporal"])
        await register_search_attributes(client)
        yield Servers(temporal, nats_server, client)
    finally:
        nats_server.stop()
        temporal.stop()


@asynccontextmanager
async def bare_workers(srv: Servers, log_dir: Path) -> AsyncIterator[dict[str, Proc]]:
    """The bare workflow worker and activity worker, as two processes like the help desk's;
    the activity publishes that it ran (``bench.bare_publish``), as the help desk's recording
    activity publishes its event."""
    procs = {
        role: start_python(
            f"bare-{role}",
            [
                "-m",
                "bench.bare_worker",
                role,
                srv.temporal_address,
                *(["--nats", srv.nats_url] if role == "activities" else []),
            ],
            log_dir,
        )
        for role in ("workflows", "activities")
    }
    try:
        await asyncio.sleep(2.0)  # pollers up
        for proc in procs.values():
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited; see {log_dir}")
        yield procs
    finally:
        for proc in procs.values():
            proc.stop()


@dataclass
class HelpDesk:
    system: Any  # tests.system.harness.System
    box: Any  # tests.system.harness.Mailbox
    org: dpb.Organization
    contacts: list[dpb.Contact] = field(default_factory=list)

    def pid(self, name: str) -> int:
        return int(self.system.procs[name].pid)


# Every process ``make run`` starts (services.launcher.plan.PROCESSES), by the system
# harness's names, in the launcher's start order.
ALL_PROCESSES = ("tickets", "intake", "notify", "dev_escalation", "worker")


@asynccontextmanager
async def help_desk(
    srv: Servers,
    data_dir: Path,
    processes: tuple[str, ...] = ALL_PROCESSES,
    database_url: str = "",
    auto_close_after: str = "14d",
    contacts: int = 1,
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[HelpDesk]:
    """The help desk's processes exactly as ``make run`` starts them, with an aiosmtpd relay
    for outgoing mail, one organisation and ``contacts`` contacts.

    ``ALL_PROCESSES`` is what ``make run`` starts (``services.launcher.plan``); a scenario
    that exercises only part of the system starts only that part."""
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    with harness.smtp_relay() as (box, relay):
        env = harness.system_env(
            data_dir, srv.temporal_address, srv.nats_url, database_url, relay, auto_close_after
        )
        env.update(extra_env or {})
        sut = harness.System(env, data_dir)
        try:
            for name in processes:
                sut.start(name)
            for name in processes:
                await sut.wait_serving(name)
            directory = sut.directory()
            suffix = uuid.uuid4().hex[:6]
            org = await directory.CreateOrganization(
                dpb.CreateOrganizationRequest(
                    name=f"Rossi Srl {suffix}",
                    email_domains=["rossi.it"],
                    closed_ticket_policy=pb.CLOSED_TICKET_POLICY_FOLLOW_UP,
                ),
                metadata=sut.metadata,
            )
            made = [
                await directory.AddContact(
                    dpb.AddContactRequest(
                        organization_id=org.id,
                        name=f"Mario Rossi {i}",
                        email=f"mario.rossi.{i}.{suffix}@rossi.it",
                    ),
                    metadata=sut.metadata,
                )
                for i in range(contacts)
            ]
            yield HelpDesk(sut, box, org, made)
        finally:
            await sut.close()


# -- events ---------------------------------------------------------------------------------


class EventWatch:
    """Core NATS subscription on ``helpdesk.ticket.>``: when each (event type, ticket) first
    arrived (and the instant its workflow recorded it), and how many distinct events (by
    event ID) of each type, the last when."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, int], float] = {}
        self.occurred: dict[tuple[str, int], datetime] = {}
        self.counts: dict[str, int] = {}
        self.last: dict[str, float] = {}
        self._ids: set[str] = set()
        self._waiters: dict[tuple[str, int], asyncio.Future[float]] = {}
        self._nc: Any = None

    async def start(self, url: str) -> None:
        self._nc = await nats.connect(url)
        await self._nc.subscribe("helpdesk.ticket.>", cb=self._on_msg)

    async def _on_msg(self, msg: Any) -> None:
        now = time.monotonic()
        body = json.loads(msg.data)
        event_id = str(body.get("event_id") or msg.data)
        if event_id in self._ids:  # a retried publish
            return
        self._ids.add(event_id)
        key = (str(body["type"]), int(body["ticket_id"]))
        self.counts[key[0]] = self.counts.get(key[0], 0) + 1
        self.last[key[0]] = now
        if key in self.seen:
            return
        self.seen[key] = now
        if body.get("occurred_at"):
            self.occurred[key] = datetime.fromisoformat(str(body["occurred_at"]))
        waiter = self._waiters.pop(key, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(now)

    async def wait(self, event_type: str, ticket_id: int, timeout: float = 120) -> float:
        """The monotonic time the event arrived (now or later)."""
        key = (event_type, ticket_id)
        if key in self.seen:
            return self.seen[key]
        fut = self._waiters.setdefault(key, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(fut, timeout)

    async def wait_count(self, event_type: str, count: int, timeout: float) -> float:
        """Until ``count`` distinct ``event_type`` events arrived; when the last did."""
        deadline = time.monotonic() + timeout
        while self.counts.get(event_type, 0) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.counts.get(event_type, 0)} of {count} {event_type} events in {timeout}s"
                )
            await asyncio.sleep(0.05)
        return self.last[event_type]

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.close()


@asynccontextmanager
async def event_watch(url: str) -> AsyncIterator[EventWatch]:
    watch = EventWatch()
    await watch.start(url)
    try:
        yield watch
    finally:
        await watch.close()


# -- PostgreSQL -----------------------------------------------------------------------------


@asynccontextmanager
async def fresh_postgres() -> AsyncIterator[str]:
    """A new database ``bench_<random>`` on the PostgreSQL server, dropped after."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        admin = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def postgres_size(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT pg_database_size(current_database())"))
    finally:
        await conn.close()


async def wait_port(port: int, timeout: float, procs: Iterable[Proc] = ()) -> None:
    """Until something listens on loopback ``port``; ``RuntimeError`` as soon as one of
    ``procs`` (the processes that should) has exited."""
    deadline = time.monotonic() + timeout
    while True:
        for proc in procs:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
            continue
        writer.close()
        await writer.wait_closed()
        return
