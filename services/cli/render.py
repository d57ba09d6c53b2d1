"""Readable output of the CLI: tables, ticket details, and protobuf as JSON for ``--json``.

Much of what the CLI prints came from outside (a customer's mail, a chat message, a name
typed into the portal), so none of it reaches the terminal raw: ``terminal_safe`` drops
ANSI escape sequences and shows every other C0 / C1 control character as ``\\xNN``
(keeping line breaks and tabs), and ``dumps`` escapes the ones JSON leaves as they are.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Iterable, Sequence
from datetime import UTC
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from helpdesk.v1 import common_pb2, dev_escalation_pb2, directory_pb2, notify_pb2
from services.cli import enums

SUBJECT_WIDTH = 48

# Complete escape sequences, dropped: CSI (``ESC [`` or 8-bit ``0x9b``, parameters, one
# final byte: colours, cursor moves, clearing the screen); OSC, DCS, SOS, PM and APC
# strings up to their terminator (window titles, hyperlinks, clipboard writes); and
# two-character escapes (``ESC c`` resets the terminal). An unterminated string is left
# for ``_CONTROL``, so that no text after it is hidden.
_ANSI = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[ -/]*[0-OQ-WYZ\\`a-~]"  # not the introducers above: [ ] P X ^ _
)
# C0 and C1 control characters and DEL, except tab and line feed.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# What json.dumps(ensure_ascii=False) leaves raw: DEL and C1 (it escapes C0 itself).
_JSON_RAW = re.compile(r"[\x7f-\x9f]")


def terminal_safe(text: str) -> str:
    """``text`` with no effect on a terminal: escape sequences dropped, other control
    characters shown as ``\\xNN``; line breaks (CR LF read as LF) and tabs kept."""
    text = _ANSI.sub("", text.replace("\r\n", "\n"))
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


def one_line(text: str) -> str:
    """``terminal_safe`` on one line: runs of white space (line breaks too) as one space."""
    return " ".join(terminal_safe(text).split())


def as_json(message: Message) -> str:
    # ensure_ascii (the default): every control character is escaped.
    return json_format.MessageToJson(message, preserving_proto_field_name=True, indent=2)


def as_dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def dumps(value: Any) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return _JSON_RAW.sub(lambda m: f"\\u{ord(m[0]):04x}", text)


def when(ts: Timestamp) -> str:
    """Local time to the minute, or ``-`` when the timestamp is unset."""
    if ts.seconds == 0 and ts.nanos == 0:
        return "-"
    return ts.ToDatetime(tzinfo=UTC).astimezone().strftime("%Y-%m-%d %H:%M")


def clip(text: str, width: int) -> str:
    text = one_line(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Columns aligned on the widest cell; ``(none)`` for no rows."""
    cells = [[one_line(str(c)) for c in row] for row in rows]
    if not cells:
        return "(none)"
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def fields(pairs: Iterable[tuple[str, object]]) -> str:
    """``label  value`` lines, skipping empty values."""
    kept = [(k, one_line(str(v))) for k, v in pairs if v not in ("", None, 0, "-")]
    if not kept:
        return ""
    width = max(len(k) for k, _ in kept)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in kept)


def block(text: str, prefix: str) -> str:
    """A body of text from outside (a description, a comment), ``terminal_safe`` and
    indented by ``prefix``; only line feeds start lines."""
    lines = terminal_safe(text.rstrip()).split("\n")
    return "\n".join(prefix + line if line.strip() else line for line in lines)


def ref(name: str, ident: int) -> str:
    """``Mario Rossi (3)``; ``-`` for no one."""
    if not ident:
        return "-"
    return f"{name} ({ident})" if name else str(ident)


# Directory -------------------------------------------------------------------


def organizations(orgs: Sequence[directory_pb2.Organization]) -> str:
    return table(
        ["id", "name", "domains", "closed tickets", "locale"],
        (
            [
                o.id,
                o.name,
                ", ".join(o.email_domains),
                enums.CLOSED_TICKET_POLICY.label(o.closed_ticket_policy),
                o.locale,
            ]
            for o in orgs
        ),
    )


def organization(org: directory_pb2.Organization) -> str:
    return f"Organisation {org.id}: {org.name}\n" + fields(
        [
            ("email domains", ", ".join(org.email_domains)),
            ("closed tickets", enums.CLOSED_TICKET_POLICY.label(org.closed_ticket_policy)),
            ("locale", org.locale),
        ]
    )


def contacts(items: Sequence[directory_pb2.Contact]) -> str:
    return table(
        ["id", "name", "email", "phone", "role", "organisation", "locale"],
        (
            [
                c.id,
                c.name,
                c.email,
                c.phone or "-",
                enums.CONTACT_ROLE.label(c.role),
                ref(c.organization_name, c.organization_id),
                c.locale,
            ]
            for c in items
        ),
    )


def contact(c: directory_pb2.Contact) -> str:
    return f"Contact {c.id}: {c.name} <{c.email}>\n" + fields(
        [
            ("organisation", ref(c.organization_name, c.organization_id)),
            ("phone", c.phone),
            ("role", enums.CONTACT_ROLE.label(c.role)),
            ("locale", c.locale),
        ]
    )


def agents(items: Sequence[directory_pb2.Agent]) -> str:
    def duty(a: directory_pb2.Agent) -> str:
        on = [w for w, x in (("on call", a.on_call), ("lead", a.development_lead)) if x]
        return ", ".join(on) or "-"

    return table(
        ["id", "name", "email", "role", "duty"],
        ([a.id, a.name, a.email, enums.AGENT_ROLE.label(a.role), duty(a)] for a in items),
    )


def agent(a: directory_pb2.Agent) -> str:
    return f"Agent {a.id}: {a.name} <{a.email}>, {enums.AGENT_ROLE.label(a.role)}"


# Tickets ---------------------------------------------------------------------


def display_id(t: common_pb2.Ticket) -> str:
    return t.display_id or f"#{t.id}"


def tickets(items: Sequence[common_pb2.Ticket]) -> str:
    return table(
        [
            "id",
            "status",
            "priority",
            "sla",
            "next due",
            "organisation",
            "requester",
            "assignee",
            "subject",
            "updated",
        ],
        (
            [
                display_id(t),
                enums.TICKET_STATUS.label(t.status),
                enums.PRIORITY.label(t.priority),
                "BREACHED" if t.sla_breached else "ok",
                next_due(t) or "-",
                ref(t.organization_name, t.organization_id),
                t.requester_email or ref(t.requester_name, t.requester_id),
                ref(t.assignee_name, t.assignee_id),
                clip(t.subject, SUBJECT_WIDTH),
                when(t.updated_at),
            ]
            for t in items
        ),
    )


def ticket_summary(t: common_pb2.Ticket) -> str:
    """One line: ``#42 OPEN HIGH  Subject``."""
    return (
        f"{display_id(t)}  {enums.TICKET_STATUS.label(t.status)}"
        f"  {enums.PRIORITY.label(t.priority)}  {t.subject}"
    )


def next_due(t: common_pb2.Ticket) -> str:
    """``2026-12-02 11:00 first-feedback``: the nearest due instant and its target."""
    if not t.HasField("next_due_at") or (t.next_due_at.seconds, t.next_due_at.nanos) == (0, 0):
        return ""
    target = enums.SLA_TARGET.label(t.next_due_target)
    word = target.lower().replace("_", "-") if target != "-" else ""
    return f"{when(t.next_due_at)} {word}".rstrip()


def follower_line(f: common_pb2.Follower) -> str:
    """``  Luca Bianchi <luca@acme.it> (12)  AGENT  2026-12-02 10:00``."""
    name = f"{f.name} <{f.email}>" if f.name else f.email
    return "  " + "  ".join(
        x
        for x in (f"{name} ({f.contact_id})" if f.contact_id else name, f.source, when(f.added_at))
        if x and x != "-"
    )


def interaction(i: common_pb2.Interaction) -> str:
    """``[phone call, inbound, with Mario Rossi, 15 min, customer emailed]``."""
    kind = enums.INTERACTION_TYPE.label(i.type).lower().replace("_", " ")
    parts = [kind]
    if i.direction:
        parts.append(enums.CALL_DIRECTION.label(i.direction).lower())
    whom = i.with_whom or (f"contact {i.contact_id}" if i.contact_id else "")
    if whom:
        parts.append(f"with {whom}")
    if i.duration_minutes:
        parts.append(f"{i.duration_minutes} min")
    if i.notify_customer:
        parts.append("customer emailed")
    return "[" + ", ".join(parts) + "]"


def _sla(clocks: Sequence[common_pb2.SlaClock]) -> str:
    rows = []
    for c in clocks:
        state = enums.SLA_STATE.label(c.state)
        if c.breached_by_seconds:
            state += f" by {c.breached_by_seconds // 60} min"
        rows.append([enums.SLA_TARGET.label(c.target), when(c.due_at), state])
    return textwrap.indent(table(["target", "due", "state"], rows), "  ")


def product(t: common_pb2.Ticket) -> str:
    """``Gestionale 4.2 on Windows 11``."""
    text = " ".join(p for p in (t.product, t.version) if p)
    if t.os:
        text = f"{text} on {t.os}" if text else t.os
    return text


def ticket(t: common_pb2.Ticket, comments: Sequence[common_pb2.Comment] = ()) -> str:
    """Details, milestones, SLA clocks and comments of one ticket."""
    requester = (
        f"{t.requester_name} <{t.requester_email}>"
        if t.requester_email
        else ref(t.requester_name, t.requester_id)
    )
    out = [
        f"{display_id(t)}  {t.subject}",
        fields(
            [
                ("status", enums.TICKET_STATUS.label(t.status)),
                ("close reason", enums.CLOSE_REASON.label(t.close_reason)),
                ("priority", enums.PRIORITY.label(t.priority)),
                ("criticality", enums.CRITICALITY.label(t.criticality)),
                ("level", enums.SUPPORT_LEVEL.label(t.level)),
                ("kind", enums.TICKET_KIND.label(t.kind)),
                ("channel", enums.CHANNEL.label(t.channel)),
                ("organisation", ref(t.organization_name, t.organization_id)),
                ("requester", requester),
                ("phone", t.phone),
                ("callback", t.callback_number),
                ("attachments", "requested by email" if t.attachments_requested_by_email else ""),
                ("assignee", ref(t.assignee_name, t.assignee_id)),
                ("next due", next_due(t)),
                ("waiting for", third_party(t)),
                ("hours spent", f"{t.hours_spent:g}" if t.hours_spent else ""),
                ("merged into", f"#{t.merged_into}" if t.merged_into else ""),
                (
                    "programming",
                    ", ".join(
                        f"P-{x.id} {x.status}" + (" (detached)" if x.detached else "")
                        for x in t.programming_tickets
                    ),
                ),
                ("product", product(t)),
                ("follow-up of", f"#{t.follow_up_of}" if t.follow_up_of else ""),
                ("follow-ups", ", ".join(f"#{i}" for i in t.follow_ups)),
                ("reopened", f"{t.reopen_count} times" if t.reopen_count else ""),
                ("auto-close at", when(t.auto_close_at)),
                ("workflow", t.workflow_id),
            ]
        ),
        "",
        "Milestones",
        fields(
            [
                ("received", when(t.milestones.received_at)),
                ("taken in charge", when(t.milestones.taken_in_charge_at)),
                ("first feedback", when(t.milestones.first_feedback_at)),
                ("solved", when(t.milestones.solved_at)),
                ("closed", when(t.milestones.closed_at)),
            ]
        ),
    ]
    if t.sla:
        out += ["", "SLA" + ("  (breached)" if t.sla_breached else ""), _sla(t.sla)]
    if t.followers:
        out += ["", f"Followers ({len(t.followers)})"]
        out += [follower_line(f) for f in t.followers]
    if t.attachments:
        out += ["", "Attachments"]
        out += [f"  {a.filename}  {a.content_type}  {a.size} bytes" for a in t.attachments]
    if t.description:
        out += ["", "Description", block(t.description, "  ")]
    out += ["", f"Comments ({len(comments)})"]
    for c in comments:
        out.append(comment_line(c))
        out.append(block(c.body, "    "))
    return "\n".join(out)


def who(kind: int, ident: int, name: str) -> str:
    """``agent Anna (3)``, ``contact Mario Rossi (8)``, ``system``."""
    word = enums.AUTHOR_KIND.label(kind).lower().strip("-")
    if ident:
        return f"{word} {ref(name, ident)}".strip()
    if name and name.lower() != word:
        return f"{word} {name}".strip()
    return word or "-"


def comment_line(c: common_pb2.Comment) -> str:
    internal = c.visibility == common_pb2.COMMENT_VISIBILITY_INTERNAL
    line = f"  {when(c.created_at)}  {who(c.author_kind, c.author_id, c.author_name)}" + (
        "  [internal]" if internal else ""
    )
    if c.HasField("interaction"):
        line += "  " + interaction(c.interaction)
    return line + (f"  id {c.id}" if c.id else "")


def third_party(t: common_pb2.Ticket) -> str:
    """``Telecom Italia (case TT-1)`` while ON_HOLD for a third party."""
    if not t.third_party_name:
        return ""
    case = f" (case {t.third_party_reference})" if t.third_party_reference else ""
    return t.third_party_name + case


def history(events: Sequence[common_pb2.TicketEvent]) -> str:
    return table(
        ["when", "event", "by", "from", "to", "detail"],
        (
            [
                when(e.occurred_at),
                e.type,
                who(e.actor_kind, e.actor_id, e.actor_name),
                enums.TICKET_STATUS.label(e.from_status),
                enums.TICKET_STATUS.label(e.to_status),
                clip(e.detail, SUBJECT_WIDTH),
            ]
            for e in events
        ),
    )


def notifications(items: Sequence[notify_pb2.Notification]) -> str:
    return table(
        ["when", "ticket", "event", "channel", "recipient", "status", "subject"],
        (
            [
                when(n.created_at),
                f"#{n.ticket_id}" if n.ticket_id else "-",
                n.event_type,
                n.channel,
                n.recipient,
                enums.DELIVERY_STATUS.label(n.status)
                + (f" ({clip(n.error, 40)})" if n.error else ""),
                clip(n.subject, SUBJECT_WIDTH),
            ]
            for n in items
        ),
    )


# Programming tickets (the developers' queue) -------------------------------------


def prog_id(t: dev_escalation_pb2.ProgrammingTicket) -> str:
    return f"P-{t.id}"


def prog_tickets(items: Sequence[dev_escalation_pb2.ProgrammingTicket]) -> str:
    """The queue, in the service's order: urgency, then age."""
    return table(
        ["id", "urgency", "status", "support", "developer", "release", "title", "created"],
        (
            [
                prog_id(t),
                enums.PROG_URGENCY.label(t.urgency),
                enums.PROG_STATUS.label(t.status),
                f"#{t.support_ticket_id}" if t.support_ticket_id else "-",
                t.assignee_id or "-",
                t.target_release or "-",
                clip(t.title, SUBJECT_WIDTH),
                when(t.created_at),
            ]
            for t in items
        ),
    )


def prog_summary(t: dev_escalation_pb2.ProgrammingTicket) -> str:
    return (
        f"{prog_id(t)} {enums.PROG_STATUS.label(t.status)}"
        f"  {enums.PROG_URGENCY.label(t.urgency)}  {clip(t.title, SUBJECT_WIDTH)}"
    )


def prog_ticket(t: dev_escalation_pb2.ProgrammingTicket) -> str:
    """Details of one programming ticket."""
    window = ""
    if t.HasField("remote_update"):
        window = f"{when(t.remote_update.starts_at)} - {when(t.remote_update.ends_at)}"
    out = [
        f"{prog_id(t)}  {t.title}",
        fields(
            [
                ("status", enums.PROG_STATUS.label(t.status)),
                ("urgency", enums.PROG_URGENCY.label(t.urgency)),
                ("support ticket", f"#{t.support_ticket_id}" if t.support_ticket_id else ""),
                ("organisation", t.organization_id),
                ("developer", t.assignee_id),
                ("release", t.target_release),
                ("planned", when(t.planned_date)),
                ("start work by", when(t.start_work_due)),
                ("lead told", "yes" if t.escalated_to_lead else ""),
                ("fixed in", t.fix_version),
                ("remote update", window),
                ("cancelled", t.cancel_reason),
                ("created", when(t.created_at)),
                ("updated", when(t.updated_at)),
                ("workflow", t.workflow_id),
            ]
        ),
    ]
    for title, body in (
        ("Technical description", t.technical_description),
        ("Fix notes", t.fix_notes),
        ("Release notes", t.release_notes),
    ):
        if body:
            out += ["", title, block(body, "  ")]
    return "\n".join(out)
