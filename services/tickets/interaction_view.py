"""How a recorded phone call or remote session (``models.Interaction``) is shown: in the
conversation (``Comment.interaction``), in the history, and its row from the workflow's
comment."""

from __future__ import annotations

from helpdesk.v1 import common_pb2 as pb
from services.common.messages.tickets import InteractionPayload
from services.tickets import models as m
from services.tickets.convert import value_of
from workflows.contracts import CommentData, InteractionData

WORDS = {"PHONE_CALL": "phone call", "REMOTE_SESSION": "remote session"}


def describe(i: InteractionData | m.Interaction) -> str:
    """One line for the history: "phone call (inbound) with Mario Rossi, 15 min"."""
    words = WORDS.get(i.type, i.type.lower())
    if i.direction:
        words += f" ({i.direction.lower()})"
    if i.with_whom:
        words += f" with {i.with_whom}"
    return f"{words}, {i.duration_minutes} min"


def interaction_row(ticket_id: int, c: CommentData) -> m.Interaction | None:
    """The row the recording activity writes beside a comment that records one."""
    i = c.interaction
    if i is None:
        return None
    return m.Interaction(
        comment_id=c.id,
        ticket_id=ticket_id,
        type=i.type,
        direction=i.direction,
        contact_id=i.contact_id or None,
        with_whom=i.with_whom,
        duration_minutes=i.duration_minutes,
        notify_customer=i.notify_customer,
    )


def interaction_pb(row: m.Interaction | None) -> pb.Interaction | None:
    if row is None:
        return None
    return pb.Interaction(
        type=value_of(pb.InteractionType, row.type),
        direction=value_of(pb.CallDirection, row.direction),
        contact_id=row.contact_id or 0,
        with_whom=row.with_whom,
        duration_minutes=row.duration_minutes,
        notify_customer=row.notify_customer,
    )


def interaction_detail(c: CommentData | None) -> str:
    """The history line of a comment that records an interaction ("" otherwise)."""
    return describe(c.interaction) if c is not None and c.interaction is not None else ""


def interaction_payload(i: InteractionData) -> InteractionPayload:
    return InteractionPayload(
        type=i.type,
        direction=i.direction,
        with_whom=i.with_whom,
        duration_minutes=i.duration_minutes,
        notify_customer=i.notify_customer,
    )
