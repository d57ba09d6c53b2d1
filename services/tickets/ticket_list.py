"""``ListTickets`` on SQLAlchemy Core: a page is one SELECT joining each ticket to the names
it shows (organisation, requester, assignee) and its satisfaction answer, reading only the
columns ``Ticket`` carries, and built into protobuf straight from its rows (no ORM objects).
The parts a ticket has many of (follow-ups, attachments, followers) are read only for the
page's tickets that have any, as that SELECT itself tells: on most pages, none.

What a page holds is what ``readmodel.tickets_pb`` gives for the same tickets (``GetTicket``):
the same fields, the same clocks, the same rules for customers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Exists, Row, Select, Text, cast, select
from sqlalchemy.ext.asyncio import AsyncSession

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.access import Principal
from services.common.mail_threading import display_id
from services.tickets import models as m
from services.tickets import paging, queues
from services.tickets.convert import enum_values, ts
from services.tickets.follower_store import with_followers
from services.tickets.readmodel import (
    attachments_of,
    customer_visible_attachments,
    follow_ups_of,
    links_from,
    sla_clocks,
)
from services.tickets.ticket_visibility import visible_tickets
from workflows.contracts import ticket_workflow_id

# Plain names to protobuf numbers, once for the process rather than once per value.
_CHANNEL = enum_values(pb.Channel)
_KIND = enum_values(pb.TicketKind)
_CRITICALITY = enum_values(pb.Criticality)
_PRIORITY = enum_values(pb.Priority)
_LEVEL = enum_values(pb.SupportLevel)
_STATUS = enum_values(pb.TicketStatus)
_CLOSE_REASON = enum_values(pb.CloseReason)
_HOLD_REASON = enum_values(pb.HoldReason)
_SLA_TARGET = enum_values(pb.SlaTarget)

# Columns of the tables themselves rather than the ORM's attributes: the result matches
# them to the cached statement's by identity (ORM-annotated ones compare by building SQL
# expressions, a few microseconds for each column of each page).
_t = m.Ticket.__table__.c
_org = m.Organization.__table__.c
_agent = m.Agent.__table__.c
_satisfaction = m.Satisfaction.__table__.c
_requester_table = m.Contact.__table__.alias("requester")
_requester = _requester_table.c
_child = m.Ticket.__table__.alias("follow_up").c


def _as_text(column: ColumnElement[Any]) -> ColumnElement[str]:
    """A JSON column as its text: most tickets' are empty (``_json``), and the driver would
    parse each one (asyncpg parses JSON itself, whatever type the statement gives)."""
    return cast(column, Text)


def _json(text: str | None) -> Any:
    """A JSON column's value from its text, without parsing the empty ones."""
    if text == "[]":
        return []
    if text == "{}":
        return {}
    return None if text is None else json.loads(text)


# The page's columns, in the order ``_ticket`` unpacks them; the sort keys of an ordered
# page come after them (paging.ordered_page_query).
_COLUMNS = (
    _t.id,
    _t.subject,
    _t.description,
    _t.organization_id,
    _org.name,
    _t.requester_id,
    _requester.email,
    _requester.name,
    _t.channel,
    _t.kind,
    _t.product,
    _t.version,
    _t.os,
    _t.criticality,
    _t.priority,
    _t.level,
    _t.assignee_id,
    _agent.name,
    _t.status,
    _t.received_at,
    _t.taken_in_charge_at,
    _t.first_feedback_at,
    _t.solved_at,
    _t.closed_at,
    _t.taken_in_charge_due,
    _t.first_feedback_due,
    _t.resolution_due,
    _as_text(_t.breaches),
    _as_text(_t.sla_clock),
    _t.sla_breached,
    _t.follow_up_of,
    _t.close_reason,
    _t.auto_close_at,
    _t.phone,
    _t.callback_number,
    _t.attachments_requested_by_email,
    _t.reopen_count,
    _t.updated_at,
    _as_text(_t.programming_tickets),
    _t.awaiting_verification,
    _t.hours_spent,
    _t.hold_reason,
    _t.third_party_name,
    _t.third_party_reference,
    _t.merged_into,
    _t.next_due_at,
    _t.next_due_target,
    _satisfaction.rating,
    _satisfaction.comment,
)
# Whether a ticket has follow-ups / followers / attachments (the caller may see): the
# statements that read them run only for the tickets that do.
_followers = m.Follower.__table__.c
_HAS_FOLLOW_UPS = select(_child.id).where(_child.follow_up_of == _t.id).exists()
_HAS_FOLLOWERS = select(_followers.contact_id).where(_followers.ticket_id == _t.id).exists()
_WIDTH = len(_COLUMNS) + 3  # the flags: follow-ups, followers, attachments


def _has_attachments(customer: bool) -> Exists:
    attachments = select(m.Attachment.id).where(m.Attachment.ticket_id == m.Ticket.id)
    if customer:
        attachments = attachments.where(customer_visible_attachments())
    return attachments.exists()


_FLAGS = {
    customer: (_HAS_FOLLOW_UPS, _HAS_FOLLOWERS, _has_attachments(customer))
    for customer in (False, True)
}


def _page(
    chosen: Select[*tuple[Any, ...]], keys: Sequence[paging.SortKey], customer: bool
) -> Select[*tuple[Any, ...]]:
    """The page's tickets with their names and flags, ``chosen`` selecting the page's IDs
    and sort keys (ordered and limited). The page is chosen first and only its rows are
    joined: joined before the ORDER BY ... LIMIT, every ticket the filters let through
    would be (a few hundred of one organisation's, against the 51 kept)."""
    page = chosen.subquery("page")
    ticket_id, *sort_values = page.c
    return (
        select(*_COLUMNS, *_FLAGS[customer], *sort_values)
        .select_from(page)
        .join(m.Ticket.__table__, _t.id == ticket_id)
        .outerjoin(m.Organization.__table__, _org.id == _t.organization_id)
        .outerjoin(_requester_table, _requester.id == _t.requester_id)
        .outerjoin(m.Agent.__table__, _agent.id == _t.assignee_id)
        .outerjoin(m.Satisfaction.__table__, _satisfaction.ticket_id == _t.id)
        .order_by(
            *(
                value.desc() if key.descending else value
                for key, value in zip(keys, sort_values or [ticket_id], strict=True)
            )
        )
    )


async def list_tickets(
    session: AsyncSession, request: tpb.ListTicketsRequest, who: Principal
) -> tpb.ListTicketsResponse:
    """One page of the tickets ``who`` may see, with the request's filters, in its order
    (NEXT_DUE by default for staff, newest first for customers); fields are validated in the
    order they always were, so a request with two bad fields is told of the same one."""
    customer = who.is_customer
    chosen = select(m.Ticket.id).where(*visible_tickets(who))
    chosen = queues.with_list_filters(chosen, request)
    order = queues.order_of(request, staff=not customer)
    chosen = queues.with_filters(chosen, request)
    size = paging.page_size(request.page_size)
    scope = ""
    if order == "ID":  # the tokens ListTickets has always issued
        keys = [paging.SortKey(m.Ticket.id, descending=True)]
        chosen = paging.keyed_page_query(
            chosen, m.Ticket.id, size, request.page_token, newest_first=True
        )
    else:
        scope = queues.page_scope(order, request)
        keys = queues.sort_keys(order)
        chosen = paging.ordered_page_query(chosen, keys, size, request.page_token, scope)
    # Reads only, mostly one statement: no transaction around them. On PostgreSQL that
    # spares a BEGIN and a ROLLBACK round trip (at READ COMMITTED each statement saw its
    # own snapshot anyway); SQLite begins none for a read, and setting the level there
    # would cost two trips to its thread.
    options = {"isolation_level": "AUTOCOMMIT"} if _postgresql(session) else {}
    connection = await session.connection(execution_options=options)
    result = await connection.execute(_page(chosen, keys, customer))
    rows, more = paging.cut(list(result.all()), size)
    token = ""
    if more:
        last = rows[-1]
        token = (
            paging.encode(last[0])
            if order == "ID"
            else paging.encode_keys(scope, list(last[_WIDTH:]))
        )
    return tpb.ListTicketsResponse(
        tickets=await _tickets(session, rows, customer), next_page_token=token
    )


def _postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def _tickets(
    session: AsyncSession, rows: Sequence[Row[*tuple[Any, ...]]], customer: bool
) -> list[pb.Ticket]:
    n = len(_COLUMNS)
    with_follow_ups = [r[0] for r in rows if r[n]]
    with_attachments = [r[0] for r in rows if r[n + 2]]
    follow_ups = await follow_ups_of(session, with_follow_ups) if with_follow_ups else {}
    attachments = (
        await attachments_of(session, with_attachments, customer=customer)
        if with_attachments
        else {}
    )
    tickets = [_ticket(r, follow_ups.get(r[0], []), attachments.get(r[0], [])) for r in rows]
    followed = [t for t, r in zip(tickets, rows, strict=True) if r[n + 1]]
    if followed:
        await with_followers(session, followed)
    return tickets


def _ticket(
    row: Row[*tuple[Any, ...]], follow_ups: list[int], attachments: list[pb.Attachment]
) -> pb.Ticket:
    """The protobuf ticket of one row of the page (``readmodel._ticket_pb``'s fields)."""
    (
        id_,
        subject,
        description,
        organization_id,
        organization_name,
        requester_id,
        requester_email,
        requester_name,
        channel,
        kind,
        product,
        version,
        os,
        criticality,
        priority,
        level,
        assignee_id,
        assignee_name,
        status,
        received_at,
        taken_in_charge_at,
        first_feedback_at,
        solved_at,
        closed_at,
        taken_in_charge_due,
        first_feedback_due,
        resolution_due,
        breaches,
        sla_clock,
        sla_breached,
        follow_up_of,
        close_reason,
        auto_close_at,
        phone,
        callback_number,
        attachments_requested_by_email,
        reopen_count,
        updated_at,
        programming_tickets,
        awaiting_verification,
        hours_spent,
        hold_reason,
        third_party_name,
        third_party_reference,
        merged_into,
        next_due_at,
        next_due_target,
        rating,
        comment,
        *_,
    ) = row
    ticket = pb.Ticket(
        id=id_,
        display_id=display_id(id_),
        subject=subject,
        description=description,
        organization_id=organization_id,
        organization_name=organization_name or "",
        requester_id=requester_id,
        requester_email=requester_email or "",
        requester_name=requester_name or "",
        channel=_CHANNEL[channel or ""],
        kind=_KIND[kind or ""],
        product=product,
        version=version,
        os=os,
        criticality=_CRITICALITY[criticality or ""],
        priority=_PRIORITY[priority or ""],
        level=_LEVEL[level or ""],
        assignee_id=assignee_id or 0,
        assignee_name=assignee_name or "",
        status=_STATUS[status or ""],
        milestones=pb.Milestones(
            received_at=ts(received_at),
            taken_in_charge_at=ts(taken_in_charge_at),
            first_feedback_at=ts(first_feedback_at),
            solved_at=ts(solved_at),
            closed_at=ts(closed_at),
        ),
        sla=sla_clocks(
            sla_clock=_json(sla_clock),
            status=status,
            breaches=_json(breaches),
            taken_in_charge_due=taken_in_charge_due,
            taken_in_charge_at=taken_in_charge_at,
            first_feedback_due=first_feedback_due,
            first_feedback_at=first_feedback_at,
            resolution_due=resolution_due,
            solved_at=solved_at,
        ),
        sla_breached=sla_breached,
        follow_up_of=follow_up_of or 0,
        follow_ups=follow_ups,
        close_reason=_CLOSE_REASON[close_reason or ""],
        auto_close_at=ts(auto_close_at),
        phone=phone,
        callback_number=callback_number,
        attachments_requested_by_email=attachments_requested_by_email,
        attachments=attachments,
        reopen_count=reopen_count,
        updated_at=ts(updated_at),
        workflow_id=ticket_workflow_id(id_),
        programming_tickets=[
            pb.LinkedProgrammingTicket(id=x.id, status=x.status, detached=x.detached, title=x.title)
            for x in links_from(_json(programming_tickets))
        ],
        awaiting_verification=awaiting_verification,
        hours_spent=hours_spent,
        hold_reason=_HOLD_REASON[hold_reason or ""],
        third_party_name=third_party_name,
        third_party_reference=third_party_reference,
        merged_into=merged_into or 0,
        next_due_at=ts(next_due_at),
        next_due_target=_SLA_TARGET[next_due_target or ""],
    )
    if rating is not None:  # with_satisfaction's fields, from the outer join
        ticket.satisfaction_rating = rating
        ticket.satisfaction_comment = comment
    return ticket
