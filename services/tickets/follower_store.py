"""Followers (CC) in the read model: who follows a ticket, the ``Ticket.followers`` of a
page, and what a ticket event tells notify about the people around the ticket (followers,
the organisation's closed-ticket policy, where a merge went)."""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from helpdesk.v1 import common_pb2 as pb
from services.common.access import Principal
from services.common.messages.tickets import PersonPayload, TicketPayload
from services.tickets import models as m


def change_id(prefix: str, ticket_id: int, key: str) -> str:
    """The history event ID of a change made by key ``key`` (a random one without a key):
    a retry with the same key finds its event and changes nothing again."""
    if not key:
        return f"{prefix}-{ticket_id}-{uuid.uuid4().hex[:24]}"
    return f"{prefix}-{ticket_id}-{hashlib.sha256(key.encode()).hexdigest()[:24]}"


def audit_name(who: Principal) -> str:
    """Who made the call, for the history: role and principal, never a token."""
    if who.kind in ("ADMIN", "SERVICE"):
        return f"{who.role.value} {who.name or who.kind.lower()}"
    return f"{who.role.value} {who.kind}#{who.id}"


def history_actor(who: Principal) -> tuple[str, int]:
    """The history's actor of a change the caller makes itself."""
    return ("AGENT", who.id) if who.kind == "AGENT" else ("SYSTEM", 0)


async def followers_of(
    session: AsyncSession, ticket_ids: Sequence[int]
) -> dict[int, list[tuple[m.Follower, m.Contact]]]:
    """Each ticket's followers with their contact, in the order they were added."""
    found: dict[int, list[tuple[m.Follower, m.Contact]]] = defaultdict(list)
    if not ticket_ids:
        return found
    rows = await session.execute(
        select(m.Follower, m.Contact)
        .join(m.Contact, m.Contact.id == m.Follower.contact_id)
        .where(m.Follower.ticket_id.in_(list(ticket_ids)))
        .order_by(m.Follower.added_at, m.Follower.contact_id)
    )
    for follower, contact in rows:
        found[follower.ticket_id].append((follower, contact))
    return found


async def with_followers(session: AsyncSession, tickets: list[pb.Ticket]) -> list[pb.Ticket]:
    """``tickets`` with their ``followers`` filled in (one query for the page)."""
    by_ticket = await followers_of(session, [t.id for t in tickets])
    for t in tickets:
        for follower, contact in by_ticket.get(t.id, []):
            item = t.followers.add(
                contact_id=contact.id,
                name=contact.name,
                email=contact.email,
                source=follower.source,
            )
            item.added_at.FromDatetime(follower.added_at)
    return tickets


async def follow(session: AsyncSession, ticket: m.Ticket, contact: m.Contact, source: str) -> bool:
    """Make ``contact`` follow ``ticket`` (not committed); False when nothing changes: the
    requester, or someone already following. The caller checks the organisation."""
    if contact.id == ticket.requester_id:
        return False
    if await session.get(m.Follower, (ticket.id, contact.id)) is not None:
        return False
    session.add(
        m.Follower(
            ticket_id=ticket.id,
            contact_id=contact.id,
            source=source,
            added_at=datetime.now(UTC),
        )
    )
    return True


def follower_event(
    event_id: str,
    ticket: m.Ticket,
    event_type: str,
    contact: m.Contact,
    actor: tuple[str, int],
    performed_by: str,
) -> m.TicketEvent:
    """The history line of a follower added or removed (seen by customers too)."""
    what = "follows the ticket" if event_type == "follower_added" else "no longer follows it"
    return m.TicketEvent(
        id=event_id,
        ticket_id=ticket.id,
        seq=ticket.event_seq,
        type=event_type,
        actor_kind=actor[0],
        actor_id=actor[1],
        from_status=ticket.status,
        to_status=ticket.status,
        detail=f"{contact.name} <{contact.email}> {what}",
        internal=False,
        performed_by=performed_by[:120],
        occurred_at=datetime.now(UTC),
    )


async def carry_followers(
    session: AsyncSession, source: m.Ticket, target: m.Ticket, performed_by: str
) -> int:
    """After a merge: the source's requester and followers follow the target (its own
    requester excepted); committed. Returns how many were added."""
    followers = await session.scalars(
        select(m.Follower.contact_id).where(m.Follower.ticket_id == source.id)
    )
    people = [source.requester_id, *followers]
    added = 0
    for contact_id in dict.fromkeys(people):
        contact = await session.get(m.Contact, contact_id)
        if contact is None or contact.organization_id != target.organization_id:
            continue
        event_id = f"follower-merge-{source.id}-{target.id}-{contact.id}"
        # A retried merge adds nobody again (not even someone removed since).
        if await session.get(m.TicketEvent, event_id) is not None:
            continue
        if await follow(session, target, contact, "MERGE"):
            added += 1
            session.add(
                follower_event(
                    event_id,
                    target,
                    "follower_added",
                    contact,
                    ("SYSTEM", 0),
                    performed_by,
                )
            )
    if added and not await commit_once(session):
        return 0
    return added


async def commit_once(session: AsyncSession) -> bool:
    """Commit; False (rolled back) when a concurrent call wrote the same rows first: the
    change it made is the one asked for, so there is nothing left to do."""
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return False
    return True


async def add_people(session: AsyncSession, row: m.Ticket, ticket: TicketPayload) -> None:
    """What a ticket event carries for notify about the people around the ticket."""
    org = await session.get(m.Organization, row.organization_id)
    ticket["closed_ticket_policy"] = org.closed_ticket_policy if org else "FOLLOW_UP"
    ticket["merged_into"] = row.merged_into or 0
    ticket["followers"] = [
        PersonPayload(id=c.id, name=c.name, email=c.email, locale=c.locale)
        for _, c in (await followers_of(session, [row.id])).get(row.id, [])
    ]
