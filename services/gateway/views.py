"""What the pages show of a ticket: its state in plain words, and its conversation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from helpdesk.v1 import common_pb2 as pb
from services.gateway.texts import CRITICALITY, PRIORITY, STATUS, day, moment, size, translate

STATUS_KEYS = {
    pb.TICKET_STATUS_NEW: "new",
    pb.TICKET_STATUS_OPEN: "open",
    pb.TICKET_STATUS_PENDING: "pending",
    pb.TICKET_STATUS_ON_HOLD: "on_hold",
    pb.TICKET_STATUS_SOLVED: "solved",
    pb.TICKET_STATUS_CLOSED: "closed",
}


def when(ts: Timestamp) -> datetime | None:
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.ToDatetime(tzinfo=UTC)


@dataclass
class FileView:
    id: str
    filename: str
    size: str


@dataclass
class MessageView:
    kind: str  # contact | agent | system
    author: str
    role: str
    when: str
    when_iso: str
    body: str
    attachments: list[FileView] = field(default_factory=list)


@dataclass
class TicketView:
    status: str
    status_key: str
    next_step: str
    criticality: str
    priority: str
    received: str
    received_iso: str
    can_confirm: bool
    # "reply": a comment goes on this ticket; "follow_up": it opens a linked new one; "": none.
    reply_mode: str
    reply_note: str
    messages: list[MessageView]


@dataclass
class RowView:
    id: int
    display_id: str
    subject: str
    status: str
    status_key: str
    priority: str
    requester: str
    requester_id: int
    updated: str
    updated_iso: str


def _files(items: list[pb.Attachment]) -> list[FileView]:
    return [FileView(a.id, a.filename, size(a.size)) for a in items]


def row_view(t: pb.Ticket, locale: str) -> RowView:
    updated = when(t.updated_at) or when(t.milestones.received_at)
    return RowView(
        id=t.id,
        display_id=t.display_id or f"#{t.id}",
        subject=t.subject,
        status=translate(locale, STATUS.get(t.status, "")),
        status_key=STATUS_KEYS.get(t.status, ""),
        priority=translate(locale, PRIORITY.get(t.priority, "")),
        requester=t.requester_name,
        requester_id=t.requester_id,
        updated=moment(updated, locale) if updated else "",
        updated_iso=updated.isoformat() if updated else "",
    )


def next_step(t: pb.Ticket, policy: int, locale: str) -> str:
    """What happens next, as seed 003 explains each status to the customer."""

    def _(text: str, **values: str) -> str:
        words = translate(locale, text)
        return words.format(**values) if values else words

    status = t.status
    if status == pb.TICKET_STATUS_NEW:
        return _("We have received the request; the help desk is choosing who will handle it.")
    if status == pb.TICKET_STATUS_OPEN:
        if t.assignee_name:
            return _("{name} is working on it.", name=t.assignee_name)
        return _("A technician is working on it.")
    if status == pb.TICKET_STATUS_PENDING:
        return _("We are waiting for your answer: reply below with what was asked.")
    if status == pb.TICKET_STATUS_ON_HOLD:
        if t.hold_reason == pb.HOLD_REASON_THIRD_PARTY and t.third_party_name:
            return _(
                "We are waiting for {name}, who must act before we can go on.",
                name=t.third_party_name,
            )
        return _("The request is with development; we will write as soon as the update is ready.")
    if status == pb.TICKET_STATUS_SOLVED:
        closes = when(t.auto_close_at)
        if closes:
            return _(
                "The help desk has solved it. Confirm the solution, or reopen it if the problem "
                "is still there. It closes automatically on {date} unless you answer.",
                date=day(closes, locale),
            )
        return _(
            "The help desk has solved it. Confirm the solution, or reopen it if the problem is "
            "still there."
        )
    if t.merged_into:
        return _("Merged into {id}: the conversation goes on there.", id=f"#{t.merged_into}")
    if policy == pb.CLOSED_TICKET_POLICY_REOPEN:
        return _("Closed. Write a comment below and the ticket is reactivated.")
    return _("Closed: it cannot be reopened. If the problem comes back, a new request is needed.")


def ticket_view(
    t: pb.Ticket, comments: list[pb.Comment], policy: int, viewer_id: int, locale: str
) -> TicketView:
    """The ticket page: the request itself first, then every public comment in order."""
    in_comments = {a.id for c in comments for a in c.attachments}
    received = when(t.milestones.received_at)

    def role(kind: int, author_id: int) -> tuple[str, str]:
        if kind == pb.AUTHOR_KIND_AGENT:
            return "agent", translate(locale, "help desk")
        if kind == pb.AUTHOR_KIND_CONTACT:
            mine = author_id == viewer_id
            return "contact", translate(locale, "you" if mine else "customer")
        return "system", translate(locale, "system")

    kind, label = role(pb.AUTHOR_KIND_CONTACT, t.requester_id)
    messages = [
        MessageView(
            kind=kind,
            author=t.requester_name,
            role=label,
            when=moment(received, locale) if received else "",
            when_iso=received.isoformat() if received else "",
            body=t.description,
            attachments=_files([a for a in t.attachments if a.id not in in_comments]),
        )
    ]
    for c in comments:
        created = when(c.created_at)
        kind, label = role(c.author_kind, c.author_id)
        messages.append(
            MessageView(
                kind=kind,
                author=c.author_name or label,
                role=label,
                when=moment(created, locale) if created else "",
                when_iso=created.isoformat() if created else "",
                body=c.body,
                attachments=_files(list(c.attachments)),
            )
        )
    closed = t.status == pb.TICKET_STATUS_CLOSED
    if closed and t.merged_into:
        reply_mode = ""
    elif closed and policy != pb.CLOSED_TICKET_POLICY_REOPEN:
        reply_mode = "follow_up"
    else:
        reply_mode = "reply"
    note = ""
    if t.status == pb.TICKET_STATUS_SOLVED:
        note = translate(locale, "Writing here reopens it.")
    elif closed and reply_mode == "reply":
        note = translate(locale, "A comment reactivates it.")
    return TicketView(
        status=translate(locale, STATUS.get(t.status, "")),
        status_key=STATUS_KEYS.get(t.status, ""),
        next_step=next_step(t, policy, locale),
        criticality=translate(locale, CRITICALITY.get(t.criticality, "")) or "–",
        priority=translate(locale, PRIORITY.get(t.priority, "")) or "–",
        received=moment(received, locale) if received else "",
        received_iso=received.isoformat() if received else "",
        can_confirm=t.status == pb.TICKET_STATUS_SOLVED,
        reply_mode=reply_mode,
        reply_note=note,
        messages=messages,
    )
