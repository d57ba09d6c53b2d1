"""TicketService and DirectoryService served by a real in-process gRPC server over the
tickets stack of ``tests.support`` (the ``api`` fixture of ``conftest.py``)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc
from temporalio.client import Client

from helpdesk.v1 import directory_pb2_grpc as dgrpc
from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.common.grpc_server import ServiceServer
from services.common.settings import Settings
from services.common.tokens import TokenSigner
from services.tickets.directory import DirectoryServicer
from services.tickets.servicer import TicketServicer
from tests.support import SIGNING_KEY, TicketsStack, tickets_stack

ADMIN_TOKEN = "test-admin-token"
SERVICE_TOKEN = "test-service-token"
SIGNER = TokenSigner(SIGNING_KEY)


@dataclass
class Api:
    tickets: tgrpc.TicketServiceStub
    directory: dgrpc.DirectoryServiceStub
    stack: TicketsStack
    settings: Settings


@asynccontextmanager
async def serve_api(
    temporal_client: Client, database_url: str, nats_url: str
) -> AsyncIterator[Api]:
    settings = dataclasses.replace(
        Settings.from_env(),
        admin_token=ADMIN_TOKEN,
        service_token=SERVICE_TOKEN,
        signing_key=SIGNING_KEY,
        nats_url=nats_url,
    )
    async with tickets_stack(temporal_client, database_url, nats_url) as stack:

        def register(server: grpc.aio.Server) -> None:
            tgrpc.add_TicketServiceServicer_to_server(
                TicketServicer(stack.sessions, temporal_client, stack.creator, SIGNER), server
            )
            dgrpc.add_DirectoryServiceServicer_to_server(
                DirectoryServicer(stack.sessions, stack.credentials), server
            )

        server = ServiceServer(settings, "127.0.0.1:0", ["helpdesk.v1.TicketService"], register)
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        try:
            yield Api(
                tgrpc.TicketServiceStub(channel),  # type: ignore[arg-type]
                dgrpc.DirectoryServiceStub(channel),  # type: ignore[arg-type]
                stack,
                settings,
            )
        finally:
            await channel.close(None)
            await server.stop(1)
