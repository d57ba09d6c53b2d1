"""The benchmark scenarios (and the business-time one); each returns result objects for
``latest.json``."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import func, insert, select

from bench import corpus, mail_bench, search, stack
from bench.bare import BARE_WORKFLOW_QUEUE
from bench.bare_publish import DoneWatch
from bench.harness import (
    Result,
    Sizes,
    drive,
    result,
)
from bench.infra import (
    HelpDesk,
    Servers,
    bare_workers,
    event_watch,
    fresh_postgres,
    help_desk,
    latency_summary,
    log,
    postgres_size,
    rss_bytes,
    servers,
    wait_idle,
)
from bench.timers import timer_lateness
from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common import db
from services.common.settings import async_database_url
from services.tickets import models as m
from services.tickets.creation import NewTicket, TicketCreator
from services.tickets.readmodel import state_from_row
from services.tickets.sla import due_times
from services.tickets.sla_terms import DEFAULT_TARGETS, sla_terms_for
from services.tickets.workflow_calls import start_ticket_workflow
from workflows.contracts import ticket_workflow_id
from workflows.domain.business_time import SEED_000, add_business, business_between

# -- 1. create_ticket -----------------------------------------------------------------------


async def create_ticket_and_mail(work: Path, sizes: Sizes) -> list[Result]:
    """Scenarios 1 and 2 share one set of servers and one help desk: every process ``make
    run`` starts (dev-escalation included), the fax gateway's address set as in seed 000."""
    async with (
        servers(work / "logs") as srv,
        bare_workers(srv, work / "logs") as _,
        stack.bare_stack(srv, work / "logs") as bare,
        help_desk(
            srv,
            work / "helpdesk",
            contacts=8,
            extra_env={"HELPDESK_FAX_ADDRESS": corpus.FAX},
        ) as hd,
    ):
        log("create_ticket: servers and every help-desk process up")
        create, tickets = await _create_ticket(srv, hd, sizes)
        create_stack = await stack.create_ticket_stack(srv, hd, bare, sizes)
        mails = await mail_bench.mail_scenarios(work, hd, bare, sizes, tickets)
    return [create, create_stack, *mails]


async def _create_ticket(srv: Servers, hd: HelpDesk, sizes: Sizes) -> tuple[Result, list[int]]:
    """The result, and the IDs of the warm-up's tickets (open, for mail replies to name)."""
    client = srv.client

    ran = DoneWatch()  # the bare activity's message, as the help desk's 'created' event

    async def bare_one(i: int) -> float:
        t0 = time.monotonic()
        wid = f"bare-{uuid.uuid4().hex}"
        await client.start_workflow(
            "BareOneActivity", f"x{i}", id=wid, task_queue=BARE_WORKFLOW_QUEUE
        )
        return await ran.wait(wid) - t0

    warm_ids: list[int] = []
    await ran.start(srv.nats_url)
    async with event_watch(srv.nats_url) as watch:
        desk_one = stack.desk_request(hd, watch, warm_ids, keep=8)
        await drive(8, 4, bare_one)  # warm-up: connections, caches, pollers
        await drive(8, 4, desk_one)
        levels: dict[str, Any] = {}
        for concurrency, total in sizes.create_per_concurrency.items():
            b_wall, b_lat = await drive(total, concurrency, bare_one)
            d_wall, d_lat = await drive(total, concurrency, desk_one)
            level: dict[str, Any] = {
                "requests": total,
                "helpdesk_per_s": round(total / d_wall, 2),
                "bare_per_s": round(total / b_wall, 2),
                "helpdesk_latency": latency_summary(d_lat),
                "bare_latency": latency_summary(b_lat),
            }
            level["ratio"] = round(level["helpdesk_per_s"] / level["bare_per_s"], 3)
            levels[str(concurrency)] = level
            log(
                f"create_ticket c={concurrency}: help desk {level['helpdesk_per_s']}/s "
                f"p99 {level['helpdesk_latency']['p99_ms']} ms; bare {level['bare_per_s']}/s "
                f"p99 {level['bare_latency']['p99_ms']} ms"
            )
    await ran.close()
    top = levels[str(max(sizes.create_per_concurrency))]
    p99_ratio = top["helpdesk_latency"]["p99_ms"] / top["bare_latency"]["p99_ms"]
    return (
        result(
            "create_ticket",
            top["helpdesk_per_s"],
            top["bare_per_s"],
            "tickets/s",
            "ratio >= 0.6 of bare Temporal at concurrency 64",
            top["ratio"] >= 0.6,
            {
                "concurrency": list(sizes.create_per_concurrency),
                "requests_per_level": sizes.create_per_concurrency,
                "path": "IntakeService.SubmitWebRequest until the ticket's 'created' event "
                "(first workflow task and its activity done, row written) is on NATS",
                "baseline_path": "start_workflow of a workflow running one activity on the same "
                "server, until the JetStream message that activity publishes is in the bench "
                "(bench.bare_publish); workflow and activity workers as two processes with the "
                "help desk's settings",
            },
            {"levels": levels, "p99_ratio_at_top": round(p99_ratio, 3)},
            higher_is_better=True,
        ),
        warm_ids,
    )


# -- 3. open_tickets ------------------------------------------------------------------------

FOURTEEN_DAYS = 14 * 86400


def _sqlite_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


async def _creator(hd: HelpDesk, srv: Servers, auto_close_after_seconds: int) -> TicketCreator:
    url = async_database_url(f"sqlite:///{hd.system.data_dir / 'tickets.db'}")
    engine = db.make_engine(url)
    return TicketCreator(db.make_sessionmaker(engine), srv.client, auto_close_after_seconds)


def _new_ticket(hd: HelpDesk, i: int, run: str) -> NewTicket:
    return NewTicket(
        request_id=f"bench:{run}:{i}",
        subject=f"Stampa fattura non funziona ({i})",
        description="Errore 1234 in stampa fattura, versione 5.2.1, Windows 11.",
        requester_id=hd.contacts[i % len(hd.contacts)].id,
        channel="PORTAL",
        priority=("LOW", "NORMAL", "HIGH")[i % 3],
    )


async def _count_recorded(creator: TicketCreator) -> int:
    async with creator.sessions() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(m.Ticket).where(m.Ticket.event_seq >= 1)
            )
            or 0
        )


async def _wait_recorded(creator: TicketCreator, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (done := await _count_recorded(creator)) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {done} of {n} tickets recorded their creation")
        await asyncio.sleep(0.5)


async def _live_timers(client: Any, workflow_id: str) -> list[str]:
    """The timers a workflow holds now (started, neither fired nor cancelled), each as
    "<summary> in <seconds>s" from its history."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    live: dict[int, str] = {}
    for event in history.events:
        if event.HasField("timer_started_event_attributes"):
            attrs = event.timer_started_event_attributes
            summary = event.user_metadata.summary.data.decode(errors="replace").strip('"')
            live[event.event_id] = f"{summary or 'timer'} in {attrs.start_to_fire_timeout.seconds}s"
        elif event.HasField("timer_fired_event_attributes"):
            live.pop(event.timer_fired_event_attributes.started_event_id, None)
        elif event.HasField("timer_canceled_event_attributes"):
            live.pop(event.timer_canceled_event_attributes.started_event_id, None)
    return list(live.values())


async def open_tickets(work: Path, sizes: Sizes) -> list[Result]:
    n = sizes.open_tickets
    conc = sizes.populate_concurrency
    async with servers(work / "logs") as srv, bare_workers(srv, work / "logs") as procs:
        t_pid, w_pid = srv.temporal.proc.pid, procs["workflows"].pid
        idle = {"temporal": rss_bytes(t_pid), "worker": rss_bytes(w_pid)}

        async def sleep_one(i: int) -> float:
            await srv.client.start_workflow(
                "BareSleep", FOURTEEN_DAYS, id=f"sleep-{i}", task_queue=BARE_WORKFLOW_QUEUE
            )
            return 0.0

        b_wall, _ = await drive(n, conc, sleep_one)
        await wait_idle([t_pid, w_pid, procs["activities"].pid], timeout=120)
        bare = {"temporal": rss_bytes(t_pid), "worker": rss_bytes(w_pid)}
    log(f"open_tickets bare: {n} sleeping workflows started in {b_wall:.1f}s; RSS {bare}")

    async with (
        servers(work / "logs") as srv,
        help_desk(srv, work / "open", processes=("tickets", "worker"), contacts=8) as hd,
    ):
        t_pid, w_pid, a_pid = srv.temporal.proc.pid, hd.pid("worker"), hd.pid("tickets")
        d_idle = {"temporal": rss_bytes(t_pid), "worker": rss_bytes(w_pid)}
        creator = await _creator(hd, srv, FOURTEEN_DAYS)

        opened: list[int] = []

        async def open_one(i: int) -> float:
            row, _ = await creator.create(_new_ticket(hd, i, "open"))
            opened.append(row.id)
            return 0.0

        d_wall, _ = await drive(n, conc, open_one)
        t0 = time.monotonic()
        await _wait_recorded(creator, n, timeout=600)
        recorded_s = time.monotonic() - t0
        await wait_idle([t_pid, w_pid, a_pid], timeout=120)
        desk = {
            "temporal": rss_bytes(t_pid),
            "worker": rss_bytes(w_pid),
            "tickets_process": rss_bytes(a_pid),
        }
        db_bytes = _sqlite_size(hd.system.data_dir / "tickets.db")
        sample = sorted(opened)[:5] + sorted(opened)[-5:]
        timers = [await _live_timers(srv.client, ticket_workflow_id(t)) for t in sample]
        lateness = await timer_lateness(srv, hd, creator, sizes)
        await creator.sessions.kw["bind"].dispose()
    with_timer = sum(1 for t in timers if t)
    log(
        f"open_tickets help desk: {n} tickets opened in {d_wall:.1f}s, all recorded "
        f"{recorded_s:.1f}s later; RSS {desk}; database {db_bytes} bytes; {with_timer} of "
        f"{len(sample)} sampled tickets hold a live SLA timer ({timers[0] if timers else ''})"
    )
    kib = 1024.0
    # Marginal memory per open ticket: growth over the idle processes, divided by N (the
    # processes' fixed size would otherwise dominate and flatter whichever side is larger).
    value = (desk["temporal"] + desk["worker"] - d_idle["temporal"] - d_idle["worker"]) / n / kib
    baseline = (bare["temporal"] + bare["worker"] - idle["temporal"] - idle["worker"]) / n / kib
    # At tiny sizes (the smoke test) allocator noise can exceed the growth: keep it a number.
    value, baseline = max(value, 0.0), max(baseline, 0.001)
    return [
        result(
            "open_tickets",
            value,
            baseline,
            "KiB RSS growth per open ticket (Temporal server + workflow worker)",
            "memory <= 1.5x the baseline",
            value / baseline <= 1.5,
            {
                "open_tickets": n,
                "populate_concurrency": conc,
                "path": "TicketCreator.create in the bench process (the tickets service's "
                "creation code, which looks up the SLA terms: the default contract, seed 000's "
                "business hours) against the tickets service's SQLite store; the workflows run "
                "on the real workflow worker, the creation activity in the real tickets "
                "process; each open ticket waits on a live timer for its next SLA instant "
                "(the 80% warning of taken-in-charge), checked on a sample",
                "baseline_path": "start_workflow of workflows sleeping 14 days on a fresh server "
                "with the bare worker processes",
                "temporal_storage": "dev server in memory (its database counts in its RSS)",
            },
            {
                "helpdesk_rss_bytes": desk,
                "helpdesk_idle_rss_bytes": d_idle,
                "bare_rss_bytes": bare,
                "bare_idle_rss_bytes": idle,
                "helpdesk_database_bytes": db_bytes,
                "helpdesk_database_bytes_per_ticket": round(db_bytes / n, 1),
                "bare_database_bytes": 0,
                "helpdesk_total_kib_per_ticket": round(
                    (desk["temporal"] + desk["worker"]) / n / kib, 2
                ),
                "bare_total_kib_per_ticket": round(
                    (bare["temporal"] + bare["worker"]) / n / kib, 2
                ),
                "helpdesk_populate_seconds": round(d_wall, 1),
                "helpdesk_recorded_after_seconds": round(recorded_s, 1),
                "bare_populate_seconds": round(b_wall, 1),
                "sla_timers_sampled": {
                    "tickets": len(sample),
                    "with_live_timer": with_timer,
                    "first_ticket_timers": timers[0] if timers else [],
                },
            },
            higher_is_better=False,
        ),
        lateness,
    ]


# -- 4. auto_close_storm ----------------------------------------------------------------------


STORM_AUTO_CLOSE = 60


def _lead_seconds(n: int, rate: float, per_start: float = 0.5) -> float:
    """How far ahead to put the common due instant: time to set everything up, with margin.

    ``rate`` is the warm-up's, whose tickets are both started and closed: about twice the
    work of a start alone. Measured on a quiet machine, setting up 1,000 and waiting for
    their first tasks took 0.45 of ``n / rate`` on the help desk's side; the bare storms
    (whose warm-up runs in parallel, its start costing more of the setup) pass
    ``per_start=1.0``. A setup that ends late is said in the results (``*_setup_late``).
    """
    return max(4.0, per_start * n / max(rate, 1.0) + 6.0)


def _mono_at(instant: datetime) -> float:
    return time.monotonic() + (instant - datetime.now(UTC)).total_seconds()


async def _bare_storm(work: Path, n: int, conc: int) -> dict[str, Any]:
    """The two bare storms, one after the other on one fresh server and one pair of bare
        workers (as two processes, serving their ``/metrics`` as the help desk's do): timers then a
        no-op activity (the events' baseline, until each has published that it ran on NATS: the
    help desk's events are timed on NATS too), then timers then one mail
        each over the activity worker's kept SMTP connections to an aiosmtpd sink like the help
        desk's relay (the mails' baseline, until all are at the sink)."""
    from bench.infra import harness, start_python, wait_port
    from services.common.embedded import free_port

    logs = work / "logs"
    with harness.smtp_relay() as (box, relay):
        async with servers(logs) as srv:
            ports = {"workflows": free_port(), "activities": free_port()}
            procs = {
                role: start_python(
                    f"bare-storm-{role}",
                    [
                        "-m",
                        "bench.bare_worker",
                        role,
                        srv.temporal_address,
                        *(
                            ["--relay", relay, "--nats", srv.nats_url]
                            if role == "activities"
                            else []
                        ),
                        "--metrics",
                        str(port),
                    ],
                    logs,
                )
                for role, port in ports.items()
            }
            try:
                for port in ports.values():  # the processes up (the metrics port first)
                    await wait_port(port, timeout=60)
                await asyncio.sleep(2.0)  # pollers up
                for proc in procs.values():
                    if proc.popen.poll() is not None:
                        raise RuntimeError(f"{proc.name} exited; see {logs}")
                pids = [srv.temporal.proc.pid, *(p.pid for p in procs.values())]
                metrics_addr = f"127.0.0.1:{ports['workflows']}"
                # Each no-op activity publishes that it ran: counted on NATS, as the help
                # desk's 'closed' events are (a visibility count lags and loads the server).
                ran = DoneWatch()
                await ran.start(srv.nats_url)

                async def completed() -> int:
                    return ran.count("")

                async def mailed() -> int:
                    return len(box.messages)  # appended to by the sink's thread

                try:
                    events = await _bare_wave(
                        srv, pids, n, conc, "BareTimerThenActivity", completed, 0.05, metrics_addr
                    )
                finally:
                    await ran.close()
                log(f"auto_close_storm bare: {n} timers + no-op done {events['seconds']:.2f}s")
                # Sized by the first wave's rate: this warm-up's also opens the SMTP
                # connections, which would stretch the lead for nothing.
                mails = await _bare_wave(
                    srv,
                    pids,
                    n,
                    conc,
                    "BareTimerThenMail",
                    mailed,
                    0.05,
                    metrics_addr,
                    rate=events["rate"],
                )
                log(f"auto_close_storm bare: {n} timers + mails done {mails['seconds']:.2f}s")
            finally:
                for proc in procs.values():
                    proc.stop()
    return {"events": events, "mails": mails}


async def _bare_wave(
    srv: Servers,
    pids: list[int],
    n: int,
    conc: int,
    workflow_type: str,
    done: Callable[[], Awaitable[int]],
    poll: float,
    metrics_addr: str,
    rate: float = 0.0,
) -> dict[str, Any]:
    """20 workflows due now (the warm-up, and the rate the lead is sized by unless ``rate``
    is given), then ``n`` due at one common instant; seconds from that instant until
    ``done()`` counts all of them."""

    async def start(wid: str, due: datetime) -> float:
        args = [due.isoformat()]
        if workflow_type == "BareTimerThenMail":  # its label: the mail's recipient
            args.append(wid)
        await srv.client.start_workflow(
            workflow_type, args=args, id=wid, task_queue=BARE_WORKFLOW_QUEUE
        )
        return 0.0

    tag = uuid.uuid4().hex[:6]
    before = await _sticky_cache(metrics_addr)
    t0 = time.monotonic()
    await drive(20, conc, lambda i: start(f"warm-{tag}-{i}", datetime.now(UTC)))
    while await done() < 20:  # noqa: ASYNC110
        await asyncio.sleep(poll)
    warm_wall = time.monotonic() - t0  # started and run to the end: the real rate
    rate = rate or 20 / warm_wall
    lead = _lead_seconds(n, rate, per_start=1.0)
    due = datetime.now(UTC) + timedelta(seconds=lead)
    wall, _ = await drive(n, conc, lambda i: start(f"storm-{tag}-{i}", due))
    late = datetime.now(UTC) > due - timedelta(seconds=2)
    await wait_idle(pids, timeout=max(1.0, (due - datetime.now(UTC)).total_seconds() - 1))
    at_due = await _sticky_cache(metrics_addr)
    late = late or datetime.now(UTC) > due - timedelta(seconds=0.5)
    due_mono = _mono_at(due)
    await asyncio.sleep(max(0.0, due_mono - time.monotonic()))
    while await done() < n + 20:
        if time.monotonic() - due_mono > 600:
            raise TimeoutError(f"bare storm ({workflow_type}) did not finish")
        await asyncio.sleep(poll)
    seconds = time.monotonic() - due_mono
    after = await _sticky_cache(metrics_addr)
    return {
        "seconds": seconds,
        "setup_seconds": wall,
        "lead_seconds": lead,
        "rate": rate,
        "late": late,
        "cache": _cache_figures(before, at_due, after),
    }


def _scrape(addr: str) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=5) as reply:
        return bytes(reply.read()).decode()


async def _sticky_cache(addr: str) -> dict[str, float] | None:
    """The Temporal SDK's sticky (workflow) cache metrics of the worker serving ``/metrics``
    at ``addr``, summed over their labels: ``sticky_cache_size`` (gauge), ``..._hit``,
    ``..._miss``, ``..._total_forced_eviction`` (counters; none until the worker's first
    workflow task: {}); None when the port cannot be read."""
    try:
        text = await asyncio.to_thread(_scrape, addr)
    except OSError as err:
        log(f"auto_close_storm: no metrics at {addr} ({err})")
        return None
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("temporal_sticky_cache"):
            continue
        name, _, value = line.rpartition(" ")
        name = name.split("{", 1)[0].strip().removeprefix("temporal_").removesuffix("_total")
        try:
            out[name] = out.get(name, 0.0) + float(value)
        except ValueError:
            continue
    return out


def _cache_figures(
    before: dict[str, float] | None,
    at_due: dict[str, float] | None,
    after: dict[str, float] | None,
) -> dict[str, Any]:
    """Forced evictions, hits and misses while the workflows were set up and during the storm,
    and the cache's size at the due instant."""
    if before is None or at_due is None or after is None:
        return {"measured": False}

    def delta(a: dict[str, float], b: dict[str, float], key: str) -> int:
        return int(b.get(key, 0.0) - a.get(key, 0.0))

    evict, hit, miss = (
        "sticky_cache_total_forced_eviction",
        "sticky_cache_hit",
        "sticky_cache_miss",
    )
    return {
        "measured": True,
        "forced_evictions_setup": delta(before, at_due, evict),
        "forced_evictions_storm": delta(at_due, after, evict),
        "cache_hits_storm": delta(at_due, after, hit),
        "cache_misses_storm": delta(at_due, after, miss),
        "cache_size_at_due": int(at_due.get("sticky_cache_size", 0.0)),
    }


def _max_cached_workflows() -> tuple[int | None, str]:
    """The workflow worker's ``max_cached_workflows``: workflows.worker.make_worker's, or the
    SDK's default when it sets none."""
    import inspect
    import re

    from temporalio.worker import Worker

    from workflows import worker as wf_worker

    source = inspect.getsource(wf_worker.make_worker)
    found = re.search(r"max_cached_workflows\s*=\s*([\d_]+)", source)
    if found:
        return int(found.group(1)), "set by workflows.worker.make_worker"
    if "max_cached_workflows" in source:
        return None, "set by workflows.worker.make_worker (not a literal)"
    default = inspect.signature(Worker.__init__).parameters["max_cached_workflows"].default
    return int(default), "temporalio's default (workflows.worker.make_worker sets none)"


async def _solved_ticket(creator: TicketCreator, hd: HelpDesk, i: int, due: datetime) -> float:
    """A ticket stored SOLVED with its auto-close at ``due``, its workflow started as after a
    continue-as-new (``start="continued"``, the state read from the row with the SLA terms,
    as ``TicketCreator.ensure_workflow`` builds it): a ticket solved two weeks ago has long
    been opened, so the setup does not replay its opening (event, ticket-opened mail)."""
    after = creator.auto_close_after_seconds
    solved_at = due - timedelta(seconds=after)
    received = solved_at - timedelta(minutes=30)
    tic_due, ff_due = due_times("NORMAL", received)
    contact = hd.contacts[i % len(hd.contacts)]
    async with creator.sessions() as session:
        row = m.Ticket(
            request_id=f"bench:storm:{i}",
            subject=f"Stampa fattura non funziona ({i})",
            description="Errore 1234 in stampa fattura.",
            organization_id=contact.organization_id,
            requester_id=contact.id,
            channel="PORTAL",
            priority="NORMAL",
            level="L1",
            status="SOLVED",
            received_at=received,
            taken_in_charge_at=received,
            first_feedback_at=received,
            solved_at=solved_at,
            auto_close_at=due,
            taken_in_charge_due=tic_due,
            first_feedback_due=ff_due,
            breaches=[],
            event_seq=0,
            workflow_started=True,
            updated_at=received,
        )
        session.add(row)
        await session.flush()
        org = await session.get(m.Organization, row.organization_id)
        assert org is not None
        state = state_from_row(row, org, after)
        state.terms = await sla_terms_for(session, row.organization_id)
        await session.commit()
    await start_ticket_workflow(
        creator.client, creator.workflow_input(state, "continued"), row.subject
    )
    return 0.0


class _ClosedMails:
    """Counts the closing mails at the relay, reading each received message once (the
    storm's wait must not cost the processes it measures a full re-read every 50 ms)."""

    def __init__(self, hd: HelpDesk) -> None:
        self.hd = hd
        self.read = 0
        self.count = 0

    def __call__(self) -> int:
        messages = self.hd.box.messages  # appended to by the relay's thread
        upto = len(messages)
        for msg in messages[self.read : upto]:
            if any(w in str(msg["Subject"]) for w in ("Richiesta chiusa", "Request closed")):
                self.count += 1
        self.read = upto
        return self.count


async def auto_close_storm(work: Path, sizes: Sizes) -> list[Result]:
    """Two results of one storm: due -> every 'closed' event on NATS (``auto_close_storm``)
    and due -> every closing mail at the relay (``auto_close_mails``), each against its bare
    storm; the workflow workers' cache evictions in the details."""
    n = sizes.storm_tickets
    conc = sizes.populate_concurrency
    bare = await _bare_storm(work, n, conc)

    async with (
        servers(work / "logs") as srv,
        help_desk(
            srv,
            work / "storm",
            processes=("tickets", "notify", "worker"),
            auto_close_after=f"{STORM_AUTO_CLOSE}s",
            contacts=8,
        ) as hd,
    ):
        pids = [srv.temporal.proc.pid, hd.pid("tickets"), hd.pid("notify"), hd.pid("worker")]
        metrics_addr = hd.system.metrics_addr["worker"]
        creator = await _creator(hd, srv, STORM_AUTO_CLOSE)
        async with event_watch(srv.nats_url) as watch:
            before = await _sticky_cache(metrics_addr)
            # Warm-up: 20 tickets whose auto-close is due at once (closed and mailed).
            t0 = time.monotonic()
            await drive(20, conc, lambda i: _solved_ticket(creator, hd, i, datetime.now(UTC)))
            await watch.wait_count("closed", 20, timeout=300)
            warm_wall = time.monotonic() - t0  # started and closed: an upper bound of the setup
            lead = _lead_seconds(n, 20 / warm_wall)
            due = datetime.now(UTC) + timedelta(seconds=lead)
            wall, _ = await drive(n, conc, lambda i: _solved_ticket(creator, hd, 100 + i, due))
            late = datetime.now(UTC) > due - timedelta(seconds=2)
            # Every workflow's first task done (its timer set) before the due instant: the
            # processes idle, so the storm is alone.
            t0 = time.monotonic()
            await wait_idle(pids, timeout=max(1.0, (due - datetime.now(UTC)).total_seconds() - 1))
            settled = time.monotonic() - t0
            at_due = await _sticky_cache(metrics_addr)
            spare = (due - datetime.now(UTC)).total_seconds()
            late = late or datetime.now(UTC) > due - timedelta(seconds=0.5)
            due_mono = _mono_at(due)
            closed_at = await watch.wait_count("closed", n + 20, timeout=600)
            closed_mails = _ClosedMails(hd)
            while closed_mails() < n + 20:
                if time.monotonic() - due_mono > 600:
                    raise TimeoutError("closed mails did not all arrive")
                await asyncio.sleep(0.05)
            mails_at = time.monotonic()
            after = await _sticky_cache(metrics_addr)
        await creator.sessions.kw["bind"].dispose()
    mails_s = mails_at - due_mono
    events_s = closed_at - due_mono
    log(
        f"auto_close_storm help desk: all closed events {events_s:.2f}s, all closed mails "
        f"{mails_s:.2f}s after due"
    )
    cache_max, cache_source = _max_cached_workflows()
    cache = {
        "max_cached_workflows": cache_max,
        "max_cached_workflows_source": cache_source,
        # The warm-up's 20 have closed before the setup: the storm's n wait at the due instant
        # (with, on the help desk's worker, its few long-running workflows).
        "workflows_waiting_at_due": n,
        "storm_exceeds_cache": cache_max is not None and n > cache_max,
        "helpdesk_worker": _cache_figures(before, at_due, after),
        "bare_worker_events": bare["events"]["cache"],
        "bare_worker_mails": bare["mails"]["cache"],
        "source": "the workflow workers' /metrics (Temporal SDK: sticky_cache_size, "
        "sticky_cache_hit, sticky_cache_miss, sticky_cache_total_forced_eviction), read before "
        "the setup, at the due instant and after the last mail",
    }
    evicted = cache["helpdesk_worker"].get("forced_evictions_storm")
    log(
        f"auto_close_storm: workflow cache {cache_max} ({cache_source}), {n} workflows due; "
        f"forced evictions during the storm: help desk {evicted}, bare "
        f"{bare['events']['cache'].get('forced_evictions_storm')} / "
        f"{bare['mails']['cache'].get('forced_evictions_storm')}"
    )
    params = {
        "tickets": n,
        "auto_close_after_s": STORM_AUTO_CLOSE,
        "lead_s": round(lead, 1),
        "setup": "tickets stored SOLVED with one common auto-close instant, their workflows "
        "started as after a continue-as-new (state from the row and the SLA terms, as "
        "TicketCreator.ensure_workflow builds it, without replaying the opening)",
    }
    details = {
        "helpdesk_closed_events_seconds": round(events_s, 3),
        "helpdesk_closed_mails_seconds": round(mails_s, 3),
        "helpdesk_setup_seconds": round(wall, 1),
        "helpdesk_idle_after_setup_seconds": round(settled, 1),
        "helpdesk_spare_before_due_seconds": round(spare, 1),
        "helpdesk_setup_late": late,
        "bare_events_seconds": round(bare["events"]["seconds"], 3),
        "bare_mails_seconds": round(bare["mails"]["seconds"], 3),
        "bare_events_lead_seconds": round(bare["events"]["lead_seconds"], 1),
        "bare_mails_lead_seconds": round(bare["mails"]["lead_seconds"], 1),
        "bare_events_setup_seconds": round(bare["events"]["setup_seconds"], 1),
        "bare_events_setup_late": bare["events"]["late"],
        "bare_mails_setup_seconds": round(bare["mails"]["setup_seconds"], 1),
        "bare_mails_setup_late": bare["mails"]["late"],
        "extra_tickets_from_warmup": 20,
        "workflow_cache": cache,
    }
    return [
        result(
            "auto_close_storm",
            events_s,
            bare["events"]["seconds"],
            "seconds from due to all 'closed' events",
            "<= 2x the baseline's time",
            events_s / bare["events"]["seconds"] <= 2,
            {
                **params,
                "path": "measured from the common instant until every ticket's 'closed' event "
                "is on NATS (core subscription in the bench)",
                "baseline_path": "workflows sleeping until the same kind of common instant, "
                "then running one activity that publishes one JetStream message "
                "(bench.bare_publish; bare workers as two processes); until every message is "
                "in the bench (core subscription)",
            },
            details,
            higher_is_better=False,
        ),
        result(
            "auto_close_mails",
            mails_s,
            bare["mails"]["seconds"],
            "seconds from due to all closing mails at the relay",
            "<= 2x the baseline's time",
            mails_s / bare["mails"]["seconds"] <= 2,
            {
                **params,
                "path": "measured from the common instant until every closing mail reached "
                "the SMTP relay (aiosmtpd in the bench, tests.system.harness.smtp_relay) "
                "through notify",
                "baseline_path": "workflows sleeping until the same kind of common instant, "
                "then running one activity that sends one mail (aiosmtplib, kept connections, "
                f"at most {_bare_pool_size()} idle as notify's) to the same kind of aiosmtpd "
                "sink; until all mails are at the sink (polled every 0.05 s)",
            },
            details,
            higher_is_better=False,
        ),
    ]


def _bare_pool_size() -> int:
    from bench.bare_mail import POOL_SIZE

    return POOL_SIZE


# -- 5. list_tickets ------------------------------------------------------------------------

LIST_ORGS = 50
LIST_STATUSES = ("NEW", "OPEN")
STATUS_MIX = (
    ("NEW",) * 10
    + ("OPEN",) * 15
    + ("PENDING",) * 5
    + ("ON_HOLD",) * 5
    + ("SOLVED",) * 10
    + ("CLOSED",) * 55
)


def _sla_fields(
    terms: Any, priority: str, status: str, received: datetime, now: datetime, k: int
) -> dict[str, Any]:
    """The workflow-owned SLA fields of a ticket received at ``received`` that is ``status``
    now, as the real rows hold them: the default contract's business-hours clocks started at
    the reception (``opening_clocks``, as TicketCreator does), taken in charge and answered
    some minutes later, paused on PENDING / ON_HOLD / SOLVED, the breaches of the targets met
    late or overdue, written onto the row by ``apply_state`` as the workflow's records do."""
    from services.tickets.activities import apply_state
    from services.tickets.opening_clocks import opening_clocks
    from workflows.domain import sla_clock

    def at(minutes: float) -> datetime:
        return min(received + timedelta(minutes=minutes), now)

    s = opening_clocks(terms, priority, received)
    if status != "NEW":
        s.taken_in_charge_at = at(5 + k % 40)
        s.status = "OPEN"
    if status in sla_clock.PAUSED or (status == "OPEN" and k % 2):
        s.first_feedback_at = at(50 + k % 90)
    if status in sla_clock.PAUSED:
        moved = at(150 + k % 300)
        if status in ("SOLVED", "CLOSED"):
            s.solved_at = moved
        s.status = status
        sla_clock.on_status(s, "OPEN", status, moved)
        if status == "CLOSED":
            s.closed_at = at(150 + k % 300 + 14 * 1440)
    row = m.Ticket(status="NEW", priority=priority, breaches=[])
    apply_state(row, s)
    breaches = [
        {"target": target, "due_at": due.isoformat(), "recorded_at": due.isoformat()}
        for target, due, met in (
            ("TAKEN_IN_CHARGE", row.taken_in_charge_due, row.taken_in_charge_at),
            ("FIRST_FEEDBACK", row.first_feedback_due, row.first_feedback_at),
            ("RESOLUTION", row.resolution_due, row.solved_at),
        )
        if due is not None and (met or now) > due
    ]
    return {
        "status": status,
        "taken_in_charge_at": row.taken_in_charge_at,
        "first_feedback_at": row.first_feedback_at,
        "solved_at": row.solved_at,
        "closed_at": row.closed_at,
        "taken_in_charge_due": row.taken_in_charge_due,
        "first_feedback_due": row.first_feedback_due,
        "resolution_due": row.resolution_due,
        "clocks_start_at": row.clocks_start_at,
        "sla_clock": row.sla_clock,
        "breaches": breaches,
        "sla_breached": bool(breaches),
        "next_due_at": row.next_due_at,
        "next_due_target": row.next_due_target,
    }


async def _populate(url: str, rows: int) -> list[int]:
    """``LIST_ORGS`` organisations with 4 contacts each and ``rows`` tickets with the SLA
    clocks real rows have (``_sla_fields``), by bulk inserts into the migrated tickets tables;
    returns the organisation IDs."""
    from services.tickets.sla_terms import default_terms

    engine = db.make_engine(async_database_url(url))
    now = datetime.now(UTC)
    tag = uuid.uuid4().hex[:6]
    try:
        async with engine.begin() as conn:
            org_ids: list[int] = []
            for i in range(LIST_ORGS):
                org_ids.append(
                    int(
                        (
                            await conn.execute(
                                insert(m.Organization).returning(m.Organization.id),
                                {
                                    "name": f"Cliente {i} {tag}",
                                    "name_key": f"cliente {i} {tag}",
                                    "email_domains": [f"cliente{i}.it"],
                                    "closed_ticket_policy": "FOLLOW_UP",
                                    "locale": "it",
                                    "created_at": now,
                                },
                            )
                        ).scalar_one()
                    )
                )
            contacts: list[tuple[int, int]] = []
            for org in org_ids:
                for j in range(4):
                    cid = (
                        await conn.execute(
                            insert(m.Contact).returning(m.Contact.id),
                            {
                                "organization_id": org,
                                "name": f"Contatto {j}",
                                "email": f"c{j}.{tag}@org{org}.it",
                                "email_key": f"c{j}.{tag}@org{org}.it",
                                "phone": "",
                                "role": "USER",
                                "locale": "it",
                                "created_at": now,
                            },
                        )
                    ).scalar_one()
                    contacts.append((org, int(cid)))
        chunk = 5_000
        rng = random.Random(42)
        terms = default_terms()  # the organisations have no contract: the default one
        for start in range(0, rows, chunk):
            batch = []
            for k in range(start, min(rows, start + chunk)):
                org, contact = rng.choice(contacts)
                status = rng.choice(STATUS_MIX)
                received = now - timedelta(minutes=rows - k)
                priority = ("LOW", "NORMAL", "HIGH", "URGENT")[k % 4]
                batch.append(
                    {
                        "request_id": f"bench:list:{tag}:{k}",
                        "subject": search.subject_for(k),
                        "description": "Errore 1234 in stampa fattura, versione 5.2.1.",
                        "organization_id": org,
                        "requester_id": contact,
                        "channel": "EMAIL",
                        "priority": priority,
                        "received_at": received,
                        "event_seq": 1,
                        "workflow_started": True,
                        "updated_at": received,
                        **_sla_fields(terms, priority, status, received, now, k),
                    }
                )
            async with engine.begin() as conn:
                await conn.execute(insert(m.Ticket), batch)
        return org_ids
    finally:
        await engine.dispose()


async def _plain_sql(url: str) -> Callable[[int], Awaitable[int]]:
    """The same query as ListTickets' first page, in plain SQL through the same driver."""
    limit = 51  # ListTickets asks for one more row than the default page of 50
    if url.startswith("sqlite"):
        import aiosqlite

        conn = await aiosqlite.connect(url.split("///", 1)[1])
        sql = (
            "SELECT * FROM tickets WHERE organization_id = ? AND status IN (?, ?) "
            f"ORDER BY id DESC LIMIT {limit}"
        )

        async def sqlite_query(org: int) -> int:
            async with conn.execute(sql, (org, *LIST_STATUSES)) as cur:
                return len(list(await cur.fetchall()))

        sqlite_query.close = conn.close  # type: ignore[attr-defined]
        return sqlite_query
    pg = await asyncpg.connect(url)
    pg_sql = (
        "SELECT * FROM tickets WHERE organization_id = $1 AND status = ANY($2::varchar[]) "
        f"ORDER BY id DESC LIMIT {limit}"
    )

    async def pg_query(org: int) -> int:
        return len(await pg.fetch(pg_sql, org, list(LIST_STATUSES)))

    pg_query.close = pg.close  # type: ignore[attr-defined]
    return pg_query


LIST_ROUNDS = 3  # each series run this many times: the median round's p99 is reported


def _median_summary(rounds: list[list[float]]) -> dict[str, Any]:
    """The median over the rounds of each figure of ``latency_summary``, and each round's p99."""
    import statistics

    each = [latency_summary(r) for r in rounds]
    out: dict[str, Any] = {
        key: round(statistics.median(s[key] for s in each), 2)
        for key in ("p50_ms", "p99_ms", "mean_ms")
    }
    out["samples"] = sum(s["samples"] for s in each)
    out["rounds_p99_ms"] = [s["p99_ms"] for s in each]
    return out


async def _list_backend(
    srv: Servers, work: Path, backend: str, url: str, sizes: Sizes
) -> dict[str, Any]:
    import grpc

    from bench import bare_list
    from bench.infra import start_python, wait_port
    from services.common.embedded import free_port

    service_url = "" if backend == "sqlite" else url
    async with help_desk(
        srv, work / f"list-{backend}", processes=("tickets",), database_url=service_url
    ) as hd:
        if backend == "sqlite":
            url = f"sqlite:///{hd.system.data_dir / 'tickets.db'}"
        t0 = time.monotonic()
        orgs = await _populate(url, sizes.list_rows)
        populate_s = time.monotonic() - t0
        if backend == "sqlite":
            size = _sqlite_size(hd.system.data_dir / "tickets.db")
        else:
            size = await postgres_size(url)
        stub = hd.system.tickets()
        md = hd.system.metadata
        statuses = [pb.TicketStatus.Value(f"TICKET_STATUS_{s}") for s in LIST_STATUSES]
        rows_seen: list[int] = []
        bare_rows_seen: list[int] = []
        clock_states: dict[str, int] = {}

        def request(i: int) -> tpb.ListTicketsRequest:
            # Newest first, as the plain SQL (staff callers default to NEXT_DUE).
            return tpb.ListTicketsRequest(
                organization_id=orgs[i % len(orgs)],
                statuses=statuses,
                order_by=tpb.TICKET_ORDER_ID,
            )

        async def grpc_one(i: int) -> float:
            t = time.monotonic()
            reply = await stub.ListTickets(request(i), metadata=md, timeout=60)
            rows_seen.append(len(reply.tickets))
            if not clock_states:  # the first page's clocks, once
                for ticket in reply.tickets:
                    for clock in ticket.sla:
                        state = pb.SlaState.Name(clock.state)
                        clock_states[state] = clock_states.get(state, 0) + 1
            return time.monotonic() - t

        plain = await _plain_sql(url)

        async def sql_one(i: int) -> float:
            t = time.monotonic()
            await plain(orgs[i % len(orgs)])
            return time.monotonic() - t

        # The second baseline: plain SQL + the same gRPC hop + protobuf (bench.bare_list),
        # a process of its own as the tickets service.
        port = free_port()
        bare_proc = start_python(
            f"bare-list-{backend}", ["-m", "bench.bare_list", str(port), url], work / "logs"
        )
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        bare_call = channel.unary_unary(
            bare_list.METHOD,
            request_serializer=tpb.ListTicketsRequest.SerializeToString,
            response_deserializer=tpb.ListTicketsResponse.FromString,
        )

        async def bare_one(i: int) -> float:
            t = time.monotonic()
            reply = await bare_call(request(i), timeout=60)
            bare_rows_seen.append(len(reply.tickets))
            return time.monotonic() - t

        series: dict[str, list[list[float]]] = {"sql": [], "bare": [], "desk": []}
        try:
            await wait_port(port, timeout=30)
            await drive(10, 1, sql_one)
            await drive(10, 1, bare_one)
            await drive(10, 1, grpc_one)
            rows_seen.clear()
            bare_rows_seen.clear()
            for _ in range(LIST_ROUNDS):
                series["sql"].append((await drive(sizes.list_queries, 1, sql_one))[1])
                series["bare"].append((await drive(sizes.list_queries, 1, bare_one))[1])
                series["desk"].append((await drive(sizes.list_queries, 1, grpc_one))[1])
        finally:
            await plain.close()  # type: ignore[attr-defined]
            await channel.close(None)
            bare_proc.stop()
        searched = await _search_backend(url, stub, md, sizes)
    out: dict[str, Any] = {
        "helpdesk": _median_summary(series["desk"]),
        "sql_grpc_protobuf": _median_summary(series["bare"]),
        "plain_sql": _median_summary(series["sql"]),
        "rows_per_page": max(rows_seen) if rows_seen else 0,
        "sql_grpc_protobuf_rows_per_page": max(bare_rows_seen) if bare_rows_seen else 0,
        "first_page_sla_clock_states": clock_states,
        "populate_seconds": round(populate_s, 1),
        "database_bytes": size,
    }
    p99 = out["helpdesk"]["p99_ms"]
    out["p99_ratio"] = round(p99 / out["sql_grpc_protobuf"]["p99_ms"], 2)
    out["p99_ratio_plain_sql"] = round(p99 / out["plain_sql"]["p99_ms"], 2)
    out["target_met"] = out["p99_ratio"] <= 2 and out["p99_ratio_plain_sql"] <= 3
    out["search"] = searched
    log(
        f"search {backend}: SearchTickets p50 {searched['helpdesk']['p50_ms']} ms p99 "
        f"{searched['helpdesk']['p99_ms']} ms; bare engine p50 "
        f"{searched['bare_engine']['p50_ms']} ms p99 {searched['bare_engine']['p99_ms']} ms"
    )
    log(
        f"list_tickets {backend}: ListTickets p50 {out['helpdesk']['p50_ms']} ms p99 "
        f"{p99} ms; SQL+gRPC+protobuf p50 {out['sql_grpc_protobuf']['p50_ms']} ms p99 "
        f"{out['sql_grpc_protobuf']['p99_ms']} ms; plain SQL p50 {out['plain_sql']['p50_ms']} "
        f"ms p99 {out['plain_sql']['p99_ms']} ms (medians of {LIST_ROUNDS} rounds); "
        f"clocks on the first page {clock_states}"
    )
    return out


async def _search_backend(url: str, stub: Any, md: Any, sizes: Sizes) -> dict[str, Any]:
    """SearchTickets over the populated tickets (and articles) against the engine's own
    query, the same words in turn."""
    t0 = time.monotonic()
    entries = await search.index_corpus(url, sizes.search_articles)
    index_s = time.monotonic() - t0
    bare = await search.bare_search(url)
    hits_seen: list[int] = []

    async def grpc_one(i: int) -> float:
        t = time.monotonic()
        reply = await stub.SearchTickets(
            tpb.SearchTicketsRequest(
                query=search.QUERIES[i % len(search.QUERIES)], page_size=search.PAGE
            ),
            metadata=md,
            timeout=60,
        )
        hits_seen.append(len(reply.hits))
        return time.monotonic() - t

    async def bare_one(i: int) -> float:
        t = time.monotonic()
        await bare(search.QUERIES[i % len(search.QUERIES)])
        return time.monotonic() - t

    try:
        await drive(len(search.QUERIES), 1, bare_one)
        await drive(len(search.QUERIES), 1, grpc_one)
        hits_seen.clear()
        _, bare_lat = await drive(sizes.list_queries, 1, bare_one)
        _, grpc_lat = await drive(sizes.list_queries, 1, grpc_one)
    finally:
        await bare.close()  # type: ignore[attr-defined]
    out: dict[str, Any] = {
        "helpdesk": latency_summary(grpc_lat),
        "bare_engine": latency_summary(bare_lat),
        "hits_per_page": max(hits_seen) if hits_seen else 0,
        "entries": entries,
        "index_seconds": round(index_s, 1),
    }
    out["p99_ratio"] = round(out["helpdesk"]["p99_ms"] / out["bare_engine"]["p99_ms"], 2)
    return out


def _search_result(backends: dict[str, Any], sizes: Sizes) -> Result:
    main = "postgresql" if "postgresql" in backends else "sqlite"
    figures = {b: v["search"] for b, v in backends.items()}
    return result(
        "search",
        figures[main]["helpdesk"]["p99_ms"],
        figures[main]["bare_engine"]["p99_ms"],
        f"ms p99 ({main}; every database in details)",
        "p99 <= 2x the bare engine's query on both databases",
        all(f["p99_ratio"] <= 2 for f in figures.values()),
        {
            "tickets": sizes.list_rows,
            "articles": sizes.search_articles,
            "queries": sizes.list_queries,
            "words": list(search.QUERIES),
            "page_size": search.PAGE,
            "path": "TicketService.SearchTickets over gRPC (tickets process) as the desk: "
            "ranked hits, snippets, the tickets as the caller sees them; sequential",
            "baseline_path": "the engine's ranked MATCH / @@ query with its snippet function, "
            "first page, through the same driver (aiosqlite, asyncpg), sequential",
        },
        {"backends": figures},
        higher_is_better=False,
    )


async def list_tickets(work: Path, sizes: Sizes) -> list[Result]:
    backends: dict[str, Any] = {}
    async with servers(work / "logs") as srv:
        backends["sqlite"] = await _list_backend(srv, work, "sqlite", "", sizes)
        try:
            async with fresh_postgres() as pg_url:
                backends["postgresql"] = await _list_backend(srv, work, "postgresql", pg_url, sizes)
        except (OSError, asyncpg.PostgresError) as err:
            log(f"list_tickets: PostgreSQL unavailable ({err}); SQLite only")
    worst = max(backends, key=lambda b: backends[b]["p99_ratio"])
    return [
        result(
            "list_tickets",
            backends[worst]["helpdesk"]["p99_ms"],
            backends[worst]["sql_grpc_protobuf"]["p99_ms"],
            f"ms p99 ({worst}, the worst ratio; every database in details)",
            "p99 <= 2x (plain SQL + gRPC + protobuf) and <= 3x plain SQL, on both databases",
            all(b["target_met"] for b in backends.values()) and len(backends) == 2,
            {
                "rows": sizes.list_rows,
                "organizations": LIST_ORGS,
                "filter": {"statuses": list(LIST_STATUSES), "organization_id": "one of them"},
                "page_size": "default (50)",
                "queries": sizes.list_queries,
                "rounds": LIST_ROUNDS,
                "figures": f"each series run {LIST_ROUNDS} times, in turn; the median of the "
                "rounds' p50 / p99 / mean",
                "rows_hold": "the default contract's business-hours SLA clocks, as real rows "
                "(opening_clocks at reception, milestones met minutes later, paused when "
                "PENDING / ON_HOLD / SOLVED / CLOSED, breaches of the overdue targets, next due "
                "instant), so that the page's remaining business time is computed per ticket",
                "path": "TicketService.ListTickets over gRPC (tickets process), sequential",
                "baseline_path": "bench.bare_list: a bare grpc.aio server in a process of its "
                "own, one generic unary method running the plain SQL below through the same "
                "driver and building the same ListTicketsResponse of Ticket messages from the "
                "rows' columns (no joined names, no clocks computed), called over gRPC, "
                "sequential",
                "plain_sql_path": "SELECT * ... WHERE organization_id AND status IN ... ORDER BY "
                "id DESC LIMIT 51 through the same driver (aiosqlite, asyncpg) in the bench "
                "process, sequential",
            },
            {
                "backends": {
                    b: {k: v for k, v in f.items() if k != "search"} for b, f in backends.items()
                },
                "worst_backend": worst,
                "postgresql_ran": "postgresql" in backends,
            },
            higher_is_better=False,
        ),
        _search_result(backends, sizes),
    ]


# -- 6. business_time ---------------------------------------------------------------


def _business_inputs(n: int) -> tuple[list[datetime], list[timedelta], list[datetime]]:
    """``n`` instants spread over 2026 (any hour, any day: weekends, holidays, DST days), the
    SLA durations of the default contract (each milestone of each priority, at 80% for the
    warning and 100% for the breach), and ends 0-14 days after each start."""
    rng = random.Random(42)
    year = datetime(2026, 1, 1, tzinfo=UTC)
    minutes = [
        fraction * getattr(t, milestone)
        for t in DEFAULT_TARGETS.values()
        for milestone in ("taken_in_charge_minutes", "first_feedback_minutes", "resolution_minutes")
        for fraction in (0.8, 1.0)
    ]
    starts = [year + timedelta(seconds=rng.randrange(365 * 86400)) for _ in range(n)]
    durations = [timedelta(minutes=rng.choice(minutes)) for _ in range(n)]
    ends = [a + timedelta(seconds=rng.randrange(14 * 86400)) for a in starts]
    return starts, durations, ends


def _best_rate(n: int, run: Callable[[], object], repeats: int = 3) -> float:
    """Operations per second of the fastest of ``repeats`` passes (the least disturbed by the
    other processes on the machine)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return n / best


async def business_time(work: Path, sizes: Sizes) -> list[Result]:
    """``add_business`` and ``business_between`` on the seed 000 calendar (the default
    contract's) against plain ``datetime`` arithmetic on the same inputs, in this process,
    before any server is started."""
    n = sizes.business_ops
    starts, durations, ends = _business_inputs(n)
    cal = SEED_000
    t0 = time.perf_counter()
    add_business(cal, starts[0], durations[0])  # compiled once (the presets at import)
    compile_s = time.perf_counter() - t0

    def bt_add() -> None:
        for a, d in zip(starts, durations, strict=True):
            add_business(cal, a, d)

    def bt_between() -> None:
        for a, b in zip(starts, ends, strict=True):
            business_between(cal, a, b)

    def bare_add() -> None:
        for a, d in zip(starts, durations, strict=True):
            a + d

    def bare_between() -> None:
        for a, b in zip(starts, ends, strict=True):
            b - a

    bt_add()  # every day of the year in the calendar's memo, as in a long-running worker
    rates = {
        "add_business": _best_rate(n, bt_add),
        "business_between": _best_rate(n, bt_between),
        "bare_add": _best_rate(n, bare_add),
        "bare_between": _best_rate(n, bare_between),
    }
    # The mix: as many of each; its rate is the harmonic mean of the two.
    value = 2 / (1 / rates["add_business"] + 1 / rates["business_between"])
    baseline = 2 / (1 / rates["bare_add"] + 1 / rates["bare_between"])
    log("business_time: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in rates.items()))
    return [
        result(
            "business_time",
            value,
            baseline,
            "computations/s",
            "none (reported; no target set)",
            None,
            {
                "computations_per_pass": n,
                "calendar": "SEED_000 (Mon-Fri 08:30-13:00, 14:30-18:30, Europe/Rome, "
                "Italian holidays): the default contract's",
                "mix": "add_business(start, SLA duration) and business_between(start, end) in "
                "equal numbers; starts spread over 2026, durations the default targets at 80% "
                "and 100%, ends 0-14 days after the start",
                "path": "workflows.domain.business_time in the bench process (best of 3 passes)",
                "baseline_path": "start + duration and end - start on the same datetimes",
            },
            {
                "per_second": {k: round(v) for k, v in rates.items()},
                "add_business_ratio": round(rates["add_business"] / rates["bare_add"], 5),
                "business_between_ratio": round(
                    rates["business_between"] / rates["bare_between"], 5
                ),
                "calendar_compile_ms": round(compile_s * 1000, 1),
            },
            higher_is_better=True,
        )
    ]
