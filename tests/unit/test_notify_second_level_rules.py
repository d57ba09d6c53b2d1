"""Which emails the second-level events produce, and how their details read (pure rules)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.common.messages.programming import decode as decode_prog_event
from services.notify.progticket import (
    format_instant,
    format_window,
    plan_prog,
)
from services.notify.rules import plan
from services.notify.ticket_details import detail_context

pytestmark = pytest.mark.unit

REQUESTER = {"id": 1, "email": "Mario@Rossi.it", "name": "Mario", "locale": "en"}
ASSIGNEE = {"id": 3, "email": "laura@helpdesk.test", "name": "Laura", "locale": "it"}


def _event(kind: str, detail: str = "", assignee: Any = ASSIGNEE) -> Any:
    return {
        "event_id": "e1",
        "type": kind,
        "ticket_id": 1,
        "detail": detail,
        "ticket": {"requester": REQUESTER, "assignee": assignee, "close_reason": ""},
        "comment": None,
    }


@pytest.mark.parametrize(
    ("kind", "recipient", "locale"),
    [
        ("development_update_shipped", "mario@rossi.it", "en"),
        ("third_party_reminder", "laura@helpdesk.test", "it"),
        ("programming_ticket_cancelled", "laura@helpdesk.test", "it"),
        ("escalated", None, None),
        ("programming_ticket_detached", None, None),
        ("third_party_hold", None, None),
        ("time_logged", None, None),
    ],
)
def test_second_level_ticket_events(kind: str, recipient: str | None, locale: str | None) -> None:
    planned = plan(_event(kind))
    if recipient is None:
        assert planned == []
        return
    [email] = planned
    assert (email.template, email.recipient, email.locale) == (kind, recipient, locale)


@pytest.mark.parametrize("kind", ["third_party_reminder", "programming_ticket_cancelled"])
def test_assignee_emails_need_a_real_assignee(kind: str) -> None:
    assert plan(_event(kind, assignee=None)) == []
    robot = dict(ASSIGNEE, email="MAILER-DAEMON@helpdesk.test")
    assert plan(_event(kind, assignee=robot)) == []


def test_details_become_template_variables() -> None:
    shipped = detail_context(_event("development_update_shipped", "P-7 (v2.3.1): a: b\nc"))
    assert (shipped["prog_display_id"], shipped["fix_version"]) == ("P-7", "v2.3.1")
    assert shipped["release_notes"] == "a: b\nc"
    unversioned = detail_context(_event("development_update_shipped", "P-8: notes"))
    assert (unversioned["fix_version"], unversioned["release_notes"]) == ("", "notes")
    cancelled = detail_context(_event("programming_ticket_cancelled", "P-7 cancelled: dup"))
    assert (cancelled["prog_display_id"], cancelled["cancel_reason"]) == ("P-7", "dup")
    vendor = detail_context(
        _event("third_party_reminder", "still waiting for Telecom (Italia) (ref. A-1)")
    )
    assert (vendor["vendor"], vendor["vendor_reference"]) == ("Telecom (Italia)", "A-1")
    no_ref = detail_context(_event("third_party_reminder", "still waiting for Fastweb"))
    assert (no_ref["vendor"], no_ref["vendor_reference"]) == ("Fastweb", "")
    odd = detail_context(_event("development_update_shipped", "free text"))
    assert odd["release_notes"] == "free text"


def _prog(kind: str, recipients: list[dict[str, Any]], **ticket: Any) -> Any:
    return {
        "event_id": "progticket-7-ev-1",
        "type": kind,
        "programming_ticket_id": 7,
        "programming_ticket": {
            "display_id": "P-7",
            "support_ticket_id": 42,
            "urgency": ticket.pop("urgency", "HIGH"),
            "remote_update": ticket.pop("remote_update", None),
            **ticket,
        },
        "recipients": recipients,
    }


def _person(email: str, locale: str = "it") -> dict[str, Any]:
    return {"kind": "AGENT", "id": 1, "name": "X", "email": email, "locale": locale}


def test_programming_ticket_events_write_to_their_recipients_once() -> None:
    people = [
        _person("Dev@X.test", "en"),
        _person("dev@x.test"),
        _person("no-reply@x.test"),
        _person(""),
        _person("lead@x.test", "fr"),
    ]
    planned = plan_prog(_prog("created", people))
    assert [(p.recipient, p.locale) for p in planned] == [
        ("dev@x.test", "en"),
        ("lead@x.test", "it"),
    ]
    assert {p.template for p in planned} == {"progticket_created"}
    assert plan_prog(_prog("created", people, urgency="LOW")) == []
    assert [p.template for p in plan_prog(_prog("start_overdue", people[:1]))] == [
        "progticket_start_overdue"
    ]
    for kind in ("started", "scheduled", "fixed", "shipped", "cancelled", "moved"):
        assert plan_prog(_prog(kind, people)) == []
    # An announcement without a window cannot say when: nothing is sent.
    assert plan_prog(_prog("remote_update_announced", people)) == []
    window = {"starts_at": "2026-11-27T17:00:00+00:00", "ends_at": "2026-11-27T18:00:00+00:00"}
    assert len(plan_prog(_prog("remote_update_announced", people, remote_update=window))) == 2
    assert len(plan_prog(_prog("remote_update_completed", people))) == 2


def test_times_are_shown_in_italian_time() -> None:
    start, end = "2026-11-27T17:00:00+00:00", "2026-11-27T18:00:00+00:00"
    assert format_window(start, end, "it") == "venerdì 27 novembre 2026, 18:00-19:00"
    assert format_window(start, end, "en") == "Friday 27 November 2026, 18:00-19:00"
    # Summer time, and a window across midnight.
    assert (
        format_window("2026-07-04T20:00:00Z", "2026-07-04T23:30:00Z", "it")
        == "sabato 4 luglio 2026, 22:00 - domenica 5 luglio 2026, 01:30"
    )
    assert format_instant("2026-03-02T09:30:00+00:00", "it") == "lunedì 2 marzo 2026 alle 10:30"
    assert format_instant("2026-03-02T09:30:00", "en") == "Monday 2 March 2026 at 10:30"


def test_bodies_that_are_not_programming_ticket_events_are_rejected() -> None:
    good = _prog("created", [_person("dev@x.test")], start_work_due=None)
    assert decode_prog_event(json.dumps(good).encode())["programming_ticket_id"] == 7
    del good["recipients"]
    assert decode_prog_event(json.dumps(good).encode())["recipients"] == []
    bad_window = _prog("remote_update_announced", [], remote_update={"starts_at": "soon"})
    for bad in (
        b"not json",
        b"[]",
        b'{"event_id": "e", "type": "created"}',
        json.dumps(_prog("created", "dev@x.test")).encode(),  # type: ignore[arg-type]
        json.dumps(bad_window).encode(),
    ):
        with pytest.raises(ValueError):
            decode_prog_event(bad)
