"""What a new ticket is timed by: its organisation's contract (calendar, SLA plan, pending
policy) or the default one, as the ``SlaTerms`` the ticket workflow starts with.

The default contract is seed 000's office hours with Italian holidays and the targets
below (business minutes; seed 001 asks "immediate" for the critical tier, seed 002 names
the milestones). Calendars and plans are immutable once stored and the contract is read
on every call (one indexed query), so nothing here can go stale after ``SetContract``;
the compiled calendars (holidays, opening spans) are cached by their content in
``workflows.domain.business_time``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.tickets import models as m
from workflows.contracts import MilestoneTargets, SlaTerms
from workflows.domain.business_time import SEED_000, SEED_004, Calendar

log = logging.getLogger("helpdesk.sla_terms")

PRIORITIES = ("URGENT", "HIGH", "NORMAL", "LOW")
MILESTONES = ("taken_in_charge_minutes", "first_feedback_minutes", "resolution_minutes")

# Seed 000: Monday to Friday 08:30-13:00 and 14:30-18:30, Europe/Rome, Italian holidays.
DEFAULT_CALENDAR: Calendar = SEED_000
DEFAULT_CALENDAR_NAME = "default (SEED_000)"
DEFAULT_PLAN_NAME = "default"
PRESETS: Mapping[str, Calendar] = {"SEED_000": SEED_000, "SEED_004": SEED_004}

# Business minutes: taken in charge / first feedback / resolution.
DEFAULT_TARGETS: Mapping[str, MilestoneTargets] = {
    "URGENT": MilestoneTargets(15, 60, 480),
    "HIGH": MilestoneTargets(60, 240, 960),
    "NORMAL": MilestoneTargets(240, 480, 2400),
    "LOW": MilestoneTargets(480, 1440, 4800),
}

# Without a contract: remind a customer after 3 business days of PENDING, never auto-solve.
DEFAULT_PENDING_REMINDER_BUSINESS_DAYS = 3
DEFAULT_PENDING_AUTO_SOLVE_BUSINESS_DAYS = 0


def default_targets() -> dict[str, MilestoneTargets]:
    """A fresh copy (the dataclasses are mutable)."""
    return {
        p: MilestoneTargets(
            t.taken_in_charge_minutes, t.first_feedback_minutes, t.resolution_minutes
        )
        for p, t in DEFAULT_TARGETS.items()
    }


def default_terms() -> SlaTerms:
    return SlaTerms(
        calendar=DEFAULT_CALENDAR,
        targets=default_targets(),
        calendar_name=DEFAULT_CALENDAR_NAME,
        plan_name=DEFAULT_PLAN_NAME,
        pending_reminder_business_days=DEFAULT_PENDING_REMINDER_BUSINESS_DAYS,
        pending_auto_solve_business_days=DEFAULT_PENDING_AUTO_SOLVE_BUSINESS_DAYS,
    )


def calendar_of(row: m.BusinessCalendar) -> Calendar:
    """The stored calendar as business-time data (``ValueError`` if it no longer builds)."""
    return Calendar(
        intervals=tuple((int(w), str(s), str(e)) for w, s, e in row.intervals),
        timezone=row.time_zone,
        country=row.country,
        closed_dates=tuple(row.closed_dates),
    )


def targets_of(row: m.SlaPlan) -> dict[str, MilestoneTargets]:
    return {
        p: MilestoneTargets(**{k: int(row.targets[p][k]) for k in MILESTONES}) for p in PRIORITIES
    }


async def sla_terms_for(session: AsyncSession, organization_id: int) -> SlaTerms:
    """The terms of ``organization_id``'s contract, or the default ones when it has none.

    A contract's missing calendar or plan (NULL) is the default one. A stored calendar
    that no longer builds (e.g. a time zone gone from the system) falls back to the
    default calendar, logged: a ticket is never refused for it.
    """
    cal = aliased(m.BusinessCalendar)
    plan = aliased(m.SlaPlan)
    found = (
        await session.execute(
            select(m.SupportContract, cal, plan)
            .outerjoin(cal, cal.id == m.SupportContract.calendar_id)
            .outerjoin(plan, plan.id == m.SupportContract.sla_plan_id)
            .where(m.SupportContract.organization_id == organization_id)
        )
    ).first()
    if found is None:
        return default_terms()
    contract, cal_row, plan_row = found
    terms = default_terms()
    terms.pending_reminder_business_days = contract.pending_reminder_business_days
    terms.pending_auto_solve_business_days = contract.pending_auto_solve_business_days
    if cal_row is not None:
        try:
            terms.calendar = calendar_of(cal_row)
            terms.calendar_name = cal_row.name
        except ValueError:
            log.exception(
                "calendar %s of organization %s does not build; using the default",
                cal_row.id,
                organization_id,
            )
    if plan_row is not None:
        terms.targets = targets_of(plan_row)
        terms.plan_name = plan_row.name
    return terms
