"""``TicketService``: the RPCs validate input, hand every change to the ticket's workflow
as an update, and answer from the read model the workflow keeps current."""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from opentelemetry import trace
from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb
from helpdesk.v1 import tickets_pb2_grpc as tgrpc
from services.common.access import Role, principal, scoped_key
from services.common.events import EventPublisher
from services.common.rpc_errors import (
    Context,
    RpcError,
    already_exists,
    invalid,
    not_found,
    optional_text,
    precondition,
    require_id,
    require_text,
    rpc_method,
)
from services.common.tokens import TokenSigner
from services.common.workflow_updates import WorkflowGone
from services.tickets import models as m
from services.tickets import queues
from services.tickets.assignment import check_holder
from services.tickets.attachments import AttachmentRpcs
from services.tickets.closing import closing_hours
from services.tickets.convert import (
    optional_name,
    priority_for,
    required_name,
    value_of,
)
from services.tickets.creation import (
    NewTicket,
    TicketCreator,
    attachment_rows,
    validate_attachments,
)
from services.tickets.followers import FollowerRpcs
from services.tickets.interactions import InteractionRpcs
from services.tickets.links import TicketLinkRpcs
from services.tickets.maintenance import MaintenanceRpcs
from services.tickets.merging import MergingRpcs, survivor
from services.tickets.priority import PriorityRpcs
from services.tickets.readmodel import (
    actor_name,
    comment_pb,
    new_ticket_pb,
    state_from_row,
    ticket_pb,
)
from services.tickets.report_mail import ReportMailRpcs
from services.tickets.reports import ReportRpcs
from services.tickets.requalify import RequalifyRpcs
from services.tickets.resend import ResendRpcs
from services.tickets.satisfaction import SatisfactionRpcs
from services.tickets.second_level import SecondLevelRpcs
from services.tickets.sla_terms import sla_terms_for
from services.tickets.ticket_list import list_tickets
from services.tickets.ticket_search import TicketSearchRpcs
from services.tickets.ticket_visibility import visible_requesters, visible_tickets
from services.tickets.workflow_calls import (
    execute_update,
    execute_update_with_start,
)
from workflows.contracts import (
    UPDATE_ADD_COMMENT,
    UPDATE_ASSIGN,
    UPDATE_CHANGE_STATUS,
    UPDATE_CONFIRM,
    UPDATE_ESCALATE,
    UPDATE_MERGE,
    UPDATE_REOPEN,
    UPDATE_THIRD_PARTY,
    ActorRef,
    AssignInput,
    CommentData,
    CommentInput,
    CommentResult,
    CustomerAnswerInput,
    StatusInput,
    TicketState,
)

MAX_SUBJECT = 300
MAX_BODY = 100_000
# A comment's body in UTF-8 bytes. It travels through the ticket workflow's history twice
# (the update, the recording activity): 256 KiB keeps every comment far from Temporal's
# 2 MB payload limit, and still takes any MAX_BODY-character text of a European language
# (intake cuts mail and messages at MAX_BODY characters).
MAX_COMMENT_BYTES = 256 * 1024
# Comments on one ticket waiting for its workflow at once (per process): with the
# workflow's own guard on its history size (workflows/ticket.py), what a burst of comments
# can add to one run's history stays bounded.
MAX_COMMENTS_IN_FLIGHT = 8
# Codes after which a comment's update may still have landed: its attachments stay for the
# retry (same request_id) to find.
UNCERTAIN = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNKNOWN}
)
# Where each update means to take the ticket, for refusals once its workflow has ended.
_UPDATE_TARGET = {
    UPDATE_ASSIGN: "OPEN",
    UPDATE_REOPEN: "OPEN",
    UPDATE_CONFIRM: "CLOSED",
    UPDATE_ESCALATE: "ON_HOLD",
    UPDATE_MERGE: "CLOSED",
    UPDATE_THIRD_PARTY: "ON_HOLD",
}
COMMENT_NS = uuid.UUID("6f1c1a52-4d59-4b8e-9a55-0d0c2a7c6c11")


def _audit_name() -> str:
    """Who made the call, for the history: role and principal, never a token."""
    who = principal()
    if who.kind in ("ADMIN", "SERVICE"):
        return f"{who.role.value} {who.name or who.kind.lower()}"
    return f"{who.role.value} {who.kind}#{who.id}"


class TicketServicer(
    TicketSearchRpcs,
    InteractionRpcs,
    MaintenanceRpcs,
    AttachmentRpcs,
    TicketLinkRpcs,
    SecondLevelRpcs,
    MergingRpcs,
    FollowerRpcs,
    ResendRpcs,
    PriorityRpcs,
    RequalifyRpcs,
    SatisfactionRpcs,
    ReportRpcs,
    ReportMailRpcs,
    tgrpc.TicketServiceServicer,
):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        client: Client,
        creator: TicketCreator,
        # Checks survey tokens (SubmitSatisfaction) and link tokens (GetTicketByLink, ...).
        signer: TokenSigner | None = None,
        publisher: EventPublisher | None = None,  # publishes reports to mail (SendReport)
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.creator = creator
        self.signer = signer
        self.publisher = publisher
        self._comments_in_flight: Counter[int] = Counter()

    # -- helpers ---------------------------------------------------------------

    async def _ticket(self, ticket_id: int) -> pb.Ticket:
        async with self.sessions() as session:
            row = await self._row(session, ticket_id)
            return await ticket_pb(session, row, customer=principal().is_customer)

    async def _row(self, session: AsyncSession, ticket_id: int) -> m.Ticket:
        """The ticket, when the caller may see it: a customer sees their own tickets (a
        referent the whole organisation's); for anyone else's, the ticket does not exist."""
        row = await session.get(m.Ticket, require_id("ticket_id", ticket_id))
        who = principal()
        if row is None or (
            who.is_customer
            and (
                row.organization_id != who.organization_id
                or (
                    who.role is Role.USER
                    and row.requester_id not in await visible_requesters(session, who)
                )
            )
        ):
            not_found(f"ticket {ticket_id}")
        return row

    async def _visible(self, session: AsyncSession, query: Select[Any]) -> Select[Any]:
        """``query`` over tickets narrowed to those the caller may see, in the query itself
        (never filtered after it): a customer's organisation, a USER's own (and their
        department's) tickets; staff see every ticket."""
        return query.where(*visible_tickets(principal()))

    async def _actor(
        self, session: AsyncSession, actor: tpb.Actor, field: str, want: tuple[str, ...]
    ) -> ActorRef:
        """Who performs the action: the caller itself, from its token. Only the admin and
        the services (and agents recording a customer's answer) act for someone named in
        the request."""
        who = principal()
        own_kind = "CONTACT" if who.kind == "CONTACT" else "AGENT"
        if not who.is_trusted and (who.is_customer or own_kind in want):
            if own_kind not in want:
                raise RpcError(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"{who.role.value} cannot act as {'/'.join(want)}",
                )
            named = optional_name(pb.AuthorKind, actor.kind, f"{field}.kind")
            if named and (named != own_kind or (actor.id and actor.id != who.id)):
                raise RpcError(
                    grpc.StatusCode.PERMISSION_DENIED, f"{field}: callers act only as themselves"
                )
            return ActorRef(own_kind, who.id, by=_audit_name())
        kind = optional_name(pb.AuthorKind, actor.kind, f"{field}.kind")
        if kind not in want:
            invalid(f"{field}.kind", f"must be one of {', '.join(want)}")
        if kind == "SYSTEM":
            return ActorRef("SYSTEM", 0, by=_audit_name())
        require_id(f"{field}.id", actor.id)
        model = m.Contact if kind == "CONTACT" else m.Agent
        if await session.get(model, actor.id) is None:
            not_found(f"{kind.lower()} {actor.id}")
        return ActorRef(kind, actor.id, by=_audit_name())

    async def _requester_or_org_contact(
        self, session: AsyncSession, row: m.Ticket, actor: ActorRef
    ) -> None:
        """A customer acts only on their own organisation's tickets."""
        if actor.kind == "CONTACT":
            contact = await session.get(m.Contact, actor.id)
            if contact is None or contact.organization_id != row.organization_id:
                raise RpcError(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"contact {actor.id} is not of ticket #{row.id}'s organization",
                )

    async def _update(
        self, ticket_id: int, update: str, arg: object, result_type: type, update_id: str = ""
    ) -> object:
        try:
            return await execute_update(
                self.client, ticket_id, update, arg, result_type, update_id or uuid.uuid4().hex
            )
        except WorkflowGone:
            async with self.sessions() as session:
                row = await self._row(session, ticket_id)
            if not row.workflow_started:
                await self.creator.ensure_workflow(row)
                return await execute_update(
                    self.client,
                    ticket_id,
                    update,
                    arg,
                    result_type,
                    update_id or uuid.uuid4().hex,
                )
            if update == UPDATE_ADD_COMMENT:
                precondition(f"#{ticket_id}: cannot comment on a {row.status} ticket")
            if update not in _UPDATE_TARGET and not isinstance(arg, StatusInput):
                precondition(f"#{ticket_id} is {row.status}: {update.replace('_', ' ')} refused")
            target = arg.status if isinstance(arg, StatusInput) else _UPDATE_TARGET[update]
            precondition(
                f"#{ticket_id}: cannot move ticket from {row.status} to {target}"
                f" ({row.status} is final)"
            )

    @staticmethod
    def _requester(requested: int) -> int:
        """A customer opens tickets only as themselves."""
        who = principal()
        if who.is_customer:
            if requested and requested != who.id:
                raise RpcError(
                    grpc.StatusCode.PERMISSION_DENIED,
                    "requester_id: customers open tickets as themselves",
                )
            return who.id
        return require_id("requester_id", requested)

    # -- creation and reads --------------------------------------------------------

    @rpc_method
    async def CreateTicket(self, request: tpb.CreateTicketRequest, context: Context) -> pb.Ticket:
        # Every channel's tickets start qualified (seed 001's lowest tier unless told), so
        # the report per severity covers them all; the desk requalifies (RequalifyTicket).
        criticality = (
            optional_name(pb.Criticality, request.criticality, "criticality") or "NON_BLOCKING"
        )
        new = NewTicket(
            # Scoped to the caller: a key never finds another caller's ticket.
            request_id=scoped_key(
                "request_id", optional_text("request_id", request.request_id, 200), principal()
            )
            or None,
            subject=require_text("subject", request.subject, MAX_SUBJECT),
            description=optional_text("description", request.description, MAX_BODY),
            requester_id=self._requester(request.requester_id),
            channel=optional_name(pb.Channel, request.channel, "channel") or "API",
            kind=optional_name(pb.TicketKind, request.kind, "kind"),
            product=optional_text("product", request.product, 200),
            version=optional_text("version", request.version, 100),
            os=optional_text("os", request.os, 100),
            criticality=criticality,
            priority=priority_for(
                criticality, optional_name(pb.Priority, request.priority, "priority")
            ),
            phone=optional_text("phone", request.phone, 50),
            callback_number=optional_text("callback_number", request.callback_number, 50),
            attachments_requested_by_email=request.attachments_requested_by_email,
            follow_up_of=request.follow_up_of or None,
            attachments=list(request.attachments),
            received_at=_received_at(request),
        )
        if new.follow_up_of is not None:
            async with self.sessions() as session:
                await self._row(session, new.follow_up_of)
        row, written = await self.creator.open(new)
        # The call's span names its ticket: an operator finds the trace by the number.
        trace.get_current_span().set_attribute("helpdesk.ticket_id", row.id)
        if written is None:  # a retry: the ticket as it is now
            return await self._ticket(row.id)
        # Built from what was written, not read back.
        return new_ticket_pb(
            written.ticket, written.organization, written.requester, written.attachments
        )

    @rpc_method
    async def CountTickets(
        self, request: tpb.CountTicketsRequest, context: Context
    ) -> tpb.CountTicketsResponse:
        if len(request.queries) > queues.MAX_COUNT_QUERIES:
            invalid("queries", f"at most {queues.MAX_COUNT_QUERIES}")
        who = principal()
        counts: list[int] = []
        async with self.sessions() as session:
            for query in request.queries:
                if who.is_customer and query.organization_id not in (0, who.organization_id):
                    counts.append(0)
                    continue
                counted = await self._visible(session, select(func.count()).select_from(m.Ticket))
                counted = queues.with_filters(queues.with_list_filters(counted, query), query)
                counts.append(int(await session.scalar(counted) or 0))
        return tpb.CountTicketsResponse(counts=counts)

    @rpc_method
    async def GetTicket(self, request: tpb.GetTicketRequest, context: Context) -> pb.Ticket:
        return await self._ticket(require_id("id", request.id))

    @rpc_method
    async def ListTickets(
        self, request: tpb.ListTicketsRequest, context: Context
    ) -> tpb.ListTicketsResponse:
        who = principal()
        if who.is_customer and request.organization_id not in (0, who.organization_id):
            return tpb.ListTicketsResponse()
        async with self.sessions() as session:
            # Ordered by urgency for the desk, with its queue filters (queues.py), in one
            # SELECT (ticket_list.py).
            return await list_tickets(session, request, who)

    @rpc_method
    async def ListComments(
        self, request: tpb.ListCommentsRequest, context: Context
    ) -> tpb.ListCommentsResponse:
        async with self.sessions() as session:
            await self._row(session, request.ticket_id)
            query = (
                select(m.Comment)
                .where(m.Comment.ticket_id == request.ticket_id)
                .order_by(m.Comment.created_at, m.Comment.id)
            )
            if not request.include_internal or principal().is_customer:
                query = query.where(m.Comment.visibility == "PUBLIC")
            rows = (await session.scalars(query)).all()
            return tpb.ListCommentsResponse(comments=[await comment_pb(session, c) for c in rows])

    @rpc_method
    async def GetTicketHistory(
        self, request: tpb.GetTicketHistoryRequest, context: Context
    ) -> tpb.GetTicketHistoryResponse:
        async with self.sessions() as session:
            await self._row(session, request.ticket_id)
            query = (
                select(m.TicketEvent)
                .where(m.TicketEvent.ticket_id == request.ticket_id)
                .order_by(m.TicketEvent.occurred_at, m.TicketEvent.seq, m.TicketEvent.id)
            )
            customer = principal().is_customer
            if customer:  # no internal notes, no internal service levels
                query = query.where(
                    m.TicketEvent.internal.is_(False), m.TicketEvent.type != "sla_breached"
                )
            rows = (await session.scalars(query)).all()
            events = []
            for e in rows:
                stamp = pb.TicketEvent(
                    id=e.id,
                    ticket_id=e.ticket_id,
                    type=e.type,
                    actor_kind=value_of(pb.AuthorKind, e.actor_kind),
                    actor_id=e.actor_id,
                    actor_name=await actor_name(session, e.actor_kind, e.actor_id),
                    from_status=value_of(pb.TicketStatus, e.from_status),
                    to_status=value_of(pb.TicketStatus, e.to_status),
                    detail=e.detail,
                    performed_by="" if customer else e.performed_by,
                )
                stamp.occurred_at.FromDatetime(e.occurred_at)
                events.append(stamp)
        return tpb.GetTicketHistoryResponse(events=events)

    # -- changes: every one goes through the workflow --------------------------------

    @rpc_method
    async def AssignTicket(self, request: tpb.AssignTicketRequest, context: Context) -> pb.Ticket:
        reason = optional_text("reason", request.reason, 2000)
        async with self.sessions() as session:
            row = await self._row(session, request.ticket_id)
            assignee = await session.get(m.Agent, require_id("assignee_id", request.assignee_id))
            if assignee is None:
                not_found(f"agent {request.assignee_id}")
            who = principal()
            if who.role is Role.AGENT and assignee.id != who.id:
                raise RpcError(
                    grpc.StatusCode.PERMISSION_DENIED,
                    "agents take tickets themselves; a team lead reassigns",
                )
            # No silent take-over: team leads (and the admin, the services) reassign.
            may_reassign = who.role is not Role.AGENT
            await check_holder(session, row, assignee.id, request.take_over, reason, may_reassign)
            actor = (
                await self._actor(session, request.actor, "actor", ("AGENT",))
                if request.HasField("actor")
                else ActorRef("AGENT", assignee.id, by=_audit_name())
            )
        await self._update(
            request.ticket_id,
            UPDATE_ASSIGN,
            AssignInput(assignee.id, actor, request.take_over, reason, may_reassign),
            TicketState,
        )
        return await self._ticket(request.ticket_id)

    @rpc_method
    async def ChangeStatus(self, request: tpb.ChangeStatusRequest, context: Context) -> pb.Ticket:
        target = required_name(pb.TicketStatus, request.status, "status")
        if target == "NEW":
            invalid("status", "an agent cannot set NEW")
        reason = optional_text("reason", request.reason, 2000)
        hours = closing_hours(request, target)
        request_id = scoped_key(
            "request_id", optional_text("request_id", request.request_id, 200), principal()
        )
        async with self.sessions() as session:
            await self._row(session, request.ticket_id)
            actor = await self._actor(session, request.actor, "actor", ("AGENT",))
        await self._update(
            request.ticket_id,
            UPDATE_CHANGE_STATUS,
            StatusInput(target, actor, reason, hours),
            TicketState,
            update_id=f"status-{request.ticket_id}-{request_id}" if request_id else "",
        )
        return await self._ticket(request.ticket_id)

    @rpc_method
    async def ReopenTicket(self, request: tpb.ReopenTicketRequest, context: Context) -> pb.Ticket:
        reason = optional_text("reason", request.reason, 2000)
        async with self.sessions() as session:
            row = await self._row(session, request.ticket_id)
            actor = await self._actor(session, request.actor, "actor", ("CONTACT",))
            await self._requester_or_org_contact(session, row, actor)
        await self._update(
            request.ticket_id, UPDATE_REOPEN, CustomerAnswerInput(actor, reason), TicketState
        )
        return await self._ticket(request.ticket_id)

    @rpc_method
    async def ConfirmSolution(
        self, request: tpb.ConfirmSolutionRequest, context: Context
    ) -> pb.Ticket:
        async with self.sessions() as session:
            row = await self._row(session, request.ticket_id)
            actor = await self._actor(session, request.actor, "actor", ("CONTACT",))
            await self._requester_or_org_contact(session, row, actor)
        await self._update(
            request.ticket_id, UPDATE_CONFIRM, CustomerAnswerInput(actor), TicketState
        )
        return await self._ticket(request.ticket_id)

    @rpc_method
    async def AddComment(
        self, request: tpb.AddCommentRequest, context: Context
    ) -> tpb.AddCommentResponse:
        body = require_text("body", request.body, MAX_BODY)
        if len(body.encode()) > MAX_COMMENT_BYTES:
            invalid("body", f"is larger than {MAX_COMMENT_BYTES} bytes (UTF-8)")
        # Scoped to the caller: a retry finds the caller's own comment and nothing else.
        request_id = scoped_key(
            "request_id", optional_text("request_id", request.request_id, 200), principal()
        )
        visibility = (
            optional_name(pb.CommentVisibility, request.visibility, "visibility") or "PUBLIC"
        )
        async with self.sessions() as session:
            # A message for a merged ticket lands on the ticket that survived the merge.
            row = await survivor(session, await self._row(session, request.ticket_id))
            # Services may file system notes (an out-of-office answer, a bounced email).
            kinds = (
                ("CONTACT", "AGENT", "SYSTEM") if principal().is_trusted else ("CONTACT", "AGENT")
            )
            author = await self._actor(session, request.author, "author", kinds)
            await self._requester_or_org_contact(session, row, author)
            if author.kind == "CONTACT" and visibility != "PUBLIC":
                invalid("visibility", "a customer's comment is always public")
            if author.kind == "SYSTEM" and visibility != "INTERNAL":
                invalid("visibility", "a system note is internal")
            comment_id = (
                uuid.uuid5(COMMENT_NS, f"{row.id}:{request_id}").hex
                if request_id
                else uuid.uuid4().hex
            )
            existing = await session.get(m.Comment, comment_id)
            if existing is not None:  # a retry of a comment already recorded
                if (existing.author_kind, existing.author_id) != (author.kind, author.id):
                    already_exists("request_id: already used for another author's comment")
                return tpb.AddCommentResponse(
                    comment=await comment_pb(session, existing),
                    ticket=await ticket_pb(session, row, customer=principal().is_customer),
                )
            org = await session.get(m.Organization, row.organization_id)
            assert org is not None
            attachments = list(request.attachments)
            validate_attachments(attachments)
            status, policy = row.status, org.closed_ticket_policy
            follow_up = status == "CLOSED" and author.kind == "CONTACT" and policy != "REOPEN"
            follow_up_key = _follow_up_key(row.id, request_id or comment_id)
            # A retry of a message that already opened its follow-up adds no files again.
            opened = follow_up and await self.creator.by_request_id(session, follow_up_key)
            if attachments and not opened:
                await self._store_attachments(session, attachments, row.id, comment_id)
        if opened:
            return await self._follow_up(row, author, body, comment_id, follow_up_key)
        data = CommentData(id=comment_id, visibility=visibility, author=author, body=body)
        if self._comments_in_flight[row.id] >= MAX_COMMENTS_IN_FLIGHT:
            raise RpcError(
                grpc.StatusCode.UNAVAILABLE,
                f"#{row.id}: too many comments arriving at once; retry with the same request_id",
            )
        self._comments_in_flight[row.id] += 1
        try:
            if follow_up:
                return await self._follow_up(row, author, body, comment_id, follow_up_key)
            if status == "CLOSED" and author.kind == "CONTACT":  # the REOPEN policy
                return await self._reactivate(row, org, data)
            result = await self._update(
                row.id,
                UPDATE_ADD_COMMENT,
                CommentInput(comment=data),
                CommentResult,
                update_id=f"comment-{comment_id}",
            )
        except RpcError as err:
            # Refused: the files go. Unanswered (UNAVAILABLE, a timeout): the update may
            # have landed, so they stay for the retry, which finds them and adds no others.
            if attachments and err.code not in UNCERTAIN:
                async with self.sessions() as session:
                    await session.execute(
                        delete(m.Attachment).where(m.Attachment.comment_id == comment_id)
                    )
                    await session.commit()
            raise
        finally:
            self._comments_in_flight[row.id] -= 1
            if self._comments_in_flight[row.id] <= 0:
                del self._comments_in_flight[row.id]
        assert isinstance(result, CommentResult)
        return await self._comment_response(row.id, comment_id, reopened=result.reopened)

    @staticmethod
    async def _store_attachments(
        session: AsyncSession, attachments: list[pb.Attachment], ticket_id: int, comment_id: str
    ) -> None:
        """A comment's files, stored before its change so that nothing is lost. A retry
        (same request_id) finds those of its earlier try, if kept, and adds none: the same
        files, or ``ALREADY_EXISTS`` for other ones under the same key."""
        kept = list(
            (
                await session.scalars(
                    select(m.Attachment.sha256).where(m.Attachment.comment_id == comment_id)
                )
            ).all()
        )
        if kept:
            wanted = [hashlib.sha256(a.content).hexdigest() for a in attachments]
            if sorted(kept) != sorted(wanted):
                already_exists("request_id: already used for a comment with other attachments")
            return
        session.add_all(attachment_rows(attachments, ticket_id, comment_id, datetime.now(UTC)))
        await session.commit()

    async def _comment_response(
        self, ticket_id: int, comment_id: str, reopened: bool = False, follow_up: bool = False
    ) -> tpb.AddCommentResponse:
        async with self.sessions() as session:
            row = await self._row(session, ticket_id)
            comment = await session.get(m.Comment, comment_id)
            return tpb.AddCommentResponse(
                comment=await comment_pb(session, comment) if comment else None,
                ticket=await ticket_pb(session, row, customer=principal().is_customer),
                reopened=reopened,
                follow_up_created=follow_up,
            )

    async def _reactivate(
        self, row: m.Ticket, org: m.Organization, data: CommentData
    ) -> tpb.AddCommentResponse:
        """REOPEN policy (seed 004): the closed ticket's workflow runs again, opened by this
        comment."""
        state = state_from_row(row, org, self.creator.auto_close_after_seconds)
        async with self.sessions() as session:
            state.terms = await sla_terms_for(session, row.organization_id)
        result = await execute_update_with_start(
            self.client,
            self.creator.workflow_input(state, "reactivated"),
            row.subject,
            UPDATE_ADD_COMMENT,
            CommentInput(comment=data, reactivate=True),
            CommentResult,
            update_id=f"comment-{data.id}",
        )
        assert isinstance(result, CommentResult)
        return await self._comment_response(row.id, data.id, reopened=result.reopened)

    async def _follow_up(
        self, row: m.Ticket, author: ActorRef, body: str, comment_id: str, key: str
    ) -> tpb.AddCommentResponse:
        """FOLLOW_UP policy (seed 003, the default): a new ticket linked to the closed one,
        once per message (``key``); the message's files move to it."""
        subject = (
            row.subject
            if row.subject.lower().startswith("follow-up")
            else (f"Follow-up #{row.id}: {row.subject}")
        )
        new, _ = await self.creator.create(
            NewTicket(
                request_id=key,
                subject=subject[:MAX_SUBJECT],
                description=body,
                requester_id=author.id,
                channel=row.channel,
                priority=row.priority,
                kind=row.kind,
                product=row.product,
                version=row.version,
                os=row.os,
                criticality=row.criticality,
                follow_up_of=row.id,
            )
        )
        async with self.sessions() as session:  # the message's attachments go with it
            await session.execute(
                update(m.Attachment)
                .where(m.Attachment.comment_id == comment_id)
                .values(ticket_id=new.id, comment_id=None)
            )
            await session.commit()
        return await self._comment_response(new.id, comment_id, follow_up=True)


def _received_at(request: tpb.CreateTicketRequest) -> datetime | None:
    """When the request reached the desk: intake says so (a mail accepted earlier)."""
    if not request.HasField("received_at"):
        return None
    if not principal().is_trusted:
        raise RpcError(
            grpc.StatusCode.PERMISSION_DENIED, "received_at: set only by the help desk's services"
        )
    at = request.received_at.ToDatetime(tzinfo=UTC)
    if at > datetime.now(UTC) + timedelta(minutes=5):
        invalid("received_at", "is in the future")
    return at


def _follow_up_key(ticket_id: int, key: str) -> str:
    """The request ID of the follow-up a message to closed ticket ``ticket_id`` opens (a
    stored key: hashed when it would be too long)."""
    found = f"follow-up:{ticket_id}:{key}"
    if len(found) <= 200:
        return found
    return f"follow-up:{ticket_id}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
