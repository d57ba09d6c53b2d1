"""ListTickets on SQLAlchemy Core (services/tickets/ticket_list.py) answers what the ORM read
model answers for the same request: the same tickets in the same order, every field the
same (names, clocks, attachments a customer may see, followers, follow-ups, satisfaction),
the same page tokens and the same refusals, for staff and for each kind of customer."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common import db
from services.common.access import Principal, Role, current_principal
from services.common.rpc_errors import RpcError
from services.common.settings import async_database_url
from services.tickets import models as m
from services.tickets import paging, queues, readmodel
from services.tickets.app import MIGRATIONS, VERSION_TABLE
from services.tickets.readmodel import tickets_pb
from services.tickets.servicer import TicketServicer
from services.tickets.ticket_visibility import visible_requesters, visible_tickets
from workflows.domain.business_time import SEED_000

pytestmark = [pytest.mark.db]

NOW = datetime(2025, 3, 12, 10, 0, tzinfo=UTC)  # a Wednesday, inside SEED_000's hours


class _FrozenDatetime(datetime):
    """``readmodel``'s clock: both paths read the business time left as of one instant."""

    @classmethod
    def now(cls, tz: Any = None) -> _FrozenDatetime:
        return cls.fromtimestamp(NOW.timestamp(), tz)


class _Context:
    """What ``rpc_method`` needs of a servicer context: abort raises the refusal again."""

    async def abort(self, code: grpc.StatusCode, message: str) -> None:
        raise RpcError(code, message)


@dataclass
class World:
    sessions: async_sessionmaker[AsyncSession]
    servicer: TicketServicer
    org_a: int  # shares tickets within departments
    org_b: int
    agent_id: int
    referent: Principal
    user_dept: Principal  # in department "IT" of org A
    user_alone: Principal  # no department, org A
    user_b: Principal  # org B (no sharing)
    requester_email: str


def _contact(org: int, name: str, department: str = "", role: str = "USER") -> m.Contact:
    key = f"{name.lower().replace(' ', '.')}.{uuid.uuid4().hex[:6]}@example.it"
    return m.Contact(
        organization_id=org,
        name=name,
        email=key,
        email_key=key,
        role=role,
        department=department,
        created_at=NOW,
    )


def _business_clock(running: bool, elapsed: float) -> dict[str, object]:
    return {
        "calendar": json.loads(json.dumps(dataclasses.asdict(SEED_000))),
        "calendar_name": "Seed 000",
        "plan_name": "Base",
        "targets": {"TAKEN_IN_CHARGE": 3600, "FIRST_FEEDBACK": 7200, "RESOLUTION": 57_600},
        "elapsed": elapsed,
        "as_of": (NOW - timedelta(minutes=30)).isoformat(),
        "running": running,
    }


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    url = async_database_url(database_url)
    await db.upgrade(MIGRATIONS, url, VERSION_TABLE)
    engine = db.make_engine(url)
    sessions = db.make_sessionmaker(engine)
    async with sessions() as session:
        orgs = [
            m.Organization(
                name=f"Org {c} {uuid.uuid4().hex[:6]}",
                name_key=uuid.uuid4().hex,
                email_domains=[],
                closed_ticket_policy="FOLLOW_UP",
                locale="it",
                department_sees_tickets=c == "A",
                created_at=NOW,
            )
            for c in "AB"
        ]
        session.add_all(orgs)
        await session.flush()
        a, b = orgs[0].id, orgs[1].id
        people = [
            _contact(a, "Referente A", role="REFERENT"),
            _contact(a, "Ugo Reparto", department="IT"),
            _contact(a, "Ida Reparto", department="IT"),
            _contact(a, "Sara Sola"),
            _contact(a, "Carlo Contabile", department="Contabilità"),
            _contact(b, "Bea Beta", department="IT"),
            _contact(b, "Bruno Beta", department="IT"),
        ]
        agents = [
            m.Agent(
                name=name,
                email=f"{name}@desk.it",
                email_key=f"{name}.{uuid.uuid4().hex[:6]}@desk.it",
                role="AGENT",
                created_at=NOW,
            )
            for name in ("anna", "bruno")
        ]
        session.add_all([*people, *agents])
        await session.flush()
        statuses = ("NEW", "OPEN", "PENDING", "ON_HOLD", "SOLVED", "CLOSED")
        priorities = ("LOW", "NORMAL", "HIGH", "URGENT")
        kinds = ("", "QUESTION", "BUG", "INCIDENT")
        tickets: list[m.Ticket] = []
        for i in range(36):
            requester = people[i % len(people)]
            received = NOW - timedelta(hours=36 - i)
            status = statuses[i % len(statuses)]
            due = received + timedelta(hours=4) if i % 5 else None
            next_due = None if status in queues.DONE or i % 7 == 0 else received + timedelta(i % 3)
            tickets.append(
                m.Ticket(
                    request_id=f"list:{uuid.uuid4().hex}",
                    subject=f"{'Stampa fattura' if i % 3 == 0 else 'Errore login'} {i} 100%_x",
                    description=f"Descrizione {i}",
                    organization_id=requester.organization_id,
                    requester_id=requester.id,
                    channel=("EMAIL", "PHONE", "PORTAL")[i % 3],
                    kind=kinds[i % len(kinds)],
                    product="Gestionale" if i % 2 else "",
                    version="5.2" if i % 2 else "",
                    os="Windows" if i % 4 == 1 else "",
                    criticality=("", "NON_BLOCKING", "BLOCKING", "CRITICAL")[i % 4],
                    priority=priorities[i % len(priorities)],
                    level="L2" if i % 6 == 3 else "L1",
                    phone="+39 02 1234" if i % 5 == 2 else "",
                    callback_number="+39 333" if i % 5 == 3 else "",
                    attachments_requested_by_email=i % 9 == 4,
                    status=status,
                    assignee_id=agents[i % 2].id if i % 3 else None,
                    received_at=received,
                    taken_in_charge_at=received + timedelta(minutes=20) if i % 3 else None,
                    first_feedback_at=received + timedelta(hours=5) if i % 4 == 1 else None,
                    solved_at=received + timedelta(hours=6) if status in queues.DONE else None,
                    closed_at=received + timedelta(hours=7) if status == "CLOSED" else None,
                    close_reason="CONFIRMED" if status == "CLOSED" else "",
                    taken_in_charge_due=due,
                    first_feedback_due=received + timedelta(hours=8) if i % 4 else None,
                    breaches=(
                        [
                            {
                                "target": "TAKEN_IN_CHARGE",
                                "due_at": received.isoformat(),
                                "recorded_at": received.isoformat(),
                            }
                        ]
                        if i % 8 == 5
                        else []
                    ),
                    sla_breached=i % 8 == 5,
                    auto_close_at=received + timedelta(days=14) if status == "SOLVED" else None,
                    reopen_count=i % 3,
                    event_seq=1,
                    programming_tickets=(
                        [{"id": 900 + i, "title": "Fix", "urgency": "HIGH", "status": "OPEN"}]
                        if i % 10 == 3
                        else []
                    ),
                    awaiting_verification=i % 11 == 2,
                    hours_spent=0.5 * (i % 4),
                    hold_reason="THIRD_PARTY" if status == "ON_HOLD" and i % 2 else "",
                    third_party_name="ISP" if status == "ON_HOLD" else "",
                    third_party_reference="R-1" if status == "ON_HOLD" else "",
                    resolution_due=received + timedelta(days=2) if i % 4 == 2 else None,
                    clocks_start_at=received,
                    sla_clock=_business_clock(i % 8 != 2, 600.0 * i) if i % 4 == 2 else {},
                    next_due_at=next_due,
                    next_due_target="TAKEN_IN_CHARGE" if next_due else "",
                    workflow_started=True,
                    # Equal instants too: the orders break ties by ID.
                    updated_at=received + timedelta(minutes=10 * (i % 4)),
                )
            )
        session.add_all(tickets)
        await session.flush()
        for i, t in enumerate(tickets):
            if i % 6 == 1:
                t.follow_up_of = tickets[i - 1].id
            if i == 20:
                t.merged_into = tickets[19].id
        public = m.Comment(
            id=uuid.uuid4().hex,
            ticket_id=tickets[1].id,
            visibility="PUBLIC",
            author_kind="AGENT",
            author_id=agents[0].id,
            body="Risposta",
            created_at=NOW,
        )
        internal = m.Comment(
            id=uuid.uuid4().hex,
            ticket_id=tickets[1].id,
            visibility="INTERNAL",
            author_kind="AGENT",
            author_id=agents[0].id,
            body="Nota",
            created_at=NOW,
        )
        session.add_all([public, internal])
        for n, (ticket, comment) in enumerate(
            [
                (tickets[1], None),
                (tickets[1], public.id),
                (tickets[1], internal.id),
                (tickets[7], internal.id),  # only an internal file: none for a customer
                (tickets[8], None),
            ]
        ):
            session.add(
                m.Attachment(
                    id=uuid.uuid4().hex,
                    ticket_id=ticket.id,
                    comment_id=comment,
                    filename=f"file{n}.png",
                    content_type="image/png",
                    size=10 + n,
                    sha256=f"{n:064d}",
                    content=b"x",
                    created_at=NOW + timedelta(seconds=n),
                )
            )
        for ticket, contact in (
            (tickets[1], people[2]),
            (tickets[1], people[0]),
            (tickets[9], people[5]),
        ):
            session.add(
                m.Follower(ticket_id=ticket.id, contact_id=contact.id, source="AGENT", added_at=NOW)
            )
        for ticket, rating in ((tickets[4], 5), (tickets[5], 2)):
            session.add(
                m.Satisfaction(
                    ticket_id=ticket.id,
                    rating=rating,
                    comment="Bene" if rating > 3 else "",
                    source="TOKEN",
                    first_answered_at=NOW,
                    answered_at=NOW,
                )
            )
        await session.commit()

        def as_principal(c: m.Contact) -> Principal:
            return Principal(Role(c.role), "CONTACT", id=c.id, organization_id=c.organization_id)

        yield World(
            sessions=sessions,
            servicer=TicketServicer(sessions, None, None),  # type: ignore[arg-type]
            org_a=a,
            org_b=b,
            agent_id=agents[0].id,
            referent=as_principal(people[0]),
            user_dept=as_principal(people[1]),
            user_alone=as_principal(people[3]),
            user_b=as_principal(people[5]),
            requester_email=people[1].email.upper(),
        )
    await engine.dispose()


async def _orm_page(
    session: AsyncSession, query: Select[Any], request: tpb.ListTicketsRequest, staff: bool
) -> tuple[list[m.Ticket], str]:
    """One page of ORM rows in the order asked, as the ORM read model paged them."""
    order = queues.order_of(request, staff)
    query = queues.with_filters(query, request)
    if order == "ID":
        return await paging.fetch_page(
            session, query, m.Ticket.id, request.page_size, request.page_token, newest_first=True
        )
    return await paging.fetch_ordered_page(
        session,
        query,
        queues.sort_keys(order),
        request.page_size,
        request.page_token,
        queues.page_scope(order, request),
    )


async def _orm_list(
    sessions: async_sessionmaker[AsyncSession], request: tpb.ListTicketsRequest, who: Principal
) -> tpb.ListTicketsResponse:
    """ListTickets as the ORM read model answered it: the reference."""
    if who.is_customer and request.organization_id not in (0, who.organization_id):
        return tpb.ListTicketsResponse()
    async with sessions() as session:
        query = select(m.Ticket)
        if who.is_customer:
            query = query.where(m.Ticket.organization_id == who.organization_id)
            if who.role is Role.USER:
                visible = await visible_requesters(session, who)
                query = query.where(m.Ticket.requester_id.in_(sorted(visible)))
        query = queues.with_list_filters(query, request)
        rows, token = await _orm_page(session, query, request, staff=not who.is_customer)
        tickets = await tickets_pb(session, rows, customer=who.is_customer)
    return tpb.ListTicketsResponse(tickets=tickets, next_page_token=token)


async def _both(
    world: World, request: tpb.ListTicketsRequest, who: Principal
) -> tuple[tpb.ListTicketsResponse, tpb.ListTicketsResponse]:
    token = current_principal.set(who)
    try:
        core = await world.servicer.ListTickets(request, _Context())  # type: ignore[arg-type]
    finally:
        current_principal.reset(token)
    return core, await _orm_list(world.sessions, request, who)


def _staff(world: World) -> list[Principal]:
    return [
        Principal(Role.ADMIN, "ADMIN", name="admin"),
        Principal(Role.AGENT, "AGENT", id=world.agent_id),
    ]


def _requests(world: World) -> list[tpb.ListTicketsRequest]:
    orders = tpb.TicketOrder.values()
    return [
        *(tpb.ListTicketsRequest(order_by=o) for o in orders),
        tpb.ListTicketsRequest(organization_id=world.org_a),
        tpb.ListTicketsRequest(organization_id=world.org_b, order_by=tpb.TICKET_ORDER_PRIORITY),
        tpb.ListTicketsRequest(requester_email=f" {world.requester_email} "),
        tpb.ListTicketsRequest(statuses=[pb.TICKET_STATUS_NEW, pb.TICKET_STATUS_OPEN]),
        tpb.ListTicketsRequest(priorities=[pb.PRIORITY_HIGH], order_by=tpb.TICKET_ORDER_ID),
        tpb.ListTicketsRequest(assignee_id=world.agent_id, order_by=tpb.TICKET_ORDER_UPDATED),
        tpb.ListTicketsRequest(unassigned_only=True),
        tpb.ListTicketsRequest(due_within_minutes=24 * 60),
        tpb.ListTicketsRequest(breached_only=True),
        tpb.ListTicketsRequest(kinds=[pb.TICKET_KIND_BUG, pb.TICKET_KIND_QUESTION]),
        tpb.ListTicketsRequest(levels=[pb.SUPPORT_LEVEL_L2]),
        tpb.ListTicketsRequest(subject_contains="STAMPA"),
        tpb.ListTicketsRequest(subject_contains="100%_"),
        tpb.ListTicketsRequest(organization_id=world.org_a + 1000),
    ]


async def test_every_caller_and_filter_gets_what_the_read_model_gives(world: World) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(readmodel, "datetime", _FrozenDatetime)
        callers = [*_staff(world), world.referent, world.user_dept, world.user_alone, world.user_b]
        seen_fields: set[str] = set()
        for who in callers:
            for request in _requests(world):
                core, orm = await _both(world, request, who)
                assert core == orm, (who, request)
                for t in core.tickets:
                    seen_fields.update(f.name for f, _ in t.ListFields())
    # The data set exercises every field a listed ticket can carry.
    assert {f.name for f in pb.Ticket.DESCRIPTOR.fields} - seen_fields == set()


async def test_customers_see_what_the_rule_lets_them(world: World) -> None:
    """The department rule, in the query itself: a USER of an organisation that shares
    tickets within departments sees their department's; one without a department, or of
    another organisation, only their own."""
    async with world.sessions() as session:
        for who in (world.referent, world.user_dept, world.user_alone, world.user_b):
            conditions = visible_tickets(who)
            got = set(await session.scalars(select(m.Ticket.requester_id).where(*conditions)))
            everything = select(m.Ticket.requester_id).where(
                m.Ticket.organization_id == who.organization_id
            )
            expected = set(await session.scalars(everything))
            if who.role is Role.USER:
                expected &= await visible_requesters(session, who)
            assert got == expected, who
        dept = set(
            await session.scalars(
                select(m.Ticket.requester_id).where(*visible_tickets(world.user_dept))
            )
        )
        assert len(dept) == 2  # Ugo and Ida, both of IT
        assert visible_tickets(_staff(world)[1]) == []


async def test_pages_and_tokens_are_the_read_model_s(world: World) -> None:
    """Walking every order page by page gives the same pages and tokens; a token of one
    path is good on the other."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(readmodel, "datetime", _FrozenDatetime)
        for who in (_staff(world)[0], world.referent, world.user_dept):
            for order in tpb.TicketOrder.values():
                request = tpb.ListTicketsRequest(order_by=order, page_size=4)
                ids: list[int] = []
                while True:
                    core, orm = await _both(world, request, who)
                    assert core == orm, (who, order, request.page_token)
                    ids += [t.id for t in core.tickets]
                    if not core.next_page_token:
                        break
                    request.page_token = core.next_page_token
                assert len(ids) == len(set(ids))
                async with world.sessions() as session:
                    count = select(func.count()).select_from(m.Ticket).where(*visible_tickets(who))
                    assert len(ids) == await session.scalar(count)


@pytest.mark.parametrize(
    "request_",
    [
        tpb.ListTicketsRequest(page_token="garbage"),
        tpb.ListTicketsRequest(page_size=-1),
        tpb.ListTicketsRequest(statuses=[99]),  # type: ignore[list-item]
        tpb.ListTicketsRequest(priorities=[0]),  # type: ignore[list-item]
        tpb.ListTicketsRequest(order_by=42),  # type: ignore[arg-type]
        tpb.ListTicketsRequest(due_within_minutes=-5),
        tpb.ListTicketsRequest(kinds=[77], levels=[88]),  # type: ignore[list-item]
        tpb.ListTicketsRequest(statuses=[99], order_by=42, page_token="x"),  # type: ignore[list-item, arg-type]
        tpb.ListTicketsRequest(subject_contains="x" * 301),
        tpb.ListTicketsRequest(order_by=tpb.TICKET_ORDER_ID, page_token="o" + "e30"),
    ],
)
async def test_refusals_are_the_read_model_s(
    world: World, request_: tpb.ListTicketsRequest
) -> None:
    who = _staff(world)[0]
    token = current_principal.set(who)
    try:
        with pytest.raises(RpcError) as core:
            await world.servicer.ListTickets(request_, _Context())  # type: ignore[arg-type]
    finally:
        current_principal.reset(token)
    with pytest.raises(RpcError) as orm:
        await _orm_list(world.sessions, request_, who)
    assert (core.value.code, core.value.message) == (orm.value.code, orm.value.message)
    assert core.value.code is grpc.StatusCode.INVALID_ARGUMENT


async def test_a_token_of_another_order_is_refused(world: World) -> None:
    who = _staff(world)[0]
    first, _ = await _both(world, tpb.ListTicketsRequest(page_size=2), who)
    assert first.next_page_token
    moved = tpb.ListTicketsRequest(
        page_size=2, page_token=first.next_page_token, order_by=tpb.TICKET_ORDER_UPDATED
    )
    with pytest.raises(RpcError) as exc:
        await _both(world, moved, who)
    assert exc.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in exc.value.message
