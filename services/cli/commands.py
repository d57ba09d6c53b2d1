"""What each ``helpdesk`` subcommand does: build the request, call, hand back what to print."""

from __future__ import annotations

import argparse
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from helpdesk.v1 import (
    common_pb2,
    dev_escalation_pb2,
    directory_pb2,
    intake_pb2,
    notify_pb2,
    tickets_pb2,
)
from services.cli import render
from services.cli.client import Client, CliError, session_path

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)

PAGE_SIZE = 200


@dataclass(frozen=True)
class Result:
    """What a command prints: ``text`` normally, ``data`` as JSON with ``--json``."""

    text: str
    data: Message | dict[str, Any]


Command = Callable[[Client, argparse.Namespace], Result]


def request_id() -> str:
    """A fresh idempotency key for a request that creates something."""
    return str(uuid.uuid4())


def pages(
    client: Client,
    method: grpc.UnaryUnaryMultiCallable[Req, Resp],
    request: Req,
    items: str,
    limit: int = 0,
) -> list[Any]:
    """Every item of a paged list (``items`` is the repeated field), up to ``limit`` if set."""
    found: list[Any] = []
    while True:
        reply = client.call(method, request)
        found.extend(getattr(reply, items))
        token = str(getattr(reply, "next_page_token", ""))
        if not token or (limit and len(found) >= limit):
            return found[:limit] if limit else found
        request.page_token = token  # type: ignore[attr-defined]


def agent_actor(agent_id: int) -> tickets_pb2.Actor:
    return tickets_pb2.Actor(kind=common_pb2.AUTHOR_KIND_AGENT, id=agent_id)


def contact_actor(contact_id: int) -> tickets_pb2.Actor:
    return tickets_pb2.Actor(kind=common_pb2.AUTHOR_KIND_CONTACT, id=contact_id)


def read_body(text: str) -> str:
    """``-`` reads the text from standard input."""
    return sys.stdin.read() if text == "-" else text


# Organisations, contacts, agents --------------------------------------------


def org_create(c: Client, a: argparse.Namespace) -> Result:
    org = c.call(
        c.directory.CreateOrganization,
        directory_pb2.CreateOrganizationRequest(
            name=a.name,
            email_domains=a.domains or [],
            closed_ticket_policy=a.policy or common_pb2.CLOSED_TICKET_POLICY_UNSPECIFIED,
            locale=a.locale or "",
        ),
    )
    return Result(render.organization(org), org)


def org_list(c: Client, a: argparse.Namespace) -> Result:
    orgs = pages(
        c,
        c.directory.ListOrganizations,
        directory_pb2.ListOrganizationsRequest(page_size=PAGE_SIZE),
        "organizations",
    )
    return Result(
        render.organizations(orgs), directory_pb2.ListOrganizationsResponse(organizations=orgs)
    )


def org_show(c: Client, a: argparse.Namespace) -> Result:
    org = c.call(c.directory.GetOrganization, directory_pb2.GetOrganizationRequest(id=a.id))
    return Result(render.organization(org), org)


def contact_add(c: Client, a: argparse.Namespace) -> Result:
    contact = c.call(
        c.directory.AddContact,
        directory_pb2.AddContactRequest(
            organization_id=a.org,
            name=a.name,
            email=a.email,
            phone=a.phone or "",
            role=a.role or common_pb2.CONTACT_ROLE_UNSPECIFIED,
            locale=a.locale or "",
        ),
    )
    return Result(render.contact(contact), contact)


def contact_list(c: Client, a: argparse.Namespace) -> Result:
    items = pages(
        c,
        c.directory.ListContacts,
        directory_pb2.ListContactsRequest(organization_id=a.org or 0, page_size=PAGE_SIZE),
        "contacts",
    )
    return Result(render.contacts(items), directory_pb2.ListContactsResponse(contacts=items))


def contact_show(c: Client, a: argparse.Namespace) -> Result:
    key = a.contact.strip()
    if key.isdigit():
        contact = c.call(c.directory.GetContact, directory_pb2.GetContactRequest(id=int(key)))
    else:
        contact = c.call(
            c.directory.GetContactByEmail, directory_pb2.GetContactByEmailRequest(email=key)
        )
    return Result(render.contact(contact), contact)


def agent_create(c: Client, a: argparse.Namespace) -> Result:
    agent = c.call(
        c.directory.CreateAgent,
        directory_pb2.CreateAgentRequest(name=a.name, email=a.email, role=a.role),
    )
    return Result(render.agent(agent), agent)


def agent_list(c: Client, a: argparse.Namespace) -> Result:
    request = directory_pb2.ListAgentsRequest(
        page_size=PAGE_SIZE, on_call_only=a.on_call, development_leads_only=a.leads
    )
    items = pages(c, c.directory.ListAgents, request, "agents")
    return Result(render.agents(items), directory_pb2.ListAgentsResponse(agents=items))


# Tickets ---------------------------------------------------------------------


def ticket_list(c: Client, a: argparse.Namespace) -> Result:
    request = tickets_pb2.ListTicketsRequest(
        organization_id=a.org or 0,
        requester_email=a.requester or "",
        statuses=a.statuses or [],
        priorities=a.priorities or [],
        assignee_id=a.assignee or 0,
        page_size=min(a.limit, PAGE_SIZE) if a.limit else PAGE_SIZE,
        order_by=a.order or tickets_pb2.TICKET_ORDER_UNSPECIFIED,
        unassigned_only=a.unassigned,
        due_within_minutes=a.due_within or 0,
        breached_only=a.breached,
        kinds=a.kinds or [],
        levels=a.levels or [],
        subject_contains=a.subject or "",
    )
    items = pages(c, c.tickets.ListTickets, request, "tickets", a.limit)
    return Result(render.tickets(items), tickets_pb2.ListTicketsResponse(tickets=items))


def ticket_show(c: Client, a: argparse.Namespace) -> Result:
    ticket = c.call(c.tickets.GetTicket, tickets_pb2.GetTicketRequest(id=a.id))
    comments = c.call(
        c.tickets.ListComments,
        tickets_pb2.ListCommentsRequest(ticket_id=a.id, include_internal=True),
    ).comments
    return Result(
        render.ticket(ticket, comments),
        {"ticket": render.as_dict(ticket), "comments": [render.as_dict(x) for x in comments]},
    )


def ticket_create(c: Client, a: argparse.Namespace) -> Result:
    reply = c.call(
        c.intake.SubmitWebRequest,
        intake_pb2.SubmitWebRequestRequest(
            request_id=request_id(),
            requester_email=a.requester_email,
            subject=a.subject,
            description=read_body(a.description),
            product=a.product or "",
            version=a.version or "",
            os=a.os or "",
            criticality=a.criticality or common_pb2.CRITICALITY_UNSPECIFIED,
            kind=a.kind or common_pb2.TICKET_KIND_UNSPECIFIED,
            phone=a.phone or "",
        ),
    )
    return Result(_submitted(reply), reply)


def _submitted(reply: intake_pb2.SubmitResponse) -> str:
    shown_id = reply.display_id or f"#{reply.ticket_id}"
    verb = "created" if reply.created else "already existed"
    line = f"ticket {shown_id} {verb}"
    if reply.HasField("ticket"):
        line += f"\n{render.ticket_summary(reply.ticket)}"
    return line


def ticket_assign(c: Client, a: argparse.Namespace) -> Result:
    if a.take_over and not (a.reason or "").strip():
        raise CliError("--take-over needs a --reason (recorded, and the holder is told)")
    if a.reason and not a.take_over:
        raise CliError("--reason goes with --take-over")
    ticket = c.call(
        c.tickets.AssignTicket,
        tickets_pb2.AssignTicketRequest(
            ticket_id=a.id,
            assignee_id=a.agent,
            # Taking a ticket in charge oneself is the common case.
            actor=agent_actor(a.actor or a.agent),
            take_over=a.take_over,
            reason=a.reason or "",
        ),
    )
    return Result(render.ticket_summary(ticket), ticket)


def ticket_comment(c: Client, a: argparse.Namespace) -> Result:
    request = tickets_pb2.AddCommentRequest(
        ticket_id=a.id,
        request_id=request_id(),
        visibility=(
            common_pb2.COMMENT_VISIBILITY_INTERNAL
            if a.internal
            else common_pb2.COMMENT_VISIBILITY_PUBLIC
        ),
        body=read_body(a.body),
    )
    # Neither: the author is left to the service (the access layer derives it from the token).
    if a.as_agent:
        request.author.CopyFrom(agent_actor(a.as_agent))
    elif a.as_contact:
        request.author.CopyFrom(contact_actor(a.as_contact))
    reply = c.call(c.tickets.AddComment, request)
    text = f"comment {reply.comment.id} added to {render.display_id(reply.ticket)}"
    if reply.follow_up_created:
        text += f" (a follow-up of #{a.id}: the original was closed)"
    elif reply.reopened:
        text += " (the ticket was reopened)"
    return Result(text + "\n" + render.ticket_summary(reply.ticket), reply)


def ticket_status(c: Client, a: argparse.Namespace) -> Result:
    if a.hours is not None and a.status != common_pb2.TICKET_STATUS_CLOSED:
        raise CliError("--hours goes with closed (the hours spent are agreed at the close)")
    ticket = c.call(
        c.tickets.ChangeStatus,
        tickets_pb2.ChangeStatusRequest(
            ticket_id=a.id,
            status=a.status,
            actor=agent_actor(a.actor),
            reason=a.reason or "",
            hours_spent=a.hours or 0.0,
            request_id=request_id(),
        ),
    )
    return Result(render.ticket_summary(ticket), ticket)


def ticket_reopen(c: Client, a: argparse.Namespace) -> Result:
    ticket = c.call(
        c.tickets.ReopenTicket,
        tickets_pb2.ReopenTicketRequest(
            ticket_id=a.id, actor=contact_actor(a.as_contact), reason=a.reason or ""
        ),
    )
    return Result(render.ticket_summary(ticket), ticket)


def ticket_confirm(c: Client, a: argparse.Namespace) -> Result:
    ticket = c.call(
        c.tickets.ConfirmSolution,
        tickets_pb2.ConfirmSolutionRequest(ticket_id=a.id, actor=contact_actor(a.as_contact)),
    )
    return Result(render.ticket_summary(ticket), ticket)


def ticket_history(c: Client, a: argparse.Namespace) -> Result:
    reply = c.call(c.tickets.GetTicketHistory, tickets_pb2.GetTicketHistoryRequest(ticket_id=a.id))
    return Result(render.history(reply.events), reply)


# The developers' queue (programming tickets) ------------------------------------


def dev_queue(c: Client, a: argparse.Namespace) -> Result:
    request = dev_escalation_pb2.ListProgrammingTicketsRequest(
        statuses=a.statuses or [],
        urgencies=a.urgencies or [],
        assignee_id=a.developer or 0,
        release=a.release or "",
        support_ticket_id=a.ticket or 0,
        page_size=min(a.limit, PAGE_SIZE) if a.limit else PAGE_SIZE,
    )
    items = pages(c, c.dev.ListProgrammingTickets, request, "tickets", a.limit)
    return Result(
        render.prog_tickets(items),
        dev_escalation_pb2.ListProgrammingTicketsResponse(tickets=items),
    )


def dev_show(c: Client, a: argparse.Namespace) -> Result:
    t = c.call(c.dev.GetProgrammingTicket, dev_escalation_pb2.GetProgrammingTicketRequest(id=a.id))
    return Result(render.prog_ticket(t), t)


def dev_start(c: Client, a: argparse.Namespace) -> Result:
    t = c.call(
        c.dev.StartWork,
        dev_escalation_pb2.StartWorkRequest(id=a.id, developer_id=a.developer or 0),
    )
    return Result(render.prog_summary(t), t)


def dev_schedule(c: Client, a: argparse.Namespace) -> Result:
    request = dev_escalation_pb2.ScheduleRequest(
        id=a.id, target_release=a.release, developer_id=a.developer or 0
    )
    if a.date is not None:
        request.planned_date.FromDatetime(a.date)
    t = c.call(c.dev.Schedule, request)
    return Result(render.prog_summary(t), t)


def dev_fix(c: Client, a: argparse.Namespace) -> Result:
    t = c.call(
        c.dev.MarkFixed,
        dev_escalation_pb2.MarkFixedRequest(
            id=a.id,
            fix_version=a.version,
            notes=read_body(a.notes) if a.notes else "",
            developer_id=a.developer or 0,
        ),
    )
    return Result(render.prog_summary(t), t)


def dev_ship(c: Client, a: argparse.Namespace) -> Result:
    if (a.window_start is None) != (a.window_end is None):
        raise CliError("--window-start and --window-end go together")
    request = dev_escalation_pb2.ShipUpdateRequest(
        id=a.id, release_notes=read_body(a.notes), developer_id=a.developer or 0
    )
    if a.window_start is not None and a.window_end is not None:
        if a.window_end <= a.window_start:
            raise CliError("--window-end must be after --window-start")
        request.remote_update.starts_at.FromDatetime(a.window_start)
        request.remote_update.ends_at.FromDatetime(a.window_end)
    t = c.call(c.dev.ShipUpdate, request)
    return Result(render.prog_summary(t), t)


def dev_cancel(c: Client, a: argparse.Namespace) -> Result:
    t = c.call(
        c.dev.Cancel,
        dev_escalation_pb2.CancelProgrammingTicketRequest(
            id=a.id, reason=a.reason, developer_id=a.developer or 0
        ),
    )
    return Result(render.prog_summary(t), t)


# Phone, notifications ----------------------------------------------------------


def phone_log(c: Client, a: argparse.Namespace) -> Result:
    if not (a.contact or a.phone or (a.org and a.name and a.email)):
        raise CliError(
            "who called? --contact CONTACT_ID (see `contact find`), a --phone on file,"
            " or --org, --name and --email for a new caller"
        )
    reply = c.call(
        c.intake.LogPhoneCall,
        intake_pb2.LogPhoneCallRequest(
            request_id=request_id(),
            contact_id=a.contact or 0,
            organization_id=a.org or 0,
            caller_name=a.name or "",
            caller_email=a.email or "",
            caller_phone=a.phone or "",
            nature=a.nature,
            description=read_body(a.description),
            callback_number=a.callback or "",
            attachments_requested_by_email=a.send_attachments,
            criticality=a.criticality or common_pb2.CRITICALITY_UNSPECIFIED,
            kind=a.kind or common_pb2.TICKET_KIND_UNSPECIFIED,
        ),
    )
    return Result(_submitted(reply), reply)


def notifications(c: Client, a: argparse.Namespace) -> Result:
    request = notify_pb2.ListNotificationsRequest(
        ticket_id=a.ticket or 0,
        recipient=a.recipient or "",
        page_size=min(a.limit, PAGE_SIZE) if a.limit else PAGE_SIZE,
    )
    items = pages(c, c.notify.ListNotifications, request, "notifications", a.limit)
    return Result(
        render.notifications(items), notify_pb2.ListNotificationsResponse(notifications=items)
    )


def login(c: Client, a: argparse.Namespace) -> Result:
    """Log in by email and password; later commands act as that person."""
    if a.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        import getpass

        password = getpass.getpass(f"Password for {a.email}: ")
    reply = c.directory.Login(
        directory_pb2.LoginRequest(email=a.email, password=password), timeout=c.timeout
    )
    path = session_path(c.settings.data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(reply.access_token + "\n")
    text = (
        f"Logged in as {reply.name} ({reply.role}); the session token is in {path}"
        f" for {reply.expires_in_seconds // 60} minutes. `helpdesk logout` ends it."
    )
    return Result(text, {"role": reply.role, "id": reply.id, "name": reply.name})


def logout(c: Client, a: argparse.Namespace) -> Result:
    path = session_path(c.settings.data_dir)
    existed = path.is_file()
    path.unlink(missing_ok=True)
    return Result("Logged out." if existed else "No session to end.", {"logged_out": existed})
