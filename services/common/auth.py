"""The one server interceptor every service runs: who is calling, and may they call this?

Every call carries ``authorization: Bearer <token>``. Three kinds of token are
known: the bootstrap ``ADMIN`` token (``HELPDESK_ADMIN_TOKEN``), the internal
``SERVICE`` token (``HELPDESK_SERVICE_TOKEN``), and access tokens issued by
``DirectoryService.Login`` (signed HS256, short-lived, naming a contact or an agent: never
``ADMIN`` or ``SERVICE``, which only the two static tokens carry; a signed token claiming
either, of another algorithm or expired is refused like any bad one). No token or a bad one is
``UNAUTHENTICATED``; a valid caller outside the table in
``services/common/access.py`` is ``PERMISSION_DENIED``. Denials are logged
with principal, RPC and reason, never with the token. The health and
reflection services stay open, as probes and tooling need them.
"""

from __future__ import annotations

import contextlib
import hmac
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc

from services.common.access import Principal, Role, allowed, current_principal, is_public
from services.common.tokens import InvalidToken, TokenSigner

log = logging.getLogger("helpdesk.access")

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"

OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
ANONYMOUS = Principal(role=Role.USER, kind="ANONYMOUS")


def bearer_metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


if TYPE_CHECKING:
    _Interceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _Interceptor = grpc.aio.ServerInterceptor


class BearerAuthInterceptor(_Interceptor):
    def __init__(self, admin_token: str, service_token: str, signer: TokenSigner) -> None:
        self._static = [
            (t.encode(), p)
            for t, p in (
                (admin_token, Principal(role=Role.ADMIN, kind="ADMIN", name="admin")),
                (service_token, Principal(role=Role.SERVICE, kind="SERVICE", name="service")),
            )
            if t
        ]
        self._signer = signer

    def authenticate(self, metadata: Any) -> Principal | None:
        for key, value in metadata or ():
            if key != "authorization" or not isinstance(value, str):
                continue
            if not value.startswith("Bearer "):
                return None
            presented = value[len("Bearer ") :].strip()
            if not presented or len(presented) > 4096:
                return None
            for token, principal in self._static:
                if hmac.compare_digest(presented.encode(), token):
                    return principal
            try:
                return self._signer.principal(presented)
            except InvalidToken:
                return None
        return None

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        method = handler_call_details.method
        if method.startswith(OPEN_PREFIXES):
            return await continuation(handler_call_details)
        # Looked up first (no side effect) so that a denial has the method's own shape:
        # a streaming call is refused as a stream.
        handler = await continuation(handler_call_details)
        who = self.authenticate(handler_call_details.invocation_metadata)
        if who is None:
            if is_public(method):
                who = ANONYMOUS
            else:
                log.warning("denied %s: no valid bearer token", method)
                return _deny(
                    grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token", handler
                )
        elif not allowed(method, who.role) and not is_public(method):
            log.warning(
                "denied %s to %s %s#%d: role not permitted",
                method,
                who.role.value,
                who.kind,
                who.id,
            )
            return _deny(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{who.role.value} may not call {method}",
                handler,
            )
        return _with_principal(handler, who)


def _with_principal(handler: Handler, who: Principal) -> Handler:
    """Run the RPC with the caller available through ``access.principal()``: unary calls
    and server-streaming ones (the principal stays set while the stream is produced)."""
    if handler is None:
        return handler
    if handler.unary_unary is not None:
        # grpc.aio runs coroutine behaviours; the stubs type them as synchronous.
        behaviour: Callable[[Any, Any], Awaitable[Any]] = handler.unary_unary

        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            token = current_principal.set(who)
            try:
                return await behaviour(request, context)
            finally:
                current_principal.reset(token)

        return grpc.unary_unary_rpc_method_handler(
            call,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream is not None:
        # An async generator, or a coroutine writing with ``context.write``.
        producer: Callable[[Any, Any], Any] = handler.unary_stream

        async def stream(
            request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            token = current_principal.set(who)
            try:
                produced = producer(request, context)
                if inspect.isasyncgen(produced):
                    try:
                        async for item in produced:
                            yield item
                    finally:  # a cancelled call closes the servicer's stream at once
                        await produced.aclose()
                else:
                    await produced
            finally:
                # The stream runs in its RPC's own task; closed elsewhere, the task's
                # context goes with it anyway.
                with contextlib.suppress(ValueError):
                    current_principal.reset(token)

        return grpc.unary_stream_rpc_method_handler(
            stream,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    return handler


def _deny(code: grpc.StatusCode, message: str, like: Handler | None = None) -> Handler:
    """A handler that refuses the call, of the same kind as the method's own (``like``)."""

    async def abort(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(code, message)

    # A streaming response is refused by an async generator: the interceptors outside
    # this one (tracing, metrics) iterate what a streaming behaviour returns.
    async def abort_stream(
        _request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[Any]:
        await context.abort(code, message)
        yield  # never reached: it makes this a generator

    streams_in = like is not None and like.request_streaming
    streams_out = like is not None and like.response_streaming
    if streams_in and streams_out:
        return grpc.stream_stream_rpc_method_handler(abort_stream)
    if streams_in:
        return grpc.stream_unary_rpc_method_handler(abort)
    if streams_out:
        return grpc.unary_stream_rpc_method_handler(abort_stream)
    return grpc.unary_unary_rpc_method_handler(abort)
