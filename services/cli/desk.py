"""The desk's daily work from the command line: every change an agent makes to a ticket,
the front desk's lookups, agents' duty and alerts, planned maintenance windows, sales
requests and customers' chat groups.

    helpdesk ticket escalate ID --title T --urgency high [--description TEXT|-]
    helpdesk ticket detach ID P-ID --reason R
    helpdesk ticket merge ID --into TARGET --reason R
    helpdesk ticket log-time ID HOURS [--note N]            (1.5, 1,5, 1h30, 90m)
    helpdesk ticket priority ID PRIORITY --reason R
    helpdesk ticket requalify ID [--criticality C] [--kind K] [--level L] [--product P]
                                 [--version V] [--os OS] --reason R
    helpdesk ticket third-party ID --name VENDOR [--reference CASE]
    helpdesk ticket resend ID [--comment COMMENT_ID] [--to EMAIL]
    helpdesk ticket search [WORDS ...] [--status S ...] [--org ID] [--product P]
    helpdesk ticket similar ID
    helpdesk ticket follow | unfollow ID (--contact ID | --email EMAIL)
    helpdesk ticket record-call ID [--type remote-session] [--direction inbound|outbound]
                                   (--contact ID | --with TEXT) --duration 15m --summary TEXT|-
                                   [--internal] [--notify-customer]
    helpdesk agent duty ID [--on-call | --off-call] [--lead | --no-lead]
    helpdesk agent notifications ID [--off KIND[:CHANNEL] ...] [--on KIND[:CHANNEL] ...]
    helpdesk agent link-im ID telegram|whatsapp ACCOUNT | --unlink
    helpdesk contact find [--phone N] [--email E] [--name N]
    helpdesk contact set-phone ID NUMBER
    helpdesk maintenance plan --org ID --medium file-transfer --start ISO --end ISO --summary S
    helpdesk maintenance start | finish ID [--note N]
    helpdesk maintenance list [--org ID] [--status planned started]
    helpdesk sales-request list
    helpdesk im-group register telegram|whatsapp CHAT_ID --org ID

Verbs that change something send a fresh request ID where the request has one; ``--as``
names the agent who acts (needed with the admin token; a logged-in agent acts as
themselves).
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from helpdesk.v1 import common_pb2, directory_pb2, intake_pb2, sales_pb2, tickets_pb2
from services.cli import enums, render
from services.cli.args import (
    Verbs,
    enum_list,
    local_datetime,
    positive_int,
    prog_ticket_id,
    ticket_id,
)
from services.cli.client import Client, CliError
from services.cli.commands import (
    PAGE_SIZE,
    Command,
    Result,
    agent_actor,
    pages,
    read_body,
    request_id,
)

if TYPE_CHECKING:
    # How main.py adds one verb to a group: (group, name, function, help) -> its parser.
    Leaf = Callable[
        [argparse._SubParsersAction[argparse.ArgumentParser], str, Command, str],
        argparse.ArgumentParser,
    ]

MAX_HOURS = 24.0  # LogTime: at most 24 h per entry
MAX_MINUTES = 24 * 60
FIND_PAGE_SIZE = 100  # FindContacts: at most 100 a page

# Argument types ------------------------------------------------------------------

_DURATION = re.compile(r"(?:(?P<h>\d+)\s*h\s*(?:(?P<hm>\d{1,2})\s*m?)?|(?P<m>\d+)\s*m(?:in)?)")


def _spelt_minutes(text: str) -> int | None:
    """``1h30``, ``2h``, ``90m``, ``45min`` in minutes; None for a plain number."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        return None
    if match["m"] is not None:
        return int(match["m"])
    extra = int(match["hm"] or 0)
    if extra >= 60:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (minutes past the hour)")
    return int(match["h"]) * 60 + extra


def hours(text: str) -> float:
    """Hours spent: ``1.5``, ``1,5``, ``1h30``, ``90m``; more than 0, at most 24."""
    spelt = _spelt_minutes(text)
    if spelt is not None:
        value = spelt / 60
    else:
        try:
            value = float(text.strip().replace(",", "."))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"not a number of hours: {text!r} (e.g. 1.5, 1h30, 90m)"
            ) from None
    if not math.isfinite(value) or not 0 < value <= MAX_HOURS:
        raise argparse.ArgumentTypeError(f"hours must be more than 0 and at most 24: {text!r}")
    return round(value, 4)


def minutes(text: str) -> int:
    """A duration in whole minutes: ``15``, ``15m``, ``1h``, ``1h30``; 1 to 1440."""
    spelt = _spelt_minutes(text)
    if spelt is None:
        try:
            spelt = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"not a duration: {text!r} (minutes, or e.g. 1h30)"
            ) from None
    if not 0 < spelt <= MAX_MINUTES:
        raise argparse.ArgumentTypeError(f"a duration is 1 minute to 24 hours: {text!r}")
    return spelt


# The alerts an agent can turn on and off: the proto's kinds and channels, as words.
ALERT_KINDS = [f.name for f in directory_pb2.AgentNotifications.DESCRIPTOR.fields]
ALERT_CHANNELS = [f.name for f in directory_pb2.NotificationChannels.DESCRIPTOR.fields]


def _word(name: str) -> str:
    return name.replace("_", "-")


def alerts(text: str) -> list[tuple[str, str]]:
    """``assigned``, ``customer-reply:email``, ``all:im``, ``new-ticket,digest``: the
    (kind, channel) pairs meant, by the proto's field names."""
    found: list[tuple[str, str]] = []
    for part in text.split(","):
        kind_word, _, channel_word = part.strip().lower().partition(":")
        kind = kind_word.replace("-", "_")
        if kind == "all":
            kinds = ALERT_KINDS
        elif kind in ALERT_KINDS:
            kinds = [kind]
        else:
            raise argparse.ArgumentTypeError(
                f"not a kind of alert: {kind_word!r} (choose from "
                f"{', '.join(_word(k) for k in ALERT_KINDS)}, all)"
            )
        if not channel_word or channel_word == "all":
            channels = ALERT_CHANNELS
        elif channel_word in ALERT_CHANNELS:
            channels = [channel_word]
        else:
            raise argparse.ArgumentTypeError(
                f"not a channel: {channel_word!r} (choose from {', '.join(ALERT_CHANNELS)})"
            )
        found += [(k, ch) for k in kinds for ch in channels if (k, ch) not in found]
    return found


def _choices(words: enums.EnumWords[Any]) -> str:
    return "{" + ",".join(words.words) + "}"


def _actor_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--as",
        dest="actor",
        type=positive_int,
        metavar="AGENT_ID",
        help="the agent who acts (needed with the admin token; default: you)",
    )


class _Acted(Protocol):
    """A request with an ``actor``."""

    @property
    def actor(self) -> tickets_pb2.Actor: ...


def _set_actor(request: _Acted, agent_id: int | None) -> None:
    """Names the acting agent, or leaves it to the service (the caller's own token)."""
    if agent_id:
        request.actor.CopyFrom(agent_actor(agent_id))


# Tickets ---------------------------------------------------------------------------


def ticket_escalate(c: Client, a: argparse.Namespace) -> Result:
    request = tickets_pb2.EscalateToDevelopmentRequest(
        ticket_id=a.id,
        request_id=request_id(),
        title=a.title,
        technical_description=read_body(a.description) if a.description else "",
        urgency=a.urgency,
    )
    _set_actor(request, a.actor)
    reply = c.call(c.tickets.EscalateToDevelopment, request)
    text = (
        f"programming ticket {render.prog_summary(reply.programming_ticket)}"
        f" opened for {render.display_id(reply.ticket)}\n{render.ticket_summary(reply.ticket)}"
    )
    return Result(text, reply)


def ticket_detach(c: Client, a: argparse.Namespace) -> Result:
    request = tickets_pb2.DetachProgrammingTicketRequest(
        ticket_id=a.id, programming_ticket_id=a.prog, reason=a.reason
    )
    _set_actor(request, a.actor)
    ticket = c.call(c.tickets.DetachProgrammingTicket, request)
    return Result(
        f"P-{a.prog} detached from {render.display_id(ticket)}\n{render.ticket_summary(ticket)}",
        ticket,
    )


def ticket_merge(c: Client, a: argparse.Namespace) -> Result:
    if a.id == a.into:
        raise CliError("a ticket cannot be merged into itself")
    request = tickets_pb2.MergeTicketsRequest(
        source_ticket_id=a.id, target_ticket_id=a.into, reason=a.reason
    )
    _set_actor(request, a.actor)
    target = c.call(c.tickets.MergeTickets, request)
    return Result(
        f"#{a.id} merged into {render.display_id(target)}\n" + render.ticket_summary(target),
        target,
    )


def ticket_log_time(c: Client, a: argparse.Namespace) -> Result:
    request = tickets_pb2.LogTimeRequest(
        ticket_id=a.id, request_id=request_id(), hours=a.hours, note=a.note or ""
    )
    _set_actor(request, a.actor)
    ticket = c.call(c.tickets.LogTime, request)
    return Result(
        f"{a.hours:g} h logged on {render.display_id(ticket)}, {ticket.hours_spent:g} h in all\n"
        + render.ticket_summary(ticket),
        ticket,
    )


def ticket_priority(c: Client, a: argparse.Namespace) -> Result:
    request = tickets_pb2.ChangePriorityRequest(
        ticket_id=a.id, priority=a.priority, reason=a.reason
    )
    _set_actor(request, a.actor)
    ticket = c.call(c.tickets.ChangePriority, request)
    return Result(render.ticket_summary(ticket) + _next_due(ticket), ticket)


REQUALIFIED_TEXTS = ("product", "version", "os")


def ticket_requalify(c: Client, a: argparse.Namespace) -> Result:
    given = [a.criticality, a.kind, a.level, *(getattr(a, f) for f in REQUALIFIED_TEXTS)]
    if all(value is None for value in given):
        raise CliError(
            "nothing to requalify: give --criticality, --kind, --level, --product, --version"
            " or --os"
        )
    request = tickets_pb2.RequalifyTicketRequest(
        ticket_id=a.id,
        request_id=request_id(),
        criticality=a.criticality or common_pb2.CRITICALITY_UNSPECIFIED,
        kind=a.kind or common_pb2.TICKET_KIND_UNSPECIFIED,
        level=a.level or common_pb2.SUPPORT_LEVEL_UNSPECIFIED,
        reason=a.reason,
    )
    for name in REQUALIFIED_TEXTS:  # optional: given (even empty, to clear) or unchanged
        value = getattr(a, name)
        if value is not None:
            setattr(request, name, value)
    _set_actor(request, a.actor)
    t = c.call(c.tickets.RequalifyTicket, request)
    text = "\n".join(
        [
            render.ticket_summary(t),
            render.fields(
                [
                    ("criticality", enums.CRITICALITY.label(t.criticality)),
                    ("kind", enums.TICKET_KIND.label(t.kind)),
                    ("level", enums.SUPPORT_LEVEL.label(t.level)),
                    ("priority", enums.PRIORITY.label(t.priority)),
                    ("product", render.product(t)),
                    ("next due", render.next_due(t)),
                ]
            ),
        ]
    )
    return Result(text, t)


def ticket_third_party(c: Client, a: argparse.Namespace) -> Result:
    request = tickets_pb2.HoldForThirdPartyRequest(
        ticket_id=a.id, third_party_name=a.name, third_party_reference=a.reference or ""
    )
    _set_actor(request, a.actor)
    ticket = c.call(c.tickets.HoldForThirdParty, request)
    return Result(
        f"{render.ticket_summary(ticket)}\n  waiting for {render.third_party(ticket)};"
        " the assignee is reminded until it is back OPEN",
        ticket,
    )


def ticket_resend(c: Client, a: argparse.Namespace) -> Result:
    reply = c.call(
        c.tickets.ResendAnswers,
        tickets_pb2.ResendAnswersRequest(
            ticket_id=a.id,
            comment_id=a.comment or "",
            recipient_email=a.to or "",
            request_id=request_id(),
        ),
    )
    count = len(reply.comment_ids)
    text = (
        f"{count} answer{'s' if count != 1 else ''} of #{a.id} re-sent to"
        f" {reply.recipient_email} (resend {reply.resend_id})"
    )
    return Result(text, reply)


def _hits(hits: Sequence[tickets_pb2.TicketHit]) -> str:
    """One line per ticket, then its snippet with the matched words in [brackets]."""
    if not hits:
        return "no ticket found"
    lines = []
    for h in hits:
        t = h.ticket
        where = " (internal note)" if h.found_in == "note" else ""
        lines.append(
            f"#{t.id} {enums.TICKET_STATUS.label(t.status)} {render.one_line(t.subject)}"
            f" - {t.organization_name}{where}"
        )
        snippet = "".join(f"[{p.text}]" if p.match else p.text for p in h.snippet)
        if snippet.strip():
            lines.append(f"    {render.one_line(snippet)}")
    return "\n".join(lines)


def ticket_search(c: Client, a: argparse.Namespace) -> Result:
    reply = c.call(
        c.tickets.SearchTickets,
        tickets_pb2.SearchTicketsRequest(
            query=" ".join(a.words),
            statuses=a.statuses or [],
            organization_id=a.org or 0,
            product=a.product or "",
            page_size=a.limit,
        ),
    )
    return Result(_hits(reply.hits), reply)


def ticket_similar(c: Client, a: argparse.Namespace) -> Result:
    reply = c.call(
        c.tickets.SimilarTickets, tickets_pb2.SimilarTicketsRequest(ticket_id=a.id, limit=a.limit)
    )
    return Result(_hits(reply.hits), reply)


def ticket_follow(c: Client, a: argparse.Namespace) -> Result:
    ticket = c.call(
        c.tickets.AddFollower,
        tickets_pb2.AddFollowerRequest(
            ticket_id=a.id, contact_id=a.contact or 0, email=a.email or "", request_id=request_id()
        ),
    )
    return Result(render.ticket_summary(ticket) + "\n" + _followers(ticket), ticket)


def ticket_unfollow(c: Client, a: argparse.Namespace) -> Result:
    ticket = c.call(
        c.tickets.RemoveFollower,
        tickets_pb2.RemoveFollowerRequest(
            ticket_id=a.id, contact_id=a.contact or 0, email=a.email or "", request_id=request_id()
        ),
    )
    return Result(render.ticket_summary(ticket) + "\n" + _followers(ticket), ticket)


def _followers(t: common_pb2.Ticket) -> str:
    if not t.followers:
        return "  no followers"
    return "Followers\n" + "\n".join(render.follower_line(f) for f in t.followers)


def ticket_record_call(c: Client, a: argparse.Namespace) -> Result:
    kind = a.type or common_pb2.INTERACTION_TYPE_PHONE_CALL
    phone = kind == common_pb2.INTERACTION_TYPE_PHONE_CALL
    if phone and not a.direction:
        raise CliError("a phone call needs --direction inbound or outbound")
    if not phone and a.direction:
        raise CliError("--direction is for phone calls only")
    if not a.contact and not (a.with_whom or "").strip():
        raise CliError("say with whom: --contact CONTACT_ID or --with TEXT")
    if a.internal and a.notify_customer:
        raise CliError("--notify-customer: an internal note is never emailed")
    request = tickets_pb2.RecordInteractionRequest(
        ticket_id=a.id,
        request_id=request_id(),
        type=kind,
        direction=a.direction or common_pb2.CALL_DIRECTION_UNSPECIFIED,
        contact_id=a.contact or 0,
        with_whom=a.with_whom or "",
        duration_minutes=a.duration,
        summary=read_body(a.summary),
        visibility=(
            common_pb2.COMMENT_VISIBILITY_INTERNAL
            if a.internal
            else common_pb2.COMMENT_VISIBILITY_PUBLIC
        ),
        notify_customer=a.notify_customer,
    )
    _set_actor(request, a.actor)
    reply = c.call(c.tickets.RecordInteraction, request)
    what = "phone call" if phone else "remote session"
    told = "; the customer is emailed the summary" if a.notify_customer else ""
    text = (
        f"{what} recorded on {render.display_id(reply.ticket)} as comment {reply.comment.id}"
        f" ({a.duration} min logged{told})\n{render.ticket_summary(reply.ticket)}"
    )
    return Result(text, reply)


def _next_due(t: common_pb2.Ticket) -> str:
    due = render.next_due(t)
    return f"\n  next due {due}" if due else ""


# Agents, contacts ----------------------------------------------------------------


def agent_text(agent: directory_pb2.Agent) -> str:
    duty = [
        word
        for word, on in (("on call", agent.on_call), ("development lead", agent.development_lead))
        if on
    ]
    head = render.agent(agent) + (f" ({', '.join(duty)})" if duty else "")
    linked = [
        f"{name} {value}"
        for name, value in (
            ("telegram", agent.telegram_user_id),
            ("whatsapp", agent.whatsapp_number),
        )
        if value
    ]
    if linked:
        head += "\n  instant messages: " + ", ".join(linked)
    return head


def agent_duty(c: Client, a: argparse.Namespace) -> Result:
    if a.on_call is None and a.lead is None:
        raise CliError("nothing to change: give --on-call / --off-call and/or --lead / --no-lead")
    on_call, lead = a.on_call, a.lead
    if on_call is None or lead is None:  # the request sets both: keep the one not given
        current = c.call(c.directory.GetAgent, directory_pb2.GetAgentRequest(id=a.id))
        on_call = current.on_call if on_call is None else on_call
        lead = current.development_lead if lead is None else lead
    agent = c.call(
        c.directory.SetAgentDuty,
        directory_pb2.SetAgentDutyRequest(agent_id=a.id, on_call=on_call, development_lead=lead),
    )
    return Result(agent_text(agent), agent)


def agent_notifications(c: Client, a: argparse.Namespace) -> Result:
    changes = directory_pb2.AgentNotifications()
    seen: dict[tuple[str, str], bool] = {}
    for value, groups in ((False, a.off or []), (True, a.on or [])):
        for kind, channel in (pair for group in groups for pair in group):
            if seen.get((kind, channel), value) != value:
                raise CliError(f"{_word(kind)}:{channel} is both turned on and off")
            seen[(kind, channel)] = value
            setattr(getattr(changes, kind), channel, value)
    # Nothing given: the request changes nothing and the reply shows the settings.
    agent = c.call(
        c.directory.SetAgentNotifications,
        directory_pb2.SetAgentNotificationsRequest(agent_id=a.id, notifications=changes),
    )
    return Result(agent_text(agent) + "\n" + notifications_text(agent.notifications), agent)


def notifications_text(prefs: directory_pb2.AgentNotifications) -> str:
    rows = []
    for kind in ALERT_KINDS:
        channels = getattr(prefs, kind)
        rows.append(
            [_word(kind), *("on" if getattr(channels, ch) else "off" for ch in ALERT_CHANNELS)]
        )
    return render.table(["alert", *ALERT_CHANNELS], rows)


def agent_link_im(c: Client, a: argparse.Namespace) -> Result:
    if bool(a.account) == a.unlink:
        raise CliError("give the ACCOUNT to link, or --unlink (not both)")
    agent = c.call(
        c.directory.LinkAgentIm,
        directory_pb2.LinkAgentImRequest(
            agent_id=a.id, provider=a.provider, id="" if a.unlink else a.account.strip()
        ),
    )
    return Result(agent_text(agent), agent)


def contact_find(c: Client, a: argparse.Namespace) -> Result:
    if not any((value or "").strip() for value in (a.phone, a.email, a.name)):
        raise CliError("say whom to find: --phone, --email and/or --name")
    request = directory_pb2.FindContactsRequest(
        phone=a.phone or "",
        email=a.email or "",
        name=a.name or "",
        page_size=min(a.limit, FIND_PAGE_SIZE) if a.limit else FIND_PAGE_SIZE,
    )
    items = pages(c, c.directory.FindContacts, request, "contacts", a.limit)
    return Result(render.contacts(items), directory_pb2.FindContactsResponse(contacts=items))


def contact_set_phone(c: Client, a: argparse.Namespace) -> Result:
    contact = c.call(
        c.directory.SetContactPhone,
        directory_pb2.SetContactPhoneRequest(contact_id=a.id, phone=a.phone),
    )
    return Result(render.contact(contact), contact)


# Maintenance windows ---------------------------------------------------------------


def maintenance_text(w: tickets_pb2.MaintenanceWindow) -> str:
    return f"Maintenance {w.id}: {render.one_line(w.summary)}\n" + render.fields(
        [
            ("organisation", render.ref(w.organization_name, w.organization_id)),
            ("status", enums.MAINTENANCE_STATUS.label(w.status)),
            ("medium", enums.MAINTENANCE_MEDIUM.label(w.medium)),
            ("planned", f"{render.when(w.planned_start)} - {render.when(w.planned_end)}"),
            ("started", render.when(w.started_at)),
            ("finished", render.when(w.finished_at)),
            ("reminder sent", "yes" if w.reminder_sent else ""),
            ("overdue", "yes: not marked finished by its planned end" if w.overdue else ""),
            ("planned by", render.ref(w.planned_by_name, w.planned_by_agent_id)),
            ("workflow", w.workflow_id),
        ]
    )


def maintenance_table(items: Sequence[tickets_pb2.MaintenanceWindow]) -> str:
    return render.table(
        ["id", "organisation", "status", "medium", "start", "end", "summary"],
        (
            [
                w.id,
                render.ref(w.organization_name, w.organization_id),
                enums.MAINTENANCE_STATUS.label(w.status) + (" OVERDUE" if w.overdue else ""),
                enums.MAINTENANCE_MEDIUM.label(w.medium),
                render.when(w.planned_start),
                render.when(w.planned_end),
                render.clip(w.summary, render.SUBJECT_WIDTH),
            ]
            for w in items
        ),
    )


def maintenance_plan(c: Client, a: argparse.Namespace) -> Result:
    if a.end <= a.start:
        raise CliError("--end must be after --start")
    request = tickets_pb2.PlanMaintenanceRequest(
        request_id=request_id(),
        organization_id=a.org,
        medium=a.medium,
        summary=read_body(a.summary),
    )
    request.planned_start.FromDatetime(a.start)
    request.planned_end.FromDatetime(a.end)
    window = c.call(c.tickets.PlanMaintenance, request)
    return Result(maintenance_text(window), window)


def maintenance_start(c: Client, a: argparse.Namespace) -> Result:
    window = c.call(
        c.tickets.MarkMaintenanceStarted,
        tickets_pb2.MarkMaintenanceRequest(id=a.id, note=a.note or ""),
    )
    return Result(maintenance_text(window), window)


def maintenance_finish(c: Client, a: argparse.Namespace) -> Result:
    window = c.call(
        c.tickets.MarkMaintenanceFinished,
        tickets_pb2.MarkMaintenanceRequest(id=a.id, note=a.note or ""),
    )
    return Result(maintenance_text(window), window)


def maintenance_list(c: Client, a: argparse.Namespace) -> Result:
    request = tickets_pb2.ListMaintenanceRequest(
        organization_id=a.org or 0,
        statuses=a.statuses or [],
        page_size=min(a.limit, PAGE_SIZE) if a.limit else PAGE_SIZE,
    )
    items = pages(c, c.tickets.ListMaintenance, request, "windows", a.limit)
    return Result(maintenance_table(items), tickets_pb2.ListMaintenanceResponse(windows=items))


# Intake: sales requests, chat groups ------------------------------------------------


def sales_request_list(c: Client, a: argparse.Namespace) -> Result:
    request = sales_pb2.ListSalesRequestsRequest(
        page_size=min(a.limit, PAGE_SIZE) if a.limit else PAGE_SIZE
    )
    items = pages(c, c.intake.ListSalesRequests, request, "requests", a.limit)
    text = render.table(
        ["received", "from", "subject", "via", "attachments"],
        (
            [
                render.when(r.received_at),
                f"{r.sender_name} <{r.sender}>" if r.sender_name else r.sender,
                render.clip(r.subject, render.SUBJECT_WIDTH),
                "web" if r.message_id.startswith("web:") else "email",
                len(r.attachment_names) or "-",
            ]
            for r in items
        ),
    )
    return Result(text, sales_pb2.ListSalesRequestsResponse(requests=items))


def im_group_register(c: Client, a: argparse.Namespace) -> Result:
    reply = c.call(
        c.intake.RegisterImGroup,
        intake_pb2.RegisterImGroupRequest(
            provider=a.provider, chat_id=a.chat_id.strip(), organization_id=a.org
        ),
    )
    return Result(
        f"{reply.provider} group {reply.chat_id} belongs to organisation"
        f" {reply.organization_id}: its linked members' messages count as its own",
        reply,
    )


# Parsers ---------------------------------------------------------------------------


def add_queue_options(p: argparse.ArgumentParser) -> None:
    """``ticket list``: the order and the queue filters."""
    p.add_argument(
        "--order",
        type=enums.TICKET_ORDER,
        metavar=_choices(enums.TICKET_ORDER),
        help="default: next-due for staff (the nearest service-level due first)",
    )
    p.add_argument("--unassigned", action="store_true", help="only tickets nobody holds")
    p.add_argument(
        "--due-within",
        type=positive_int,
        metavar="MINUTES",
        help="only tickets next due within this many minutes (or already late)",
    )
    p.add_argument("--breached", action="store_true", help="only tickets with a breached SLA")
    enum_list(p, "--kind", "kinds", enums.TICKET_KIND, "KIND")
    enum_list(p, "--level", "levels", enums.SUPPORT_LEVEL, "LEVEL")
    p.add_argument("--subject", metavar="TEXT", help="subject contains (any case)")


def add_ticket_commands(
    ticket: argparse._SubParsersAction[argparse.ArgumentParser], leaf: Leaf
) -> None:
    """The agent's verbs under ``helpdesk ticket``."""
    p = leaf(ticket, "escalate", ticket_escalate, "open a programming ticket (second level)")
    p.add_argument("id", type=ticket_id)
    p.add_argument("--title", required=True)
    p.add_argument(
        "--urgency",
        type=enums.PROG_URGENCY,
        required=True,
        metavar=_choices(enums.PROG_URGENCY),
        help="high: on-call developers are told at once",
    )
    p.add_argument(
        "--description", help="technical description (text, or - to read standard input)"
    )
    _actor_option(p)

    p = leaf(ticket, "detach", ticket_detach, "unlink a programming ticket (it no longer holds)")
    p.add_argument("id", type=ticket_id)
    p.add_argument("prog", type=prog_ticket_id, metavar="P-ID", help="the programming ticket")
    p.add_argument("--reason", required=True)
    _actor_option(p)

    p = leaf(ticket, "merge", ticket_merge, "merge a ticket into another about the same problem")
    p.add_argument("id", type=ticket_id, help="the ticket that closes (MERGED)")
    p.add_argument("--into", type=ticket_id, required=True, metavar="ID", help="the one that stays")
    p.add_argument("--reason", required=True)
    _actor_option(p)

    p = leaf(ticket, "log-time", ticket_log_time, "record hours spent on a ticket")
    p.add_argument("id", type=ticket_id)
    p.add_argument("hours", type=hours, metavar="HOURS", help="e.g. 1.5, 1,5, 1h30, 90m")
    p.add_argument("--note")
    _actor_option(p)

    p = leaf(ticket, "priority", ticket_priority, "override the priority (the SLA follows)")
    p.add_argument("id", type=ticket_id)
    p.add_argument("priority", type=enums.PRIORITY, metavar=_choices(enums.PRIORITY))
    p.add_argument("--reason", required=True)
    _actor_option(p)

    p = leaf(
        ticket,
        "requalify",
        ticket_requalify,
        "change criticality, kind, level, product, version or OS (with a reason)",
    )
    p.add_argument("id", type=ticket_id)
    p.add_argument(
        "--criticality",
        type=enums.CRITICALITY,
        metavar=_choices(enums.CRITICALITY),
        help="moves the priority",
    )
    p.add_argument("--kind", type=enums.TICKET_KIND, metavar=_choices(enums.TICKET_KIND))
    p.add_argument("--level", type=enums.SUPPORT_LEVEL, metavar=_choices(enums.SUPPORT_LEVEL))
    p.add_argument("--product", help='"" clears it')
    p.add_argument("--version", dest="version")
    p.add_argument("--os")
    p.add_argument("--reason", required=True, help="shown in the history")
    _actor_option(p)

    p = leaf(ticket, "third-party", ticket_third_party, "ON_HOLD waiting for a vendor or ISP")
    p.add_argument("id", type=ticket_id)
    p.add_argument("--name", required=True, help='who we wait for, e.g. "Telecom Italia"')
    p.add_argument("--reference", metavar="CASE", help="their ticket or case number")
    _actor_option(p)

    p = leaf(ticket, "search", ticket_search, "full-text search (notes too, for the desk)")
    p.add_argument("words", nargs="*", help="words to find (none: the latest updated)")
    enum_list(p, "--status", "statuses", enums.TICKET_STATUS, "STATUS")
    p.add_argument("--org", type=positive_int, metavar="ID")
    p.add_argument("--product")
    p.add_argument("--limit", type=positive_int, default=20, help="at most this many (50)")
    p = leaf(ticket, "similar", ticket_similar, "tickets about the same problem, solved first")
    p.add_argument("id", type=ticket_id)
    p.add_argument("--limit", type=positive_int, default=5, help="at most this many (20)")

    p = leaf(ticket, "resend", ticket_resend, "re-send public answers by email")
    p.add_argument("id", type=ticket_id)
    p.add_argument(
        "--comment", metavar="COMMENT_ID", help="one answer (default: every public answer)"
    )
    p.add_argument(
        "--to", metavar="EMAIL", help="a contact of the organisation (default: the requester)"
    )

    for name, func, help_text in (
        ("follow", ticket_follow, "a contact follows the ticket (CC on its answers)"),
        ("unfollow", ticket_unfollow, "a contact stops following the ticket"),
    ):
        p = leaf(ticket, name, func, help_text)
        p.add_argument("id", type=ticket_id)
        who = p.add_mutually_exclusive_group(required=True)
        who.add_argument("--contact", type=positive_int, metavar="CONTACT_ID")
        who.add_argument("--email", metavar="EMAIL")

    p = leaf(ticket, "record-call", ticket_record_call, "record a phone call or a remote session")
    p.add_argument("id", type=ticket_id)
    p.add_argument(
        "--type",
        type=enums.INTERACTION_TYPE,
        metavar=_choices(enums.INTERACTION_TYPE),
        help="default phone-call",
    )
    p.add_argument(
        "--direction",
        type=enums.CALL_DIRECTION,
        metavar=_choices(enums.CALL_DIRECTION),
        help="phone calls: who called (inbound: the customer)",
    )
    p.add_argument(
        "--contact", type=positive_int, metavar="CONTACT_ID", help="with a contact of the org"
    )
    p.add_argument("--with", dest="with_whom", metavar="TEXT", help="with whom, as text")
    p.add_argument(
        "--duration",
        type=minutes,
        required=True,
        metavar="MINUTES",
        help="15, 15m, 1h30 (logged as time spent)",
    )
    p.add_argument("--summary", required=True, help="text, or - to read standard input")
    p.add_argument("--internal", action="store_true", help="agents only (default: public)")
    p.add_argument(
        "--notify-customer", action="store_true", help="email the summary to the customer"
    )
    _actor_option(p)


def add_agent_commands(
    agent: argparse._SubParsersAction[argparse.ArgumentParser], leaf: Leaf
) -> None:
    """Duty, alerts and messaging accounts under ``helpdesk agent``."""
    p = leaf(agent, "duty", agent_duty, "put an agent on call or off, name development leads")
    p.add_argument("id", type=positive_int, metavar="AGENT_ID")
    on_call = p.add_mutually_exclusive_group()
    on_call.add_argument(
        "--on-call",
        dest="on_call",
        action="store_true",
        default=None,
        help="on duty (alerted of tickets that arrive unassigned)",
    )
    on_call.add_argument(
        "--off-call", dest="on_call", action="store_false", default=None, help="off duty"
    )
    lead = p.add_mutually_exclusive_group()
    lead.add_argument(
        "--lead",
        dest="lead",
        action="store_true",
        default=None,
        help="development lead (told when a HIGH programming ticket is not started in time)",
    )
    lead.add_argument(
        "--no-lead", dest="lead", action="store_false", default=None, help="no longer a lead"
    )

    kinds = ", ".join(_word(k) for k in ALERT_KINDS)
    p = leaf(
        agent,
        "notifications",
        agent_notifications,
        "which alerts an agent receives (none given: show them)",
    )
    p.add_argument("id", type=positive_int, metavar="AGENT_ID")
    for flag in ("--off", "--on"):
        p.add_argument(
            flag,
            type=alerts,
            action="append",
            metavar="KIND[:CHANNEL]",
            help=f"turn {flag[2:]}: {kinds} or all; channel {' or '.join(ALERT_CHANNELS)}"
            " (default both); comma-separated or repeated",
        )

    p = leaf(agent, "link-im", agent_link_im, "an agent's Telegram / WhatsApp for alerts")
    p.add_argument("id", type=positive_int, metavar="AGENT_ID")
    p.add_argument("provider", type=enums.IM_PROVIDER, metavar=_choices(enums.IM_PROVIDER))
    p.add_argument(
        "account",
        nargs="?",
        help="Telegram user ID, or WhatsApp number (international, digits only)",
    )
    p.add_argument("--unlink", action="store_true")


def add_contact_commands(
    contact: argparse._SubParsersAction[argparse.ArgumentParser], leaf: Leaf
) -> None:
    """The front desk's lookup under ``helpdesk contact``."""
    p = leaf(contact, "find", contact_find, "find callers by phone, email or name (all orgs)")
    p.add_argument("--phone", help="spaces, dots, dashes and +39 ignored")
    p.add_argument("--email", help="part of the address")
    p.add_argument("--name", help="part of the name")
    p.add_argument("--limit", type=positive_int, default=0, help="at most this many")

    p = leaf(contact, "set-phone", contact_set_phone, "save a contact's phone number")
    p.add_argument("id", type=positive_int, metavar="CONTACT_ID")
    p.add_argument("phone", metavar="NUMBER")


def add_commands(verbs: Verbs) -> None:
    """The ``maintenance``, ``sales-request`` and ``im-group`` groups of ``helpdesk``."""
    group, leaf = verbs.group, verbs.leaf

    maintenance = group("maintenance", "planned remote updates of a customer's installation")
    p = leaf(maintenance, "plan", maintenance_plan, "plan a window (the referents are told)")
    p.add_argument("--org", type=positive_int, required=True, metavar="ID")
    p.add_argument(
        "--medium",
        type=enums.MAINTENANCE_MEDIUM,
        required=True,
        metavar=_choices(enums.MAINTENANCE_MEDIUM),
    )
    p.add_argument(
        "--start",
        type=local_datetime,
        required=True,
        metavar="ISO",
        help="planned start, e.g. 2026-12-05T20:00 (local time unless an offset is given)",
    )
    p.add_argument("--end", type=local_datetime, required=True, metavar="ISO", help="planned end")
    p.add_argument("--summary", required=True, help="text, or - to read standard input")
    for name, func, help_text in (
        ("start", maintenance_start, "mark a window started (the referents are told)"),
        ("finish", maintenance_finish, "mark a window finished (the referents are told)"),
    ):
        p = leaf(maintenance, name, func, help_text)
        p.add_argument("id", type=positive_int, metavar="ID")
        p.add_argument("--note", help="told to the referents with the news")
    p = leaf(maintenance, "list", maintenance_list, "windows, soonest first")
    p.add_argument("--org", type=positive_int, metavar="ID")
    enum_list(p, "--status", "statuses", enums.MAINTENANCE_STATUS, "STATUS")
    p.add_argument("--limit", type=positive_int, default=0, help="at most this many")

    sales = group("sales-request", "requests from people who are not customers (seed 003)")
    p = leaf(sales, "list", sales_request_list, "sales requests, newest first")
    p.add_argument("--limit", type=positive_int, default=0, help="at most this many")

    im_group = group("im-group", "customers' Telegram / WhatsApp groups (seed 001)")
    p = leaf(im_group, "register", im_group_register, "a group's messages count as the org's")
    p.add_argument("provider", choices=["telegram", "whatsapp"])
    p.add_argument("chat_id", metavar="CHAT_ID")
    p.add_argument("--org", type=positive_int, required=True, metavar="ID")
