"""How large a request each gRPC server accepts, over a real ``grpc.aio`` server on loopback.

gRPC reads a request before the bearer-token check sees it: a server without attachments
must refuse a large one (``RESOURCE_EXHAUSTED``) instead of holding it for anyone.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from helpdesk.v1 import notify_pb2, notify_pb2_grpc
from services.common.auth import bearer_metadata
from services.common.grpc_server import DEFAULT_MAX_RECEIVE_BYTES, ServiceServer, receive_limit
from services.common.limits import MiB
from services.common.settings import Settings

pytestmark = pytest.mark.timeout(30)

ADMIN_TOKEN = "test-admin-token"
NOTIFY = "helpdesk.v1.NotifyService"
TICKETS = ["helpdesk.v1.TicketService", "helpdesk.v1.DirectoryService"]
INTAKE = ["helpdesk.v1.IntakeService"]


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url="",
        temporal_address="127.0.0.1:7233",
        temporal_namespace="default",
        nats_url="nats://127.0.0.1:4222",
        intake_addr="127.0.0.1:0",
        tickets_addr="127.0.0.1:0",
        dev_escalation_addr="127.0.0.1:0",
        notify_addr="127.0.0.1:0",
        smtp_listen="127.0.0.1:0",
        smtp_relay="",
        mail_from="assistenza@helpdesk.test",
        webhook_listen="127.0.0.1:0",
        admin_token=ADMIN_TOKEN,
        service_token="test-service-token",
        auto_close_after=timedelta(days=14),
    )


class Notify(notify_pb2_grpc.NotifyServiceServicer):
    async def ListNotifications(
        self, request: notify_pb2.ListNotificationsRequest, context: Any
    ) -> notify_pb2.ListNotificationsResponse:
        return notify_pb2.ListNotificationsResponse()


async def _list(server: ServiceServer, size: int, token: str = "") -> grpc.StatusCode:
    """Call ListNotifications with a request of about ``size`` bytes; its status."""
    request = notify_pb2.ListNotificationsRequest(recipient="x" * size)
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{server.port}", options=[("grpc.max_send_message_length", -1)]
    ) as channel:
        stub = notify_pb2_grpc.NotifyServiceStub(channel)
        try:
            await stub.ListNotifications(
                request, metadata=bearer_metadata(token) if token else None, timeout=10
            )
        except grpc.aio.AioRpcError as err:
            return err.code()
    return grpc.StatusCode.OK


async def _serve(settings: Settings, names: list[str]) -> ServiceServer:
    def register(server: grpc.aio.Server) -> None:
        notify_pb2_grpc.add_NotifyServiceServicer_to_server(Notify(), server)

    server = ServiceServer(settings, "127.0.0.1:0", names, register)
    await server.start()
    return server


@pytest.mark.unit
def test_only_the_services_that_carry_attachments_accept_large_requests(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert receive_limit(settings, [NOTIFY]) == DEFAULT_MAX_RECEIVE_BYTES == 4 * MiB
    assert receive_limit(settings, ["helpdesk.v1.DevEscalationService"]) == 4 * MiB
    assert receive_limit(settings, []) == 4 * MiB
    assert receive_limit(settings, TICKETS) == 40 * MiB
    assert receive_limit(settings, INTAKE) == 40 * MiB
    # Intake takes a raw email as large as the SMTP listener does.
    larger = dataclasses.replace(settings, smtp_max_message_bytes=50 * MiB)
    assert receive_limit(larger, INTAKE) == 51 * MiB
    assert receive_limit(larger, TICKETS) == 40 * MiB


async def test_notify_refuses_a_large_request_before_anyone_is_authenticated(
    tmp_path: Path,
) -> None:
    server = await _serve(_settings(tmp_path), [NOTIFY])
    try:
        assert server.max_receive_bytes == 4 * MiB
        assert await _list(server, 5 * MiB) == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert await _list(server, 5 * MiB, ADMIN_TOKEN) == grpc.StatusCode.RESOURCE_EXHAUSTED
        # Within the limit: the token decides, as always.
        assert await _list(server, 3 * MiB) == grpc.StatusCode.UNAUTHENTICATED
        assert await _list(server, 3 * MiB, ADMIN_TOKEN) == grpc.StatusCode.OK
    finally:
        await server.stop(0)


async def test_a_server_for_the_tickets_services_takes_attachment_sized_requests(
    tmp_path: Path,
) -> None:
    server = await _serve(_settings(tmp_path), TICKETS)
    try:
        assert server.max_receive_bytes == 40 * MiB
        # Read whole, then the token check: no token is no token, however large.
        assert await _list(server, 8 * MiB) == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await server.stop(0)
