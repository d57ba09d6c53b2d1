"""What the customer emails say a closed ticket allows, and where a merged one went.

The organisation's closed-ticket policy (``ticket.closed_ticket_policy``): ``FOLLOW_UP``,
the default (seed 003: a reply to a closed ticket opens a new request linked to it), or
``REOPEN`` (seed 004: a reply reactivates it). The solved and closed templates read
``reopen_policy``; the merge email reads ``merged_into_display_id``. A follower's copy
says why it came (``follower``, ``requester_name``): the ticket is someone else's request.
"""

from __future__ import annotations

import re

from services.common.mail_threading import display_id
from services.common.messages.tickets import TicketEventPayload

# Events from before ``ticket.merged_into`` existed name the target in their detail only.
_MERGED_INTO = re.compile(r"^merged into #(\d+)")


def policy_context(event: TicketEventPayload, recipient: str = "") -> dict[str, object]:
    """``reopen_policy``, ``merged_into_display_id`` ("" when not merged), and whether
    ``recipient`` gets the email as a follower of the ticket."""
    ticket = event["ticket"]
    requester = ticket["requester"]
    address = recipient.strip().lower()
    follower = bool(address) and address != (requester.get("email") or "").strip().lower()
    follower = follower and any(
        (p.get("email") or "").strip().lower() == address for p in ticket.get("followers") or []
    )
    merged = ticket.get("merged_into") or 0
    if not merged and event["type"] == "merged_into":
        found = _MERGED_INTO.match(event.get("detail") or "")
        merged = int(found.group(1)) if found else 0
    return {
        "reopen_policy": ticket.get("closed_ticket_policy") == "REOPEN",
        "merged_into_display_id": display_id(merged) if merged else "",
        "follower": follower,
        "requester_name": (requester.get("name") or "").strip(),
    }
