"""Map domain failures to the gRPC status codes of DESIGN.md §4."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeAlias, TypeVar

import grpc


class RpcError(Exception):
    """A failure with the status code the caller must see."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def invalid(field: str, why: str) -> NoReturn:
    raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {why}")


def not_found(what: str) -> NoReturn:
    raise RpcError(grpc.StatusCode.NOT_FOUND, f"{what} not found")


def precondition(message: str) -> NoReturn:
    raise RpcError(grpc.StatusCode.FAILED_PRECONDITION, message)


def already_exists(message: str) -> NoReturn:
    raise RpcError(grpc.StatusCode.ALREADY_EXISTS, message)


def require_text(field: str, value: str, max_len: int) -> str:
    """Strip ``value``; ``INVALID_ARGUMENT`` naming ``field`` when empty or too long."""
    text = value.strip()
    if not text:
        invalid(field, "is required")
    if len(text) > max_len:
        invalid(field, f"is longer than {max_len} characters")
    return text


def optional_text(field: str, value: str, max_len: int) -> str:
    text = value.strip()
    if len(text) > max_len:
        invalid(field, f"is longer than {max_len} characters")
    return text


def require_id(field: str, value: int) -> int:
    if value <= 0:
        invalid(field, "must be a positive ID")
    return value


# The servicer context type every RPC method receives.
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"

S = TypeVar("S")
Req = TypeVar("Req")
Resp = TypeVar("Resp")


def rpc_method(
    fn: Callable[[S, Req, Context], Awaitable[Resp]],
) -> Callable[[S, Req, Context], Awaitable[Resp]]:
    """Turn an ``RpcError`` raised by a servicer method into its gRPC status."""

    @functools.wraps(fn)
    async def wrapper(self: S, request: Req, context: Context) -> Resp:
        try:
            return await fn(self, request, context)
        except RpcError as err:
            await context.abort(err.code, err.message)
            raise  # unreachable: abort raises

    return wrapper
