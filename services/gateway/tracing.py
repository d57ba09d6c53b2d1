"""A server span for each page and API call, parent of the gRPC calls it makes."""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode

from services.common import telemetry
from services.gateway.security import ASGIApp, Message, Receive, Scope, Send

_tracer = telemetry.tracer(__name__)
# Files and probes: no trace of their own.
UNTRACED_PREFIXES = ("/static/", "/healthz", "/readyz", "/favicon")


class Traced:
    """ASGI middleware: one span per HTTP request, named by method and route template
    (``GET /tickets/{ticket_id}``), continuing a ``traceparent`` the caller sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or path.startswith(UNTRACED_PREFIXES):
            await self.app(scope, receive, send)
            return
        method = str(scope.get("method", "GET"))
        headers = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in scope.get("headers", [])
            if k in (b"traceparent", b"tracestate")
        }
        with _tracer.start_as_current_span(
            f"{method} {path}",
            context=telemetry.extract(headers),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path},
        ) as span:
            status = 500

            async def sent(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                await send(message)

            try:
                await self.app(scope, receive, sent)
            finally:
                route: Any = scope.get("route")
                template = getattr(route, "path", None)
                if template:
                    span.update_name(f"{method} {template}")
                    span.set_attribute("http.route", template)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
