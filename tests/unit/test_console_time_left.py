"""The queue's time left to the next service-level target: business time in words, red
once breached, amber past 80% of the target's time; and the views as ListTickets requests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import tickets_pb2 as tpb
from services.gateway.agent.queue_views import (
    VIEW_BY_KEY,
    BadFilter,
    Filters,
    keep,
    list_request,
    parse_filters,
)
from services.gateway.agent.time_left import duration, plan_seconds, time_left
from services.gateway.texts import translate

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def en(words: str) -> str:
    return words


def it(words: str) -> str:
    return translate("it", words)


def ticket(
    left: int,
    state: pb.SlaState.ValueType = pb.SLA_STATE_RUNNING,
    breached_by: int = 0,
    due_in: timedelta = timedelta(hours=1),
) -> pb.Ticket:
    due = Timestamp()
    due.FromDatetime(NOW + due_in)
    return pb.Ticket(
        id=7,
        priority=pb.PRIORITY_HIGH,
        next_due_at=due,
        next_due_target=pb.SLA_TARGET_FIRST_FEEDBACK,
        sla=[
            pb.SlaClock(target=pb.SLA_TARGET_TAKEN_IN_CHARGE, state=pb.SLA_STATE_MET),
            pb.SlaClock(
                target=pb.SLA_TARGET_FIRST_FEEDBACK,
                due_at=due,
                state=state,
                remaining_business_seconds=left,
                breached_by_seconds=breached_by,
            ),
        ],
    )


@pytest.mark.parametrize(
    ("left", "whole", "tone", "text"),
    [
        (3 * 3600, 4 * 3600, "ok", "3 h 00 min left"),
        # 80% used: amber from there on.
        (48 * 60 + 1, 4 * 3600, "ok", "48 min left"),
        (48 * 60, 4 * 3600, "warning", "48 min left"),
        (600, 4 * 3600, "warning", "10 min left"),
        (30, 4 * 3600, "warning", "< 1 min left"),
        # Without the plan's target time: plain until late.
        (600, None, "ok", "10 min left"),
    ],
)
def test_time_left_and_its_colour(left: int, whole: int | None, tone: str, text: str) -> None:
    shown = time_left(ticket(left), whole, NOW, en)
    assert (shown.tone, shown.text) == (tone, text)
    assert shown.seconds == left
    assert shown.target == "first feedback"


def test_a_breached_clock_is_red_with_how_late() -> None:
    shown = time_left(ticket(0, pb.SLA_STATE_BREACHED, breached_by=5400), 3600, NOW, en)
    assert (shown.tone, shown.text, shown.seconds) == ("breached", "late by 1 h 30 min", -5400)
    # Past the due instant with nothing left is late too, even before the clock says so.
    past = time_left(ticket(0, due_in=timedelta(minutes=-20)), 3600, NOW, en)
    assert (past.tone, past.text) == ("breached", "late by 20 min")


def test_a_paused_clock_says_so_and_is_grey() -> None:
    shown = time_left(ticket(2 * 86400 + 3 * 3600, pb.SLA_STATE_PAUSED), 10 * 86400, NOW, en)
    assert (shown.tone, shown.text) == ("paused", "2 d 3 h left, paused")
    assert time_left(ticket(2 * 86400, pb.SLA_STATE_PAUSED), 10 * 86400, NOW, it).text == (
        "2 g 0 h rimasti, in pausa"
    )


def test_nothing_due_is_a_dash() -> None:
    shown = time_left(pb.Ticket(id=1), 3600, NOW, en)
    assert (shown.text, shown.tone, shown.seconds) == ("–", "", None)


def test_italian() -> None:
    assert time_left(ticket(600), 3600, NOW, it).text == "10 min rimasti"
    assert duration(59, it) == "< 1 min"


def test_the_plan_gives_the_target_time() -> None:
    plan = dpb.SlaPlan(
        targets=[
            dpb.PriorityTargets(
                priority=pb.PRIORITY_HIGH,
                taken_in_charge_minutes=30,
                first_feedback_minutes=120,
                resolution_minutes=960,
            )
        ]
    )
    assert plan_seconds(plan, pb.PRIORITY_HIGH, pb.SLA_TARGET_FIRST_FEEDBACK) == 7200
    assert plan_seconds(plan, pb.PRIORITY_HIGH, pb.SLA_TARGET_RESOLUTION) == 960 * 60
    assert plan_seconds(plan, pb.PRIORITY_LOW, pb.SLA_TARGET_RESOLUTION) is None


def test_views_as_list_requests() -> None:
    mine = list_request(VIEW_BY_KEY["mine"], 5, Filters())
    assert mine is not None and mine.assignee_id == 5
    assert mine.order_by == tpb.TICKET_ORDER_NEXT_DUE
    unassigned = list_request(VIEW_BY_KEY["unassigned"], 5, Filters())
    assert unassigned is not None and unassigned.unassigned_only
    due = list_request(VIEW_BY_KEY["due"], 5, Filters())
    assert due is not None and due.due_within_minutes == 60
    pending = list_request(VIEW_BY_KEY["pending"], 5, Filters())
    assert pending is not None and list(pending.statuses) == [pb.TICKET_STATUS_PENDING]
    # Filters that cannot match the view ask nothing.
    assert list_request(VIEW_BY_KEY["pending"], 5, Filters(status=pb.TICKET_STATUS_OPEN)) is None
    assert list_request(VIEW_BY_KEY["mine"], 5, Filters(assignee_id=9)) is None
    narrowed = list_request(
        VIEW_BY_KEY["open"],
        5,
        parse_filters(
            {"priority": "4", "kind": "3", "level": "2", "q": "stampa", "order": "priority"}
        ),
    )
    assert narrowed is not None
    assert list(narrowed.priorities) == [pb.PRIORITY_URGENT]
    assert list(narrowed.kinds) == [pb.TICKET_KIND_BUG]
    assert list(narrowed.levels) == [pb.SUPPORT_LEVEL_L2]
    assert narrowed.subject_contains == "stampa"
    assert narrowed.order_by == tpb.TICKET_ORDER_PRIORITY


def test_criticality_is_filtered_over_the_page() -> None:
    wanted = Filters(criticality=pb.CRITICALITY_BLOCKING)
    assert keep(pb.Ticket(criticality=pb.CRITICALITY_BLOCKING), wanted)
    assert not keep(pb.Ticket(criticality=pb.CRITICALITY_CRITICAL), wanted)
    assert keep(pb.Ticket(criticality=pb.CRITICALITY_CRITICAL), Filters())


@pytest.mark.parametrize(
    "query",
    [{"priority": "9"}, {"order": "random"}, {"org": "-1"}, {"status": "x"}, {"q": "x" * 301}],
)
def test_unknown_filter_values_are_refused(query: dict[str, str]) -> None:
    with pytest.raises(BadFilter):
        parse_filters(query)


def test_filters_round_trip_through_the_query_string() -> None:
    filters = parse_filters({"org": "3", "assignee": "none", "q": "a b", "order": "updated"})
    assert filters.query() == "org=3&assignee=none&q=a+b&order=updated"
    assert parse_filters(dict(p.split("=") for p in filters.query().split("&"))) == Filters(
        organization_id=3, assignee_id=-1, q="a+b", order="updated"
    )
