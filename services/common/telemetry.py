"""What every process starts with: JSON logs, OpenTelemetry traces and Prometheus metrics.

One ticket's life is one trace: the trace context travels in gRPC metadata (the
instrumentation's interceptors), in Temporal headers (the SDK's ``TracingInterceptor``), in
NATS message headers (``inject``/``extract`` around ``EventPublisher`` and the notify
consumers) and in intake's stored rows (``traceparent``, from the SMTP accept to the mail's
processing).

Finished spans go by OTLP when the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, and are appended to
``HELPDESK_TRACES_FILE`` when that is set, one span per line in the SDK's own JSON
(``span.to_json(indent=None)``). With neither, no span is recorded at all.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.grpc import (
    aio_client_interceptors,
    aio_server_interceptor,
    filters,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

log = logging.getLogger(__name__)

TRACES_FILE_ENV = "HELPDESK_TRACES_FILE"
OTLP_ENDPOINT_ENVS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
# The processes, by the name ``helpdesk-process`` knows them, and their ``service.name``.
SERVICE_NAMES = {
    "intake": "helpdesk-intake",
    "tickets": "helpdesk-tickets",
    "notify": "helpdesk-notify",
    "dev-escalation": "helpdesk-dev-escalation",
    "workflow-worker": "helpdesk-workflow-worker",
    "gateway": "helpdesk-gateway",
}
# Spans reach the file this soon after they end (the SDK's default is five seconds).
FILE_EXPORT_DELAY_MILLIS = 500
# Probes call the health service every few seconds: their spans would bury the tickets'.
_UNTRACED_SERVICES = ("grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection")

_provider: TracerProvider | None = None


class JsonLinesSpanExporter(SpanExporter):
    """Appends finished spans to a file, one JSON object per line (several processes may
    share the file: each batch is one ``write`` on a descriptor opened for appending)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        text = "".join(span.to_json(indent=None) + "\n" for span in spans)
        try:
            with self._lock:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, text.encode())
                finally:
                    os.close(fd)
        except OSError as err:
            log.warning("cannot append spans to %s: %s", self.path, err)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing is held open between batches."""


def service_name(process: str) -> str:
    """``helpdesk-<process>`` for a process ``helpdesk-process`` knows."""
    return SERVICE_NAMES.get(process, f"helpdesk-{process}")


def start(process: str) -> None:
    """Logs, traces and metrics for process ``process`` (``tickets``, ``intake``, ...).

    Called once, before the event loop starts: the Temporal runtime that exports the SDK's
    metrics must exist before the first Temporal client."""
    # Imported here: they read the environment, and tests import this module without them.
    from services.common import logs, metrics

    name = service_name(process)
    logs.configure(name)
    start_tracing(name)
    metrics.start_from_env(name)


def start_tracing(
    service: str,
    exporters: Sequence[SpanExporter] = (),
    environ: Mapping[str, str] | None = None,
) -> TracerProvider | None:
    """Install the process's tracer provider with the exporters the environment asks for
    (and ``exporters``, for tests); None, and nothing recorded, when none is asked for."""
    global _provider
    env = os.environ if environ is None else environ
    processors: list[BatchSpanProcessor] = [BatchSpanProcessor(e) for e in exporters]
    if any(env.get(var, "").strip() for var in OTLP_ENDPOINT_ENVS):
        # Imported only when used: it brings the OTLP protobufs along.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        processors.append(BatchSpanProcessor(OTLPSpanExporter()))
    traces_file = env.get(TRACES_FILE_ENV, "").strip()
    if traces_file:
        path = Path(traces_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        processors.append(
            BatchSpanProcessor(
                JsonLinesSpanExporter(path), schedule_delay_millis=FILE_EXPORT_DELAY_MILLIS
            )
        )
    if not processors:
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    for processor in processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def stop() -> None:
    """Export the spans still buffered (before a process leaves with ``os._exit``)."""
    global _provider
    if _provider is not None:
        _provider.shutdown()
        _provider = None


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


# -- carrying the context ---------------------------------------------------------------


def inject(carrier: dict[str, str] | None = None) -> dict[str, str]:
    """``carrier`` (or a new dict) with the current trace context added as W3C headers
    (``traceparent``; nothing outside a recorded span)."""
    headers = {} if carrier is None else carrier
    propagate.inject(headers)
    return headers


def extract(carrier: Mapping[str, str] | None) -> otel_context.Context:
    """The trace context in ``carrier`` (message headers, a stored ``traceparent``)."""
    return propagate.extract(dict(carrier or {}))


def traceparent() -> str:
    """The current span's ``traceparent`` header, empty outside any recorded span."""
    return inject().get("traceparent", "")


def from_traceparent(value: str) -> otel_context.Context:
    return extract({"traceparent": value} if value else {})


# -- gRPC --------------------------------------------------------------------------------


def grpc_server_interceptor() -> Any:
    """A server span for every call but the health and reflection services'."""
    return aio_server_interceptor(  # type: ignore[no-untyped-call]
        filter_=filters.negate(
            filters.any_of(*(filters.service_name(n) for n in _UNTRACED_SERVICES))
        )
    )


def grpc_client_interceptors() -> list[Any]:
    """Client spans, and the trace context in every call's metadata."""
    return list(
        aio_client_interceptors(  # type: ignore[no-untyped-call]
            filter_=filters.negate(
                filters.any_of(*(filters.service_name(n) for n in _UNTRACED_SERVICES))
            )
        )
    )


def temporal_interceptors() -> list[Any]:
    """Temporal's own tracing interceptor, for clients and the workers built on them."""
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


def insecure_channel(address: str, options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
    """A ``grpc.aio`` channel to another service whose calls carry the trace context."""
    return grpc.aio.insecure_channel(
        address, options=list(options), interceptors=grpc_client_interceptors()
    )
