"""Bearer-token check on every RPC: the one server interceptor the access layer grows from.

Every call carries ``authorization: Bearer <token>``. This version knows two
principals: the bootstrap ``ADMIN`` (``HELPDESK_ADMIN_TOKEN``) and the
internal ``SERVICE`` principal (``HELPDESK_SERVICE_TOKEN``). Anything else is
``UNAUTHENTICATED``. The health and reflection services stay open, as probes
and tooling need them.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc

log = logging.getLogger(__name__)

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"

OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


@dataclass(frozen=True)
class Principal:
    role: str  # "ADMIN" | "SERVICE"
    name: str


current_principal: ContextVar[Principal | None] = ContextVar("current_principal", default=None)


def bearer_metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


if TYPE_CHECKING:
    _Interceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    _Interceptor = grpc.aio.ServerInterceptor


class BearerAuthInterceptor(_Interceptor):
    def __init__(self, admin_token: str, service_token: str) -> None:
        self._tokens = {
            t: p
            for t, p in (
                (admin_token, Principal("ADMIN", "admin")),
                (service_token, Principal("SERVICE", "service")),
            )
            if t
        }

    def authenticate(self, metadata: Any) -> Principal | None:
        for key, value in metadata or ():
            if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
                presented = value[len("Bearer ") :].strip()
                for token, principal in self._tokens.items():
                    if hmac.compare_digest(presented.encode(), token.encode()):
                        return principal
        return None

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        method = handler_call_details.method
        if method.startswith(OPEN_PREFIXES):
            return await continuation(handler_call_details)
        principal = self.authenticate(handler_call_details.invocation_metadata)
        if principal is None:
            log.warning("denied %s: no or bad bearer token", method)
            return _deny(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")
        current_principal.set(principal)
        return await continuation(handler_call_details)


def _deny(code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler[Any, Any]:
    async def abort(_request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        await context.abort(code, message)

    return grpc.unary_unary_rpc_method_handler(abort)
