"""Who hears of service levels and what the messages say (pure rules and
templates): the 80% warning to the assignee, the breach to the team leads, the pending
reminder to the customer, and the out-of-hours acknowledgement."""

from __future__ import annotations

from typing import Any

import pytest

from services.notify.render import Renderer
from services.notify.rules import PlannedEmail, plan

pytestmark = pytest.mark.unit

REQUESTER = {"id": 1, "email": "Mario@Rossi.it", "name": "Mario", "locale": "en"}
ASSIGNEE = {"id": 3, "email": "laura@helpdesk.test", "name": "Laura", "locale": "it"}
LEADS = [
    {"id": 7, "email": "Capo@helpdesk.test", "name": "Carla", "locale": "it"},
    {"id": 8, "email": "capo@helpdesk.test", "name": "Carla again", "locale": "it"},
    {"id": 9, "email": "postmaster@helpdesk.test", "name": "robot", "locale": "it"},
]


def _event(kind: str, detail: str = "", **ticket: Any) -> Any:
    return {
        "event_id": "e1",
        "type": kind,
        "ticket_id": 42,
        "detail": detail,
        "actor_name": "system",
        "ticket": {
            "id": 42,
            "display_id": "#42",
            "subject": "Gestionale bloccato",
            "priority": "HIGH",
            "organization_name": "Rossi Srl",
            "requester": REQUESTER,
            "assignee": ASSIGNEE,
            "close_reason": "",
            "follow_up_of": 0,
            "auto_close_after_seconds": 0,
            **ticket,
        },
        "comment": None,
    }


def test_the_warning_goes_to_the_assignee_and_names_target_and_due() -> None:
    event = _event("sla_warning", "FIRST_FEEDBACK at 80%: due 2026-11-30T10:55:00+00:00")
    [email] = plan(event)
    assert (email.template, email.recipient) == ("sla_warning", "laura@helpdesk.test")
    text = Renderer().render(event, email)
    assert "primo riscontro" in text.subject
    assert "lunedì 30 novembre 2026 alle 11:55" in text.body


def test_a_breach_tells_each_team_lead_once_and_never_a_robot() -> None:
    event = _event(
        "sla_breached",
        "FIRST_FEEDBACK target missed (due 2026-11-30T10:55:00+00:00, 5m late)",
        team_leads=LEADS,
    )
    emails = plan(event)
    assert [(e.template, e.recipient) for e in emails] == [("sla_breached", "capo@helpdesk.test")]
    text = Renderer().render(event, emails[0])
    assert "SLA superato: primo riscontro" in text.subject
    assert "Laura" in text.body
    assert plan(_event("sla_breached", "x", team_leads=[])) == []


def test_the_pending_reminder_goes_to_the_customer_in_their_language() -> None:
    event = _event("pending_reminder")
    [email] = plan(event)
    assert (email.recipient, email.locale) == ("mario@rossi.it", "en")
    assert "waiting for your answer" in Renderer().render(event, email).subject


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        ("it", "fuori dall'orario di assistenza: la prenderemo in carico da lunedì 30"),
        ("en", "outside our office hours: we will take it up from Monday 30 November 2026 at"),
    ],
)
def test_an_out_of_hours_acknowledgement_says_when_the_desk_opens(locale: str, words: str) -> None:
    event = _event(
        "created",
        received_at="2026-11-28T10:00:00+00:00",  # Saturday
        clocks_start_at="2026-11-30T07:30:00+00:00",  # Monday 08:30 in Rome
    )
    email = PlannedEmail("created", "mario@rossi.it", "Mario", locale)
    body = Renderer().render(event, email).body
    assert words in " ".join(body.split())
    in_hours = _event(
        "created",
        received_at="2026-11-30T09:00:00+00:00",
        clocks_start_at="2026-11-30T09:00:00+00:00",
    )
    assert "08:30" not in Renderer().render(in_hours, email).body


@pytest.mark.parametrize("kind", ["created", "priority_changed"])
def test_an_urgent_ticket_pages_the_agents_on_call(kind: str) -> None:
    on_call = [{"id": 5, "email": "turno@helpdesk.test", "name": "Tina", "locale": "it"}]
    event = _event(kind, priority="URGENT", on_call=on_call)
    pages = [e for e in plan(event) if e.template == "urgent_page"]
    assert [e.recipient for e in pages] == ["turno@helpdesk.test"]
    assert "URGENTE" in Renderer().render(event, pages[0]).subject
    calm = _event(kind, priority="HIGH", on_call=on_call)
    assert not [e for e in plan(calm) if e.template == "urgent_page"]


def test_a_chat_hears_the_agents_answers_and_when_its_ticket_is_solved_and_closed() -> None:
    from services.notify.im_out import chat_text

    answer = _event("comment_added")
    answer["comment"] = {
        "visibility": "PUBLIC",
        "author_kind": "AGENT",
        "author_name": "Laura",
        "body": "Riavvia il router.",
    }
    template, text = chat_text(answer, "it") or ("", "")
    assert template == "im_agent_reply" and "Riavvia il router." in text and "Laura" in text
    answer["comment"]["visibility"] = "INTERNAL"
    assert chat_text(answer, "it") is None
    assert chat_text(_event("solved"), "en") == (
        "im_solved",
        "[#42] Your request is solved. If the problem persists, reply here.",
    )
    assert (chat_text(_event("closed"), "it") or ("", ""))[0] == "im_closed"
    assert chat_text(_event("closed", close_reason="MERGED"), "it") is None
    assert chat_text(_event("assigned"), "it") is None
