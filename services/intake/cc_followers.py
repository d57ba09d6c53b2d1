"""The ``Cc`` of an inbound mail: colleagues of the sender follow its ticket.

Each address in ``Cc`` (neither the sender nor one of our own addresses) is offered to
``TicketService.AddFollower``, which takes only contacts of the ticket's organisation; an
address it refuses (another organisation's, unknown) is left out, as the mail itself is
fine. The request ID comes from the stored message and the address, so processing the
mail again adds nobody twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from helpdesk.v1 import tickets_pb2 as tpb
from services.intake import mailparse

log = logging.getLogger(__name__)

# A mail copying a whole department follows at most this many.
MAX_CC_FOLLOWERS = 10
# Refusals that say "not a follower", not "try again".
_LEFT_OUT = frozenset(
    {
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
)


def cc_candidates(mail: mailparse.ParsedMail, our_addresses: set[str]) -> list[str]:
    """The ``Cc`` addresses that may follow: not the sender, not ours."""
    found = [
        a
        for a in dict.fromkeys(x.strip().lower() for x in mail.cc)
        if "@" in a and a != mail.sender and a not in our_addresses
    ]
    return found[:MAX_CC_FOLLOWERS]


def follower_key(key: str, address: str) -> str:
    """Intake's idempotency key of one ``Cc`` follower of a stored message."""
    digest = hashlib.sha256(f"{key}\x00{address}".encode()).hexdigest()[:32]
    return f"email:cc:{digest}"


async def follow_cc(
    call: Callable[[Any, Any], Awaitable[Any]],
    add_follower: Any,
    ticket_id: int,
    mail: mailparse.ParsedMail,
    key: str,
    our_addresses: set[str],
) -> list[str]:
    """Offer each ``Cc`` address to ``AddFollower`` on ``ticket_id``; returns those taken.
    A refusal leaves that address out; anything else (the service down) propagates, so
    that the message is processed again."""
    taken: list[str] = []
    for address in cc_candidates(mail, our_addresses):
        try:
            await call(
                add_follower,
                tpb.AddFollowerRequest(
                    ticket_id=ticket_id, email=address, request_id=follower_key(key, address)
                ),
            )
        except grpc.aio.AioRpcError as err:
            if err.code() not in _LEFT_OUT:
                raise
            log.info("ticket %s: Cc %s does not follow it: %s", ticket_id, address, err.details())
            continue
        taken.append(address)
    return taken
