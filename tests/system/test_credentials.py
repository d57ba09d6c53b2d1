"""Credentials end to end: the generated password and the reset code arrive by email at
the relay, and work for logging in; lock-out after repeated failures."""

from __future__ import annotations

import re
import uuid

import grpc
import pytest

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.auth import bearer_metadata
from tests.support import eventually
from tests.system.harness import Mailbox, System

pytestmark = [pytest.mark.system, pytest.mark.db]


def _body_for(box: Mailbox, address: str, words: str) -> str | None:
    for msg in box.messages:
        if msg["To"].addresses[0].addr_spec.lower() != address.lower():
            continue
        body = msg.get_body(("plain",)).get_content()
        if words in body:
            return str(body)
    return None


async def test_generated_password_login_reset_and_lock_out(system: tuple[System, Mailbox]) -> None:
    sut, box = system
    directory = sut.directory()
    org = await directory.CreateOrganization(
        dpb.CreateOrganizationRequest(name=f"Oripan {uuid.uuid4().hex[:6]}"), metadata=sut.metadata
    )
    email = f"giulia.{uuid.uuid4().hex[:6]}@oripan.it"
    contact = await directory.AddContact(
        dpb.AddContactRequest(organization_id=org.id, name="Giulia Neri", email=email),
        metadata=sut.metadata,
    )

    # Seed 004: the password is generated and sent by email on registration.
    welcome = await eventually(lambda: _body_for(box, email, "password"), timeout=30)
    found = re.search(r"^\s*Password:\s*(\S+)", welcome, re.MULTILINE)
    assert found, welcome
    password = found.group(1)
    login = await directory.Login(dpb.LoginRequest(email=email, password=password))
    assert login.kind == dpb.PRINCIPAL_KIND_CONTACT and login.id == contact.id

    # With it, the portal user opens a ticket as themselves and sees it.
    tickets = sut.tickets()
    me = bearer_metadata(login.access_token)
    ticket = await tickets.CreateTicket(
        tpb.CreateTicketRequest(subject="Stampante", channel=pb.CHANNEL_PORTAL), metadata=me
    )
    assert ticket.requester_id == contact.id
    listed = await tickets.ListTickets(tpb.ListTicketsRequest(), metadata=me)
    assert [t.id for t in listed.tickets] == [ticket.id]

    # Forgotten password: a one-time code by email, then a new password.
    await directory.RequestPasswordReset(dpb.RequestPasswordResetRequest(email=email))
    reset_mail = await eventually(
        lambda: _body_for(box, email, "codice") or _body_for(box, email, "code"), timeout=30
    )
    code = re.search(r"\b(\d{8})\b", reset_mail)
    assert code, reset_mail
    await directory.ResetPassword(
        dpb.ResetPasswordRequest(
            email=email, code=code.group(1), new_password="nuova-password-2026"
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await directory.Login(dpb.LoginRequest(email=email, password=password))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    again = await directory.Login(dpb.LoginRequest(email=email, password="nuova-password-2026"))
    assert again.access_token
    # The code works once.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await directory.ResetPassword(
            dpb.ResetPasswordRequest(email=email, code=code.group(1), new_password="x" * 12)
        )
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED

    # Repeated failures lock the account.
    for _ in range(5):
        with pytest.raises(grpc.aio.AioRpcError):
            await directory.Login(dpb.LoginRequest(email=email, password="sbagliata-123"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await directory.Login(dpb.LoginRequest(email=email, password="nuova-password-2026"))
    assert "locked" in (err.value.details() or "")
