"""The bare service stack (the help desk's parts with nothing of its own: a gRPC front, a
row written through the same driver, ``start_workflow``, one activity that updates the row and
publishes to JetStream) and the ``create_ticket_stack`` scenario measured against it.

Both sides wait for the same thing: the core-NATS delivery, to the bench process, of the
message the workflow's activity publishes to JetStream after it updated the row."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import nats

from bench.bare_stack import FULL_METHOD, SUBJECT_PREFIX
from bench.harness import Result, Sizes, drive, result
from bench.infra import (
    ALL_PROCESSES,
    EventWatch,
    HelpDesk,
    Proc,
    Servers,
    cpu_seconds,
    event_watch,
    latency_summary,
    log,
    start_python,
    wait_idle,
    wait_port,
)
from helpdesk.v1 import intake_pb2 as ipb
from services.common.embedded import free_port

OPEN_LOOP_RATE = 15.0  # requests per second, fired on schedule
WARM_UP = 8
IDLE_TIMEOUT = 30.0  # seconds to wait for a side's trailing work after a run


def desk_request(
    hd: HelpDesk, watch: EventWatch, opened: list[int] | None = None, keep: int = 8
) -> Callable[[int], Awaitable[float]]:
    """The help desk's ticket creation as ``create_ticket`` measures it: a web request
    (IntakeService.SubmitWebRequest) until the ticket's 'created' event is on NATS. The IDs
    of the first ``keep`` tickets go to ``opened``."""
    intake = hd.system.intake()
    md = hd.system.metadata
    email = hd.contacts[0].email

    async def desk_one(i: int) -> float:
        t0 = time.monotonic()
        reply = await intake.SubmitWebRequest(
            ipb.SubmitWebRequestRequest(
                requester_email=email,
                subject=f"La stampa non parte ({i})",
                description="Errore 1234 in stampa fattura, versione 5.2.1, Windows 11.",
                product="Gestionale",
                version="5.2.1",
                os="Windows 11",
            ),
            metadata=md,
            timeout=120,
        )
        # The "created" event is published by the workflow's first activity, after the
        # row is written: the workflow has done its first task and the row is readable.
        arrived = await watch.wait("created", reply.ticket_id)
        if opened is not None and len(opened) < keep:
            opened.append(reply.ticket_id)
        return arrived - t0

    return desk_one


class BareStack:
    """The bench's side of the bare stack: the front's gRPC method, and one core-NATS
    subscription on ``barestack.created.>`` resolving each row's waiter."""

    def __init__(self, channel: grpc.aio.Channel, front: Proc, worker: Proc) -> None:
        self._channel = channel
        self._call = channel.unary_unary(  # raw bytes both ways
            FULL_METHOD, request_serializer=None, response_deserializer=None
        )
        self._front = front
        self._worker = worker
        self._nc: Any = None
        self.seen: dict[int, float] = {}
        self._waiters: dict[int, asyncio.Future[float]] = {}

    @property
    def pids(self) -> dict[str, int]:
        return {"bare_front": self._front.pid, "bare_worker": self._worker.pid}

    async def start(self, nats_url: str) -> None:
        self._nc = await nats.connect(nats_url)
        await self._nc.subscribe(f"{SUBJECT_PREFIX}>", cb=self._on_msg)

    async def _on_msg(self, msg: Any) -> None:
        now = time.monotonic()
        row_id = int(json.loads(msg.data)["ticket_id"])  # parsed, as EventWatch does
        if row_id in self.seen:
            return
        self.seen[row_id] = now
        waiter = self._waiters.pop(row_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(now)

    async def _wait(self, row_id: int, timeout: float = 120) -> float:
        if row_id in self.seen:
            return self.seen[row_id]
        fut = self._waiters.setdefault(row_id, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(fut, timeout)

    async def one(self, i: int) -> float:
        """One request through the bare stack until its JetStream message arrives: latency."""
        t0 = time.monotonic()
        reply = await self._call(str(i).encode(), timeout=120)
        arrived = await self._wait(int(reply))
        return arrived - t0

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.close()
        await self._channel.close(None)


@asynccontextmanager
async def bare_stack(srv: Servers, log_dir: Path) -> AsyncIterator[BareStack]:
    """The front (gRPC + activity worker) and the workflow worker as two processes on the
    shared Temporal and NATS servers; ready once one request went all the way through."""
    port = free_port()
    db_path = log_dir / f"barestack-{uuid.uuid4().hex[:6]}.db"
    front = start_python(
        "bare-stack-front",
        [
            "-m",
            "bench.bare_stack",
            "front",
            "--port",
            str(port),
            "--temporal",
            srv.temporal_address,
            "--nats",
            srv.nats_url,
            "--db",
            str(db_path),
        ],
        log_dir,
    )
    worker = start_python(
        "bare-stack-worker",
        ["-m", "bench.bare_stack", "worker", "--temporal", srv.temporal_address],
        log_dir,
    )
    stack: BareStack | None = None
    try:
        await wait_port(port, 60, [front, worker])
        stack = BareStack(grpc.aio.insecure_channel(f"127.0.0.1:{port}"), front, worker)
        await stack.start(srv.nats_url)
        try:
            await asyncio.wait_for(stack.one(-1), 90)
        except TimeoutError:
            raise RuntimeError(f"the bare stack did not answer; see {log_dir}") from None
        yield stack
    finally:
        if stack is not None:
            await stack.close()
        await asyncio.to_thread(front.stop)
        await asyncio.to_thread(worker.stop)


# -- create_ticket_stack --------------------------------------------------------------------


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


class _Side:
    """One side's closed-loop rounds, summed: requests, wall seconds, latencies, CPU."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.requests = 0
        self.wall = 0.0
        self.tails: list[float] = []
        self.latencies: list[float] = []
        self.cpu = dict.fromkeys(pids, 0.0)

    async def round(
        self,
        every: list[int],
        total: int,
        concurrency: int,
        one: Callable[[int], Awaitable[float]],
    ) -> None:
        """A closed loop at ``concurrency`` once every process is idle; CPU of ``pids`` from
        before it until its trailing work is done (``wait_idle``)."""
        await wait_idle(every, timeout=IDLE_TIMEOUT)
        before = _cpu(self.pids)
        wall, latencies = await drive(total, concurrency, one)
        self.tails.append(round(await wait_idle(list(self.pids.values()), IDLE_TIMEOUT), 1))
        after = _cpu(self.pids)
        for name in self.pids:
            self.cpu[name] += after[name] - before[name]
        self.requests += total
        self.wall += wall
        self.latencies += latencies

    def summary(self, concurrency: int, rounds: int) -> dict[str, Any]:
        per_process = {n: round(c * 1000 / self.requests, 3) for n, c in self.cpu.items()}
        return {
            "requests": self.requests,
            "concurrency": concurrency,
            "rounds": rounds,
            "per_s": round(self.requests / self.wall, 2),
            "latency": latency_summary(self.latencies),
            "cpu_ms_per_ticket": round(sum(per_process.values()), 2),
            "cpu_ms_per_ticket_by_process": per_process,
            "idle_wait_after_s": self.tails,
        }


async def _open_loop(
    every: list[int], n: int, rate: float, one: Callable[[int], Awaitable[float]]
) -> dict[str, Any]:
    """``n`` requests fired on a fixed schedule (``rate`` per second), none waiting for
    another; each latency counts from its scheduled instant."""
    await wait_idle(every, timeout=IDLE_TIMEOUT)
    start = time.monotonic() + 0.05
    sent: list[float] = []

    async def fire(k: int) -> float:
        due = start + k / rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        sent.append(time.monotonic())
        return sent[-1] - due + await one(k)

    latencies = await asyncio.gather(*(fire(k) for k in range(n)))
    span = max(sent) - min(sent)
    return {
        "requests": n,
        "rate_per_s": rate,
        "fired_per_s": round((n - 1) / span, 2) if span > 0 else float("nan"),
        "latency": latency_summary(list(latencies)),
    }


async def create_ticket_stack(srv: Servers, hd: HelpDesk, bare: BareStack, sizes: Sizes) -> Result:
    top = max(sizes.create_per_concurrency)
    total = sizes.create_per_concurrency[top]
    n_open = sizes.stack_open_loop_requests
    shared = {"temporal": srv.temporal.proc.pid, "nats": srv.nats.proc.pid}
    desk_pids = {
        **shared,
        **{name: hd.pid(name) for name in ALL_PROCESSES if name in hd.system.procs},
    }
    bare_pids = {**shared, **bare.pids}
    every = sorted(set(desk_pids.values()) | set(bare_pids.values()))
    async with event_watch(srv.nats_url) as watch:
        desk_one = desk_request(hd, watch)
        await drive(WARM_UP, 4, bare.one)  # warm-up: connections, caches, pollers
        await drive(WARM_UP, 4, desk_one)
        # Other load on the machine drifts: at full size the closed loop runs in two halves,
        # bare-desk-desk-bare, so that a linear drift weighs on both sides alike.
        rounds = 2 if total >= 4 * top else 1
        per_round = total // rounds
        b_side, d_side = _Side(bare_pids), _Side(desk_pids)
        order = [b_side, d_side] if rounds == 1 else [b_side, d_side, d_side, b_side]
        for side in order:
            one = bare.one if side is b_side else desk_one
            await side.round(every, per_round, top, one)
        b_closed, d_closed = b_side.summary(top, rounds), d_side.summary(top, rounds)
        b_open = await _open_loop(every, n_open, OPEN_LOOP_RATE, bare.one)
        d_open = await _open_loop(every, n_open, OPEN_LOOP_RATE, desk_one)
    # Fired faster than a side completes them, its queue grows for the whole run: its p99 is
    # then mostly the run's length, not the stack's latency (a loaded machine).
    d_open["saturated"] = d_closed["per_s"] < OPEN_LOOP_RATE
    b_open["saturated"] = b_closed["per_s"] < OPEN_LOOP_RATE
    ratio = d_closed["per_s"] / b_closed["per_s"]
    cpu_ratio = d_closed["cpu_ms_per_ticket"] / b_closed["cpu_ms_per_ticket"]
    p99_ratio = d_open["latency"]["p99_ms"] / b_open["latency"]["p99_ms"]
    met = ratio >= 0.8 and cpu_ratio <= 1.6 and p99_ratio <= 2
    log(
        f"create_ticket_stack c={top}: help desk {d_closed['per_s']}/s "
        f"{d_closed['cpu_ms_per_ticket']} CPU-ms/ticket, bare stack {b_closed['per_s']}/s "
        f"{b_closed['cpu_ms_per_ticket']} CPU-ms/ticket (ratio {ratio:.2f}, CPU {cpu_ratio:.2f}x); "
        f"p99 at {OPEN_LOOP_RATE:g}/s: help desk {d_open['latency']['p99_ms']} ms, "
        f"bare stack {b_open['latency']['p99_ms']} ms ({p99_ratio:.2f}x)"
    )
    return result(
        "create_ticket_stack",
        d_closed["per_s"],
        b_closed["per_s"],
        "tickets/s",
        f"ratio >= 0.8 of the bare service stack at concurrency {top}, CPU per ticket "
        f"<= 1.6x the bare stack's, p99 at {OPEN_LOOP_RATE:g}/s <= 2x the bare stack's",
        met,
        {
            "concurrency": top,
            "requests": total,
            "closed_loop_order": "bare, help desk"
            if rounds == 1
            else f"bare, help desk, help desk, bare ({per_round} requests each)",
            "warm_up_requests": WARM_UP,
            "open_loop_rate_per_s": OPEN_LOOP_RATE,
            "open_loop_requests": n_open,
            "path": "IntakeService.SubmitWebRequest until the ticket's 'created' event (the "
            "workflow's first activity wrote the row, then published to JetStream) arrives on "
            "a core-NATS subscription in the bench process; every process `make run` starts",
            "baseline_path": "bare service stack: one raw-bytes grpc.aio method that INSERTs a "
            "row into SQLite (services.common.db.make_engine: aiosqlite, WAL, in-process writer "
            "queue) and calls start_workflow; a workflow worker process (the help desk's "
            "worker settings) runs the workflow, whose one activity, in the front's process "
            "(as the tickets process hosts its recording activity), UPDATEs the row and "
            "publishes to JetStream; until that message arrives on a core-NATS subscription in "
            "the bench process. Same Temporal and NATS servers; no auth, tracing or metrics",
            "cpu": "CPU-seconds (utime+stime, /proc) per request summed over each side's "
            "processes, from before the closed-loop run until its processes went idle "
            "(trailing work included); Temporal and NATS are shared, so each side is run "
            "alone, after both sides went idle; the bench process itself is not counted",
            "open_loop": "requests fired on schedule without waiting for each other; latency "
            "from the scheduled instant",
        },
        {
            "helpdesk_closed_loop": d_closed,
            "bare_stack_closed_loop": b_closed,
            "helpdesk_open_loop": d_open,
            "bare_stack_open_loop": b_open,
            "throughput_ratio": round(ratio, 3),
            "cpu_ms_per_ticket": {
                "helpdesk": d_closed["cpu_ms_per_ticket"],
                "bare_stack": b_closed["cpu_ms_per_ticket"],
                "ratio": round(cpu_ratio, 3),
            },
            "open_loop_p99_ms": {
                "helpdesk": d_open["latency"]["p99_ms"],
                "bare_stack": b_open["latency"]["p99_ms"],
                "ratio": round(p99_ratio, 3),
            },
        },
        higher_is_better=True,
    )
