"""A `grpc.aio` server with the standard health and reflection services and auth.

gRPC reads a whole request message before any handler (or the bearer-token check) sees
it, so the largest message a server accepts is what anyone may make it hold in memory
unauthenticated. Each server takes only what its own services need: 4 MiB by default, more
only where attachments travel (``MAX_RECEIVE_BYTES_BY_SERVICE``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.common.auth import BearerAuthInterceptor
from services.common.health import LIVENESS
from services.common.limits import MAX_ATTACHMENTS_TOTAL, MiB
from services.common.metrics import RpcMetricsInterceptor
from services.common.settings import Settings
from services.common.telemetry import grpc_server_interceptor
from services.common.tokens import TokenSigner

log = logging.getLogger(__name__)

# What a server whose services carry no files accepts: far above any of their requests.
DEFAULT_MAX_RECEIVE_BYTES = 4 * MiB
# Room around the files of one request: base64 in a raw email, MIME headers, the text.
ATTACHMENT_OVERHEAD_BYTES = 15 * MiB
# Services whose requests carry attachments: up to 25 MiB of files (a ticket, a comment,
# IntakeService.SubmitEmail's raw message) and the rest of the request: 40 MiB.
MAX_RECEIVE_BYTES_BY_SERVICE = {
    "helpdesk.v1.TicketService": MAX_ATTACHMENTS_TOTAL + ATTACHMENT_OVERHEAD_BYTES,
    "helpdesk.v1.IntakeService": MAX_ATTACHMENTS_TOTAL + ATTACHMENT_OVERHEAD_BYTES,
}


def receive_limit(settings: Settings, service_names: Iterable[str]) -> int:
    """The largest request a server for ``service_names`` needs to accept: the largest
    of theirs (``MAX_RECEIVE_BYTES_BY_SERVICE``), else ``DEFAULT_MAX_RECEIVE_BYTES``.
    Intake also takes a raw email up to ``HELPDESK_SMTP_MAX_MESSAGE_BYTES``."""
    names = set(service_names)
    limits = [DEFAULT_MAX_RECEIVE_BYTES]
    limits += [MAX_RECEIVE_BYTES_BY_SERVICE[n] for n in names if n in MAX_RECEIVE_BYTES_BY_SERVICE]
    if "helpdesk.v1.IntakeService" in names:
        limits.append(settings.smtp_max_message_bytes + MiB)
    return max(limits)


class ServiceServer:
    """Owns one process's gRPC server and its health status."""

    def __init__(
        self,
        settings: Settings,
        listen: str,
        service_names: Iterable[str],
        register: Callable[[grpc.aio.Server], None],
        *,
        max_receive_bytes: int | None = None,
    ) -> None:
        """``max_receive_bytes``: the largest request accepted (``RESOURCE_EXHAUSTED``
        beyond it); None: what ``service_names`` need (``receive_limit``)."""
        self.service_names = list(service_names)
        if max_receive_bytes is None:
            max_receive_bytes = receive_limit(settings, self.service_names)
        self.max_receive_bytes = max_receive_bytes
        self.server = grpc.aio.server(
            interceptors=[
                # Timing and tracing see every call, refused ones too.
                RpcMetricsInterceptor(),
                grpc_server_interceptor(),
                BearerAuthInterceptor(
                    settings.admin_token,
                    settings.service_token,
                    TokenSigner(settings.token_signing_key()),
                ),
            ],
            options=[("grpc.max_receive_message_length", max_receive_bytes)],
        )
        register(self.server)
        self.health = health.aio.HealthServicer()  # type: ignore[attr-defined]
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        self.port = self.server.add_insecure_port(listen)
        if self.port == 0:
            raise RuntimeError(f"cannot listen on {listen}")
        self.listen = listen
        self._stopping = False

    async def set_serving(self, serving: bool) -> None:
        """Readiness (``""`` and every service name); never SERVING again once stopping."""
        serving = serving and not self._stopping
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *self.service_names]:
            await self.health.set(name, status)

    async def start(self) -> None:
        """Listen, NOT_SERVING until the process says its dependencies answer; ``liveness``
        (see ``services.common.health``) SERVING from now on."""
        await self.set_serving(False)
        await self.health.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
        await self.server.start()

    async def begin_shutdown(self) -> None:
        """NOT_SERVING for good (SIGTERM): load balancers and Kubernetes stop sending calls."""
        self._stopping = True
        await self.set_serving(False)

    async def stop(self, grace: float = 5.0) -> None:
        """NOT_SERVING, then finish the calls in flight within ``grace`` seconds."""
        await self.begin_shutdown()
        await self.server.stop(grace)


async def run_until_signal(*tasks: Awaitable[object]) -> None:
    """Wait for SIGINT/SIGTERM (or for any of ``tasks`` to end, which is an error)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    waiters = [asyncio.ensure_future(t) for t in tasks]
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait([stopper, *waiters], return_when=asyncio.FIRST_COMPLETED)
    for w in waiters:
        if w in done and w.exception() is not None:
            stopper.cancel()
            raise w.exception()  # type: ignore[misc]
    stopper.cancel()
