"""What ``SalesService`` keeps of a sales request and how it shows it: the checks of what a
request may write, who sees which request (in the query itself), the display number, the
conversation and the protobuf messages.

A customer sees only the requests they made (a REFERENT: their organisation's); any other
does not exist for them (``NOT_FOUND``). The desk, the sales office and the trusted admin
and services see every request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, false, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from helpdesk.v1 import sales_pb2 as spb
from services.common.access import Principal, Role
from services.common.rpc_errors import invalid, not_found, optional_text, precondition
from services.tickets import models as m
from services.tickets.convert import optional_name, required_name, ts, value_of

MAX_SUBJECT = 300
MAX_MESSAGE = 20_000
MAX_NOTE = 2_000
MAX_NAME = 200
MAX_COMPANY = 200
MAX_PHONE = 50
MAX_KEY = 150
MAX_DATES = 500
MAX_ATTACHMENT_NAMES = 50
# Who may own a request: the sales office, and the team leads and admins who stand in.
OWNER_ROLES = ("SALES", "TEAM_LEAD", "ADMIN")
NEW, CONTACTED, LOST = "NEW", "CONTACTED", "LOST"
# The author of a change made by the admin token or a service (no agent behind it).
DESK_NAME = "help desk"


def subject_of(value: str) -> str:
    """One line of at most ``MAX_SUBJECT`` characters, required."""
    text = value.strip()
    if not text:
        invalid("subject", "is required")
    if "\n" in text or "\r" in text:
        invalid("subject", "must be one line")
    if len(text) > MAX_SUBJECT:
        invalid("subject", f"is longer than {MAX_SUBJECT} characters")
    return text


def message_of(field: str, value: str, required: bool = False) -> str:
    """A text as written, without trailing blank space; at most ``MAX_MESSAGE``."""
    text = value.rstrip()
    if len(text) > MAX_MESSAGE:
        invalid(field, f"is longer than {MAX_MESSAGE} characters")
    if required and not text.strip():
        invalid(field, "is required")
    return text


def one_line(field: str, value: str, max_len: int) -> str:
    text = optional_text(field, value, max_len)
    if "\n" in text or "\r" in text:
        invalid(field, "must be one line")
    return text


def attachment_names_of(values: Iterable[str]) -> list[str]:
    names = [one_line("attachment_names", v, 255) for v in values]
    names = [n for n in names if n]
    if len(names) > MAX_ATTACHMENT_NAMES:
        invalid("attachment_names", f"at most {MAX_ATTACHMENT_NAMES}")
    return names


def kind_of(value: int, required: bool) -> str:
    if required:
        return required_name(spb.SalesRequestKind, value, "kind")
    return optional_name(spb.SalesRequestKind, value, "kind")


def status_of(value: int) -> str:
    return optional_name(spb.SalesRequestStatus, value, "status")


def source_of(value: int) -> str:
    return required_name(spb.SalesRequestSource, value, "source")


def visible(query: Select[Any], who: Principal) -> Select[Any]:
    """``query`` over sales requests narrowed to those ``who`` may see."""
    if who.role is Role.USER:
        return query.where(m.SalesRequest.contact_id == who.id, m.SalesRequest.contact_id > 0)
    if who.role is Role.REFERENT:
        if who.organization_id <= 0:
            return query.where(false())
        return query.where(m.SalesRequest.organization_id == who.organization_id)
    return query


# A request's number as people write it.
_NUMBER = re.compile(r"[Vv]-?(\d{1,12})")


async def visible_row(
    session: AsyncSession, request_id: str, who: Principal, for_update: bool = False
) -> m.SalesRequest:
    """The request (its ID, or its number for people: ``V-12``) as stored now, if ``who``
    may see it; ``NOT_FOUND`` otherwise."""
    number = _NUMBER.fullmatch(request_id.strip())
    key = (
        m.SalesRequest.number == int(number.group(1)) if number else m.SalesRequest.id == request_id
    )
    query = visible(select(m.SalesRequest).where(key), who)
    if for_update:
        query = query.with_for_update()
    row = await session.scalar(query.execution_options(populate_existing=True))
    if not isinstance(row, m.SalesRequest):
        not_found(f"sales request {request_id}")
    return row


# The PostgreSQL advisory locks that take turns for the next number: held to the commit.
NUMBER_LOCKS = {"sales_requests": 7_003_001, "price_lists": 7_003_002}


async def take_turn(session: AsyncSession, table: str) -> None:
    """Wait for the numbering of ``table`` (PostgreSQL: a transaction advisory lock held
    until the commit, so that two requests at once never compute the same number). SQLite
    needs none: the INSERT that computes the number takes its write lock itself."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": NUMBER_LOCKS[table]}
        )


def next_number() -> Any:
    """The next display number, computed by the INSERT itself (one statement: atomic)."""
    return select(func.coalesce(func.max(m.SalesRequest.number), 0) + 1).scalar_subquery()


async def owner_agent(session: AsyncSession, owner_id: int) -> m.Agent:
    """An agent who may own a request: ``NOT_FOUND`` when unknown, ``FAILED_PRECONDITION``
    naming the role when theirs may not."""
    if owner_id <= 0:
        invalid("owner_id", "must be a positive ID (or set unassign)")
    agent = await session.get(m.Agent, owner_id)
    if agent is None:
        not_found(f"agent {owner_id}")
    if agent.role not in OWNER_ROLES:
        precondition(
            f"agent {owner_id} is a {agent.role}: a sales request is owned by a "
            f"{', '.join(OWNER_ROLES[:-1])} or {OWNER_ROLES[-1]}"
        )
    return agent


async def sales_agents(session: AsyncSession) -> list[m.Agent]:
    """Every agent of the sales office, by name."""
    return list(
        await session.scalars(select(m.Agent).where(m.Agent.role == "SALES").order_by(m.Agent.id))
    )


async def agent_names(session: AsyncSession, ids: Iterable[int]) -> dict[int, m.Agent]:
    wanted = sorted({i for i in ids if i > 0})
    if not wanted:
        return {}
    rows = await session.scalars(select(m.Agent).where(m.Agent.id.in_(wanted)))
    return {a.id: a for a in rows}


async def organization_names(session: AsyncSession, ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted({i for i in ids if i > 0})
    if not wanted:
        return {}
    rows = await session.execute(
        select(m.Organization.id, m.Organization.name).where(m.Organization.id.in_(wanted))
    )
    return {int(i): str(n) for i, n in rows.all()}


def author_of(who: Principal) -> tuple[int, str]:
    """The agent ID and name a change is recorded under."""
    if who.kind == "AGENT":
        return who.id, who.name
    if who.kind == "CONTACT":
        return 0, who.name
    return 0, DESK_NAME


def message_pb(row: m.SalesMessage) -> spb.SalesMessage:
    return spb.SalesMessage(
        id=row.id,
        inbound=row.inbound,
        author_name=row.author_name,
        body=row.body,
        created_at=ts(row.created_at),
        attachment_names=list(row.attachment_names or []),
        kind=row.kind,
    )


def request_pb(
    row: m.SalesRequest,
    agents: dict[int, m.Agent],
    organizations: dict[int, str],
    messages: Sequence[m.SalesMessage] = (),
) -> spb.SalesRequest:
    owner = agents.get(row.owner_id)
    return spb.SalesRequest(
        id=row.id,
        sender=row.sender,
        sender_name=row.sender_name,
        subject=row.subject,
        body=row.body,
        locale=row.locale,
        received_at=ts(row.received_at),
        message_id=row.message_id,
        attachment_names=list(row.attachment_names or []),
        kind=value_of(spb.SalesRequestKind, row.kind),
        status=value_of(spb.SalesRequestStatus, row.status),
        source=value_of(spb.SalesRequestSource, row.source),
        owner_id=row.owner_id,
        owner_name=owner.name if owner is not None else "",
        organization_id=row.organization_id,
        organization_name=organizations.get(row.organization_id, ""),
        contact_id=row.contact_id,
        company=row.company,
        phone=row.phone,
        updated_at=ts(row.updated_at),
        messages=[message_pb(x) for x in messages],
        number=row.number,
    )


async def requests_pb(
    session: AsyncSession, rows: Sequence[m.SalesRequest]
) -> list[spb.SalesRequest]:
    agents = await agent_names(session, (r.owner_id for r in rows))
    orgs = await organization_names(session, (r.organization_id for r in rows))
    return [request_pb(r, agents, orgs) for r in rows]


async def conversation(session: AsyncSession, request_id: str) -> list[m.SalesMessage]:
    """Oldest first (ties in the order written)."""
    return list(
        await session.scalars(
            select(m.SalesMessage)
            .where(m.SalesMessage.sales_request_id == request_id)
            .order_by(m.SalesMessage.created_at, m.SalesMessage.id)
            .execution_options(populate_existing=True)
        )
    )


async def full_pb(session: AsyncSession, row: m.SalesRequest) -> spb.SalesRequest:
    """The request with its whole conversation."""
    agents = await agent_names(session, [row.owner_id])
    orgs = await organization_names(session, [row.organization_id])
    return request_pb(row, agents, orgs, await conversation(session, row.id))
