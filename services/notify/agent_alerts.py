"""Agents told: email (and Telegram / WhatsApp when their account is linked) to the help
desk's own people, each kind only to those who keep it on (``Agent.notifications``).

- ``new_ticket``: a ticket arrives unassigned: the agents on duty (``on_call`` agents and
  team leads), unless it is URGENT, whose page (``urgent_page``) already calls them;
- ``assigned``: the assignee;
- ``customer_reply``: the assignee, on each public comment of the customer (any channel);
- ``reassigned_away``: the previous assignee when someone else gets the ticket (not when
  the event names them as the one who handed it over). The event's
  ``previous_assignee_id`` names them; for an event without it, the last assignee notify
  saw on the ticket (``TicketAssignee``);
- ``digest``: at the desk's opening, the tickets received while it was closed, to the agents
  on duty (``helpdesk.desk.digest``, from the ``desk-digest`` workflow).

Preferences are read from the directory (``GetAgent`` / ``ListAgents``) when the alert is
made, so an agent who turned a kind off hears nothing more of it. Every alert is a row of
the delivery log, keyed by (event, template, recipient) with a Message-ID of its own per
agent, so a redelivered event mails nobody twice. The customer's mail is not touched: it
stays with the ``notify`` consumer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from services.common.auth import bearer_metadata
from services.common.events import STREAM, ensure_stream
from services.common.mail_threading import MessageIds, mail_domain, subject_tag
from services.common.messages import desk as desk_messages
from services.common.messages import tickets as tickets_messages
from services.common.messages.desk import DigestEventPayload
from services.common.messages.tickets import TicketEventPayload
from services.notify.consumer import ConsumerGroup, JetStreamConsumer
from services.notify.im_out import TELEGRAM, WHATSAPP, ImDelivery
from services.notify.local_time import format_instant
from services.notify.models import TicketAssignee, utcnow
from services.notify.notifier import Notifier, Progress, RetryPolicy
from services.notify.render import Renderer
from services.notify.rules import NEVER_MAIL_LOCAL_PARTS, PAGING_EVENTS, PlannedEmail
from services.notify.store import DeliveryDraft

if TYPE_CHECKING:
    from helpdesk.v1.directory_pb2_grpc import DirectoryServiceAsyncStub

log = logging.getLogger(__name__)

# Alert kind (the field of ``AgentNotifications``) -> its email template.
TEMPLATES = {
    "new_ticket": "agent_new_ticket",
    "assigned": "agent_assigned",
    "customer_reply": "agent_customer_reply",
    "reassigned_away": "agent_reassigned_away",
    "digest": "agent_digest",
}
NEW_TICKET_EVENTS = frozenset({"created", "follow_up_opened"})
# Who is on duty for new tickets (developers keep their own on-call duty).
DESK_ROLES = frozenset({pb.AGENT_ROLE_AGENT, pb.AGENT_ROLE_TEAM_LEAD})
# Agents have no locale of their own: the desk speaks Italian.
AGENT_LOCALE = "it"
IM_EXCERPT = 300


@dataclass(frozen=True)
class Alert:
    kind: str  # a key of TEMPLATES
    agent_id: int


def _assignee_id(event: TicketEventPayload) -> int:
    assignee = event["ticket"].get("assignee")
    return int(assignee["id"]) if assignee else 0


def wants_on_duty(event: TicketEventPayload) -> bool:
    """Whether ``event`` is a new unassigned ticket the agents on duty hear of (an URGENT one
    pages them instead)."""
    ticket = event["ticket"]
    if event["type"] not in NEW_TICKET_EVENTS or _assignee_id(event):
        return False
    return not (event["type"] in PAGING_EVENTS and ticket.get("priority") == "URGENT")


def alerts_for(event: TicketEventPayload, previous_id: int, on_duty: list[int]) -> list[Alert]:
    """The alerts ``event`` calls for: ``previous_id`` is who held the ticket before an
    assignment (0: nobody), ``on_duty`` the agents on duty (asked only when
    ``wants_on_duty``)."""
    if wants_on_duty(event):
        return [Alert("new_ticket", agent_id) for agent_id in dict.fromkeys(on_duty)]
    assignee = _assignee_id(event)
    by_agent = event.get("actor_kind") == "AGENT"
    actor = int(event.get("actor_id") or 0)
    if event["type"] == "assigned" and assignee:
        # The assignee always hears: the event's actor defaults to the assignee, so it does
        # not tell an agent taking a ticket from a lead assigning it.
        alerts = [Alert("assigned", assignee)]
        if previous_id and previous_id != assignee and not (by_agent and actor == previous_id):
            alerts.append(Alert("reassigned_away", previous_id))
        return alerts
    comment = event.get("comment")
    if (
        event["type"] == "comment_added"
        and assignee
        and comment is not None
        and comment["visibility"] == "PUBLIC"
        and comment["author_kind"] == "CONTACT"
    ):
        return [Alert("customer_reply", assignee)]
    return []


def event_seq(event_id: str) -> int:
    """The sequence number in ``ticket-<id>-ev-<seq>`` (0 when it has none)."""
    tail = event_id.rpartition("-ev-")[2]
    return int(tail) if tail.isdigit() else 0


def announced_previous(event: TicketEventPayload) -> int | None:
    """The previous assignee an ``assigned`` event names (``ticket.previous_assignee_id``,
    set when the ticket moved from one agent to another); None when it names nobody."""
    value = event["ticket"].get("previous_assignee_id")
    return value if isinstance(value, int) and value > 0 else None


class AssigneeMemory:
    """The last assignee seen on each ticket (``notify_ticket_assignees``)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def observe(self, event: TicketEventPayload) -> int:
        """Remember the ticket's assignee; returns who held it before, when ``event``
        changed it (the same answer on a redelivery), else 0."""
        ticket_id, now = event["ticket_id"], _assignee_id(event)
        seq = event_seq(event["event_id"])
        async with self._sessions() as session, session.begin():
            row = await session.get(TicketAssignee, ticket_id, with_for_update=True)
            if row is not None and row.event_id == event["event_id"]:
                return row.previous_assignee_id
            if row is None:
                row = TicketAssignee(
                    ticket_id=ticket_id, assignee_id=0, previous_assignee_id=0, event_id=""
                )
                session.add(row)
            elif seq and seq < event_seq(row.event_id):
                return 0  # an older event, redelivered late: what followed is known already
            if row.assignee_id == now:
                return 0
            row.previous_assignee_id, row.assignee_id = row.assignee_id, now
            row.event_id, row.updated_at = event["event_id"], utcnow()
            return row.previous_assignee_id


def im_text(kind: str, event: TicketEventPayload) -> str:
    """The instant message of a ticket alert (Italian, like the desk)."""
    ticket = event["ticket"]
    head = subject_tag(event["ticket_id"])
    about = f"{ticket['subject']} · {ticket.get('organization_name', '')}"
    if kind == "new_ticket":
        return f"{head} Nuova richiesta da assegnare ({ticket.get('channel', '')}): {about}"
    if kind == "assigned":
        return f"{head} Assegnata a te: {about}"
    if kind == "reassigned_away":
        assignee = ticket.get("assignee")
        new = (assignee["name"] if assignee else "") or "un collega"
        return f"{head} Ora è seguita da {new}: {about}"
    comment = event.get("comment")
    body = " ".join((comment["body"] if comment else "").split())
    if len(body) > IM_EXCERPT:
        body = body[: IM_EXCERPT - 1] + "…"
    who = (comment["author_name"] if comment else "") or "Il cliente"
    return f"{head} {who} ha risposto: {body}"


def digest_im_text(digest: DigestEventPayload) -> str:
    items = "; ".join(f"{t['display_id']} {t['subject']}" for t in digest["tickets"][:10])
    more = len(digest["tickets"]) - 10
    return (
        f"Apertura dello sportello: {len(digest['tickets'])} richieste arrivate a sportello "
        f"chiuso: {items}{f' e altre {more}' if more > 0 else ''}"
    )


class AgentAlerter:
    """Sends one alert to one agent, by email and by IM, as the agent's preferences say."""

    def __init__(
        self,
        notifier: Notifier,
        renderer: Renderer,
        im: ImDelivery | None,
        directory: DirectoryServiceAsyncStub,
        service_token: str,
        signing_key: str,
        mail_from: str,
    ) -> None:
        self._notifier = notifier
        self._renderer = renderer
        self._im = im
        self._directory = directory
        self._metadata = bearer_metadata(service_token)
        self._ids = MessageIds(signing_key, mail_domain(mail_from))

    async def agent(self, agent_id: int) -> dpb.Agent | None:
        """The agent as the directory has them now (None when no longer there)."""
        try:
            found: dpb.Agent = await self._directory.GetAgent(
                dpb.GetAgentRequest(id=agent_id), metadata=self._metadata, timeout=30
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return found

    async def on_duty(self) -> list[dpb.Agent]:
        """The agents and team leads on call now."""
        found: list[dpb.Agent] = []
        token = ""
        while True:
            page: dpb.ListAgentsResponse = await self._directory.ListAgents(
                dpb.ListAgentsRequest(on_call_only=True, page_size=100, page_token=token),
                metadata=self._metadata,
                timeout=30,
            )
            found.extend(a for a in page.agents if a.role in DESK_ROLES and a.on_call)
            token = page.next_page_token
            if not token:
                return found

    async def ticket_alert(
        self,
        event: TicketEventPayload,
        kind: str,
        agent: dpb.Agent,
        progress: Progress | None,
    ) -> float | None:
        template = TEMPLATES[kind]
        channels: dpb.NotificationChannels = getattr(agent.notifications, kind)
        email = self._email(agent, template)
        delays: list[float | None] = []
        if channels.email and email is not None:
            ctx_extra = {
                "agent_name": agent.name,
                "reason": event["ticket"].get("assignment_reason") or "",
                "received_at": _local(event["ticket"].get("received_at")),
            }
            delays.append(
                await self._notifier.render_and_deliver(
                    self._draft(event["event_id"], event["type"], event["ticket_id"], email, agent),
                    email,
                    lambda: self._renderer.render_template(
                        template,
                        email.locale,
                        self._renderer.context(event, email) | ctx_extra,
                    ),
                    progress,
                )
            )
        if channels.im:
            delays.append(
                await self._send_im(
                    event["event_id"],
                    event["type"],
                    event["ticket_id"],
                    agent,
                    template,
                    im_text(kind, event),
                    progress,
                )
            )
        return _longest(delays)

    async def digest(
        self, digest: DigestEventPayload, agent: dpb.Agent, progress: Progress | None
    ) -> float | None:
        template = TEMPLATES["digest"]
        email = self._email(agent, template)
        delays: list[float | None] = []
        if agent.notifications.digest.email and email is not None:
            ctx = {
                "name": agent.name,
                "tickets": [{**t, "received": _local(t["received_at"])} for t in digest["tickets"]],
                "count": len(digest["tickets"]),
                "opened_at": _local(digest["opened_at"]),
                "closed_since": _local(digest["closed_since"]),
            }
            delays.append(
                await self._notifier.render_and_deliver(
                    self._draft(digest["event_id"], "desk_digest", 0, email, agent),
                    email,
                    lambda: self._renderer.render_template(template, email.locale, ctx),
                    progress,
                )
            )
        if agent.notifications.digest.im:
            delays.append(
                await self._send_im(
                    digest["event_id"],
                    "desk_digest",
                    0,
                    agent,
                    template,
                    digest_im_text(digest),
                    progress,
                )
            )
        return _longest(delays)

    def _email(self, agent: dpb.Agent, template: str) -> PlannedEmail | None:
        address = agent.email.strip().lower()
        if "@" not in address or address.split("@", 1)[0] in NEVER_MAIL_LOCAL_PARTS:
            return None
        return PlannedEmail(template, address, agent.name.strip(), AGENT_LOCALE)

    def _draft(
        self, event_id: str, event_type: str, ticket_id: int, email: PlannedEmail, agent: dpb.Agent
    ) -> DeliveryDraft:
        return DeliveryDraft(
            event_id=event_id,
            event_type=event_type,
            ticket_id=ticket_id,
            recipient=email.recipient,
            subject="",
            template=email.template,
            locale=email.locale,
            # One Message-ID per agent: two agents' copies are two messages.
            message_id=self._ids.notification(
                f"{event_id}\x00agent-{agent.id}", email.template, ticket_id
            ),
        )

    async def _send_im(
        self,
        event_id: str,
        event_type: str,
        ticket_id: int,
        agent: dpb.Agent,
        template: str,
        text: str,
        progress: Progress | None,
    ) -> float | None:
        if self._im is None:
            return None
        for provider, chat_id in (
            (TELEGRAM, agent.telegram_user_id),
            (WHATSAPP, agent.whatsapp_number),
        ):
            if not chat_id or not self._im.sender.enabled(provider):
                continue
            # One account per agent: Telegram first.
            return await self._im.deliver(
                event_id=event_id,
                event_type=event_type,
                ticket_id=ticket_id,
                provider=provider,
                chat_id=chat_id,
                template=f"im_{template}",
                locale=AGENT_LOCALE,
                text=text,
                progress=progress,
            )
        return None


def _local(iso: object) -> str:
    if not isinstance(iso, str) or not iso:
        return ""
    try:
        return format_instant(iso, AGENT_LOCALE)
    except ValueError:
        return iso


def _longest(delays: list[float | None]) -> float | None:
    waits = [d for d in delays if d is not None]
    return max(waits) if waits else None


class AgentTicketConsumer(JetStreamConsumer[TicketEventPayload]):
    """Ticket events that tell agents something (durable ``<notify>-agents``)."""

    stream = STREAM
    filter_subject = tickets_messages.FILTER
    description = "notify: agents told of new tickets, assignments and customers' replies"

    def __init__(
        self, nats_url: str, alerter: AgentAlerter, memory: AssigneeMemory, **kwargs: Any
    ) -> None:
        super().__init__(nats_url, **kwargs)
        self._alerter = alerter
        self._memory = memory

    async def ensure_stream(self, js: JetStreamContext) -> None:
        await ensure_stream(js)

    decode = tickets_messages.decode

    def describe(self, event: TicketEventPayload) -> str:
        return f"{event['event_id']} ({event['type']}, agents)"

    async def process(self, event: TicketEventPayload, progress: Progress) -> float | None:
        remembered = await self._memory.observe(event)
        announced = announced_previous(event)
        previous = announced if announced is not None else remembered
        agents: dict[int, dpb.Agent] = {}
        on_duty: list[int] = []
        if wants_on_duty(event):
            for agent in await self._alerter.on_duty():
                agents[agent.id] = agent
                on_duty.append(agent.id)
        delays: list[float | None] = []
        for alert in alerts_for(event, previous, on_duty):
            found = agents.get(alert.agent_id) or await self._alerter.agent(alert.agent_id)
            if found is None:
                log.info("event %s: agent %s is gone", event["event_id"], alert.agent_id)
                continue
            delays.append(await self._alerter.ticket_alert(event, alert.kind, found, progress))
        return _longest(delays)


class DigestConsumer(JetStreamConsumer[DigestEventPayload]):
    """The opening digest to the agents on duty (durable ``<notify>-digest``)."""

    stream = STREAM
    filter_subject = desk_messages.DIGEST_SUBJECT
    description = "notify: the digest at the desk's opening, to the agents on duty"

    def __init__(self, nats_url: str, alerter: AgentAlerter, **kwargs: Any) -> None:
        super().__init__(nats_url, **kwargs)
        self._alerter = alerter

    async def ensure_stream(self, js: JetStreamContext) -> None:
        await ensure_stream(js)

    decode = desk_messages.decode

    def describe(self, event: DigestEventPayload) -> str:
        return f"{event['event_id']} (desk digest)"

    async def process(self, event: DigestEventPayload, progress: Progress) -> float | None:
        delays: list[float | None] = []
        for person in event["agents"]:
            agent = await self._alerter.agent(int(person["id"]))
            if agent is None or not agent.on_call:
                continue  # gone, or off duty since the desk opened
            delays.append(await self._alerter.digest(event, agent, progress))
        return _longest(delays)


class AgentAlerts(ConsumerGroup):
    """Both agent consumers of the notify process, started and stopped together."""

    def __init__(
        self,
        nats_url: str,
        sessions: async_sessionmaker[AsyncSession],
        alerter: AgentAlerter,
        *,
        durable: str,
        deliver_policy: Any,
        retry: RetryPolicy,
    ) -> None:
        common = {"deliver_policy": deliver_policy, "retry": retry}
        super().__init__(
            [
                AgentTicketConsumer(
                    nats_url,
                    alerter,
                    AssigneeMemory(sessions),
                    durable=f"{durable}-agents",
                    **common,
                ),
                DigestConsumer(nats_url, alerter, durable=f"{durable}-digest", **common),
            ]
        )
