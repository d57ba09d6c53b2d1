"""Business calendars, SLA plans and contracts over a real in-process DirectoryService (issue
5, item 1), and the terms a new ticket is timed by (``sla_terms_for``). No Temporal needed:
the store and the gRPC server only. Bad input names the field and stores nothing."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import grpc
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import directory_pb2_grpc as dgrpc
from services.common import db
from services.common.access import Principal, Role
from services.common.auth import bearer_metadata
from services.common.grpc_server import ServiceServer
from services.common.settings import Settings, async_database_url
from services.common.tokens import TokenSigner
from services.tickets import models as m
from services.tickets.app import MIGRATIONS, VERSION_TABLE
from services.tickets.credentials import Credentials
from services.tickets.directory import DirectoryServicer
from services.tickets.sla_terms import DEFAULT_CALENDAR, DEFAULT_TARGETS, sla_terms_for
from tests.support import SIGNING_KEY
from workflows.contracts import MilestoneTargets
from workflows.domain.business_time import SEED_000, SEED_004, add_business, is_open

pytestmark = [pytest.mark.db]

TOKEN = "test-admin-token"
MD = bearer_metadata(TOKEN)
ROME = ZoneInfo("Europe/Rome")
SIGNER = TokenSigner(SIGNING_KEY)


@dataclass
class Api:
    directory: dgrpc.DirectoryServiceStub
    sessions: async_sessionmaker[AsyncSession]
    org_id: int
    other_org_id: int


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    settings = dataclasses.replace(
        Settings.from_env(),
        admin_token=TOKEN,
        service_token="test-service-token",
        signing_key=SIGNING_KEY,
    )
    url = async_database_url(database_url)
    await db.upgrade(MIGRATIONS, url, VERSION_TABLE)
    engine = db.make_engine(url)
    sessions = db.make_sessionmaker(engine)
    async with sessions() as session:
        orgs = [
            m.Organization(
                name=name,
                name_key=name.casefold(),
                email_domains=[],
                closed_ticket_policy="FOLLOW_UP",
                locale="it",
                created_at=datetime.now(UTC),
            )
            for name in ("Visual Srl", "Oripan Spa")
        ]
        session.add_all(orgs)
        await session.commit()
        org_ids = [o.id for o in orgs]
    credentials = Credentials(sessions, TokenSigner(SIGNING_KEY), None)

    def register(server: grpc.aio.Server) -> None:
        dgrpc.add_DirectoryServiceServicer_to_server(
            DirectoryServicer(sessions, credentials), server
        )

    server = ServiceServer(settings, "127.0.0.1:0", ["helpdesk.v1.DirectoryService"], register)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield Api(
            dgrpc.DirectoryServiceStub(channel),  # type: ignore[arg-type]
            sessions,
            *org_ids,
        )
    finally:
        await channel.close(None)
        await server.stop(1)
        await engine.dispose()


async def _code(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    return err.value.code(), err.value.details() or ""


def _targets(**overrides: tuple[int, int, int]) -> list[dpb.PriorityTargets]:
    base = {"URGENT": (30, 60, 480), "HIGH": (60, 240, 960), "NORMAL": (120, 240, 2400)}
    base |= {"LOW": (480, 1440, 4800)}
    base |= overrides
    return [
        dpb.PriorityTargets(
            priority=pb.Priority.Value(f"PRIORITY_{p}"),
            taken_in_charge_minutes=a,
            first_feedback_minutes=b,
            resolution_minutes=c,
        )
        for p, (a, b, c) in base.items()
    ]


def _weekdays(*hours: tuple[str, str]) -> list[dpb.OpeningInterval]:
    return [dpb.OpeningInterval(weekday=d, start=s, end=e) for d in range(5) for s, e in hours]


async def _count(api: Api) -> tuple[int, int, int]:
    async with api.sessions() as session:
        return (
            await session.scalar(select(func.count()).select_from(m.BusinessCalendar)) or 0,
            await session.scalar(select(func.count()).select_from(m.SlaPlan)) or 0,
            await session.scalar(select(func.count()).select_from(m.SupportContract)) or 0,
        )


async def test_seed_calendars_a_plan_and_a_contract(api: Api) -> None:
    d = api.directory
    seed0 = await d.CreateCalendar(
        dpb.CreateCalendarRequest(name="Visual", preset="SEED_000"), metadata=MD
    )
    assert seed0.id > 0 and seed0.time_zone == "Europe/Rome" and seed0.country == "IT"
    assert [(i.weekday, i.start, i.end) for i in seed0.intervals] == sorted(SEED_000.intervals)
    seed4 = await d.CreateCalendar(
        dpb.CreateCalendarRequest(name="Oripan", preset="seed_004", closed_dates=["2026-12-07"]),
        metadata=MD,
    )
    assert [(i.weekday, i.start, i.end) for i in seed4.intervals] == sorted(SEED_004.intervals)
    assert list(seed4.closed_dates) == ["2026-12-07"]
    # A custom one, with a bridge day (Monday 7 December 2026, before the 8th) and no holidays.
    custom = await d.CreateCalendar(
        dpb.CreateCalendarRequest(
            name="Sede di Milano",
            time_zone="Europe/Rome",
            intervals=[
                *_weekdays(("09:00", "13:00"), ("14:00", "18:00")),
                dpb.OpeningInterval(weekday=5, start="09:00", end="12:00"),
            ],
            country="",
            closed_dates=["2026-12-07", "2026-08-14", "2026-12-07"],
        ),
        metadata=MD,
    )
    assert custom.country == "" and list(custom.closed_dates) == ["2026-08-14", "2026-12-07"]
    listed = await d.ListCalendars(dpb.ListCalendarsRequest(), metadata=MD)
    assert [c.name for c in listed.calendars] == ["Visual", "Oripan", "Sede di Milano"]

    plan = await d.CreateSlaPlan(
        dpb.CreateSlaPlanRequest(name="Standard", targets=list(reversed(_targets()))),
        metadata=MD,
    )
    assert [pb.Priority.Name(t.priority) for t in plan.targets] == [
        "PRIORITY_URGENT",
        "PRIORITY_HIGH",
        "PRIORITY_NORMAL",
        "PRIORITY_LOW",
    ]
    plans = await d.ListSlaPlans(dpb.ListSlaPlansRequest(), metadata=MD)
    assert [p.name for p in plans.sla_plans] == ["Standard"]

    # No contract yet: the default one, flagged.
    default = await d.GetContract(dpb.GetContractRequest(organization_id=api.org_id), metadata=MD)
    assert default.is_default and default.calendar.id == 0 and default.sla_plan.id == 0
    assert default.closed_ticket_policy == pb.CLOSED_TICKET_POLICY_FOLLOW_UP
    assert len(default.calendar.intervals) == 10 and len(default.sla_plan.targets) == 4

    contract = await d.SetContract(
        dpb.SetContractRequest(
            organization_id=api.org_id,
            calendar_id=seed0.id,
            sla_plan_id=plan.id,
            pending_reminder_business_days=2,
            pending_auto_solve_business_days=5,
        ),
        metadata=MD,
    )
    assert not contract.is_default and contract.calendar == seed0 and contract.sla_plan == plan
    assert contract.HasField("updated_at")
    got = await d.GetContract(dpb.GetContractRequest(organization_id=api.org_id), metadata=MD)
    assert got == contract
    # Unspecified policy kept the organisation's; a set one changes it.
    assert got.closed_ticket_policy == pb.CLOSED_TICKET_POLICY_FOLLOW_UP
    changed = await d.SetContract(
        dpb.SetContractRequest(
            organization_id=api.other_org_id,
            calendar_id=seed4.id,
            closed_ticket_policy=pb.CLOSED_TICKET_POLICY_REOPEN,
        ),
        metadata=MD,
    )
    assert changed.closed_ticket_policy == pb.CLOSED_TICKET_POLICY_REOPEN
    assert changed.sla_plan.id == 0  # the default plan
    org = await d.GetOrganization(dpb.GetOrganizationRequest(id=api.other_org_id), metadata=MD)
    assert org.closed_ticket_policy == pb.CLOSED_TICKET_POLICY_REOPEN

    # The terms a ticket of each organisation is timed by.
    async with api.sessions() as session:
        terms = await sla_terms_for(session, api.org_id)
        other = await sla_terms_for(session, api.other_org_id)
    assert terms.calendar == SEED_000 and terms.calendar_name == "Visual"
    assert terms.plan_name == "Standard"
    assert terms.targets["NORMAL"] == MilestoneTargets(120, 240, 2400)
    assert set(terms.targets) == {"URGENT", "HIGH", "NORMAL", "LOW"}
    assert (terms.pending_reminder_business_days, terms.pending_auto_solve_business_days) == (
        2,
        5,
    )
    assert other.calendar.closed_dates == ("2026-12-07",)
    assert other.targets == dict(DEFAULT_TARGETS)
    assert other.pending_reminder_business_days == 0  # set to 0 = off

    # The worked example: Friday 17:55 + 4 business hours = Monday 11:55 (35 min on
    # Friday, 3 h 25 min on Monday).
    friday = datetime(2026, 11, 20, 17, 55, tzinfo=ROME)
    due = add_business(terms.calendar, friday, timedelta(hours=4))
    assert due.astimezone(ROME) == datetime(2026, 11, 23, 11, 55, tzinfo=ROME)
    # The seed 004 calendar with the bridge day: Friday 4 December 16:00 + 2 h skips the
    # 7th (bridge) and the 8th (Immacolata): Wednesday 9 December 08:30.
    due = add_business(
        other.calendar, datetime(2026, 12, 4, 16, 0, tzinfo=ROME), timedelta(hours=2)
    )
    assert due.astimezone(ROME) == datetime(2026, 12, 9, 8, 30, tzinfo=ROME)
    # The custom calendar opens on Saturday morning and keeps no national holidays.
    async with api.sessions() as session:
        await _set(session, api.other_org_id, custom.id)
        milano = await sla_terms_for(session, api.other_org_id)
    assert is_open(milano.calendar, datetime(2026, 11, 21, 10, 0, tzinfo=ROME))
    assert is_open(milano.calendar, datetime(2026, 12, 8, 10, 0, tzinfo=ROME))  # no holidays
    assert not is_open(milano.calendar, datetime(2026, 12, 7, 10, 0, tzinfo=ROME))  # bridge


async def _set(session: AsyncSession, org_id: int, calendar_id: int) -> None:
    row = (
        await session.scalars(
            select(m.SupportContract).where(m.SupportContract.organization_id == org_id)
        )
    ).one()
    row.calendar_id = calendar_id
    await session.commit()


async def test_sla_terms_follow_set_contract_at_once(api: Api) -> None:
    """No stale terms after SetContract in the same process."""
    async with api.sessions() as session:
        first = await sla_terms_for(session, api.org_id)
    assert first.calendar == DEFAULT_CALENDAR and first.targets == dict(DEFAULT_TARGETS)
    assert first.pending_reminder_business_days == 3
    plan = await api.directory.CreateSlaPlan(
        dpb.CreateSlaPlanRequest(name="Gold", targets=_targets(URGENT=(5, 15, 120))),
        metadata=MD,
    )
    seed4 = await api.directory.CreateCalendar(
        dpb.CreateCalendarRequest(name="Oripan", preset="SEED_004"), metadata=MD
    )
    await api.directory.SetContract(
        dpb.SetContractRequest(
            organization_id=api.org_id, calendar_id=seed4.id, sla_plan_id=plan.id
        ),
        metadata=MD,
    )
    async with api.sessions() as session:
        second = await sla_terms_for(session, api.org_id)
        untouched = await sla_terms_for(session, api.other_org_id)
    assert second.calendar == SEED_004 and second.targets["URGENT"] == MilestoneTargets(5, 15, 120)
    assert second.pending_reminder_business_days == 0
    assert untouched.calendar == DEFAULT_CALENDAR
    await api.directory.SetContract(
        dpb.SetContractRequest(organization_id=api.org_id, pending_reminder_business_days=1),
        metadata=MD,
    )
    async with api.sessions() as session:
        third = await sla_terms_for(session, api.org_id)
    assert third.calendar == DEFAULT_CALENDAR and third.targets == dict(DEFAULT_TARGETS)
    assert third.pending_reminder_business_days == 1


async def test_bad_input_names_the_field_and_stores_nothing(api: Api) -> None:
    d = api.directory
    before = await _count(api)
    calendars = [
        (dpb.CreateCalendarRequest(name=" ", preset="SEED_000"), "name"),
        (dpb.CreateCalendarRequest(name="X"), "intervals"),
        (
            dpb.CreateCalendarRequest(
                name="X",
                intervals=[
                    dpb.OpeningInterval(weekday=0, start="08:00", end="12:00"),
                    dpb.OpeningInterval(weekday=0, start="11:00", end="13:00"),
                ],
            ),
            "intervals",
        ),
        (
            dpb.CreateCalendarRequest(
                name="X", intervals=[dpb.OpeningInterval(weekday=0, start="12:00", end="12:00")]
            ),
            "intervals[0]",
        ),
        (
            dpb.CreateCalendarRequest(
                name="X", intervals=[dpb.OpeningInterval(weekday=7, start="08:00", end="12:00")]
            ),
            "intervals[0]",
        ),
        (
            dpb.CreateCalendarRequest(
                name="X", intervals=[dpb.OpeningInterval(weekday=1, start="8am", end="12:00")]
            ),
            "intervals[0].start",
        ),
        (
            dpb.CreateCalendarRequest(name="X", preset="SEED_000", time_zone="Mars/Olympus"),
            "time_zone",
        ),
        (dpb.CreateCalendarRequest(name="X", preset="SEED_000", country="XX"), "country"),
        (
            dpb.CreateCalendarRequest(name="X", preset="SEED_000", closed_dates=["2026-02-30"]),
            "closed_dates[0]",
        ),
        (dpb.CreateCalendarRequest(name="X", preset="SEED_999"), "preset"),
        (
            dpb.CreateCalendarRequest(
                name="X", preset="SEED_000", intervals=_weekdays(("08:00", "09:00"))
            ),
            "intervals",
        ),
    ]
    plans = [
        (dpb.CreateSlaPlanRequest(name="P", targets=_targets()[:3]), "targets"),
        (
            dpb.CreateSlaPlanRequest(name="P", targets=[*_targets(), _targets()[0]]),
            "targets[4].priority",
        ),
        (
            dpb.CreateSlaPlanRequest(
                name="P",
                targets=[
                    *_targets()[:3],
                    dpb.PriorityTargets(
                        taken_in_charge_minutes=1, first_feedback_minutes=1, resolution_minutes=1
                    ),
                ],
            ),
            "targets[3].priority",
        ),
        (
            dpb.CreateSlaPlanRequest(name="P", targets=_targets(LOW=(0, 60, 120))),
            "targets[3].taken_in_charge_minutes",
        ),
        (
            dpb.CreateSlaPlanRequest(name="P", targets=_targets(HIGH=(60, -5, 120))),
            "targets[1].first_feedback_minutes",
        ),
        (
            dpb.CreateSlaPlanRequest(name="P", targets=_targets(URGENT=(600, 60, 480))),
            "targets[0].taken_in_charge_minutes",
        ),
        (dpb.CreateSlaPlanRequest(name="", targets=_targets()), "name"),
    ]
    for request, field in calendars:
        code, details = await _code(d.CreateCalendar(request, metadata=MD))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (request, details)
        assert details.startswith(f"{field}:"), (field, details)
    for request, field in plans:
        code, details = await _code(d.CreateSlaPlan(request, metadata=MD))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (request, details)
        assert details.startswith(f"{field}:"), (field, details)
    # First feedback later than resolution is allowed.
    await d.CreateSlaPlan(
        dpb.CreateSlaPlanRequest(name="Odd", targets=_targets(NORMAL=(60, 3000, 2400))),
        metadata=MD,
    )
    cal = await d.CreateCalendar(
        dpb.CreateCalendarRequest(name="Cal", preset="SEED_000"), metadata=MD
    )
    assert await _count(api) == (before[0] + 1, before[1] + 1, before[2])

    contracts = [
        (dpb.SetContractRequest(), "organization_id", grpc.StatusCode.INVALID_ARGUMENT),
        (
            dpb.SetContractRequest(organization_id=api.org_id, pending_reminder_business_days=-1),
            "pending_reminder_business_days",
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            dpb.SetContractRequest(
                organization_id=api.org_id, pending_auto_solve_business_days=9999
            ),
            "pending_auto_solve_business_days",
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            dpb.SetContractRequest(organization_id=api.org_id, closed_ticket_policy=99),  # type: ignore[arg-type]
            "closed_ticket_policy",
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        (
            dpb.SetContractRequest(organization_id=999_999),
            "organization",
            grpc.StatusCode.NOT_FOUND,
        ),
        (
            dpb.SetContractRequest(organization_id=api.org_id, calendar_id=999_999),
            "calendar",
            grpc.StatusCode.NOT_FOUND,
        ),
        (
            dpb.SetContractRequest(
                organization_id=api.org_id, calendar_id=cal.id, sla_plan_id=999_999
            ),
            "SLA plan",
            grpc.StatusCode.NOT_FOUND,
        ),
    ]
    for request, field, want in contracts:
        code, details = await _code(d.SetContract(request, metadata=MD))
        assert code == want, (request, details)
        assert details.startswith(field), (field, details)
    code, _ = await _code(
        d.GetContract(dpb.GetContractRequest(organization_id=999_999), metadata=MD)
    )
    assert code == grpc.StatusCode.NOT_FOUND
    # Duplicate names, whatever the case.
    code, _ = await _code(
        d.CreateCalendar(dpb.CreateCalendarRequest(name="cal", preset="SEED_004"), metadata=MD)
    )
    assert code == grpc.StatusCode.ALREADY_EXISTS
    code, _ = await _code(
        d.CreateSlaPlan(dpb.CreateSlaPlanRequest(name="ODD", targets=_targets()), metadata=MD)
    )
    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert await _count(api) == (before[0] + 1, before[1] + 1, before[2])
    async with api.sessions() as session:
        org = await session.get(m.Organization, api.org_id)
        assert org is not None and org.closed_ticket_policy == "FOLLOW_UP"


async def test_who_may_manage_and_read_contracts(api: Api) -> None:
    d = api.directory

    def md(role: Role, org_id: int = 0) -> tuple[tuple[str, str], ...]:
        kind = "CONTACT" if role in (Role.USER, Role.REFERENT) else "AGENT"
        return bearer_metadata(
            SIGNER.access_token(Principal(role=role, kind=kind, id=1, organization_id=org_id))
        )

    lead = md(Role.TEAM_LEAD)
    cal = await d.CreateCalendar(
        dpb.CreateCalendarRequest(name=f"Lead {uuid.uuid4().hex[:6]}", preset="SEED_000"),
        metadata=lead,
    )
    await d.SetContract(
        dpb.SetContractRequest(organization_id=api.org_id, calendar_id=cal.id), metadata=lead
    )
    code, _ = await _code(
        d.CreateCalendar(
            dpb.CreateCalendarRequest(name="A", preset="SEED_000"), metadata=md(Role.AGENT)
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    listed = await d.ListCalendars(dpb.ListCalendarsRequest(), metadata=md(Role.FRONT_DESK))
    assert [c.id for c in listed.calendars] == [cal.id]
    # A referent reads its own organisation's contract; another's does not exist for it.
    own = await d.GetContract(
        dpb.GetContractRequest(organization_id=api.org_id), metadata=md(Role.REFERENT, api.org_id)
    )
    assert own.calendar.id == cal.id
    code, _ = await _code(
        d.GetContract(
            dpb.GetContractRequest(organization_id=api.other_org_id),
            metadata=md(Role.REFERENT, api.org_id),
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = await _code(
        d.GetContract(
            dpb.GetContractRequest(organization_id=api.org_id), metadata=md(Role.USER, api.org_id)
        )
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
