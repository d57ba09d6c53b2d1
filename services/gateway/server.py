"""Runs the gateway's ASGI app on uvicorn at ``HELPDESK_GATEWAY_LISTEN`` until SIGTERM."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import uvicorn

from services.common.lifecycle import Lifecycle
from services.common.settings import Settings, split_hostport
from services.gateway.app import create_app

log = logging.getLogger("helpdesk.gateway")
# Requests in flight get this long after SIGTERM (terminationGracePeriodSeconds is longer).
GRACEFUL_SHUTDOWN_SECONDS = 10


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: SIGTERM ends the process with exit code 0,
    like every other process of ours, instead of being raised again after the shutdown."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM, then finish the requests in flight."""
    host, port = split_hostport(settings.gateway_listen)
    config = uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        # X-Forwarded-Proto from the ingress decides whether cookies are Secure.
        proxy_headers=True,
        forwarded_allow_ips="*",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = _Server(config)
    async with Lifecycle("gateway") as life:

        async def finish_requests() -> None:
            server.should_exit = True

        log.info("gateway listening on http://%s", settings.gateway_listen)
        # The app's own resources (sessions, gRPC channels) close in its lifespan.
        await life.run(server.serve(), first=finish_requests, drain=GRACEFUL_SHUTDOWN_SECONDS + 5)
