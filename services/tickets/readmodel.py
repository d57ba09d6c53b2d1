"""Reading tickets: rows to protobuf, and the snapshot the workflow starts from."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from helpdesk.v1 import common_pb2 as pb
from services.common.mail_threading import display_id
from services.common.messages.tickets import AttachmentPayload
from services.tickets import models as m
from services.tickets.convert import enum_values, ts, value_of
from services.tickets.follower_store import with_followers
from services.tickets.interaction_view import interaction_pb
from services.tickets.satisfaction import with_satisfaction
from services.tickets.sla import targets_for
from workflows.contracts import (
    ProgLink,
    Qualification,
    SlaBreach,
    TicketState,
    ticket_workflow_id,
)
from workflows.domain.business_time import Calendar
from workflows.domain.sla_clock import remaining_seconds


def links_of(t: m.Ticket) -> list[ProgLink]:
    """The ticket's programming tickets, as the workflow keeps them (JSON on the row)."""
    return links_from(t.programming_tickets)


def links_from(stored: list[dict[str, object]] | None) -> list[ProgLink]:
    """Programming tickets from the JSON a ticket row keeps them in."""
    return [
        ProgLink(
            id=int(str(x["id"])),
            title=str(x.get("title", "")),
            urgency=str(x.get("urgency", "")),
            status=str(x.get("status", "OPEN")),
            detached=bool(x.get("detached", False)),
            request_key=str(x.get("request_key", "")),
        )
        for x in stored or []
    ]


def state_from_row(t: m.Ticket, org: m.Organization, auto_close_after_seconds: int) -> TicketState:
    """The workflow's view of a stored ticket (a new ticket's start, or a reactivation)."""
    return TicketState(
        ticket_id=t.id,
        subject=t.subject,
        organization_id=t.organization_id,
        organization_name=org.name,
        requester_id=t.requester_id,
        priority=t.priority,
        status=t.status,
        received_at=t.received_at,
        sla=targets_for(t.priority),
        auto_close_after_seconds=auto_close_after_seconds,
        assignee_id=t.assignee_id or 0,
        taken_in_charge_at=t.taken_in_charge_at,
        first_feedback_at=t.first_feedback_at,
        solved_at=t.solved_at,
        closed_at=t.closed_at,
        close_reason=t.close_reason,
        taken_in_charge_due=t.taken_in_charge_due,
        first_feedback_due=t.first_feedback_due,
        breaches=[
            SlaBreach(
                target=b["target"],
                due_at=datetime.fromisoformat(b["due_at"]),
                recorded_at=datetime.fromisoformat(b["recorded_at"]),
            )
            for b in t.breaches
        ],
        auto_close_at=t.auto_close_at,
        reopen_count=t.reopen_count,
        follow_up_of=t.follow_up_of or 0,
        event_seq=t.event_seq,
        level=t.level or "L1",
        programming_tickets=links_of(t),
        awaiting_verification=t.awaiting_verification,
        hours_spent=t.hours_spent,
        merged_into=t.merged_into or 0,
        # The business-hours clock (its terms are looked up again by the caller): what it
        # counted goes on; it runs again when the ticket is back in the desk's hands.
        resolution_due=t.resolution_due,
        clocks_start_at=t.clocks_start_at,
        sla_elapsed_seconds=float(str((t.sla_clock or {}).get("elapsed", 0.0))),
        qualification=Qualification(
            criticality=t.criticality or "",
            kind=t.kind or "",
            product=t.product or "",
            version=t.version or "",
            os=t.os or "",
        ),
    )


_SLA_TARGET = enum_values(pb.SlaTarget)


def sla_clocks(
    *,
    sla_clock: dict[str, object],
    status: str,
    breaches: list[dict[str, str]],
    taken_in_charge_due: datetime | None,
    taken_in_charge_at: datetime | None,
    first_feedback_due: datetime | None,
    first_feedback_at: datetime | None,
    resolution_due: datetime | None,
    solved_at: datetime | None,
) -> list[pb.SlaClock]:
    """A ticket's ``Ticket.sla`` from its stored fields: the business-hours clocks when the
    ticket has them, else the two clocks of plain durations."""
    breached = {b["target"] for b in breaches}
    if sla_clock:
        solved = solved_at if status in ("SOLVED", "CLOSED") else None
        return _clocks_of(
            sla_clock,
            (
                ("TAKEN_IN_CHARGE", taken_in_charge_due, taken_in_charge_at),
                ("FIRST_FEEDBACK", first_feedback_due, first_feedback_at),
                ("RESOLUTION", resolution_due, solved),
            ),
            breached,
        )
    return [
        _clock("TAKEN_IN_CHARGE", taken_in_charge_due, taken_in_charge_at, breached, status),
        _clock("FIRST_FEEDBACK", first_feedback_due, first_feedback_at, breached, status),
    ]


def _clocks_of(
    data: dict[str, object],
    targets_due_met: tuple[tuple[str, datetime | None, datetime | None], ...],
    breached: set[str],
) -> list[pb.SlaClock]:
    """The business-hours clocks of ``data`` (a ticket's ``sla_clock``), with the business
    time left as of now, for each (target, due instant, instant it was met)."""
    cal = Calendar(**data["calendar"])  # type: ignore[arg-type]
    targets = data["targets"]
    assert isinstance(targets, dict)
    now = datetime.now(UTC)
    # No instant yet: a change recorded before the workflow started the clocks (an update
    # can run before the run method does); nothing is counted, nothing runs.
    as_of = datetime.fromisoformat(str(data["as_of"])) if data.get("as_of") else now
    running = bool(data["running"]) and bool(data.get("as_of"))
    elapsed = float(str(data["elapsed"]))
    clocks = []
    for target, due, met_at in targets_due_met:
        clock = pb.SlaClock(target=_SLA_TARGET[target], due_at=ts(due))
        if met_at is not None:
            late = (met_at - due).total_seconds() if due is not None else 0.0
            clock.state = (
                pb.SLA_STATE_BREACHED if target in breached or late > 0 else pb.SLA_STATE_MET
            )
            clock.breached_by_seconds = max(0, int(late))
        else:
            left = remaining_seconds(cal, int(targets[target]), elapsed, as_of, running, now)
            clock.remaining_business_seconds = int(left)
            if target in breached or left < 0:
                clock.state = pb.SLA_STATE_BREACHED
                clock.breached_by_seconds = max(0, int(-left))
            else:
                clock.state = pb.SLA_STATE_RUNNING if running else pb.SLA_STATE_PAUSED
        clocks.append(clock)
    return clocks


def _clock(
    target: str, due: datetime | None, met_at: datetime | None, breached: set[str], status: str
) -> pb.SlaClock:
    now = datetime.now(UTC)
    clock = pb.SlaClock(target=_SLA_TARGET[target], due_at=ts(due))
    if due is None:
        clock.state = pb.SLA_STATE_UNSPECIFIED
    elif met_at is not None:
        late = (met_at - due).total_seconds()
        clock.state = pb.SLA_STATE_BREACHED if late > 0 else pb.SLA_STATE_MET
        clock.breached_by_seconds = max(0, int(late))
    elif target in breached:
        clock.state = pb.SLA_STATE_BREACHED
        clock.breached_by_seconds = max(0, int((now - due).total_seconds()))
    elif status in ("SOLVED", "CLOSED"):
        clock.state = pb.SLA_STATE_PAUSED
    else:
        clock.state = pb.SLA_STATE_RUNNING
    return clock


async def ticket_pb(session: AsyncSession, t: m.Ticket, *, customer: bool = False) -> pb.Ticket:
    return (await tickets_pb(session, [t], customer=customer))[0]


def new_ticket_pb(
    t: m.Ticket,
    org: m.Organization,
    requester: m.Contact,
    attachments: Sequence[m.Attachment],
) -> pb.Ticket:
    """A ticket just stored, from the rows it was written with (no query): nobody is
    assigned, follows or has answered it yet, and it has no follow-ups. Its attachments
    came with the request, so a customer sees them all."""
    return _ticket_pb(
        t,
        org,
        requester,
        None,
        [],
        [attachment_pb(a) for a in attachments],
    )


class AttachmentFields(Protocol):
    """What an attachment's row or its metadata columns give."""

    @property
    def id(self) -> str: ...
    @property
    def filename(self) -> str: ...
    @property
    def content_type(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str: ...


def attachment_pb(a: AttachmentFields) -> pb.Attachment:
    """A stored attachment as the API shows it (its content is fetched apart)."""
    return pb.Attachment(
        id=a.id, filename=a.filename, content_type=a.content_type, size=a.size, sha256=a.sha256
    )


def customer_visible_attachments() -> ColumnElement[bool]:
    """The attachments a customer may see: the ticket's own (sent with the request) and
    those of public comments. An internal comment's files, and those of a comment not
    recorded yet, are not theirs to see."""
    public = select(m.Comment.id).where(
        m.Comment.id == m.Attachment.comment_id, m.Comment.visibility == "PUBLIC"
    )
    return or_(m.Attachment.comment_id.is_(None), public.exists())


async def tickets_pb(
    session: AsyncSession, rows: Sequence[m.Ticket], *, customer: bool = False
) -> list[pb.Ticket]:
    """Protobuf tickets for a page of rows, with one query per related table (not per row).
    ``customer``: as a customer sees them (no internal comment's attachments)."""
    if not rows:
        return []
    ids = [t.id for t in rows]
    orgs = {
        o.id: o
        for o in await session.scalars(
            select(m.Organization).where(m.Organization.id.in_({t.organization_id for t in rows}))
        )
    }
    contacts = {
        c.id: c
        for c in await session.scalars(
            select(m.Contact).where(m.Contact.id.in_({t.requester_id for t in rows}))
        )
    }
    agent_ids = {t.assignee_id for t in rows if t.assignee_id}
    agents = (
        {a.id: a for a in await session.scalars(select(m.Agent).where(m.Agent.id.in_(agent_ids)))}
        if agent_ids
        else {}
    )
    follow_ups = await follow_ups_of(session, ids)
    attachments = await attachments_of(session, ids, customer=customer)
    tickets = [
        _ticket_pb(
            t,
            orgs.get(t.organization_id),
            contacts.get(t.requester_id),
            agents.get(t.assignee_id) if t.assignee_id else None,
            follow_ups[t.id],
            attachments[t.id],
        )
        for t in rows
    ]
    return await with_followers(session, await with_satisfaction(session, tickets))


async def follow_ups_of(session: AsyncSession, ids: Sequence[int]) -> dict[int, list[int]]:
    """The follow-up tickets of each of ``ids`` (oldest first)."""
    follow_ups: dict[int, list[int]] = defaultdict(list)
    for child, parent in await session.execute(
        select(m.Ticket.id, m.Ticket.follow_up_of)
        .where(m.Ticket.follow_up_of.in_(ids))
        .order_by(m.Ticket.id)
    ):
        if parent is not None:
            follow_ups[parent].append(child)
    return follow_ups


async def attachments_of(
    session: AsyncSession, ids: Sequence[int], *, customer: bool
) -> dict[int, list[pb.Attachment]]:
    """The attachments of each of ``ids`` in the order they were added; ``customer``: only
    those a customer may see."""
    attachments: dict[int, list[pb.Attachment]] = defaultdict(list)
    for a in await session.execute(
        select(
            m.Attachment.ticket_id,
            m.Attachment.id,
            m.Attachment.filename,
            m.Attachment.content_type,
            m.Attachment.size,
            m.Attachment.sha256,
        )
        .where(
            m.Attachment.ticket_id.in_(ids),
            *([customer_visible_attachments()] if customer else []),
        )
        .order_by(m.Attachment.created_at)
    ):
        attachments[a.ticket_id].append(attachment_pb(a))
    return attachments


def _ticket_pb(
    t: m.Ticket,
    org: m.Organization | None,
    requester: m.Contact | None,
    assignee: m.Agent | None,
    follow_ups: list[int],
    attachments: list[pb.Attachment],
) -> pb.Ticket:
    return pb.Ticket(
        id=t.id,
        display_id=display_id(t.id),
        subject=t.subject,
        description=t.description,
        organization_id=t.organization_id,
        organization_name=org.name if org else "",
        requester_id=t.requester_id,
        requester_email=requester.email if requester else "",
        requester_name=requester.name if requester else "",
        channel=value_of(pb.Channel, t.channel),
        kind=value_of(pb.TicketKind, t.kind),
        product=t.product,
        version=t.version,
        os=t.os,
        criticality=value_of(pb.Criticality, t.criticality),
        priority=value_of(pb.Priority, t.priority),
        level=value_of(pb.SupportLevel, t.level),
        assignee_id=t.assignee_id or 0,
        assignee_name=assignee.name if assignee else "",
        status=value_of(pb.TicketStatus, t.status),
        milestones=pb.Milestones(
            received_at=ts(t.received_at),
            taken_in_charge_at=ts(t.taken_in_charge_at),
            first_feedback_at=ts(t.first_feedback_at),
            solved_at=ts(t.solved_at),
            closed_at=ts(t.closed_at),
        ),
        sla=sla_clocks(
            sla_clock=t.sla_clock,
            status=t.status,
            breaches=t.breaches,
            taken_in_charge_due=t.taken_in_charge_due,
            taken_in_charge_at=t.taken_in_charge_at,
            first_feedback_due=t.first_feedback_due,
            first_feedback_at=t.first_feedback_at,
            resolution_due=t.resolution_due,
            solved_at=t.solved_at,
        ),
        sla_breached=t.sla_breached,
        follow_up_of=t.follow_up_of or 0,
        follow_ups=follow_ups,
        close_reason=value_of(pb.CloseReason, t.close_reason),
        auto_close_at=ts(t.auto_close_at),
        phone=t.phone,
        callback_number=t.callback_number,
        attachments_requested_by_email=t.attachments_requested_by_email,
        attachments=attachments,
        reopen_count=t.reopen_count,
        updated_at=ts(t.updated_at),
        workflow_id=ticket_workflow_id(t.id),
        programming_tickets=[
            pb.LinkedProgrammingTicket(id=x.id, status=x.status, detached=x.detached, title=x.title)
            for x in links_of(t)
        ],
        awaiting_verification=t.awaiting_verification,
        hours_spent=t.hours_spent,
        hold_reason=value_of(pb.HoldReason, t.hold_reason),
        third_party_name=t.third_party_name,
        third_party_reference=t.third_party_reference,
        merged_into=t.merged_into or 0,
        next_due_at=ts(t.next_due_at),
        next_due_target=value_of(pb.SlaTarget, t.next_due_target or ""),
    )


async def comment_pb(session: AsyncSession, c: m.Comment) -> pb.Comment:
    name = "system"
    if c.author_kind == "CONTACT":
        contact = await session.get(m.Contact, c.author_id)
        name = contact.name if contact else ""
    elif c.author_kind == "AGENT":
        agent = await session.get(m.Agent, c.author_id)
        name = agent.name if agent else ""
    attachments = (
        await session.scalars(select(m.Attachment).where(m.Attachment.comment_id == c.id))
    ).all()
    return pb.Comment(
        id=c.id,
        ticket_id=c.ticket_id,
        visibility=value_of(pb.CommentVisibility, c.visibility),
        author_kind=value_of(pb.AuthorKind, c.author_kind),
        author_id=c.author_id,
        author_name=name,
        body=c.body,
        created_at=ts(c.created_at),
        # A phone call or remote session it records (seed 000): type, direction, duration.
        interaction=interaction_pb(await session.get(m.Interaction, c.id)),
        attachments=[attachment_pb(a) for a in attachments],
    )


async def comment_attachments(session: AsyncSession, comment_id: str) -> list[AttachmentPayload]:
    """A comment's files as events name them (no bytes), in the order they were added."""
    rows = await session.execute(
        select(m.Attachment.id, m.Attachment.filename, m.Attachment.content_type, m.Attachment.size)
        .where(m.Attachment.comment_id == comment_id)
        .order_by(m.Attachment.created_at, m.Attachment.id)
    )
    return [
        AttachmentPayload(id=a.id, filename=a.filename, content_type=a.content_type, size=a.size)
        for a in rows
    ]


async def actor_name(session: AsyncSession, kind: str, actor_id: int) -> str:
    if kind == "CONTACT" and actor_id:
        contact = await session.get(m.Contact, actor_id)
        return contact.name if contact else ""
    if kind == "AGENT" and actor_id:
        agent = await session.get(m.Agent, actor_id)
        return agent.name if agent else ""
    return "system"
