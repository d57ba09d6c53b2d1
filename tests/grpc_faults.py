"""A client interceptor for intake's own channel to a real tickets server: it counts the
calls that hand a message on (CreateTicket, AddComment) and answers INTERNAL, as a
failing tickets service does, to those whose request carries a marker."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import grpc


class Faults(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    HAND_ON = ("CreateTicket", "AddComment")

    def __init__(self, marker: str = "") -> None:
        self.marker = marker
        self.calls: Counter[str] = Counter()
        self.refused = 0

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        name = str(method).rsplit("/", 1)[-1]
        if name in self.HAND_ON:
            self.calls[name] += 1
            if self.marker and self.marker in str(request):
                self.refused += 1
                raise grpc.aio.AioRpcError(
                    grpc.StatusCode.INTERNAL,
                    grpc.aio.Metadata(),
                    grpc.aio.Metadata(),
                    details="poisoned by the test",
                )
        return await continuation(details, request)
