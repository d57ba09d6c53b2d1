"""The desk's queues (``ListTickets``): each ticket's next service-level due instant, the
orders by urgency (nearest due, priority, last change, ID) and the filters agents work
with (unassigned, due soon, breached, kind, level, a word of the subject)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.rpc_errors import invalid, optional_text
from services.tickets import models as m
from services.tickets.convert import optional_name, required_name
from services.tickets.paging import SortKey

# Statuses whose clocks no longer matter for the queue.
DONE = ("SOLVED", "CLOSED")
PRIORITY_RANK = {"URGENT": 0, "HIGH": 1, "NORMAL": 2, "LOW": 3}
# "Due within N minutes": at most a year ahead.
# CountTickets: the queues' views and a few more.
MAX_COUNT_QUERIES = 20
MAX_DUE_WITHIN_MINUTES = 525_600


def next_due(row: m.Ticket) -> tuple[datetime | None, str]:
    """The nearest due instant of a target the ticket has not reached, and which target
    (breached ones included: they are the most urgent); (None, "") when none is due."""
    if row.status in DONE:
        return None, ""
    candidates = [
        (due, target)
        for due, met, target in (
            (row.taken_in_charge_due, row.taken_in_charge_at, "TAKEN_IN_CHARGE"),
            (row.first_feedback_due, row.first_feedback_at, "FIRST_FEEDBACK"),
            (row.resolution_due, None, "RESOLUTION"),
        )
        if due is not None and met is None
    ]
    if not candidates:
        return None, ""
    return min(candidates, key=lambda c: (c[0], c[1]))


def set_next_due(row: m.Ticket) -> None:
    row.next_due_at, row.next_due_target = next_due(row)


def with_list_filters(query: Select[Any], request: tpb.ListTicketsRequest) -> Select[Any]:
    """The filters ListTickets has always had: organisation, requester, statuses,
    priorities, assignee (each one validated, naming its field)."""
    t = m.Ticket
    if request.organization_id:
        query = query.where(t.organization_id == request.organization_id)
    if request.requester_email:
        query = query.join(m.Contact, m.Contact.id == t.requester_id).where(
            m.Contact.email_key == request.requester_email.strip().lower()
        )
    if request.statuses:
        statuses = [required_name(pb.TicketStatus, s, "statuses") for s in request.statuses]
        query = query.where(t.status.in_(statuses))
    if request.priorities:
        priorities = [required_name(pb.Priority, p, "priorities") for p in request.priorities]
        query = query.where(t.priority.in_(priorities))
    if request.assignee_id:
        query = query.where(t.assignee_id == request.assignee_id)
    return query


def with_filters(query: Select[Any], request: tpb.ListTicketsRequest) -> Select[Any]:
    """The queue filters of ``request`` (each one validated, naming its field)."""
    t = m.Ticket
    if request.unassigned_only:
        query = query.where(t.assignee_id.is_(None))
    if request.due_within_minutes:
        minutes = request.due_within_minutes
        if not 0 < minutes <= MAX_DUE_WITHIN_MINUTES:
            invalid("due_within_minutes", f"must be from 1 to {MAX_DUE_WITHIN_MINUTES}")
        horizon = datetime.now(UTC) + timedelta(minutes=minutes)
        query = query.where(t.next_due_at.is_not(None), t.next_due_at <= horizon)
    if request.breached_only:
        query = query.where(t.sla_breached.is_(True))
    if request.kinds:
        kinds = [required_name(pb.TicketKind, k, "kinds") for k in request.kinds]
        query = query.where(t.kind.in_(kinds))
    if request.levels:
        levels = [required_name(pb.SupportLevel, v, "levels") for v in request.levels]
        query = query.where(t.level.in_(levels))
    text = optional_text("subject_contains", request.subject_contains, 300).strip().lower()
    if text:
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(func.lower(t.subject).like(f"%{escaped}%", escape="\\"))
    return query


def order_of(request: tpb.ListTicketsRequest, staff: bool) -> str:
    """NEXT_DUE by default for the desk; customers see their newest tickets first."""
    return optional_name(tpb.TicketOrder, request.order_by, "order_by") or (
        "NEXT_DUE" if staff else "ID"
    )


def sort_keys(order: str) -> list[SortKey]:
    t = m.Ticket
    no_due: ColumnElement[int] = case((t.next_due_at.is_(None), 1), else_=0)
    # Equal due times (tickets opened out of hours share one) go first come, first served.
    by_due = [
        SortKey(no_due),
        SortKey(t.next_due_at, nullable=True),
        SortKey(t.id),
    ]
    if order == "NEXT_DUE":
        return by_due
    if order == "PRIORITY":
        rank: ColumnElement[int] = case(PRIORITY_RANK, value=t.priority, else_=len(PRIORITY_RANK))
        return [SortKey(rank), *by_due]
    if order == "UPDATED":
        return [SortKey(t.updated_at, descending=True), SortKey(t.id, descending=True)]
    return [SortKey(t.id, descending=True)]


def page_scope(order: str, request: tpb.ListTicketsRequest) -> str:
    """A page token belongs to one order and one set of filters."""
    filters = tpb.ListTicketsRequest()
    filters.CopyFrom(request)
    filters.ClearField("page_token")
    filters.ClearField("page_size")
    digest = hashlib.sha256(filters.SerializeToString(deterministic=True)).hexdigest()[:16]
    return f"{order}:{digest}"
