"""Whose tickets a customer sees: one home for the rule, used by tickets and their quotes."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.access import Principal
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
