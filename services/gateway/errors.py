"""gRPC status codes as HTTP ones (DESIGN.md section 4), for pages and the JSON API."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 503,
}
# A service that does not answer: the person may simply try again.
UNAVAILABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


@dataclass(frozen=True)
class Failure:
    """A gRPC failure as the gateway reports it."""

    http_status: int
    code: str
    message: str
    # INVALID_ARGUMENT messages start with the field ("subject: is required").
    field: str = ""


def failure(err: grpc.aio.AioRpcError) -> Failure:
    code = err.code()
    message = err.details() or code.name.lower()
    field = ""
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        head, sep, _ = message.partition(":")
        if sep and head and " " not in head.strip():
            field = head.strip()
    return Failure(HTTP_STATUS.get(code, 500), code.name, message, field)


class TooLarge(Exception):
    """The request or one of its files is over the limit: 413, nothing sent on."""


class SignInNeeded(Exception):
    """No live session: to the sign-in page, then back to ``next``."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class BadForm(Exception):
    """A state-changing form without a valid CSRF token."""


class NotStaff(Exception):
    """A customer on a page of the agent console (403)."""
