"""A process's ``/metrics`` port (ours, then the Temporal SDK's) and the gRPC interceptor
that times every call by method and status code."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from services.common import db, metrics
from services.common.embedded import EmbeddedProcess, free_port
from services.intake.im_models import ImUpdate
from services.intake.models import Base as IntakeBase
from services.intake.models import InboundMessage

pytestmark = pytest.mark.unit


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape by name and labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def server() -> Iterator[metrics.MetricsServer]:
    running = metrics.MetricsServer("127.0.0.1:0")
    yield running
    running.close()


async def get(port: int, path: str = "/metrics") -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.get(f"http://127.0.0.1:{port}{path}", timeout=5)


async def test_metrics_answer_with_the_counters_as_they_move(
    server: metrics.MetricsServer,
) -> None:
    before = value((await get(server.port)).text, "helpdesk_tickets_created_total", channel="phone")
    metrics.TICKETS_CREATED.labels(channel="phone").inc()
    reply = await get(server.port)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert value(reply.text, "helpdesk_tickets_created_total", channel="phone") == before + 1
    # Every metric of the contract is described, even before it first moves.
    names = {family.name for family in text_string_to_metric_families(reply.text)}
    assert {
        "helpdesk_ticket_updates",
        "helpdesk_sla_events",
        "helpdesk_notify_deliveries",
        "helpdesk_mail_parse_seconds",
        "helpdesk_rpc_duration_seconds",
        "helpdesk_im_updates_pending",
    } <= names
    assert "_created" not in reply.text.replace("helpdesk_tickets_created", "")


async def test_only_metrics_is_served(server: metrics.MetricsServer) -> None:
    assert (await get(server.port, "/")).status_code == 404
    assert (await get(server.port, "/metrics/extra")).status_code == 404


def test_a_taken_port_is_an_error_naming_the_address() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        addr = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(RuntimeError, match=f"{addr}: address already in use"):
            metrics.MetricsServer(addr)


def test_nothing_listens_without_the_variable() -> None:
    assert metrics.start_from_env("helpdesk-test", environ={}) is None
    assert not metrics.serving()


async def test_start_from_env_says_which_process_answers() -> None:
    addr = f"127.0.0.1:{free_port()}"
    started = metrics.start_from_env("helpdesk-test", environ={metrics.METRICS_ADDR_ENV: addr})
    assert started is not None
    try:
        assert metrics.serving()
        text = (await get(started.port)).text
        assert value(text, "helpdesk_process_info", service="helpdesk-test") == 1
    finally:
        started.close()
    assert not metrics.serving()


async def test_temporal_metrics_follow_ours(temporal_dev_server: EmbeddedProcess) -> None:
    port = free_port()
    runtime = Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=f"127.0.0.1:{port}",
                counters_total_suffix=True,
                unit_suffix=True,
                durations_as_seconds=True,
            )
        )
    )
    client = await Client.connect(temporal_dev_server.addresses["temporal"], runtime=runtime)
    await client.count_workflows()
    server = metrics.MetricsServer("127.0.0.1:0", temporal_port=port)
    try:
        text = (await get(server.port)).text
    finally:
        server.close()
    names = {family.name for family in text_string_to_metric_families(text)}
    assert "helpdesk_tickets_created" in names
    assert any(name.startswith("temporal_request") for name in names), sorted(names)


async def test_without_the_temporal_exporter_ours_still_answer() -> None:
    server = metrics.MetricsServer("127.0.0.1:0", temporal_port=free_port())
    try:
        reply = await get(server.port)
    finally:
        server.close()
    assert reply.status_code == 200
    assert "helpdesk_rpc_duration_seconds" in reply.text


# -- the interceptor ---------------------------------------------------------------------


async def _ok(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    return request


async def _missing(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    raise AssertionError("unreachable")


async def _set_code(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    context.set_code(grpc.StatusCode.FAILED_PRECONDITION)
    return b""


async def _crash(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
    raise ValueError("bug")


async def _stream(
    request: bytes, context: grpc.aio.ServicerContext[Any, Any]
) -> AsyncIterator[bytes]:
    for _ in range(3):
        yield request


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    handlers = {
        "Ok": grpc.unary_unary_rpc_method_handler(_ok),
        "Missing": grpc.unary_unary_rpc_method_handler(_missing),
        "SetCode": grpc.unary_unary_rpc_method_handler(_set_code),
        "Crash": grpc.unary_unary_rpc_method_handler(_crash),
        "Stream": grpc.unary_stream_rpc_method_handler(_stream),
    }
    server = grpc.aio.server(interceptors=[metrics.RpcMetricsInterceptor()])
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.v1.Probe", handlers),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as client:
        yield client
    await server.stop(None)


def count(method: str, code: str) -> float:
    found = metrics.RPC_DURATION.labels(method=f"/test.v1.Probe/{method}", code=code)
    return sum(
        s.value for family in found.collect() for s in family.samples if s.name.endswith("_count")
    )


async def test_calls_are_timed_by_method_and_code(channel: grpc.aio.Channel) -> None:
    before = {
        (m, c): count(m, c)
        for m, c in [
            ("Ok", "OK"),
            ("Missing", "NOT_FOUND"),
            ("SetCode", "FAILED_PRECONDITION"),
            ("Crash", "UNKNOWN"),
            ("Stream", "OK"),
        ]
    }
    assert await channel.unary_unary("/test.v1.Probe/Ok")(b"hi") == b"hi"
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await channel.unary_unary("/test.v1.Probe/Missing")(b"")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError):
        await channel.unary_unary("/test.v1.Probe/SetCode")(b"")
    with pytest.raises(grpc.aio.AioRpcError) as crash:
        await channel.unary_unary("/test.v1.Probe/Crash")(b"")
    assert crash.value.code() == grpc.StatusCode.UNKNOWN
    streamed = [m async for m in channel.unary_stream("/test.v1.Probe/Stream")(b"x")]
    assert streamed == [b"x", b"x", b"x"]
    await asyncio.sleep(0.1)  # the server side finishes after the client has its answer
    for (method, code), n in before.items():
        assert count(method, code) == n + 1, (method, code)


# -- intake's gauges -----------------------------------------------------------------------


def _mail(status: str, received_at: datetime) -> InboundMessage:
    key = uuid.uuid4().hex
    return InboundMessage(
        id=key,
        dedup_key=key,
        mail_from="mario@rossi.it",
        rcpt_to=["assistenza@helpdesk.localhost"],
        raw=b"",
        status=status,
        received_at=received_at,
    )


def _im(status: str, received_at: datetime) -> ImUpdate:
    key = uuid.uuid4().hex
    return ImUpdate(
        id=key,
        provider="telegram",
        external_id=key,
        kind="message",
        payload={},
        status=status,
        received_at=received_at,
    )


def gauge(name: str, **labels: str) -> float:
    found = prometheus_client.REGISTRY.get_sample_value(name, labels)
    return -1.0 if found is None else found


async def test_intake_gauges_count_rows_by_status_and_age_the_oldest_waiting(
    tmp_path: Path,
) -> None:
    engine = db.make_engine(f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(IntakeBase.metadata.create_all)
    sessions = db.make_sessionmaker(engine)
    now = datetime.now(UTC)
    async with sessions() as session:
        session.add_all(
            [
                _mail("RECEIVED", now - timedelta(minutes=10)),
                _mail("RECEIVED", now),
                _mail("TICKET_CREATED", now - timedelta(hours=1)),
                _im("RECEIVED", now),
                _im("HELD", now),
                _im("TICKET_CREATED", now),
            ]
        )
        await session.commit()
    gauges = metrics.IntakeGauges(sessions, {"mail": InboundMessage, "im": ImUpdate})
    try:
        await gauges.refresh()
        assert gauge("helpdesk_intake_rows", kind="mail", status="RECEIVED") == 2
        assert gauge("helpdesk_intake_rows", kind="mail", status="TICKET_CREATED") == 1
        assert gauge("helpdesk_intake_rows", kind="im", status="HELD") == 1
        age = gauge("helpdesk_intake_oldest_received_age_seconds", kind="mail")
        assert 600 <= age < 660
        assert gauge("helpdesk_im_updates_pending") == 2

        # Everything processed: the waiting counts and the age fall to 0, not stay behind.
        async with sessions() as session:
            await session.execute(update(InboundMessage).values(status="TICKET_CREATED"))
            await session.execute(update(ImUpdate).values(status="COMMENT_ADDED"))
            await session.commit()
        await gauges.refresh()
        assert gauge("helpdesk_intake_rows", kind="mail", status="RECEIVED") == 0
        assert gauge("helpdesk_intake_rows", kind="mail", status="TICKET_CREATED") == 3
        assert gauge("helpdesk_intake_rows", kind="im", status="HELD") == 0
        assert gauge("helpdesk_intake_oldest_received_age_seconds", kind="mail") == 0
        assert gauge("helpdesk_im_updates_pending") == 0
    finally:
        await engine.dispose()
