"""What the agent's ticket page shows: the conversation with internal notes and recorded
calls, the service-level clocks with their time left, the history, the contract's
calendar, and the choices of each action's form. Pure functions of the messages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import dev_escalation_pb2 as epb
from helpdesk.v1 import directory_pb2 as dpb
from services.gateway.downloads import INLINE_TYPES
from services.gateway.texts import CRITICALITY, PRIORITY, STATUS, moment, size, translate
from services.gateway.views import STATUS_KEYS, when

TARGETS = {
    pb.SLA_TARGET_TAKEN_IN_CHARGE: "Taken in charge",
    pb.SLA_TARGET_FIRST_FEEDBACK: "First feedback",
    pb.SLA_TARGET_RESOLUTION: "Resolution",
}
CLOCK_STATES = {
    pb.SLA_STATE_RUNNING: "Running",
    pb.SLA_STATE_PAUSED: "Paused",
    pb.SLA_STATE_MET: "Met",
    pb.SLA_STATE_BREACHED: "Breached",
}
KINDS = {
    pb.TICKET_KIND_QUESTION: "Question",
    pb.TICKET_KIND_INCIDENT: "Incident",
    pb.TICKET_KIND_BUG: "Bug",
    pb.TICKET_KIND_CHANGE_REQUEST: "Change request",
    pb.TICKET_KIND_QUOTE: "Quote",
    pb.TICKET_KIND_HARDWARE: "Hardware",
}
LEVELS = {pb.SUPPORT_LEVEL_L1: "First level", pb.SUPPORT_LEVEL_L2: "Second level"}
CHANNELS = {
    pb.CHANNEL_EMAIL: "Email",
    pb.CHANNEL_PHONE: "Phone",
    pb.CHANNEL_FAX: "Fax",
    pb.CHANNEL_PORTAL: "Portal",
    pb.CHANNEL_TELEGRAM: "Telegram",
    pb.CHANNEL_WHATSAPP: "WhatsApp",
    pb.CHANNEL_API: "API",
}
URGENCIES = {
    epb.PROG_URGENCY_HIGH: "High: blocking, developers at once",
    epb.PROG_URGENCY_AVERAGE: "Average",
    epb.PROG_URGENCY_LOW: "Low",
    epb.PROG_URGENCY_SECONDARY: "Secondary",
}
INTERACTIONS = {
    pb.INTERACTION_TYPE_PHONE_CALL: "Phone call",
    pb.INTERACTION_TYPE_REMOTE_SESSION: "Remote session",
}
DIRECTIONS = {
    pb.CALL_DIRECTION_INBOUND: "Inbound: the customer called",
    pb.CALL_DIRECTION_OUTBOUND: "Outbound: we called",
}
DIRECTION_SHORT = {pb.CALL_DIRECTION_INBOUND: "inbound", pb.CALL_DIRECTION_OUTBOUND: "outbound"}
# The statuses an agent sets, with their buttons' words (Solve, not "Solved").
STATUS_MOVES = {
    pb.TICKET_STATUS_OPEN: "Open",
    pb.TICKET_STATUS_PENDING: "Pending",
    pb.TICKET_STATUS_ON_HOLD: "On hold",
    pb.TICKET_STATUS_SOLVED: "Solve",
    pb.TICKET_STATUS_CLOSED: "Close",
}
POLICIES = {
    pb.CLOSED_TICKET_POLICY_FOLLOW_UP: "A reply to a closed ticket opens a new, linked one",
    pb.CLOSED_TICKET_POLICY_REOPEN: "A reply to a closed ticket reactivates it",
}
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
EVENTS = {
    "created": "Created",
    "follow_up_opened": "Opened as a follow-up",
    "assigned": "Assigned",
    "comment_added": "Comment",
    "status_changed": "Status changed",
    "solved": "Solved",
    "reopened": "Reopened",
    "reactivated": "Reactivated",
    "closed": "Closed",
    "sla_breached": "Service level breached",
    "merged_into": "Merged",
    "requalified": "Requalified",
    "priority_changed": "Priority changed",
    "answers_resent": "Answers resent",
}
MILESTONES = (
    ("received_at", "Received"),
    ("taken_in_charge_at", "Taken in charge"),
    ("first_feedback_at", "First feedback"),
    ("solved_at", "Solved"),
    ("closed_at", "Closed"),
)
K = TypeVar("K", bound=int)
# Past this share of its target a running clock shows amber (the queues use the same).
WARN_SHARE = 0.8


def _(locale: str, text: str, **values: object) -> str:
    words = translate(locale, text)
    return words.format(**values) if values else words


def business_duration(seconds: int, locale: str) -> str:
    """``2 h 05 min`` / ``45 min`` / ``0 min``: business time, never negative."""
    minutes = max(0, seconds) // 60
    hours, minutes = divmod(minutes, 60)
    if hours:
        return _(locale, "{h} h {m:02d} min", h=hours, m=minutes)
    return _(locale, "{m} min", m=minutes)


@dataclass
class ClockView:
    target: str
    state: str
    state_key: str  # running | paused | met | breached
    due: str
    due_iso: str
    left: str
    # ok | warn | bad: the colour, with the words to say it.
    tone: str


def clock_views(
    t: pb.Ticket, locale: str, target_seconds: Mapping[int, int] | None = None
) -> list[ClockView]:
    """The three clocks, taken in charge first; the time left is business time."""
    by_target = {c.target: c for c in t.sla}
    out = []
    for target, label in TARGETS.items():
        c = by_target.get(target)
        if c is None:
            continue
        due = when(c.due_at)
        state_key = CLOCK_STATES.get(c.state, "").lower()
        tone = "ok"
        if c.state == pb.SLA_STATE_BREACHED:
            tone = "bad"
            left = _(locale, "late by {d}", d=business_duration(c.breached_by_seconds, locale))
        elif c.state == pb.SLA_STATE_MET:
            left = "–"
        else:
            left = _(locale, "{d} left", d=business_duration(c.remaining_business_seconds, locale))
            total = (target_seconds or {}).get(target, 0)
            if total > 0 and c.remaining_business_seconds <= total * (1 - WARN_SHARE):
                tone = "warn"
        out.append(
            ClockView(
                target=_(locale, label),
                state=_(locale, CLOCK_STATES.get(c.state, "")),
                state_key=state_key,
                due=moment(due, locale) if due else "–",
                due_iso=due.isoformat() if due else "",
                left=left,
                tone=tone,
            )
        )
    return out


def target_seconds(plan: dpb.SlaPlan | None, priority: int) -> dict[int, int]:
    """The plan's targets for the ticket's priority, in business seconds."""
    if plan is None:
        return {}
    for p in plan.targets:
        if p.priority == priority:
            return {
                pb.SLA_TARGET_TAKEN_IN_CHARGE: p.taken_in_charge_minutes * 60,
                pb.SLA_TARGET_FIRST_FEEDBACK: p.first_feedback_minutes * 60,
                pb.SLA_TARGET_RESOLUTION: p.resolution_minutes * 60,
            }
    return {}


@dataclass
class Stamp:
    label: str
    text: str
    iso: str


def milestone_views(t: pb.Ticket, locale: str) -> list[Stamp]:
    out = []
    for name, label in MILESTONES:
        at = when(getattr(t.milestones, name))
        out.append(
            Stamp(_(locale, label), moment(at, locale) if at else "–", at.isoformat() if at else "")
        )
    return out


@dataclass
class FileView:
    id: str
    filename: str
    size: str
    # PNG, JPEG, GIF, WebP: previewed inline; never SVG.
    image: bool


@dataclass
class EntryView:
    id: str
    kind: str  # contact | agent | system
    internal: bool
    visibility: str
    author: str
    when: str
    when_iso: str
    body: str
    interaction: str = ""
    files: list[FileView] = field(default_factory=list)


def file_views(items: Iterable[pb.Attachment]) -> list[FileView]:
    return [
        FileView(a.id, a.filename, size(a.size), a.content_type.lower() in INLINE_TYPES)
        for a in items
    ]


def interaction_text(i: pb.Interaction, locale: str) -> str:
    """``Phone call, inbound, 15 min, with Mario Rossi``."""
    parts = [_(locale, INTERACTIONS.get(i.type, "Interaction"))]
    if i.direction in DIRECTION_SHORT:
        parts.append(_(locale, DIRECTION_SHORT[i.direction]))
    if i.duration_minutes:
        parts.append(_(locale, "{m} min", m=i.duration_minutes))
    if i.with_whom:
        parts.append(_(locale, "with {name}", name=i.with_whom))
    if i.notify_customer:
        parts.append(_(locale, "summary emailed"))
    return ", ".join(parts)


def conversation(t: pb.Ticket, comments: Sequence[pb.Comment], locale: str) -> list[EntryView]:
    """The request itself, then every comment in order, internal notes marked."""
    in_comments = {a.id for c in comments for a in c.attachments}
    received = when(t.milestones.received_at)
    entries = [
        EntryView(
            id="request",
            kind="contact",
            internal=False,
            visibility=_(locale, "Request"),
            author=t.requester_name or t.requester_email,
            when=moment(received, locale) if received else "",
            when_iso=received.isoformat() if received else "",
            body=t.description,
            files=file_views(a for a in t.attachments if a.id not in in_comments),
        )
    ]
    kinds = {pb.AUTHOR_KIND_CONTACT: "contact", pb.AUTHOR_KIND_AGENT: "agent"}
    for c in comments:
        created = when(c.created_at)
        internal = c.visibility == pb.COMMENT_VISIBILITY_INTERNAL
        entries.append(
            EntryView(
                id=c.id,
                kind=kinds.get(c.author_kind, "system"),
                internal=internal,
                visibility=_(locale, "Internal note" if internal else "Public"),
                author=c.author_name or _(locale, "system"),
                when=moment(created, locale) if created else "",
                when_iso=created.isoformat() if created else "",
                body=c.body,
                interaction=interaction_text(c.interaction, locale)
                if c.HasField("interaction") and c.interaction.type
                else "",
                files=file_views(c.attachments),
            )
        )
    return entries


@dataclass
class HistoryLine:
    what: str
    who: str
    when: str
    when_iso: str
    detail: str


def history_lines(events: Sequence[pb.TicketEvent], locale: str) -> list[HistoryLine]:
    """Newest first: the story of the ticket, each with who did it."""
    out = []
    for e in events:
        at = when(e.occurred_at)
        what = _(locale, EVENTS[e.type]) if e.type in EVENTS else e.type.replace("_", " ")
        moves = ""
        if e.from_status and e.to_status and e.from_status != e.to_status:
            moves = (
                f"{_(locale, STATUS.get(e.from_status, ''))} → "
                f"{_(locale, STATUS.get(e.to_status, ''))}"
            )
        detail = " · ".join(p for p in (moves, e.detail) if p)
        out.append(
            HistoryLine(
                what=what,
                who=e.actor_name or e.performed_by or _(locale, "system"),
                when=moment(at, locale) if at else "",
                when_iso=at.isoformat() if at else "",
                detail=detail,
            )
        )
    out.reverse()
    return out


def calendar_lines(calendar: dpb.Calendar, locale: str) -> list[str]:
    """``Mon 08:30–13:00, 14:30–18:30``, one line per open weekday."""
    days: dict[int, list[str]] = {}
    for i in calendar.intervals:
        days.setdefault(i.weekday, []).append(f"{i.start}–{i.end}")
    return [
        f"{_(locale, WEEKDAYS[d])} {', '.join(spans)}"
        for d, spans in sorted(days.items())
        if 0 <= d < len(WEEKDAYS)
    ]


def label(table: Mapping[K, str], value: int, locale: str) -> str:
    words = {int(k): v for k, v in table.items()}.get(value)
    return _(locale, words) if words is not None else "–"


def choices(table: Mapping[K, str], locale: str) -> list[tuple[K, str]]:
    return [(value, _(locale, words)) for value, words in table.items()]


@dataclass
class Facts:
    """The ticket's qualification in words."""

    status: str
    status_key: str
    priority: str
    criticality: str
    kind: str
    level: str
    channel: str
    hold: str


def facts(t: pb.Ticket, locale: str) -> Facts:
    hold = ""
    if t.status == pb.TICKET_STATUS_ON_HOLD:
        if t.hold_reason == pb.HOLD_REASON_THIRD_PARTY:
            ref = f" ({t.third_party_reference})" if t.third_party_reference else ""
            hold = _(locale, "Waiting for {name}", name=t.third_party_name + ref)
        elif t.hold_reason == pb.HOLD_REASON_DEVELOPMENT:
            hold = _(locale, "Waiting for development")
    return Facts(
        status=label(STATUS, t.status, locale),
        status_key=STATUS_KEYS.get(t.status, ""),
        priority=label(PRIORITY, t.priority, locale),
        criticality=label(CRITICALITY, t.criticality, locale),
        kind=label(KINDS, t.kind, locale),
        level=label(LEVELS, t.level, locale),
        channel=label(CHANNELS, t.channel, locale),
        hold=hold,
    )


def merge_candidates(t: pb.Ticket, found: Iterable[pb.Ticket]) -> list[pb.Ticket]:
    """Other open tickets of the same organisation: a merge stays within it."""
    return [
        c
        for c in found
        if c.id != t.id
        and c.organization_id == t.organization_id
        and c.status != pb.TICKET_STATUS_CLOSED
    ]
