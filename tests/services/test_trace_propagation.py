"""The trace context across NATS (a real nats-server) and into the spans file, with the
SDK's in-memory exporter: what a consumer does continues the trace of what published."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.common import logs, telemetry
from services.common.events import STREAM, EventPublisher, ensure_stream
from services.notify.consumer import JetStreamConsumer
from services.notify.notifier import Progress
from tests.support import eventually

pytestmark = pytest.mark.timeout(60)

_exporter = InMemorySpanExporter()


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider, recording into memory (set once per process)."""
    provider = TracerProvider(resource=Resource.create({"service.name": "helpdesk-test"}))
    provider.add_span_processor(SimpleSpanProcessor(_exporter))
    trace.set_tracer_provider(provider)
    yield _exporter


class Recorder(JetStreamConsumer[dict[str, Any]]):
    """Notes the span context each event is processed in."""

    stream: ClassVar[str] = STREAM
    description: ClassVar[str] = "trace propagation test"

    def __init__(self, nats_url: str, subject: str) -> None:
        super().__init__(
            nats_url, durable=f"trace-{uuid.uuid4().hex[:8]}", deliver_policy=DeliverPolicy.NEW
        )
        self.filter_subject = subject  # type: ignore[misc]
        self.seen: list[trace.SpanContext] = []
        self.lines: list[dict[str, Any]] = []  # a log line written while processing

    async def ensure_stream(self, js: JetStreamContext) -> None:
        await ensure_stream(js)

    def parse(self, data: bytes) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(data)
        return event

    def describe(self, event: dict[str, Any]) -> str:
        return str(event.get("event_id"))

    async def process(self, event: dict[str, Any], progress: Progress) -> float | None:
        self.seen.append(trace.get_current_span().get_span_context())
        record = logging.makeLogRecord({"msg": "sent", "levelname": "INFO"})
        self.lines.append(json.loads(logs.JsonFormatter("helpdesk-test").format(record)))
        return None


async def test_a_consumer_continues_the_trace_of_the_publisher(
    nats_url: str, spans: InMemorySpanExporter
) -> None:
    subject = f"helpdesk.ticket.tracetest_{uuid.uuid4().hex[:8]}"
    consumer = Recorder(nats_url, subject)
    await consumer.start()
    running = asyncio.create_task(consumer.run())
    publisher = EventPublisher(nats_url, "trace-test")
    try:
        with telemetry.tracer("test").start_as_current_span("CreateTicket") as cause:
            await publisher.publish(subject, uuid.uuid4().hex, {"event_id": "e-1", "ticket_id": 42})
        await eventually(lambda: len(consumer.seen) == 1, timeout=20)
    finally:
        consumer.request_stop()
        await publisher.close()
        await asyncio.wait_for(running, 10)
        await consumer.close()
    trace_id = cause.get_span_context().trace_id
    processed = consumer.seen[0]
    assert processed.trace_id == trace_id
    finished = {s.name: s for s in spans.get_finished_spans() if s.context.trace_id == trace_id}
    publish, handled = finished[f"{subject} publish"], finished[f"{subject} process"]
    assert publish.parent is not None and publish.parent.span_id == cause.get_span_context().span_id
    assert handled.parent is not None and handled.parent.span_id == publish.context.span_id
    assert processed.span_id == handled.context.span_id
    [line] = consumer.lines  # what notify logs for the event names its trace and ticket
    assert line["trace_id"] == trace.format_trace_id(trace_id)
    assert line["ticket_id"] == 42


def test_a_stored_traceparent_gives_back_the_context_it_was_taken_in(
    spans: InMemorySpanExporter,
) -> None:
    tracer = telemetry.tracer("test")
    with tracer.start_as_current_span("smtp accept") as accept:
        stored = telemetry.traceparent()
    assert telemetry.traceparent() == ""  # no span: nothing to store
    with tracer.start_as_current_span(
        "mail process", context=telemetry.from_traceparent(stored)
    ) as later:
        pass
    assert later.get_span_context().trace_id == accept.get_span_context().trace_id
    finished = next(s for s in spans.get_finished_spans() if s.name == "mail process")
    assert finished.parent is not None
    assert finished.parent.span_id == accept.get_span_context().span_id


def test_processes_append_their_spans_to_one_file_a_span_a_line(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    for name in ("helpdesk-intake", "helpdesk-tickets"):
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        provider.add_span_processor(SimpleSpanProcessor(telemetry.JsonLinesSpanExporter(path)))
        with provider.get_tracer("test").start_as_current_span(f"work of {name}"):
            pass
        provider.shutdown()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(s["name"], s["resource"]["attributes"]["service.name"]) for s in lines] == [
        ("work of helpdesk-intake", "helpdesk-intake"),
        ("work of helpdesk-tickets", "helpdesk-tickets"),
    ]


def test_no_exporter_asked_for_records_nothing() -> None:
    assert telemetry.start_tracing("helpdesk-test", environ={}) is None
