"""Which emails a ticket event produces, for whom, in which language."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from services.common.messages.tickets import PersonPayload, TicketEventPayload
from services.notify.recipients import FOLLOWER_TEMPLATES, followers

log = logging.getLogger(__name__)

LOCALES = ("it", "en")
# Automatic mail never goes to these (RFC 3834 spirit: no loops with robots).
NEVER_MAIL_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster", "noreply", "no-reply"})
DEFAULT_LOCALE = "it"
# Answers to a customer's message (RFC 3834 "auto-replied"): rate-limited per address and
# never sent to automatic mail. Everything else notify sends is "auto-generated".
# The surviving ticket's requester, told that another request was merged into theirs.
MERGED_TEMPLATE = "merged_from"
# The answer to a mail whose files were left out of its ticket (intake's event).
REFUSED_ATTACHMENTS_TEMPLATE = "attachments_refused"
AUTO_REPLY_TEMPLATES = frozenset(
    {"created", "follow_up_opened", "prospect_reply", REFUSED_ATTACHMENTS_TEMPLATE}
)

# The summary of a phone call or remote session, when the agent chose to email it.
INTERACTION_TEMPLATE = "interaction_summary"

# Template of the closed email, by ``ticket.close_reason``.
CLOSED_TEMPLATES = {
    "CONFIRMED": "closed_confirmed",
    "VERIFIED": "closed_verified",
    "AUTO_CLOSED": "closed_auto",
}
# Seed 002's satisfaction survey: a second email on ``closed`` (its own Message-ID, so that
# a reply to it is recognisable), unless the ticket closed by merging into another.
SURVEY_TEMPLATE = "survey"
NO_SURVEY_CLOSE_REASONS = frozenset({"MERGED"})
# Second-level events whose email goes to the ticket's assignee (an agent), not the requester.
ASSIGNEE_TEMPLATES = frozenset(
    {"third_party_reminder", "programming_ticket_cancelled", "sla_warning"}
)
# Service-level breaches go to the team leads.
TEAM_LEAD_TEMPLATES = frozenset({"sla_breached"})


@dataclass(frozen=True)
class PlannedEmail:
    """One email to render and send."""

    template: str
    recipient: str  # normalised address (lower case)
    recipient_name: str
    locale: str


def locale_of(requested: str) -> str:
    """``en`` for English contacts, Italian for everyone else."""
    return requested if requested in LOCALES else DEFAULT_LOCALE


def template_for(event: TicketEventPayload) -> str | None:
    """The template an event calls for, or None when it sends nothing."""
    kind = event["type"]
    if kind in (
        "created",
        "follow_up_opened",
        "solved",
        "development_update_shipped",
        "pending_reminder",
        "merged_into",  # the merged ticket's requester: where the conversation goes on
    ):
        return kind
    if kind == "merged":  # the surviving ticket's requester: another request joined theirs
        return MERGED_TEMPLATE
    if kind in ASSIGNEE_TEMPLATES or kind in TEAM_LEAD_TEMPLATES:
        return kind
    if kind == "comment_added":
        comment = event.get("comment")
        if (
            comment is not None
            and comment["visibility"] == "PUBLIC"
            and comment["author_kind"] == "AGENT"
        ):
            # A phone call or remote session: its summary is mailed only when the agent
            # asked for it (seed 000).
            interaction = comment.get("interaction")
            if interaction is not None:
                return INTERACTION_TEMPLATE if interaction["notify_customer"] else None
            return "agent_reply"
        return None
    if kind == "closed":
        return CLOSED_TEMPLATES.get(event["ticket"]["close_reason"], "closed")
    return None


# An URGENT ticket (seed 001: CRITICAL) pages the agents on call at once.
URGENT_PAGE_TEMPLATE = "urgent_page"
PAGING_EVENTS = frozenset({"created", "follow_up_opened", "priority_changed"})


def plan(event: TicketEventPayload) -> list[PlannedEmail]:
    """The emails ``event`` produces: one to the requester (the assignee for
    ``ASSIGNEE_TEMPLATES``, the team leads for a breach), on ``closed`` the satisfaction
    survey after it, and the on-call page of an URGENT ticket."""
    pages: list[PlannedEmail] = []
    ticket = event["ticket"]
    if event["type"] in PAGING_EVENTS and ticket.get("priority") == "URGENT":
        pages = to_people(event, URGENT_PAGE_TEMPLATE, ticket.get("on_call") or [])
    return with_followers(event, _plan_for_ticket(event)) + pages


def with_followers(event: TicketEventPayload, emails: list[PlannedEmail]) -> list[PlannedEmail]:
    """``emails`` and, for each one a follower gets too (``FOLLOWER_TEMPLATES``), a copy
    to each of the ticket's followers (``services.notify.recipients``)."""
    people = followers(event)
    if not people:
        return emails
    copies = [
        copy
        for email in emails
        if email.template in FOLLOWER_TEMPLATES
        for copy in to_people(event, email.template, people)
        if copy.recipient != email.recipient
    ]
    return emails + copies


def _plan_for_ticket(event: TicketEventPayload) -> list[PlannedEmail]:
    template = template_for(event)
    if template is None:
        return []
    requester = event["ticket"]["requester"]
    if template in TEAM_LEAD_TEMPLATES:
        return to_people(event, template, event["ticket"].get("team_leads") or [])
    if template in ASSIGNEE_TEMPLATES:
        assignee = event["ticket"].get("assignee")
        if assignee is None:
            log.info("event %s (%s): no assignee, nothing sent", event["event_id"], template)
            return []
        requester = assignee
    address = (requester.get("email") or "").strip().lower()
    if address.split("@", 1)[0] in NEVER_MAIL_LOCAL_PARTS:
        log.info("event %s: %s is a robot address, nothing sent", event["event_id"], address)
        return []
    if "@" not in address:
        log.warning(
            "event %s (%s) of ticket %s: requester has no email address, nothing sent",
            event["event_id"],
            event["type"],
            event["ticket_id"],
        )
        return []
    emails = [
        PlannedEmail(
            template=template,
            recipient=address,
            recipient_name=(requester.get("name") or "").strip(),
            locale=locale_of(requester.get("locale") or ""),
        )
    ]
    if event["type"] == "closed" and event["ticket"]["close_reason"] not in NO_SURVEY_CLOSE_REASONS:
        emails.append(replace(emails[0], template=SURVEY_TEMPLATE))
    return emails


def to_people(
    event: TicketEventPayload, template: str, people: list[PersonPayload]
) -> list[PlannedEmail]:
    """One email to each of ``people`` with a usable, non-robot address, each once."""
    emails: dict[str, PlannedEmail] = {}
    for person in people:
        address = (person.get("email") or "").strip().lower()
        if "@" not in address or address.split("@", 1)[0] in NEVER_MAIL_LOCAL_PARTS:
            continue
        emails.setdefault(
            address,
            PlannedEmail(
                template=template,
                recipient=address,
                recipient_name=(person.get("name") or "").strip(),
                locale=locale_of(person.get("locale") or ""),
            ),
        )
    if not emails:
        log.info("event %s (%s): nobody to tell", event["event_id"], template)
    return list(emails.values())
