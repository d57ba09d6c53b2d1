"""The customer emails' texts follow the closed-ticket policy, and followers get copies of
what the requester gets about the ticket's progress, never more (pure rules and templates)."""

from __future__ import annotations

from typing import Any

import pytest

from services.common.messages.tickets import TicketEventPayload
from services.notify.render import Renderer
from services.notify.rules import PlannedEmail, plan

pytestmark = pytest.mark.unit

REQUESTER = {"id": 7, "name": "Mario Rossi", "email": "mario@rossi.it", "locale": "it"}
FOLLOWER = {"id": 8, "name": "Luisa Bianchi", "email": "luisa@rossi.it", "locale": "en"}


def _event(
    kind: str,
    *,
    policy: str = "FOLLOW_UP",
    close_reason: str = "",
    followers: list[dict[str, Any]] | None = None,
    comment: dict[str, Any] | None = None,
    merged_into: int = 0,
) -> Any:
    return {
        "event_id": "ticket-42-ev-9",
        "type": kind,
        "ticket_id": 42,
        "occurred_at": "2026-03-02T09:15:00+00:00",
        "actor_kind": "AGENT",
        "actor_id": 3,
        "actor_name": "Anna",
        "from_status": "",
        "to_status": "",
        "detail": f"merged into #{merged_into}: same problem" if merged_into else "",
        "ticket": {
            "id": 42,
            "display_id": "#42",
            "subject": "La stampante non stampa",
            "status": "CLOSED",
            "priority": "NORMAL",
            "channel": "EMAIL",
            "organization_id": 1,
            "organization_name": "Rossi Srl",
            "requester": REQUESTER,
            "assignee": None,
            "follow_up_of": 0,
            "close_reason": close_reason,
            "auto_close_at": None,
            "auto_close_after_seconds": 0,
            "closed_ticket_policy": policy,
            "merged_into": merged_into,
            "followers": followers or [],
        },
        "comment": comment,
    }


def _body(event: TicketEventPayload, template: str, locale: str) -> str:
    email = PlannedEmail(template, "mario@rossi.it", "Mario Rossi", locale)
    return Renderer().render(event, email).body


CLOSING = [
    ("solved", ""),
    ("closed", "AUTO_CLOSED"),
    ("closed", "CONFIRMED"),
    ("closed", "VERIFIED"),
    ("closed", "OTHER"),  # the plain "closed" template
]


@pytest.mark.parametrize(("kind", "reason"), CLOSING)
def test_reopen_policy_says_a_reply_reactivates_the_ticket(kind: str, reason: str) -> None:
    [email, *_] = plan(_event(kind, policy="REOPEN", close_reason=reason))
    event = _event(kind, policy="REOPEN", close_reason=reason)
    italian = _body(event, email.template, "it")
    english = _body(event, email.template, "en")
    assert "riattiv" in italian and "reactivate" in english
    # Never the FOLLOW_UP words: a closed ticket of this organisation can come back.
    assert "non potrà più essere riaperta" not in italian and "nuova richiesta" not in italian
    assert "cannot be reopened" not in english and "new request" not in english


@pytest.mark.parametrize(("kind", "reason"), CLOSING)
def test_follow_up_policy_says_to_open_a_new_request(kind: str, reason: str) -> None:
    event = _event(kind, close_reason=reason)
    [email, *_] = plan(event)
    italian = _body(event, email.template, "it")
    english = _body(event, email.template, "en")
    assert "aprire una nuova richiesta" in italian and "open a new request" in english
    assert "nuova richiesta collegata" in italian and "new request linked" in english
    assert "riattiv" not in italian and "reactivate" not in english


def test_without_a_policy_in_the_event_the_default_is_follow_up() -> None:
    event = _event("closed", close_reason="CONFIRMED")
    del event["ticket"]["closed_ticket_policy"]
    assert "aprire una nuova richiesta" in _body(event, "closed_confirmed", "it")


def test_followers_get_public_answers_and_status_mails_each_their_own() -> None:
    public = {"visibility": "PUBLIC", "author_kind": "AGENT", "id": "c1", "author_id": 3}
    public |= {"author_name": "Anna", "body": "Riavvii la stampante."}
    with_follower = {"followers": [FOLLOWER, REQUESTER]}  # the requester is not copied twice
    answer = plan(_event("comment_added", comment=public, **with_follower))
    assert [(e.template, e.recipient, e.locale) for e in answer] == [
        ("agent_reply", "mario@rossi.it", "it"),
        ("agent_reply", "luisa@rossi.it", "en"),
    ]
    closed = plan(_event("closed", close_reason="CONFIRMED", **with_follower))
    # The survey is the requester's only.
    assert [(e.template, e.recipient) for e in closed] == [
        ("closed_confirmed", "mario@rossi.it"),
        ("survey", "mario@rossi.it"),
        ("closed_confirmed", "luisa@rossi.it"),
    ]
    for kind in ("solved", "pending_reminder"):
        assert [e.recipient for e in plan(_event(kind, **with_follower))] == [
            "mario@rossi.it",
            "luisa@rossi.it",
        ]


def test_followers_never_get_internal_notes_or_the_acknowledgement() -> None:
    internal = {"visibility": "INTERNAL", "author_kind": "AGENT", "id": "c2", "author_id": 3}
    followers = [FOLLOWER]
    assert plan(_event("comment_added", comment=internal, followers=followers)) == []
    assert [e.recipient for e in plan(_event("created", followers=followers))] == ["mario@rossi.it"]


def test_the_merged_requester_is_told_the_surviving_ticket() -> None:
    event = _event("merged_into", close_reason="MERGED", merged_into=40)
    [email] = plan(event)
    assert email.template == "merged_into"
    rendered = Renderer().render(event, email)
    assert rendered.subject == "[#42] Richiesta unita alla #40: La stampante non stampa"
    assert "l'abbiamo unita a quella" in rendered.body and "#40" in rendered.body
    # An event from before ``merged_into`` was in the payload: the detail names it.
    del event["ticket"]["merged_into"]
    english = Renderer().render(event, PlannedEmail("merged_into", "x@rossi.it", "", "en"))
    assert "we have merged it into that one" in english.body and "#40" in english.subject


def test_the_surviving_requester_is_told_what_joined_their_ticket() -> None:
    event = _event("merged", followers=[FOLLOWER])
    event["ticket"]["status"] = "OPEN"
    event["detail"] = "#43 (Stampa lenta) merged into this ticket: stesso guasto; P-2 moved here"
    mine, copy = plan(event)
    assert (mine.template, mine.recipient) == ("merged_from", "mario@rossi.it")
    assert copy.recipient == "luisa@rossi.it"
    rendered = Renderer().render(event, mine)
    assert rendered.subject == "[#42] Unita a questa richiesta: #43"
    assert "la richiesta #43 (Stampa lenta) riguarda lo stesso problema" in rendered.body
    assert "stesso guasto" not in rendered.body  # the agent's reason stays on the desk
    english = Renderer().render(event, copy).body
    assert "request #43 (Stampa lenta) is about the same problem as request #42" in english


def test_a_followers_copy_says_why_it_came() -> None:
    public = {"visibility": "PUBLIC", "author_kind": "AGENT", "id": "c1", "author_id": 3}
    public |= {"author_name": "Anna", "body": "Riavvii la stampante."}
    event = _event("comment_added", comment=public, followers=[FOLLOWER])
    to_mario, to_luisa = plan(event)
    renderer = Renderer()
    assert "in copia" not in renderer.render(event, to_mario).body
    copy = renderer.render(event, to_luisa)
    assert "You receive this copy because you follow request #42 of Mario Rossi." in copy.body
    italian = renderer.render(event, PlannedEmail("agent_reply", "luisa@rossi.it", "Luisa", "it"))
    assert "Ricevi questo messaggio in copia perché segui la richiesta #42 di Mario Rossi." in (
        italian.body
    )
