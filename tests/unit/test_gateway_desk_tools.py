"""The desk tools' pure parts: the phone search's criteria, the administration's forms,
and the dashboard's counts over ListTickets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from helpdesk.v1 import common_pb2 as pb
from services.gateway.agent.admin_forms import (
    FormProblem,
    calendar_request,
    intervals,
    sla_defaults,
    sla_plan_request,
)
from services.gateway.agent.dashboard import desk_load
from services.gateway.agent.front_desk import criteria

pytestmark = pytest.mark.unit


def test_the_caller_search_reads_what_was_typed() -> None:
    assert criteria("mario@rossi.it").email == "mario@rossi.it"  # type: ignore[union-attr]
    assert criteria("+39 02 123 4567").phone == "+39 02 123 4567"  # type: ignore[union-attr]
    assert criteria("Rossi").name == "Rossi"  # type: ignore[union-attr]
    assert criteria("0212") is None  # too few digits for a number
    assert criteria("R") is None


def test_opening_intervals_in_english_or_italian() -> None:
    found = intervals("Mon-Fri 08:30-13:00\nlun 14:30-18:30\n6 9:00-12:00")
    assert [(i.weekday, i.start, i.end) for i in found][:2] == [
        (0, "08:30", "13:00"),
        (1, "08:30", "13:00"),
    ]
    assert len(found) == 7 and (found[-1].weekday, found[-1].start) == (6, "09:00")
    with pytest.raises(FormProblem) as bad:
        intervals("every day 9-5")
    assert bad.value.field == "intervals"
    assert calendar_request({"name": "X", "preset": "SEED_004"}).intervals == []


def test_an_sla_plan_needs_whole_minutes_for_every_priority() -> None:
    plan = sla_plan_request({"name": "Gold", **sla_defaults()})
    assert [t.priority for t in plan.targets] == [
        pb.PRIORITY_URGENT,
        pb.PRIORITY_HIGH,
        pb.PRIORITY_NORMAL,
        pb.PRIORITY_LOW,
    ]
    with pytest.raises(FormProblem) as bad:
        sla_plan_request({"name": "Gold", **sla_defaults(), "low_resolution_minutes": "-3"})
    assert bad.value.field == "low_resolution_minutes"


def test_the_desk_load_counts() -> None:
    now = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)

    def clock(state: int, due: datetime, left: int = 0) -> pb.SlaClock:
        c = pb.SlaClock(state=state, remaining_business_seconds=left)  # type: ignore[arg-type]
        c.due_at.FromDatetime(due)
        return c

    tickets = [
        pb.Ticket(
            id=1,
            status=pb.TICKET_STATUS_OPEN,
            priority=pb.PRIORITY_HIGH,
            assignee_name="Anna",
            sla=[clock(pb.SLA_STATE_BREACHED, now - timedelta(hours=1))],
        ),
        pb.Ticket(
            id=2,
            status=pb.TICKET_STATUS_NEW,
            priority=pb.PRIORITY_NORMAL,
            sla=[clock(pb.SLA_STATE_RUNNING, now + timedelta(minutes=30), left=1800)],
        ),
        pb.Ticket(
            id=3,
            status=pb.TICKET_STATUS_SOLVED,
            priority=pb.PRIORITY_NORMAL,
            assignee_name="Anna",
            sla=[clock(pb.SLA_STATE_BREACHED, now - timedelta(days=2))],
        ),
    ]
    load = desk_load(tickets, now, "en")
    assert load.total == 3
    assert dict((k, n) for k, _label, n in load.by_status) == {
        "new": 1,
        "open": 1,
        "pending": 0,
        "on_hold": 0,
        "solved": 1,
    }
    assert dict(load.by_priority) == {"Urgent": 0, "High": 1, "Normal": 2, "Low": 0}
    assert load.breached_today == 1  # the other breach was two days ago
    assert [t.id for t in load.due_next_hour] == [2]
    assert load.by_agent == [("Anna", 1), ("Unassigned", 1)]  # a solved ticket is not in hand
