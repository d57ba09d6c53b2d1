"""Every action of the ticket page as one RPC: the posted form read and checked, the call
made with the agent's own token. A form that cannot be read raises ``BadInput`` before
anything is sent; a refusal is the RPC's own ``AioRpcError``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import dev_escalation_pb2 as epb
from helpdesk.v1 import tickets_pb2 as tpb
from services.gateway.agent.ticket_view import (
    DIRECTIONS,
    INTERACTIONS,
    KINDS,
    LEVELS,
    STATUS_MOVES,
    URGENCIES,
)
from services.gateway.backend import CALL_TIMEOUT, UPLOAD_TIMEOUT, Backend, call_md
from services.gateway.forms import new_request_id, text
from services.gateway.texts import CRITICALITY, PRIORITY

MAX_TEXT = 10_000


class BadInput(Exception):
    """A field the gateway cannot read (400): nothing was sent."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass
class Done:
    """What the page says after the action, and which ticket to show (a merge: the
    target)."""

    notice: str
    ticket_id: int


@dataclass
class Call:
    backend: Backend
    token: str
    viewer_id: int
    ticket_id: int
    form: FormData
    files: list[pb.Attachment]

    @property
    def md(self) -> tuple[tuple[str, str], ...]:
        return call_md(self.token)

    def text(self, name: str, limit: int = 1000) -> str:
        return text(self.form, name)[:limit]

    def request_id(self) -> str:
        return self.text("request_id", 100) or new_request_id()

    def choice(self, name: str, table: Mapping[Any, str], required: bool = True) -> int:
        raw = self.text(name, 20)
        if not raw and not required:
            return 0
        if not raw.isdigit() or int(raw) not in table:
            raise BadInput(name, "choose one of the options")
        return int(raw)

    def number(self, name: str, required: bool = True) -> int:
        raw = self.text(name, 20)
        if not raw and not required:
            return 0
        if not raw.isdigit():
            raise BadInput(name, "must be a whole number")
        return int(raw)

    def hours(self, name: str = "hours", required: bool = True) -> float:
        """``1.5`` or ``1,5`` (the Italian decimal comma)."""
        raw = self.text(name, 20).replace(",", ".")
        if not raw and not required:
            return 0.0
        try:
            value = float(raw)
        except ValueError:
            raise BadInput(name, "must be a number of hours, such as 1.5") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise BadInput(name, "must be a number of hours, such as 1.5")
        return value


Action = Callable[[Call], Awaitable[Done]]


async def comment(c: Call) -> Done:
    internal = c.text("visibility", 20) == "internal"
    await c.backend.tickets.AddComment(
        tpb.AddCommentRequest(
            ticket_id=c.ticket_id,
            request_id=c.request_id(),
            visibility=pb.COMMENT_VISIBILITY_INTERNAL if internal else pb.COMMENT_VISIBILITY_PUBLIC,
            body=c.text("message", MAX_TEXT),
            attachments=c.files,
        ),
        metadata=c.md,
        timeout=UPLOAD_TIMEOUT,
    )
    return Done("noted" if internal else "replied", c.ticket_id)


async def _assign(c: Call, assignee_id: int) -> Done:
    take_over = c.text("take_over", 5) == "1"
    await c.backend.tickets.AssignTicket(
        tpb.AssignTicketRequest(
            ticket_id=c.ticket_id,
            assignee_id=assignee_id,
            take_over=take_over,
            reason=c.text("reason"),
        ),
        metadata=c.md,
        timeout=CALL_TIMEOUT,
    )
    return Done("assigned", c.ticket_id)


async def take(c: Call) -> Done:
    return await _assign(c, c.viewer_id)


async def assign(c: Call) -> Done:
    assignee = c.number("assignee")
    if not assignee:
        raise BadInput("assignee", "choose who handles the ticket")
    return await _assign(c, assignee)


async def status(c: Call) -> Done:
    target = c.choice("status", STATUS_MOVES)
    closing = target == pb.TICKET_STATUS_CLOSED
    hours = c.hours("hours", required=False) if closing else 0.0
    await c.backend.tickets.ChangeStatus(
        tpb.ChangeStatusRequest(
            ticket_id=c.ticket_id,
            status=pb.TicketStatus.ValueType(target),
            reason=c.text("reason"),
            hours_spent=hours,
            request_id=c.request_id(),
        ),
        metadata=c.md,
        timeout=CALL_TIMEOUT,
    )
    return Done("status", c.ticket_id)


async def priority(c: Call) -> Done:
    await c.backend.tickets.ChangePriority(
        tpb.ChangePriorityRequest(
            ticket_id=c.ticket_id,
            priority=pb.Priority.ValueType(c.choice("priority", PRIORITY)),
            reason=c.text("reason"),
        ),
        metadata=c.md,
        timeout=CALL_TIMEOUT,
    )
    return Done("priority", c.ticket_id)


async def requalify(c: Call) -> Done:
    await c.backend.tickets.RequalifyTicket(
        tpb.RequalifyTicketRequest(
            ticket_id=c.ticket_id,
            request_id=c.request_id(),
            criticality=pb.Criticality.ValueType(c.choice("criticality", CRITICALITY, False)),
            kind=pb.TicketKind.ValueType(c.choice("kind", KINDS, False)),
            product=c.text("product", 200),
            version=c.text("version", 100),
            os=c.text("os", 100),
            level=pb.SupportLevel.ValueType(c.choice("level", LEVELS, False)),
            reason=c.text("reason"),
        ),
        metadata=c.md,
        timeout=CALL_TIMEOUT,
    )
    return Done("requalified", c.ticket_id)


async def log_time(c: Call) -> Done:
    await c.backend.tickets.LogTime(
        tpb.LogTimeRequest(
            ticket_id=c.ticket_id,
            request_id=c.request_id(),
            hours=c.hours(),
            note=c.text("note"),
        ),
        metadata=c.md,
        timeout=CALL_TIMEOUT,
    )
    return Done("time_logged", c.ticket_id)


async def interaction(c: Call) -> Done:
    kind = c.choice("type", INTERACTIONS)
    direction = c.choice("direction", DIRECTIONS, required=False)
    internal = c.text("visibility", 20) == "internal"
    await c.backend.tickets.RecordInteraction(
        tpb.RecordInteractionRequest(
            ticket_id=c.ticket_id,
            request_id=c.request_id(),
            type=pb.InteractionType.ValueType(kind),
            direction=pb.CallDirection.ValueType(direction),
            contact_id=c.number("contact", required=False),
            with_whom=c.text("with_whom", 200),
            duration_minutes=c.number("minutes", required=False),
            summary=c.text("summary", MAX_TEXT),
            visibility=pb.COMMENT_VISIBILITY_INTERNAL if internal else pb.COMMENT_VISIBILITY_PUBLIC,
            notify_customer=c.text("notify_customer", 5) == "1" and not internal,
        ),
        metadata=c.md,
        timeout=CALL_TIMEOUT,
    )
    return Done("interaction", c.ticket_id)


async def hold(c: Call) -> Done:
    await c.backend.tickets.HoldForThirdParty(
        tpb.HoldForThirdPartyRequest(
            ticket_id=c.ticket_id,
            third_party_name=c.text("third_party", 200),
            third_party_reference=c.text("reference", 200),
        ),
        metadata=c.md,
        timeout=CALL_TIMEOUT,
    )
    return Done("held", c.ticket_id)


async def escalate(c: Call) -> Done:
    await c.backend.tickets.EscalateToDevelopment(
        tpb.EscalateToDevelopmentRequest(
            ticket_id=c.ticket_id,
            request_id=c.request_id(),
            title=c.text("title", 300),
            technical_description=c.text("technical_description", MAX_TEXT),
            urgency=epb.ProgUrgency.ValueType(c.choice("urgency", URGENCIES)),
        ),
        metadata=c.md,
        timeout=CALL_TIMEOUT,
    )
    return Done("escalated", c.ticket_id)


async def detach(c: Call) -> Done:
    await c.backend.tickets.DetachProgrammingTicket(
        tpb.DetachProgrammingTicketRequest(
            ticket_id=c.ticket_id,
            programming_ticket_id=c.number("programming_ticket"),
            reason=c.text("reason"),
        ),
        metadata=c.md,
        timeout=CALL_TIMEOUT,
    )
    return Done("detached", c.ticket_id)


async def merge(c: Call) -> Done:
    target = c.number("target", required=False)
    if not target:
        raise BadInput("target", "choose the ticket to merge into")
    merged = await c.backend.tickets.MergeTickets(
        tpb.MergeTicketsRequest(
            source_ticket_id=c.ticket_id, target_ticket_id=target, reason=c.text("reason")
        ),
        metadata=c.md,
        timeout=CALL_TIMEOUT,
    )
    return Done("merged", merged.id or target)


async def resend(c: Call) -> Done:
    await c.backend.tickets.ResendAnswers(
        tpb.ResendAnswersRequest(
            ticket_id=c.ticket_id,
            comment_id=c.text("comment", 64),
            recipient_email=c.text("recipient", 320),
            request_id=c.request_id(),
        ),
        metadata=c.md,
        timeout=CALL_TIMEOUT,
    )
    return Done("resent", c.ticket_id)


async def follow(c: Call) -> Done:
    contact = c.number("contact", required=False)
    email = c.text("email", 320)
    if not contact and not email:
        raise BadInput("contact", "choose a contact of the organisation")
    await c.backend.tickets.AddFollower(
        tpb.AddFollowerRequest(
            ticket_id=c.ticket_id, contact_id=contact, email=email, request_id=c.request_id()
        ),
        metadata=c.md,
        timeout=CALL_TIMEOUT,
    )
    return Done("followed", c.ticket_id)


async def unfollow(c: Call) -> Done:
    await c.backend.tickets.RemoveFollower(
        tpb.RemoveFollowerRequest(
            ticket_id=c.ticket_id,
            contact_id=c.number("contact"),
            request_id=c.request_id(),
        ),
        metadata=c.md,
        timeout=CALL_TIMEOUT,
    )
    return Done("unfollowed", c.ticket_id)


ACTIONS: dict[str, Action] = {
    "comment": comment,
    "take": take,
    "assign": assign,
    "status": status,
    "priority": priority,
    "requalify": requalify,
    "time": log_time,
    "interaction": interaction,
    "hold": hold,
    "escalate": escalate,
    "detach": detach,
    "merge": merge,
    "resend": resend,
    "follow": follow,
    "unfollow": unfollow,
}
# Actions whose form may carry files (the others are read without them).
WITH_FILES = frozenset({"comment"})
# What the page says after each, by the notice key of the redirect.
NOTICES = {
    "replied": "The reply is sent to the requester.",
    "noted": "The internal note is added.",
    "assigned": "The ticket is assigned.",
    "status": "The status is changed.",
    "priority": "The priority is changed.",
    "requalified": "The ticket is requalified.",
    "time_logged": "The time is logged.",
    "interaction": "The call or session is recorded.",
    "held": "The ticket waits for the third party.",
    "escalated": "A programming ticket is open for the developers.",
    "detached": "The programming ticket is detached.",
    "merged": "The ticket was merged into this one.",
    "resent": "The answers are sent again.",
    "followed": "The follower is added.",
    "unfollowed": "The follower is removed.",
}
