"""The agent's ticket page in words: clocks with business time left, internal notes and
recorded calls in the conversation, the history newest first, the calendar by weekday,
and every label of the workspace's tables in Italian."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from services.gateway import texts
from services.gateway.agent import ticket_view as tv
from services.gateway.agent.ticket_actions import NOTICES

pytestmark = pytest.mark.unit


def stamp(at: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(at)
    return ts


def test_business_durations() -> None:
    assert tv.business_duration(0, "en") == "0 min"
    assert tv.business_duration(59 * 60 + 30, "en") == "59 min"
    assert tv.business_duration(2 * 3600 + 5 * 60, "en") == "2 h 05 min"
    assert tv.business_duration(-300, "en") == "0 min"


def test_clocks_say_time_left_and_turn_amber_then_red() -> None:
    due = datetime(2026, 12, 15, 13, 30, tzinfo=UTC)
    t = pb.Ticket(
        priority=pb.PRIORITY_NORMAL,
        sla=[
            pb.SlaClock(
                target=pb.SLA_TARGET_RESOLUTION,
                due_at=stamp(due),
                state=pb.SLA_STATE_RUNNING,
                remaining_business_seconds=3600,
            ),
            pb.SlaClock(
                target=pb.SLA_TARGET_TAKEN_IN_CHARGE,
                due_at=stamp(due),
                state=pb.SLA_STATE_BREACHED,
                breached_by_seconds=90 * 60,
            ),
            pb.SlaClock(
                target=pb.SLA_TARGET_FIRST_FEEDBACK,
                due_at=stamp(due),
                state=pb.SLA_STATE_RUNNING,
                remaining_business_seconds=3 * 3600,
            ),
        ],
    )
    plan = dpb.SlaPlan(
        targets=[
            dpb.PriorityTargets(
                priority=pb.PRIORITY_NORMAL,
                taken_in_charge_minutes=60,
                first_feedback_minutes=240,
                resolution_minutes=600,
            )
        ]
    )
    clocks = tv.clock_views(t, "en", tv.target_seconds(plan, t.priority))
    # Taken in charge first, whatever the order of the message.
    assert [c.target for c in clocks] == ["Taken in charge", "First feedback", "Resolution"]
    taken, feedback, resolution = clocks
    assert (taken.tone, taken.left, taken.state) == ("bad", "late by 1 h 30 min", "Breached")
    assert (feedback.tone, feedback.left) == ("ok", "3 h 00 min left")
    assert (resolution.tone, resolution.left) == ("warn", "1 h 00 min left")  # 90% gone
    assert resolution.due == "15 December 2026, 14:30"  # the desk's time zone
    assert tv.clock_views(t, "it")[0].left == "in ritardo di 1 h 30 min"


def test_the_conversation_marks_internal_notes_calls_and_images() -> None:
    t = pb.Ticket(
        requester_name="Mario Rossi",
        description="La stampa si blocca.",
        attachments=[
            pb.Attachment(id="a1", filename="errore.png", content_type="image/png", size=2048),
            pb.Attachment(id="a2", filename="logo.svg", content_type="image/svg+xml"),
            pb.Attachment(id="a3", filename="nota.pdf", content_type="application/pdf"),
        ],
    )
    comments = [
        pb.Comment(
            id="c1",
            visibility=pb.COMMENT_VISIBILITY_INTERNAL,
            author_kind=pb.AUTHOR_KIND_AGENT,
            author_name="Anna Bianchi",
            body="Contratto scaduto.",
            attachments=[pb.Attachment(id="a3", filename="nota.pdf")],
        ),
        pb.Comment(
            id="c2",
            visibility=pb.COMMENT_VISIBILITY_PUBLIC,
            author_kind=pb.AUTHOR_KIND_AGENT,
            author_name="Anna Bianchi",
            body="Riavviato il servizio.",
            interaction=pb.Interaction(
                type=pb.INTERACTION_TYPE_PHONE_CALL,
                direction=pb.CALL_DIRECTION_OUTBOUND,
                with_whom="Mario Rossi",
                duration_minutes=15,
            ),
        ),
    ]
    request, note, call = tv.conversation(t, comments, "en")
    # The request's own files, not those that came with a comment; never SVG inline.
    assert [(f.filename, f.image) for f in request.files] == [
        ("errore.png", True),
        ("logo.svg", False),
    ]
    assert (note.internal, note.visibility, note.kind) == (True, "Internal note", "agent")
    assert [f.filename for f in note.files] == ["nota.pdf"]
    assert (call.internal, call.visibility) == (False, "Public")
    assert call.interaction == "Phone call, outbound, 15 min, with Mario Rossi"
    assert tv.conversation(t, comments, "it")[2].interaction == (
        "Telefonata, in uscita, 15 min, con Mario Rossi"
    )


def test_history_newest_first_with_the_moves() -> None:
    events = [
        pb.TicketEvent(type="created", actor_name="Mario Rossi"),
        pb.TicketEvent(
            type="status_changed",
            actor_name="Anna Bianchi",
            from_status=pb.TICKET_STATUS_OPEN,
            to_status=pb.TICKET_STATUS_PENDING,
            detail="waiting for the log",
        ),
        pb.TicketEvent(type="something_new"),
    ]
    lines = tv.history_lines(events, "en")
    assert [h.what for h in lines] == ["something new", "Status changed", "Created"]
    assert lines[1].detail == "Open → Pending · waiting for the log"
    assert lines[0].who == "system"


def test_calendar_by_weekday() -> None:
    calendar = dpb.Calendar(
        intervals=[
            dpb.OpeningInterval(weekday=0, start="14:30", end="18:30"),
            dpb.OpeningInterval(weekday=0, start="08:30", end="13:00"),
            dpb.OpeningInterval(weekday=4, start="08:30", end="13:00"),
        ]
    )
    # In the order given for a day (the calendar keeps them sorted).
    assert tv.calendar_lines(calendar, "it") == ["lun 14:30–18:30, 08:30–13:00", "ven 08:30–13:00"]


def test_merge_candidates_stay_in_the_organisation() -> None:
    t = pb.Ticket(id=1, organization_id=7)
    found = [
        pb.Ticket(id=1, organization_id=7),
        pb.Ticket(id=2, organization_id=7, status=pb.TICKET_STATUS_OPEN),
        pb.Ticket(id=3, organization_id=8, status=pb.TICKET_STATUS_OPEN),
        pb.Ticket(id=4, organization_id=7, status=pb.TICKET_STATUS_CLOSED),
    ]
    assert [c.id for c in tv.merge_candidates(t, found)] == [2]


def test_every_label_of_the_workspace_has_its_italian() -> None:
    english = set(NOTICES.values()) | set(tv.WEEKDAYS) | {label for _, label in tv.MILESTONES}
    for table in (
        tv.TARGETS,
        tv.CLOCK_STATES,
        tv.KINDS,
        tv.LEVELS,
        tv.CHANNELS,
        tv.URGENCIES,
        tv.INTERACTIONS,
        tv.DIRECTIONS,
        tv.DIRECTION_SHORT,
        tv.STATUS_MOVES,
        tv.POLICIES,
        tv.EVENTS,
    ):
        english |= set(table.values())
    assert sorted(t for t in english if t not in texts.IT) == []
