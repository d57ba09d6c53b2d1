"""Who besides the requester gets a ticket's customer emails: its followers (CC).

A follower gets what the requester gets about the ticket's progress: the desk's public
answers (also the summary of a call or remote session the agent chose to mail) and the
status emails (solved, closed, the pending reminder, the update shipped, a merge), each
saying that it is a follower's copy. Never an internal note (no email is planned for
one), never the acknowledgement of a request they did not send, never the satisfaction
survey (the requester's to answer). Each follower is a delivery of its own: one row per
recipient in the delivery log.
"""

from __future__ import annotations

from services.common.messages.tickets import PersonPayload, TicketEventPayload

FOLLOWER_TEMPLATES = frozenset(
    {
        "agent_reply",
        "interaction_summary",  # a public answer by phone or remote session, when mailed
        "solved",
        "closed",
        "closed_confirmed",
        "closed_verified",
        "closed_auto",
        "pending_reminder",
        "development_update_shipped",
        "merged_into",
        "merged_from",
    }
)


def followers(event: TicketEventPayload) -> list[PersonPayload]:
    """The ticket's followers, the requester's own address left out."""
    ticket = event["ticket"]
    requester = (ticket["requester"].get("email") or "").strip().lower()
    return [
        person
        for person in ticket.get("followers") or []
        if (person.get("email") or "").strip().lower() != requester
    ]
