"""Whose tickets a customer sees: one home for the rule, used by tickets and their quotes.

The rule is here twice, in the two forms its callers need: ``visible_requesters`` reads the
set for a ticket already loaded, ``visible_tickets`` states it as conditions of a query over
tickets (no statement of its own: a list page stays one SELECT)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.common.access import Principal, Role
from services.tickets import models as m


async def visible_requesters(session: AsyncSession, who: Principal) -> set[int]:
    """The requesters whose tickets a USER sees: themselves, and their department's
    colleagues when the organisation shares tickets within departments (seed 001)."""
    me = await session.get(m.Contact, who.id)
    org = await session.get(m.Organization, who.organization_id)
    if me is None or org is None or not org.department_sees_tickets or not me.department:
        return {who.id}
    peers = await session.scalars(
        select(m.Contact.id).where(
            m.Contact.organization_id == org.id, m.Contact.department == me.department
        )
    )
    return {who.id, *peers}


def visible_tickets(who: Principal) -> list[ColumnElement[bool]]:
    """The conditions on ``tickets`` that keep the tickets ``who`` may see: a customer's
    organisation's, and for a USER those of ``visible_requesters``; none for staff."""
    if not who.is_customer:
        return []
    in_org = m.Ticket.organization_id == who.organization_id
    if who.role is not Role.USER:
        return [in_org]
    # Aliases, and no correlation: the query these conditions go into may join contacts
    # and organisations itself (requester, organisation name, requester_email).
    me, peer, org = aliased(m.Contact), aliased(m.Contact), aliased(m.Organization)
    peers = (
        select(peer.id)
        .where(
            me.id == who.id,
            org.id == who.organization_id,
            org.department_sees_tickets.is_(True),
            me.department != "",
            peer.organization_id == org.id,
            peer.department == me.department,
        )
        .correlate(None)
    )
    return [in_org, or_(m.Ticket.requester_id == who.id, m.Ticket.requester_id.in_(peers))]
