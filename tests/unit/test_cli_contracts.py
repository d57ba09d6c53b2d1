"""``helpdesk calendar | sla-plan | contract``: argument parsing, the requests built and the
text printed, no servers."""

from __future__ import annotations

import pytest

from helpdesk.v1 import common_pb2, directory_pb2
from services.cli import contracts
from tests.unit.cli_helpers import parse, parse_error, run_command

pytestmark = pytest.mark.unit


SEED_000 = [
    directory_pb2.OpeningInterval(weekday=d, start=s, end=e)
    for d in range(5)
    for s, e in (("08:30", "13:00"), ("14:30", "18:30"))
]


def test_calendar_create_from_a_preset() -> None:
    args = parse("calendar", "create", "Visual", "--preset", "seed_000")
    assert args.func is contracts.calendar_create
    reply = directory_pb2.Calendar(
        id=1, name="Visual", time_zone="Europe/Rome", intervals=SEED_000, country="IT"
    )
    method, request, text = run_command(args, reply)
    assert method == "CreateCalendar"
    assert request == directory_pb2.CreateCalendarRequest(name="Visual", preset="SEED_000")
    assert not request.HasField("country")  # the server's default (IT)
    assert "mon-fri 08:30-13:00,14:30-18:30" in text and "Europe/Rome" in text


def test_calendar_create_from_hours_with_bridge_days_and_no_holidays() -> None:
    args = parse(
        "calendar", "create", "Milano",
        "--hours", "mon-fri 8:30-13:00, 14:30-18:30; sat 09:00-12:00",
        "--hours", "sun 10:00-11:00",
        "--tz", "Europe/Rome", "--country", "none",
        "--closed", "2026-12-07,2026-12-24", "--closed", "2026-08-14",
    )  # fmt: skip
    method, request, _ = run_command(args, directory_pb2.Calendar(id=2))
    assert method == "CreateCalendar"
    assert request == directory_pb2.CreateCalendarRequest(
        name="Milano",
        time_zone="Europe/Rome",
        intervals=[
            *SEED_000,
            directory_pb2.OpeningInterval(weekday=5, start="09:00", end="12:00"),
            directory_pb2.OpeningInterval(weekday=6, start="10:00", end="11:00"),
        ],
        country="",
        closed_dates=["2026-12-07", "2026-12-24", "2026-08-14"],
    )
    assert request.HasField("country")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("mon 09:00-10:00", [(0, "09:00", "10:00")]),
        ("mon,wed 09:00-10:00", [(0, "09:00", "10:00"), (2, "09:00", "10:00")]),
        ("lun-mar 07:30-12:00", [(0, "07:30", "12:00"), (1, "07:30", "12:00")]),
        ("Saturday 00:00-24:00", [(5, "00:00", "24:00")]),
    ],
)
def test_opening_hours(spec: str, expected: list[tuple[int, str, str]]) -> None:
    assert contracts.opening_hours(spec) == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["calendar", "create", "X"],  # neither preset nor hours
        ["calendar", "create", "X", "--preset", "SEED_000", "--hours", "mon 09:00-10:00"],
        ["calendar", "create", "X", "--preset", "SEED_999"],
        ["calendar", "create", "X", "--hours", "mon"],
        ["calendar", "create", "X", "--hours", "fri-mon 09:00-10:00"],
        ["calendar", "create", "X", "--hours", "xyz 09:00-10:00"],
        ["calendar", "create", "X", "--hours", "mon 9-10"],
        ["calendar", "create", "X", "--hours", "mon 25:00-26:00"],
        ["calendar", "create", "X", "--preset", "SEED_000", "--closed", "2026-13-01"],
    ],
)
def test_calendar_create_refuses_bad_arguments(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert "error" in parse_error(capsys, *argv)


def test_calendar_list_prints_a_table() -> None:
    args = parse("calendar", "list")
    reply = directory_pb2.ListCalendarsResponse(
        calendars=[directory_pb2.Calendar(id=1, name="Visual", intervals=SEED_000, country="IT")]
    )
    method, request, text = run_command(args, reply)
    assert method == "ListCalendars" and request.page_size > 0
    assert "Visual" in text and "mon-fri 08:30-13:00,14:30-18:30" in text


def test_sla_plan_create() -> None:
    args = parse(
        "sla-plan", "create", "Standard",
        "--urgent", "15/60/480", "--high", "1h/4h/16h", "--normal", "240/480/2400",
        "--low", "480m/1440/4800",
    )  # fmt: skip
    plan = directory_pb2.SlaPlan(
        id=1,
        name="Standard",
        targets=[
            directory_pb2.PriorityTargets(
                priority=common_pb2.PRIORITY_URGENT,
                taken_in_charge_minutes=15,
                first_feedback_minutes=90,
                resolution_minutes=480,
            )
        ],
    )
    method, request, text = run_command(args, plan)
    assert method == "CreateSlaPlan"

    def t(p: int, a: int, b: int, c: int) -> directory_pb2.PriorityTargets:
        return directory_pb2.PriorityTargets(
            priority=p, taken_in_charge_minutes=a, first_feedback_minutes=b, resolution_minutes=c
        )

    assert request == directory_pb2.CreateSlaPlanRequest(
        name="Standard",
        targets=[
            t(common_pb2.PRIORITY_URGENT, 15, 60, 480),
            t(common_pb2.PRIORITY_HIGH, 60, 240, 960),
            t(common_pb2.PRIORITY_NORMAL, 240, 480, 2400),
            t(common_pb2.PRIORITY_LOW, 480, 1440, 4800),
        ],
    )
    assert "URGENT" in text and "1h30" in text and "8h" in text


@pytest.mark.parametrize(
    "argv",
    [
        ["--urgent", "15/60/480", "--high", "1/2/3", "--normal", "1/2/3"],  # --low missing
        ["--urgent", "15/60", "--high", "1/2/3", "--normal", "1/2/3", "--low", "1/2/3"],
        ["--urgent", "0/60/480", "--high", "1/2/3", "--normal", "1/2/3", "--low", "1/2/3"],
        ["--urgent", "15/-6/480", "--high", "1/2/3", "--normal", "1/2/3", "--low", "1/2/3"],
        ["--urgent", "15/1d/480", "--high", "1/2/3", "--normal", "1/2/3", "--low", "1/2/3"],
    ],
)
def test_sla_plan_create_refuses_bad_targets(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert "error" in parse_error(capsys, "sla-plan", "create", "P", *argv)


def test_contract_set_and_show() -> None:
    args = parse(
        "contract", "set", "7", "--calendar", "2", "--plan", "3", "--policy", "reopen",
        "--pending-reminder-days", "3", "--pending-auto-solve-days", "5",
    )  # fmt: skip
    reply = directory_pb2.Contract(
        organization_id=7,
        calendar=directory_pb2.Calendar(id=2, name="Oripan", intervals=SEED_000),
        sla_plan=directory_pb2.SlaPlan(id=3, name="Gold"),
        closed_ticket_policy=common_pb2.CLOSED_TICKET_POLICY_REOPEN,
        pending_reminder_business_days=3,
    )
    method, request, text = run_command(args, reply)
    assert method == "SetContract"
    assert request == directory_pb2.SetContractRequest(
        organization_id=7,
        calendar_id=2,
        sla_plan_id=3,
        closed_ticket_policy=common_pb2.CLOSED_TICKET_POLICY_REOPEN,
        pending_reminder_business_days=3,
        pending_auto_solve_business_days=5,
    )
    assert "Oripan (2)" in text and "after 3 business days" in text and "REOPEN" in text

    args = parse("contract", "set", "7")
    _, request, _ = run_command(args, reply)
    assert request == directory_pb2.SetContractRequest(organization_id=7)

    args = parse("contract", "show", "7")
    default = directory_pb2.Contract(organization_id=7, is_default=True)
    method, request, text = run_command(args, default)
    assert method == "GetContract"
    assert request == directory_pb2.GetContractRequest(organization_id=7)
    assert "default" in text


@pytest.mark.parametrize(
    "argv",
    [
        ["contract", "set", "0"],
        ["contract", "set", "x"],
        ["contract", "set", "7", "--calendar", "0"],
        ["contract", "set", "7", "--pending-reminder-days", "-1"],
        ["contract", "set", "7", "--policy", "delete"],
        ["contract", "show"],
    ],
)
def test_contract_refuses_bad_arguments(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert "error" in parse_error(capsys, *argv)
