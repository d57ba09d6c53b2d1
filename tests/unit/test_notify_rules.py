"""Which emails a ticket event produces (pure rules of the notify service)."""

from __future__ import annotations

from typing import Any

import pytest

from services.notify.rules import plan

pytestmark = pytest.mark.unit


def _event(kind: str, email: str = "mario@rossi.it", **extra: Any) -> Any:
    return {
        "event_id": "e1",
        "type": kind,
        "ticket_id": 1,
        "ticket": {
            "requester": {"email": email, "name": "Mario", "locale": "en"},
            "close_reason": extra.pop("close_reason", ""),
        },
        "comment": extra.pop("comment", None),
    }


@pytest.mark.parametrize(
    ("kind", "extra", "template"),
    [
        ("created", {}, "created"),
        ("solved", {}, "solved"),
        ("closed", {"close_reason": "AUTO_CLOSED"}, "closed_auto"),
        (
            "comment_added",
            {"comment": {"visibility": "PUBLIC", "author_kind": "AGENT"}},
            "agent_reply",
        ),
        ("comment_added", {"comment": {"visibility": "INTERNAL", "author_kind": "AGENT"}}, None),
        ("comment_added", {"comment": {"visibility": "PUBLIC", "author_kind": "CONTACT"}}, None),
        ("assigned", {}, None),
    ],
)
def test_templates_by_event(kind: str, extra: dict[str, Any], template: str | None) -> None:
    planned = plan(_event(kind, **extra))
    # A closed ticket also gets the satisfaction survey (seed 002), as a second email.
    survey = ["survey"] if kind == "closed" else []
    assert [p.template for p in planned] == ([template, *survey] if template else [])
    assert all(p.locale == "en" for p in planned)


@pytest.mark.parametrize(
    "robot", ["MAILER-DAEMON@rossi.it", "postmaster@rossi.it", "noreply@x.it", "no-reply@x.it"]
)
def test_never_mail_robots(robot: str) -> None:
    assert plan(_event("created", robot)) == []
