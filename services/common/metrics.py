"""Prometheus metrics of every process: what they count, and the ``/metrics`` port.

With ``HELPDESK_METRICS_ADDR`` (host:port) set, ``start_from_env`` serves ``GET /metrics``
there: this module's metrics (on prometheus_client's default registry, with the
interpreter's own), then the Temporal SDK's (``temporal_...``), which its runtime exports
on a loopback port of its own and which are fetched at each scrape. Unset, nothing listens
and the metrics below are still counted (cheaply) in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import http.server
import logging
import os
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc
import prometheus_client
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.common.embedded import free_port
from services.common.settings import split_hostport

log = logging.getLogger(__name__)

METRICS_ADDR_ENV = "HELPDESK_METRICS_ADDR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# How long a scrape waits for the Temporal runtime's exporter before answering without it.
TEMPORAL_FETCH_TIMEOUT = 2.0

# A ``..._created`` timestamp beside every counter only doubles the series.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

PROCESS_INFO = Gauge(
    "helpdesk_process_info",
    "Always 1; the service label says which help desk process answered this scrape.",
    ["service"],
)
TICKETS_CREATED = Counter(
    "helpdesk_tickets_created",
    "Tickets stored by the tickets service, by the channel they came in through "
    "(an idempotent retry of the same request is not counted again).",
    ["channel"],
)
TICKET_UPDATES = Counter(
    "helpdesk_ticket_updates",
    "Workflow updates sent to running workflows (tickets, programming tickets, quotes, "
    "maintenance), by update name and outcome: "
    "accepted; rejected (an illegal move or bad input, the caller's error); failed (the rest).",
    ["update", "outcome"],
)
SLA_EVENTS = Counter(
    "helpdesk_sla_events",
    "Service-level events recorded on tickets: kind warning (80% of a target used) or "
    "breach (a target missed), by target.",
    ["kind", "target"],
)
INTAKE_ROWS = Gauge(
    "helpdesk_intake_rows",
    "Rows in intake's stores by kind (mail: inbound emails, im: instant-messaging updates) "
    "and status; RECEIVED ones are still to be processed.",
    ["kind", "status"],
)
INTAKE_OLDEST_RECEIVED_AGE = Gauge(
    "helpdesk_intake_oldest_received_age_seconds",
    "Age of the oldest row still RECEIVED (not yet turned into a ticket or comment), "
    "0 when none waits; growing means intake is stuck.",
    ["kind"],
)
IM_UPDATES_PENDING = Gauge(
    "helpdesk_im_updates_pending",
    "Instant-messaging updates not yet turned into a ticket or comment: waiting to be "
    "processed (RECEIVED) or for the customer's answer to the bot's question (HELD).",
)
NOTIFY_DELIVERIES = Counter(
    "helpdesk_notify_deliveries",
    "Messages notify handled, by channel and outcome: sent; failed (given up); retry (a "
    "failed attempt to be retried); suppressed (an automatic reply not sent on purpose); "
    "refused (a message that cannot be composed, never retried).",
    ["channel", "outcome"],
)
MAIL_PARSE_SECONDS = Histogram(
    "helpdesk_mail_parse_seconds",
    "Time intake took to parse one inbound email (MIME, attachments, quoting).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
RPC_DURATION = Histogram(
    "helpdesk_rpc_duration_seconds",
    "Time a gRPC call took on the server side, by full method name and status code.",
    ["method", "code"],
)
WORKER_POLLING = Gauge(
    "helpdesk_worker_polling",
    "1 while this process's Temporal worker is seen polling its task queue, else 0.",
    ["task_queue"],
)

# Update outcomes by the gRPC code ``workflow_updates`` turns a failure into.
REJECTED_CODES = frozenset({grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT})

_server: MetricsServer | None = None


def serving() -> bool:
    """Whether this process serves ``/metrics`` (gauges that cost a call are kept then)."""
    return _server is not None


def update_outcome(code: grpc.StatusCode | None) -> str:
    """``accepted`` (no error), ``rejected`` (the caller's error) or ``failed``."""
    if code is None:
        return "accepted"
    return "rejected" if code in REJECTED_CODES else "failed"


# -- the /metrics port ------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _HttpServer

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/metrics":
            self._answer(404, b"not found: scrape /metrics\n")
            return
        self._answer(200, self.server.owner.scrape())

    def _answer(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes come every few seconds: not worth a log line each."""


class _HttpServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], owner: MetricsServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)


class MetricsServer:
    """``GET /metrics`` on ``addr`` from a daemon thread: the default registry's text, then
    the Temporal runtime exporter's on loopback port ``temporal_port`` (when given)."""

    def __init__(self, addr: str, temporal_port: int | None = None) -> None:
        host, port = split_hostport(addr)
        self.temporal_port = temporal_port
        try:
            self._http = _HttpServer((host, port), self)
        except OSError as err:
            why = "address already in use" if err.errno == errno.EADDRINUSE else str(err)
            raise RuntimeError(f"cannot serve metrics on {addr}: {why}") from err
        self.port = int(self._http.server_address[1])
        self._thread = threading.Thread(
            target=self._http.serve_forever, name="metrics", daemon=True
        )
        self._thread.start()

    def scrape(self) -> bytes:
        ours = prometheus_client.generate_latest(prometheus_client.REGISTRY)
        if self.temporal_port is None:
            return ours
        url = f"http://127.0.0.1:{self.temporal_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=TEMPORAL_FETCH_TIMEOUT) as reply:
                theirs = bytes(reply.read())
        except OSError as err:
            log.debug("Temporal metrics not available: %s", err)
            return ours
        return ours + theirs

    def close(self) -> None:
        global _server
        self._http.shutdown()
        self._http.server_close()
        if _server is self:
            _server = None


def install_temporal_runtime() -> int:
    """Make the default Temporal runtime export the SDK's metrics on a free loopback port
    (returned), named as Prometheus expects: counters ``_total``, durations in seconds.
    Must run before the first Temporal client: clients keep the runtime they started on."""
    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

    port = free_port()
    config = PrometheusConfig(
        bind_address=f"127.0.0.1:{port}",
        counters_total_suffix=True,
        unit_suffix=True,
        durations_as_seconds=True,
    )
    Runtime.set_default(
        Runtime(telemetry=TelemetryConfig(metrics=config)), error_if_already_set=False
    )
    return port


def start_from_env(service: str, environ: Mapping[str, str] | None = None) -> MetricsServer | None:
    """Serve ``/metrics`` where ``HELPDESK_METRICS_ADDR`` says (None when unset); raises
    ``RuntimeError`` naming the address when it cannot listen there."""
    global _server
    env = os.environ if environ is None else environ
    addr = env.get(METRICS_ADDR_ENV, "").strip()
    if not addr:
        return None
    temporal_port = install_temporal_runtime()
    server = MetricsServer(addr, temporal_port)
    PROCESS_INFO.labels(service=service).set(1)
    _server = server
    log.info("metrics on http://%s/metrics", addr)
    return server


# -- gRPC server side -------------------------------------------------------------------


def _code_name(context: Any, err: BaseException | None) -> str:
    """The status a call ended with: the one set on ``context`` (``abort``, ``set_code``),
    else UNKNOWN after an exception, else OK."""
    code = None
    with contextlib.suppress(Exception):
        code = context.code()
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if isinstance(code, int):  # some grpc versions keep the number
        for known in grpc.StatusCode:
            if known.value[0] == code:
                return str(known.name)
    if isinstance(err, grpc.RpcError) and hasattr(err, "code"):
        with contextlib.suppress(Exception):
            return str(err.code().name)
    return "OK" if err is None else "UNKNOWN"


def _timed_unary(method: str, behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    async def timed(request: Any, context: Any) -> Any:
        start = time.perf_counter()
        err: BaseException | None = None
        try:
            return await behavior(request, context)
        except BaseException as caught:
            err = caught
            raise
        finally:
            RPC_DURATION.labels(method=method, code=_code_name(context, err)).observe(
                time.perf_counter() - start
            )

    return timed


def _timed_stream(method: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
    """A streaming response handler: an async generator, or a coroutine that writes."""

    async def timed(request: Any, context: Any) -> Any:
        start = time.perf_counter()
        err: BaseException | None = None
        try:
            result = behavior(request, context)
            if hasattr(result, "__aiter__"):
                async for item in result:
                    yield item
            else:
                await result
        except BaseException as caught:
            err = caught
            raise
        finally:
            RPC_DURATION.labels(method=method, code=_code_name(context, err)).observe(
                time.perf_counter() - start
            )

    return timed


RpcHandler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


@dataclass(frozen=True)
class _Kind:
    attribute: str
    factory: Callable[..., RpcHandler]
    streaming_response: bool


_KINDS = (
    _Kind("unary_unary", grpc.unary_unary_rpc_method_handler, False),
    _Kind("unary_stream", grpc.unary_stream_rpc_method_handler, True),
    _Kind("stream_unary", grpc.stream_unary_rpc_method_handler, False),
    _Kind("stream_stream", grpc.stream_stream_rpc_method_handler, True),
)


if TYPE_CHECKING:
    _ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _ServerInterceptor = grpc.aio.ServerInterceptor


class RpcMetricsInterceptor(_ServerInterceptor):
    """Observes ``helpdesk_rpc_duration_seconds{method, code}`` for every call."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[RpcHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> RpcHandler:
        handler = await continuation(handler_call_details)
        if handler is None:  # an unknown method: gRPC answers UNIMPLEMENTED itself
            return handler
        method = str(handler_call_details.method)
        for kind in _KINDS:
            behavior = getattr(handler, kind.attribute, None)
            if behavior is None:
                continue
            wrap = _timed_stream if kind.streaming_response else _timed_unary
            return kind.factory(
                wrap(method, behavior),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler


# -- intake's stores --------------------------------------------------------------------

# IM update statuses that still wait for something (see IM_UPDATES_PENDING).
IM_PENDING_STATUSES = ("RECEIVED", "HELD")
INTAKE_REFRESH_SECONDS = 5.0


class IntakeGauges:
    """Refreshes the intake gauges from ``tables`` (kind -> a model with ``status`` and
    ``received_at`` columns), one GROUP BY query per table; ``im`` also gives
    ``helpdesk_im_updates_pending``."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], tables: Mapping[str, Any]
    ) -> None:
        self.sessions = sessions
        self.tables = dict(tables)
        self._seen: dict[str, set[str]] = {kind: set() for kind in self.tables}

    async def refresh(self) -> None:
        now = datetime.now(UTC)
        async with self.sessions() as session:
            for kind, model in self.tables.items():
                rows = (
                    await session.execute(
                        select(model.status, func.count(), func.min(model.received_at)).group_by(
                            model.status
                        )
                    )
                ).all()
                counts = {str(status): int(n) for status, n, _ in rows}
                oldest = next((when for status, _, when in rows if status == "RECEIVED"), None)
                # A status gone from the table reads 0, not its last count.
                for status in self._seen[kind] | {"RECEIVED"} | counts.keys():
                    INTAKE_ROWS.labels(kind=kind, status=status).set(counts.get(status, 0))
                self._seen[kind] |= counts.keys()
                age = 0.0
                if isinstance(oldest, datetime):
                    aware = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
                    age = max((now - aware).total_seconds(), 0.0)
                INTAKE_OLDEST_RECEIVED_AGE.labels(kind=kind).set(age)
                if kind == "im":
                    IM_UPDATES_PENDING.set(sum(counts.get(s, 0) for s in IM_PENDING_STATUSES))

    async def run_forever(self, every: float = INTAKE_REFRESH_SECONDS) -> None:
        """Refresh every ``every`` seconds until cancelled; a failed query is logged."""
        while True:
            try:
                await self.refresh()
            except Exception as err:
                log.warning("intake gauges not refreshed: %s", err)
            await asyncio.sleep(every)
