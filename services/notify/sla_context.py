"""Template variables for the service-level messages: which target, when it is
due, and when the desk opens for a request that arrived out of hours."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from services.common.messages.tickets import TicketEventPayload
from services.notify.local_time import format_instant

TARGET_WORDS = {
    "it": {
        "TAKEN_IN_CHARGE": "presa in carico",
        "FIRST_FEEDBACK": "primo riscontro",
        "RESOLUTION": "risoluzione",
    },
    "en": {
        "TAKEN_IN_CHARGE": "taken in charge",
        "FIRST_FEEDBACK": "first feedback",
        "RESOLUTION": "resolution",
    },
}
# "FIRST_FEEDBACK at 80%: due 2026-11-30T10:55:00+00:00" / "FIRST_FEEDBACK target missed
# (due 2026-11-30T10:55:00+00:00, 12m late)", as the ticket workflow writes them.
_DETAIL = re.compile(r"^(?P<target>[A-Z_]+)\b.*?due (?P<due>[0-9T:+.\-]+)")


def sla_context(event: TicketEventPayload, locale: str) -> dict[str, Any]:
    """``sla_target`` / ``sla_due`` for warnings and breaches; ``opens_at`` (or "") when the
    request arrived while the desk was closed."""
    words = TARGET_WORDS["en" if locale == "en" else "it"]
    found = _DETAIL.match(event.get("detail") or "")
    target, due = ("", "")
    if found and found["target"] in words:
        target = words[found["target"]]
        try:
            due = format_instant(found["due"], locale)
        except ValueError:
            due = ""
    ticket = event["ticket"]
    opens_at = ""
    start, received = ticket.get("clocks_start_at"), ticket.get("received_at")
    if start and received and datetime.fromisoformat(start) > datetime.fromisoformat(received):
        opens_at = format_instant(start, locale)
    return {"sla_target": target, "sla_due": due, "opens_at": opens_at}
