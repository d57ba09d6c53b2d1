"""A gRPC proxy in front of a real service that answers INTERNAL to the calls whose request
bytes contain a marker, and forwards every other call unchanged: a poison sender."""

from __future__ import annotations

from typing import Any

import grpc

from services.common.embedded import free_port


class PoisonProxy:
    def __init__(self, upstream: str, marker: bytes, methods: frozenset[str]) -> None:
        self.upstream = upstream
        self.marker = marker
        self.methods = methods
        self.refused = 0
        self.address = f"127.0.0.1:{free_port()}"
        self._server: grpc.aio.Server | None = None
        self._channel: grpc.aio.Channel | None = None

    async def start(self) -> None:
        self._channel = grpc.aio.insecure_channel(
            self.upstream,
            options=[
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ],
        )
        self._server = grpc.aio.server(
            options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        )
        self._server.add_generic_rpc_handlers([_Handler(self)])
        self._server.add_insecure_port(self.address)
        await self._server.start()

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(0)
        if self._channel is not None:
            await self._channel.close()

    async def forward(self, method: str, request: bytes, context: Any) -> bytes:
        if method.rsplit("/", 1)[-1] in self.methods and self.marker in request:
            self.refused += 1
            await context.abort(grpc.StatusCode.INTERNAL, "injected failure for this sender")
        assert self._channel is not None
        call = self._channel.unary_unary(method)
        metadata = tuple(
            (k, v) for k, v in context.invocation_metadata() or () if not k.startswith(":")
        )
        try:
            reply: bytes = await call(request, metadata=metadata, timeout=context.time_remaining())
        except grpc.aio.AioRpcError as err:
            await context.abort(err.code(), err.details() or "")
        return reply


class _Handler(grpc.GenericRpcHandler):
    def __init__(self, proxy: PoisonProxy) -> None:
        self.proxy = proxy

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method = details.method
        if not method.startswith("/helpdesk."):
            return None

        async def unary(request: bytes, context: Any) -> bytes:
            return await self.proxy.forward(method, request, context)

        return grpc.unary_unary_rpc_method_handler(unary)
