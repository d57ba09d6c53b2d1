"""The queues' views and filters as ``ListTickets`` requests, and each row as the queue
shows it. Pure: no I/O, so the choices are tested without a server."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from urllib.parse import urlencode

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import tickets_pb2 as tpb
from services.gateway.agent.time_left import TimeLeft, plan_seconds, time_left
from services.gateway.texts import CRITICALITY, PRIORITY, STATUS
from services.gateway.views import STATUS_KEYS

# What "open" means for the desk: not yet solved.
ACTIVE = (
    pb.TICKET_STATUS_NEW,
    pb.TICKET_STATUS_OPEN,
    pb.TICKET_STATUS_PENDING,
    pb.TICKET_STATUS_ON_HOLD,
)
# "Due soon": the next target within this many minutes (or past).
DUE_SOON_MINUTES = 60
PAGE_SIZE = 100

KIND = {
    pb.TICKET_KIND_QUESTION: "Question",
    pb.TICKET_KIND_INCIDENT: "Incident",
    pb.TICKET_KIND_BUG: "Bug",
    pb.TICKET_KIND_CHANGE_REQUEST: "Change request",
    pb.TICKET_KIND_QUOTE: "Quote",
    pb.TICKET_KIND_HARDWARE: "Hardware",
}
LEVEL = {pb.SUPPORT_LEVEL_L1: "First level", pb.SUPPORT_LEVEL_L2: "Second level"}
ORDERS = {
    "due": (tpb.TICKET_ORDER_NEXT_DUE, "Next due"),
    "priority": (tpb.TICKET_ORDER_PRIORITY, "Priority"),
    "updated": (tpb.TICKET_ORDER_UPDATED, "Last update"),
    "id": (tpb.TICKET_ORDER_ID, "Newest"),
}
PRIORITY_KEYS = {
    pb.PRIORITY_LOW: "low",
    pb.PRIORITY_NORMAL: "normal",
    pb.PRIORITY_HIGH: "high",
    pb.PRIORITY_URGENT: "urgent",
}


@dataclass(frozen=True)
class View:
    key: str
    label: str  # English; the accessible name of its link
    statuses: tuple[pb.TicketStatus.ValueType, ...] = ACTIVE
    mine: bool = False
    unassigned: bool = False
    due_within_minutes: int = 0
    breached: bool = False


VIEWS = (
    View("mine", "My tickets", mine=True),
    View("unassigned", "Unassigned", unassigned=True),
    View("due", "Due soon", due_within_minutes=DUE_SOON_MINUTES),
    View("breached", "Breached", breached=True),
    View("pending", "Pending", statuses=(pb.TICKET_STATUS_PENDING,)),
    View("on_hold", "On hold", statuses=(pb.TICKET_STATUS_ON_HOLD,)),
    View("open", "All open"),
)
VIEW_BY_KEY = {v.key: v for v in VIEWS}
DEFAULT_VIEW = "unassigned"


class BadFilter(ValueError):
    """A filter value the queue does not know (400, naming the field)."""

    def __init__(self, field_name: str) -> None:
        super().__init__(field_name)
        self.field = field_name


@dataclass(frozen=True)
class Filters:
    """The queue's filters, as the query string carries them."""

    organization_id: int = 0
    priority: int = 0
    criticality: int = 0
    status: int = 0
    # 0: anyone; -1: nobody (unassigned).
    assignee_id: int = 0
    kind: int = 0
    level: int = 0
    q: str = ""
    order: str = "due"
    page: str = ""

    def query(self, **changes: object) -> str:
        """The query string of these filters (with ``changes``), without empty ones."""
        values = replace(self, **changes)  # type: ignore[arg-type]
        pairs = {
            "org": values.organization_id,
            "priority": values.priority,
            "criticality": values.criticality,
            "status": values.status,
            "assignee": "none" if values.assignee_id == -1 else values.assignee_id,
            "kind": values.kind,
            "level": values.level,
            "q": values.q,
            "order": "" if values.order == "due" else values.order,
            "page": values.page,
        }
        return urlencode({k: v for k, v in pairs.items() if v})

    @property
    def any(self) -> bool:
        return self.query(order="due", page="") != ""


def _number(params: Mapping[str, str], name: str, allowed: Collection[int] | None) -> int:
    raw = params.get(name, "").strip()
    if not raw:
        return 0
    if not raw.isdigit() or len(raw) > 18:
        raise BadFilter(name)
    value = int(raw)
    if allowed is not None and value not in allowed:
        raise BadFilter(name)
    return value


def parse_filters(params: Mapping[str, str]) -> Filters:
    """The filters of a query string; an unknown value raises ``BadFilter``."""
    assignee_raw = params.get("assignee", "").strip()
    assignee = -1 if assignee_raw == "none" else _number(params, "assignee", None)
    order = params.get("order", "").strip() or "due"
    if order not in ORDERS:
        raise BadFilter("order")
    q = params.get("q", "").strip()
    if len(q) > 300:
        raise BadFilter("q")
    page = params.get("page", "").strip()
    if len(page) > 500:
        raise BadFilter("page")
    return Filters(
        organization_id=_number(params, "org", None),
        priority=_number(params, "priority", PRIORITY),
        criticality=_number(params, "criticality", CRITICALITY),
        status=_number(params, "status", STATUS),
        assignee_id=assignee,
        kind=_number(params, "kind", KIND),
        level=_number(params, "level", LEVEL),
        q=q,
        order=order,
        page=page,
    )


def list_request(
    view: View, viewer_id: int, filters: Filters, page_size: int = PAGE_SIZE
) -> tpb.ListTicketsRequest | None:
    """The ``ListTickets`` request of ``view`` narrowed by ``filters``; None when they
    cannot match anything (a status outside the view, someone else in "My tickets").
    Criticality has no ``ListTickets`` filter: ``keep`` applies it to the page."""
    statuses = list(view.statuses)
    if filters.status:
        if filters.status not in statuses and view.statuses != ACTIVE:
            return None
        statuses = [pb.TicketStatus.ValueType(filters.status)]
    request = tpb.ListTicketsRequest(
        statuses=statuses,
        page_size=page_size,
        page_token=filters.page,
        order_by=ORDERS[filters.order][0],
        organization_id=filters.organization_id,
        subject_contains=filters.q,
        unassigned_only=view.unassigned or filters.assignee_id == -1,
        due_within_minutes=view.due_within_minutes,
        breached_only=view.breached,
    )
    if filters.priority:
        request.priorities.append(pb.Priority.ValueType(filters.priority))
    if filters.kind:
        request.kinds.append(pb.TicketKind.ValueType(filters.kind))
    if filters.level:
        request.levels.append(pb.SupportLevel.ValueType(filters.level))
    if view.mine:
        if filters.assignee_id not in (0, viewer_id):
            return None
        request.assignee_id = viewer_id
    elif filters.assignee_id > 0:
        if view.unassigned:
            return None
        request.assignee_id = filters.assignee_id
    return request


def count_request(view: View, viewer_id: int) -> tpb.ListTicketsRequest:
    """A view's count: the view alone, without the page's filters."""
    request = list_request(view, viewer_id, Filters(), 0)
    assert request is not None
    return request


def keep(ticket: pb.Ticket, filters: Filters) -> bool:
    """The filters ``ListTickets`` cannot apply (criticality), over the page."""
    return not filters.criticality or ticket.criticality == filters.criticality


@dataclass
class Row:
    id: int
    display_id: str
    subject: str
    organization: str
    requester: str
    priority: str
    priority_key: str
    criticality: str
    status: str
    status_key: str
    assignee: str
    left: TimeLeft
    due_iso: str
    extra: dict[str, str] = field(default_factory=dict)


def row_of(
    t: pb.Ticket,
    plans: Mapping[int, dpb.SlaPlan],
    now: datetime,
    _: Callable[[str], str],
) -> Row:
    plan = plans.get(t.organization_id)
    whole = plan_seconds(plan, t.priority, t.next_due_target) if plan is not None else None
    due = t.next_due_at.ToDatetime(tzinfo=now.tzinfo) if t.HasField("next_due_at") else None
    return Row(
        id=t.id,
        display_id=t.display_id or f"#{t.id}",
        subject=t.subject,
        organization=t.organization_name,
        requester=t.requester_name or t.requester_email,
        priority=_(PRIORITY.get(t.priority, "")) or "–",
        priority_key=PRIORITY_KEYS.get(t.priority, ""),
        criticality=_(CRITICALITY.get(t.criticality, "")),
        status=_(STATUS.get(t.status, "")),
        status_key=STATUS_KEYS.get(t.status, ""),
        assignee=t.assignee_name,
        left=time_left(t, whole, now, _),
        due_iso=due.isoformat() if due else "",
    )
