"""The ``DirectoryService`` RPCs of business calendars, SLA plans and the organisations'
contracts. Mixed into ``DirectoryServicer``.

Calendars and plans are validated by building them (``workflows.domain.business_time``
names the bad field) and are immutable once stored; ``SetContract`` replaces an
organisation's contract. What a ticket is then timed by is ``sla_terms.sla_terms_for``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from services.common.access import principal
from services.common.rpc_errors import (
    Context,
    already_exists,
    invalid,
    not_found,
    optional_text,
    require_id,
    require_text,
    rpc_method,
)
from services.tickets import models as m
from services.tickets import paging
from services.tickets import sla_terms as st
from services.tickets.convert import optional_name, ts, value_of
from workflows.domain.business_time import Calendar

MAX_NAME = 200
MAX_INTERVALS = 100
MAX_CLOSED_DATES = 2000
# Half a million business minutes is years of office hours: beyond it is a typo.
MAX_TARGET_MINUTES = 500_000
MAX_PENDING_DAYS = 365
DEFAULT_TIME_ZONE = "Europe/Rome"
DEFAULT_COUNTRY = "IT"

# Calendar field (as business_time names it) -> request field.
_FIELD = {"timezone": "time_zone"}


def _checked_calendar(
    intervals: list[tuple[int, str, str]], time_zone: str, country: str, closed: list[str]
) -> Calendar:
    """Build it; ``INVALID_ARGUMENT`` naming the request field when it does not build."""
    try:
        return Calendar(
            intervals=tuple(intervals),
            timezone=time_zone,
            country=country,
            closed_dates=tuple(closed),
        )
    except ValueError as exc:
        text = str(exc).removeprefix("Calendar.")
        field, sep, why = text.partition(": ")
        if not sep:
            invalid("calendar", text)
        head, dot, rest = field.partition(".")
        base, bracket, index = head.partition("[")
        invalid(_FIELD.get(base, base) + bracket + index + dot + rest, why)


def calendar_pb(row: m.BusinessCalendar | None) -> dpb.Calendar:
    """A stored calendar, or the default one (id 0) for None."""
    if row is None:
        cal = st.DEFAULT_CALENDAR
        return dpb.Calendar(
            id=0,
            name=st.DEFAULT_CALENDAR_NAME,
            time_zone=cal.timezone,
            intervals=[dpb.OpeningInterval(weekday=w, start=s, end=e) for w, s, e in cal.intervals],
            country=cal.country,
            closed_dates=list(cal.closed_dates),
        )
    return dpb.Calendar(
        id=row.id,
        name=row.name,
        time_zone=row.time_zone,
        intervals=[
            dpb.OpeningInterval(weekday=int(w), start=str(s), end=str(e))
            for w, s, e in row.intervals
        ],
        country=row.country,
        closed_dates=list(row.closed_dates),
    )


def _targets_pb(targets: dict[str, dict[str, int]]) -> list[dpb.PriorityTargets]:
    return [
        dpb.PriorityTargets(priority=value_of(pb.Priority, p), **targets[p])
        for p in st.PRIORITIES
        if p in targets
    ]


def sla_plan_pb(row: m.SlaPlan | None) -> dpb.SlaPlan:
    """A stored plan, or the default one (id 0) for None."""
    if row is None:
        targets = {
            p: {k: getattr(t, k) for k in st.MILESTONES} for p, t in st.DEFAULT_TARGETS.items()
        }
        return dpb.SlaPlan(id=0, name=st.DEFAULT_PLAN_NAME, targets=_targets_pb(targets))
    return dpb.SlaPlan(id=row.id, name=row.name, targets=_targets_pb(row.targets))


def _checked_targets(request: dpb.CreateSlaPlanRequest) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {}
    for i, item in enumerate(request.targets):
        field = f"targets[{i}]"
        try:
            priority = pb.Priority.Name(item.priority).removeprefix("PRIORITY_")
        except ValueError:
            invalid(f"{field}.priority", f"unknown value {item.priority}")
        if priority == "UNSPECIFIED":
            invalid(f"{field}.priority", "is required")
        if priority in found:
            invalid(f"{field}.priority", f"{priority} is given twice")
        values = {k: int(getattr(item, k)) for k in st.MILESTONES}
        for k, v in values.items():
            if v <= 0:
                invalid(f"{field}.{k}", f"must be positive, got {v}")
            if v > MAX_TARGET_MINUTES:
                invalid(f"{field}.{k}", f"must be at most {MAX_TARGET_MINUTES} business minutes")
        if values["taken_in_charge_minutes"] > values["resolution_minutes"]:
            invalid(
                f"{field}.taken_in_charge_minutes",
                f"{values['taken_in_charge_minutes']} is later than resolution_minutes "
                f"{values['resolution_minutes']}",
            )
        found[priority] = values
    missing = [p for p in st.PRIORITIES if p not in found]
    if missing:
        invalid("targets", f"no targets for {', '.join(missing)}")
    return found


def _pending_days(field: str, value: int) -> int:
    if not 0 <= value <= MAX_PENDING_DAYS:
        invalid(field, f"must be between 0 (off) and {MAX_PENDING_DAYS} business days")
    return value


class ContractRpcs:
    """CreateCalendar, ListCalendars, CreateSlaPlan, ListSlaPlans, SetContract, GetContract."""

    sessions: async_sessionmaker[AsyncSession]

    @rpc_method
    async def CreateCalendar(
        self, request: dpb.CreateCalendarRequest, context: Context
    ) -> dpb.Calendar:
        name = require_text("name", request.name, MAX_NAME)
        time_zone = optional_text("time_zone", request.time_zone, 64) or DEFAULT_TIME_ZONE
        country = (
            optional_text("country", request.country, 8).upper()
            if request.HasField("country")
            else DEFAULT_COUNTRY
        )
        preset = request.preset.strip().upper()
        if preset:
            if preset not in st.PRESETS:
                invalid("preset", f"must be one of {', '.join(st.PRESETS)}, got {request.preset!r}")
            if request.intervals:
                invalid("intervals", "give either a preset or intervals, not both")
            intervals = list(st.PRESETS[preset].intervals)
        else:
            if not request.intervals:
                invalid("intervals", "no opening intervals (or give a preset)")
            if len(request.intervals) > MAX_INTERVALS:
                invalid("intervals", f"at most {MAX_INTERVALS}")
            intervals = [(i.weekday, i.start.strip(), i.end.strip()) for i in request.intervals]
        if len(request.closed_dates) > MAX_CLOSED_DATES:
            invalid("closed_dates", f"at most {MAX_CLOSED_DATES}")
        closed: set[str] = set()
        for i, text in enumerate(request.closed_dates):
            try:
                closed.add(date.fromisoformat(text.strip()).isoformat())
            except ValueError:
                invalid(f"closed_dates[{i}]", f"not a date YYYY-MM-DD: {text!r}")
        cal = _checked_calendar(intervals, time_zone, country, sorted(closed))
        async with self.sessions() as session:
            if await _named(session, m.BusinessCalendar, name) is not None:
                already_exists(f"a calendar named {name!r} already exists")
            row = m.BusinessCalendar(
                name=name,
                name_key=name.casefold(),
                time_zone=cal.timezone,
                intervals=[list(x) for x in sorted(cal.intervals)],
                country=cal.country,
                closed_dates=list(cal.closed_dates),
                created_at=datetime.now(UTC),
            )
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:
                already_exists(f"a calendar named {name!r} already exists")
            return calendar_pb(row)

    @rpc_method
    async def ListCalendars(
        self, request: dpb.ListCalendarsRequest, context: Context
    ) -> dpb.ListCalendarsResponse:
        async with self.sessions() as session:
            rows, token = await paging.fetch_page(
                session,
                select(m.BusinessCalendar),
                m.BusinessCalendar.id,
                request.page_size,
                request.page_token,
            )
        return dpb.ListCalendarsResponse(
            calendars=[calendar_pb(r) for r in rows], next_page_token=token
        )

    @rpc_method
    async def CreateSlaPlan(
        self, request: dpb.CreateSlaPlanRequest, context: Context
    ) -> dpb.SlaPlan:
        name = require_text("name", request.name, MAX_NAME)
        targets = _checked_targets(request)
        async with self.sessions() as session:
            if await _named(session, m.SlaPlan, name) is not None:
                already_exists(f"an SLA plan named {name!r} already exists")
            row = m.SlaPlan(
                name=name, name_key=name.casefold(), targets=targets, created_at=datetime.now(UTC)
            )
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:
                already_exists(f"an SLA plan named {name!r} already exists")
            return sla_plan_pb(row)

    @rpc_method
    async def ListSlaPlans(
        self, request: dpb.ListSlaPlansRequest, context: Context
    ) -> dpb.ListSlaPlansResponse:
        async with self.sessions() as session:
            rows, token = await paging.fetch_page(
                session, select(m.SlaPlan), m.SlaPlan.id, request.page_size, request.page_token
            )
        return dpb.ListSlaPlansResponse(
            sla_plans=[sla_plan_pb(r) for r in rows], next_page_token=token
        )

    @rpc_method
    async def SetContract(self, request: dpb.SetContractRequest, context: Context) -> dpb.Contract:
        org_id = require_id("organization_id", request.organization_id)
        if request.calendar_id < 0:
            invalid("calendar_id", "must be an ID, or 0 for the default calendar")
        if request.sla_plan_id < 0:
            invalid("sla_plan_id", "must be an ID, or 0 for the default plan")
        policy = optional_name(
            pb.ClosedTicketPolicy, request.closed_ticket_policy, "closed_ticket_policy"
        )
        reminder = _pending_days(
            "pending_reminder_business_days", request.pending_reminder_business_days
        )
        auto_solve = _pending_days(
            "pending_auto_solve_business_days", request.pending_auto_solve_business_days
        )
        for attempt in (1, 2):  # a concurrent first SetContract of the same organisation
            async with self.sessions() as session:
                org = await session.get(m.Organization, org_id)
                if org is None:
                    not_found(f"organization {org_id}")
                cal = plan = None
                if request.calendar_id:
                    cal = await session.get(m.BusinessCalendar, request.calendar_id)
                    if cal is None:
                        not_found(f"calendar {request.calendar_id}")
                if request.sla_plan_id:
                    plan = await session.get(m.SlaPlan, request.sla_plan_id)
                    if plan is None:
                        not_found(f"SLA plan {request.sla_plan_id}")
                contract = await _contract(session, org_id)
                if contract is None:
                    contract = m.SupportContract(organization_id=org_id)
                    session.add(contract)
                contract.calendar_id = cal.id if cal else None
                contract.sla_plan_id = plan.id if plan else None
                contract.pending_reminder_business_days = reminder
                contract.pending_auto_solve_business_days = auto_solve
                contract.updated_at = datetime.now(UTC)
                if policy:
                    org.closed_ticket_policy = policy
                try:
                    await session.commit()
                except IntegrityError:
                    if attempt == 2:
                        raise
                    continue
                return _contract_pb(org, contract, cal, plan)
        raise AssertionError("unreachable")

    @rpc_method
    async def GetContract(self, request: dpb.GetContractRequest, context: Context) -> dpb.Contract:
        org_id = require_id("organization_id", request.organization_id)
        who = principal()
        if who.is_customer and who.organization_id != org_id:
            not_found(f"organization {org_id}")  # others do not exist for a customer
        async with self.sessions() as session:
            org = await session.get(m.Organization, org_id)
            if org is None:
                not_found(f"organization {org_id}")
            contract = await _contract(session, org_id)
            cal = plan = None
            if contract is not None:
                if contract.calendar_id:
                    cal = await session.get(m.BusinessCalendar, contract.calendar_id)
                if contract.sla_plan_id:
                    plan = await session.get(m.SlaPlan, contract.sla_plan_id)
            return _contract_pb(org, contract, cal, plan)


async def _named(
    session: AsyncSession, table: type[m.BusinessCalendar] | type[m.SlaPlan], name: str
) -> object | None:
    return (
        await session.scalars(select(table.id).where(table.name_key == name.casefold()))
    ).first()


async def _contract(session: AsyncSession, org_id: int) -> m.SupportContract | None:
    return (
        await session.scalars(
            select(m.SupportContract).where(m.SupportContract.organization_id == org_id)
        )
    ).first()


def _contract_pb(
    org: m.Organization,
    contract: m.SupportContract | None,
    cal: m.BusinessCalendar | None,
    plan: m.SlaPlan | None,
) -> dpb.Contract:
    policy = value_of(pb.ClosedTicketPolicy, org.closed_ticket_policy)
    if contract is None:
        return dpb.Contract(
            organization_id=org.id,
            calendar=calendar_pb(None),
            sla_plan=sla_plan_pb(None),
            closed_ticket_policy=policy,
            pending_reminder_business_days=st.DEFAULT_PENDING_REMINDER_BUSINESS_DAYS,
            pending_auto_solve_business_days=st.DEFAULT_PENDING_AUTO_SOLVE_BUSINESS_DAYS,
            is_default=True,
        )
    return dpb.Contract(
        organization_id=org.id,
        calendar=calendar_pb(cal),
        sla_plan=sla_plan_pb(plan),
        closed_ticket_policy=policy,
        pending_reminder_business_days=contract.pending_reminder_business_days,
        pending_auto_solve_business_days=contract.pending_auto_solve_business_days,
        is_default=False,
        updated_at=ts(contract.updated_at),
    )
