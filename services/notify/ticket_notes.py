"""Internal system notes that notify files on tickets (a bounced email), over gRPC.

``TicketService.AddComment`` with ``author.kind = SYSTEM`` and ``visibility = INTERNAL``,
with the service token: a note agents see on the ticket that moves nothing and mails
nobody. Each note has a ``request_id``, so a repeated call files it once.

A transient failure of the tickets service raises ``NoteDeferred``: the consumer naks the
event with a delay and the note is filed when it comes back. A refusal that retrying
cannot change (a closed ticket: ``FAILED_PRECONDITION``; a ticket that does not exist) is
logged and dropped.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import grpc

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.auth import bearer_metadata

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    from helpdesk.v1.tickets_pb2_grpc import TicketServiceAsyncStub

log = logging.getLogger(__name__)

CALL_TIMEOUT_SECONDS = 30.0
MAX_NOTE_CHARS = 2000
# Failures worth retrying later: the tickets service (or its workflow) is not there now.
TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)


class NoteDeferred(Exception):
    """The tickets service could not take the note now; retry the event later."""


class TicketNotes:
    """Files internal system notes on tickets."""

    def __init__(
        self,
        tickets: TicketServiceAsyncStub,
        service_token: str,
        timeout: float = CALL_TIMEOUT_SECONDS,
    ) -> None:
        self._tickets = tickets
        self._metadata = bearer_metadata(service_token)
        self._timeout = timeout

    async def add(self, ticket_id: int, request_id: str, body: str) -> bool:
        """File the note once per ``request_id``; False when the ticket refuses it for good
        (closed, unknown); ``NoteDeferred`` when the call should be retried later."""
        if len(body) > MAX_NOTE_CHARS:
            body = body[: MAX_NOTE_CHARS - 1] + "…"
        try:
            await self._tickets.AddComment(
                tpb.AddCommentRequest(
                    ticket_id=ticket_id,
                    request_id=request_id,
                    visibility=pb.COMMENT_VISIBILITY_INTERNAL,
                    author=tpb.Actor(kind=pb.AUTHOR_KIND_SYSTEM),
                    body=body,
                ),
                metadata=self._metadata,
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as err:
            if err.code() in TRANSIENT:
                raise NoteDeferred(
                    f"note on ticket {ticket_id}: {err.code().name} {err.details() or ''}"
                ) from err
            log.warning(
                "note %s on ticket %s not filed: %s %s",
                request_id,
                ticket_id,
                err.code().name,
                err.details(),
            )
            return False
        return True


def bounce_note(recipient: str, status: str, diagnostic: str) -> str:
    """The note agents read on the ticket: ``Email to <rcpt> bounced: <status> <diagnostic>``."""
    detail = " ".join(part for part in (status.strip(), " ".join(diagnostic.split())) if part)
    return f"Email to {recipient} bounced: {detail or 'no reason given'}"
