"""What the web gateway needs of TicketService beyond the agents' RPCs, over a real
in-process gRPC server with the ticket workflow on the Temporal dev server: attachments
streamed to whoever may see the ticket (never an internal comment's files to a customer,
not even their names in GetTicket), and the solved email's confirm / reopen links, whose
token is the credential."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import grpc
import pytest

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.access import Principal, Role
from services.common.auth import bearer_metadata
from services.common.tokens import TokenSigner
from services.tickets import models as m
from services.tickets.attachments import CHUNK_BYTES
from tests.services.ticket_api import ADMIN_TOKEN, SIGNER, Api
from tests.support import TicketsStack

pytestmark = [pytest.mark.db, pytest.mark.timeout(180)]

MD = bearer_metadata(ADMIN_TOKEN)


async def _code(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    return err.value.code(), err.value.details() or ""


async def _contact(
    stack: TicketsStack, role: str = "USER", organization_id: int = 0
) -> tuple[int, Any]:
    """A new contact, and the metadata of their access token."""
    org_id = organization_id or stack.org_id
    async with stack.sessions() as session:
        contact = m.Contact(
            organization_id=org_id,
            name=f"Persona {role.title()}",
            email=f"p.{uuid.uuid4().hex[:8]}@rossi.it",
            email_key=uuid.uuid4().hex,
            role=role,
            locale="it",
            created_at=datetime.now(UTC),
        )
        session.add(contact)
        await session.commit()
        who = Principal(
            role=Role(role), kind="CONTACT", id=contact.id, organization_id=org_id, name="x"
        )
        return contact.id, bearer_metadata(SIGNER.access_token(who))


def _as(stack: TicketsStack, role: Role) -> Any:
    if role in (Role.USER, Role.REFERENT):
        who = Principal(
            role=role, kind="CONTACT", id=stack.contact_id, organization_id=stack.org_id
        )
    else:
        who = Principal(role=role, kind="AGENT", id=stack.agent_id)
    return bearer_metadata(SIGNER.access_token(who))


async def _download(
    api: Api, ticket_id: int, attachment_id: str, metadata: Any
) -> list[tpb.AttachmentChunk]:
    call = api.tickets.DownloadAttachment(
        tpb.DownloadAttachmentRequest(ticket_id=ticket_id, attachment_id=attachment_id),
        metadata=metadata,
    )
    return [chunk async for chunk in call]  # type: ignore[attr-defined]


async def _download_code(
    api: Api, ticket_id: int, attachment_id: str, metadata: Any
) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _download(api, ticket_id, attachment_id, metadata)
    return err.value.code(), err.value.details() or ""


# -- attachments ----------------------------------------------------------------------


async def test_an_attachment_streams_in_chunks_with_its_metadata_first(api: Api) -> None:
    content = os.urandom(3 * CHUNK_BYTES + 1234)
    ticket = await api.tickets.CreateTicket(
        tpb.CreateTicketRequest(
            subject="Registro errori",
            requester_id=api.stack.contact_id,
            attachments=[
                pb.Attachment(filename="log.bin", content_type="text/plain", content=content),
                pb.Attachment(filename="vuoto.txt", content=b""),
            ],
        ),
        metadata=MD,
    )
    big, empty = ticket.attachments
    owner = _as(api.stack, Role.USER)
    chunks = await _download(api, ticket.id, big.id, owner)
    assert len(chunks) == 4
    assert all(len(c.data) <= CHUNK_BYTES for c in chunks)
    assert chunks[0].attachment == pb.Attachment(
        id=big.id,
        filename="log.bin",
        content_type="text/plain",
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
    )
    assert not any(c.HasField("attachment") for c in chunks[1:])
    assert b"".join(c.data for c in chunks) == content
    # An empty file is still one chunk: its metadata.
    [only] = await _download(api, ticket.id, empty.id, owner)
    assert only.attachment.filename == "vuoto.txt" and only.attachment.size == 0
    assert only.data == b""
    # Staff see it too; an attachment asked for under another ticket does not exist.
    for role in (Role.AGENT, Role.FRONT_DESK):
        assert len(await _download(api, ticket.id, big.id, _as(api.stack, role))) == 4
    other = await api.stack.new_ticket()
    code, details = await _download_code(api, other, big.id, MD)
    assert code == grpc.StatusCode.NOT_FOUND and "attachment" in details
    code, details = await _download_code(api, ticket.id, "", MD)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "attachment_id" in details


async def test_a_stream_is_refused_like_any_call(api: Api) -> None:
    """The interceptor refuses a streaming call as a stream: no token, a bad one, a role
    outside the table's row."""
    ticket = await api.tickets.CreateTicket(
        tpb.CreateTicketRequest(
            subject="Schermata",
            requester_id=api.stack.contact_id,
            attachments=[pb.Attachment(filename="a.png", content=b"png")],
        ),
        metadata=MD,
    )
    attachment = ticket.attachments[0].id
    for metadata in ((), bearer_metadata("not-a-token")):
        code, _ = await _download_code(api, ticket.id, attachment, metadata)
        assert code == grpc.StatusCode.UNAUTHENTICATED
    code, details = await _download_code(api, ticket.id, attachment, _as(api.stack, Role.DEVELOPER))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "DownloadAttachment" in details


async def test_customers_get_only_the_files_they_may_see(api: Api) -> None:
    stack = api.stack
    agent = tpb.Actor(kind=pb.AUTHOR_KIND_AGENT, id=stack.agent_id)
    ticket = await api.tickets.CreateTicket(
        tpb.CreateTicketRequest(
            subject="Fattura",
            requester_id=stack.contact_id,
            attachments=[pb.Attachment(filename="fattura.pdf", content=b"%PDF mine")],
        ),
        metadata=MD,
    )
    internal = await api.tickets.AddComment(
        tpb.AddCommentRequest(
            ticket_id=ticket.id,
            body="nota interna con il dump del database",
            author=agent,
            visibility=pb.COMMENT_VISIBILITY_INTERNAL,
            attachments=[pb.Attachment(filename="dump-clienti.sql", content=b"secret rows")],
        ),
        metadata=MD,
    )
    public = await api.tickets.AddComment(
        tpb.AddCommentRequest(
            ticket_id=ticket.id,
            body="Ecco la patch",
            author=agent,
            attachments=[pb.Attachment(filename="patch.zip", content=b"PK patch")],
        ),
        metadata=MD,
    )
    mine = ticket.attachments[0].id
    hidden = internal.comment.attachments[0].id
    shared = public.comment.attachments[0].id

    owner = _as(stack, Role.USER)
    _, referent = await _contact(stack, "REFERENT")
    _, colleague = await _contact(stack, "USER")
    async with stack.sessions() as session:
        other_org = m.Organization(
            name=f"Bianchi {uuid.uuid4().hex[:6]}",
            name_key=uuid.uuid4().hex,
            email_domains=[],
            closed_ticket_policy="FOLLOW_UP",
            locale="it",
            created_at=datetime.now(UTC),
        )
        session.add(other_org)
        await session.commit()
        other_org_id = other_org.id
    _, stranger = await _contact(stack, "REFERENT", other_org_id)

    # The requester and the referent: the ticket's files and the public comment's.
    for customer in (owner, referent):
        for attachment in (mine, shared):
            chunks = await _download(api, ticket.id, attachment, customer)
            assert chunks[0].attachment.id == attachment
        code, details = await _download_code(api, ticket.id, hidden, customer)
        assert code == grpc.StatusCode.NOT_FOUND and hidden in details
        # ... and GetTicket / ListTickets do not even name the internal one.
        seen = await api.tickets.GetTicket(tpb.GetTicketRequest(id=ticket.id), metadata=customer)
        assert sorted(a.filename for a in seen.attachments) == ["fattura.pdf", "patch.zip"]
        # ... nor its ID, size or hash anywhere in the answer.
        hidden_sha = internal.comment.attachments[0].sha256
        assert hidden.encode() not in seen.SerializeToString()
        assert hidden_sha.encode() not in seen.SerializeToString()
        assert len(b"secret rows") not in [a.size for a in seen.attachments]
        listed = await api.tickets.ListTickets(tpb.ListTicketsRequest(), metadata=customer)
        [row] = [t for t in listed.tickets if t.id == ticket.id]
        assert "dump-clienti.sql" not in [a.filename for a in row.attachments]
    # A colleague (plain USER) and another organisation: the ticket does not exist.
    for outsider in (colleague, stranger):
        for attachment in (mine, shared, hidden):
            code, details = await _download_code(api, ticket.id, attachment, outsider)
            assert code == grpc.StatusCode.NOT_FOUND and f"ticket {ticket.id}" in details
    # Staff see everything.
    staff = await api.tickets.GetTicket(tpb.GetTicketRequest(id=ticket.id), metadata=MD)
    assert sorted(a.filename for a in staff.attachments) == [
        "dump-clienti.sql",
        "fattura.pdf",
        "patch.zip",
    ]
    [chunk] = await _download(api, ticket.id, hidden, _as(stack, Role.AGENT))
    assert chunk.data == b"secret rows"


# -- confirm / reopen links -----------------------------------------------------------


async def _solved(api: Api, ticket_id: int) -> None:
    await api.tickets.ChangeStatus(
        tpb.ChangeStatusRequest(
            ticket_id=ticket_id,
            status=pb.TICKET_STATUS_SOLVED,
            actor=tpb.Actor(kind=pb.AUTHOR_KIND_AGENT, id=api.stack.agent_id),
        ),
        metadata=MD,
    )


def _links(ticket_id: int, ttl: int = 3600) -> tuple[str, str]:
    until = int(time.time()) + ttl
    return SIGNER.link_token(ticket_id, "confirm", until), SIGNER.link_token(
        ticket_id, "reopen", until
    )


async def test_the_reopen_link_reopens_as_the_requester_and_confirm_closes(api: Api) -> None:
    agent = tpb.Actor(kind=pb.AUTHOR_KIND_AGENT, id=api.stack.agent_id)
    ticket_id = await api.stack.new_ticket()
    await api.tickets.AddComment(
        tpb.AddCommentRequest(
            ticket_id=ticket_id,
            body="interna",
            author=agent,
            visibility=pb.COMMENT_VISIBILITY_INTERNAL,
            attachments=[pb.Attachment(filename="interno.txt", content=b"x")],
        ),
        metadata=MD,
    )
    await _solved(api, ticket_id)
    confirm, reopen = _links(ticket_id)

    # No bearer token: the link's token is the credential. The public view.
    seen = await api.tickets.GetTicketByLink(tpb.TicketLinkRequest(token=reopen))
    assert seen.action == "reopen"
    assert seen.ticket.id == ticket_id and seen.ticket.status == pb.TICKET_STATUS_SOLVED
    assert list(seen.ticket.attachments) == [] and list(seen.ticket.sla) == []
    assert seen.ticket.requester_id == api.stack.contact_id
    assert (await api.tickets.GetTicketByLink(tpb.TicketLinkRequest(token=confirm))).action == (
        "confirm"
    )

    reopened = await api.tickets.UseTicketLink(tpb.TicketLinkRequest(token=reopen))
    assert reopened.status == pb.TICKET_STATUS_OPEN and reopened.reopen_count == 1
    history = await api.tickets.GetTicketHistory(
        tpb.GetTicketHistoryRequest(ticket_id=ticket_id), metadata=MD
    )
    [event] = [e for e in history.events if e.type == "reopened"]
    assert event.actor_kind == pb.AUTHOR_KIND_CONTACT and event.actor_id == api.stack.contact_id
    assert event.performed_by == f"LINK CONTACT#{api.stack.contact_id}"
    # No longer SOLVED: both links are refused, naming both states, and change nothing.
    for token, target in ((reopen, "OPEN"), (confirm, "CLOSED")):
        code, details = await _code(api.tickets.UseTicketLink(tpb.TicketLinkRequest(token=token)))
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        assert f"from OPEN to {target}" in details
    assert (await api.stack.ticket(ticket_id)).status == "OPEN"

    # Solved again, the confirm link of the same email closes it as the customer's answer.
    await _solved(api, ticket_id)
    closed = await api.tickets.UseTicketLink(tpb.TicketLinkRequest(token=confirm))
    assert closed.status == pb.TICKET_STATUS_CLOSED
    assert closed.close_reason == pb.CLOSE_REASON_CONFIRMED
    code, details = await _code(api.tickets.UseTicketLink(tpb.TicketLinkRequest(token=reopen)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "from CLOSED to OPEN" in details
    # The closed ticket is still shown by its link, with what the link would have done.
    shown = await api.tickets.GetTicketByLink(tpb.TicketLinkRequest(token=confirm))
    assert shown.ticket.status == pb.TICKET_STATUS_CLOSED


async def test_bad_links_are_unauthenticated_and_change_nothing(api: Api) -> None:
    ticket_id = await api.stack.new_ticket()
    await _solved(api, ticket_id)
    confirm, _ = _links(ticket_id)
    head, body, sig = confirm.split(".")
    login = SIGNER.access_token(
        Principal(
            role=Role.USER,
            kind="CONTACT",
            id=api.stack.contact_id,
            organization_id=api.stack.org_id,
        )
    )
    for token in (
        f"{head}.{body}.{sig[:-2]}{'AA' if sig[-2:] != 'AA' else 'BB'}",  # tampered
        TokenSigner("another-signing-key-0123456789abcdef").link_token(
            ticket_id, "confirm", int(time.time()) + 3600
        ),
        SIGNER.link_token(ticket_id, "confirm", int(time.time()) - 1),  # expired
        SIGNER.survey_token(ticket_id),  # another kind of link
        login,  # a login is no link
        "x" * 5000,
    ):
        for rpc in (api.tickets.GetTicketByLink, api.tickets.UseTicketLink):
            code, details = await _code(rpc(tpb.TicketLinkRequest(token=token)))
            assert code == grpc.StatusCode.UNAUTHENTICATED, details
            assert "token" in details
    code, details = await _code(api.tickets.UseTicketLink(tpb.TicketLinkRequest(token=" ")))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "token" in details
    # A link token is no bearer token either.
    code, _ = await _code(
        api.tickets.GetTicket(tpb.GetTicketRequest(id=ticket_id), metadata=bearer_metadata(confirm))
    )
    assert code == grpc.StatusCode.UNAUTHENTICATED
    # A well-signed link to a ticket that does not exist.
    code, _ = await _code(
        api.tickets.UseTicketLink(tpb.TicketLinkRequest(token=_links(ticket_id + 999)[0]))
    )
    assert code == grpc.StatusCode.NOT_FOUND
    assert (await api.stack.ticket(ticket_id)).status == "SOLVED"
