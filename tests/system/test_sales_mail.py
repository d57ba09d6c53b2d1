"""Seed 003's first "done when", end to end on real processes (tickets, intake, notify):
a prospect's mail reaches the sales office, a SALES agent answers it by email, and the
prospect's answer joins the request's conversation, never a ticket."""

from __future__ import annotations

import asyncio
import smtplib
import uuid
from email.message import EmailMessage
from pathlib import Path

import grpc
import pytest

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import directory_pb2 as dpb
from helpdesk.v1 import sales_pb2 as spb
from helpdesk.v1 import sales_pb2_grpc as sgrpc
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.access import Principal, Role
from services.common.auth import bearer_metadata
from services.common.embedded import EmbeddedProcess
from services.common.settings import split_hostport
from services.common.tokens import TokenSigner
from tests.support import eventually
from tests.system.conftest import running_system
from tests.system.harness import Mailbox, System

pytestmark = [pytest.mark.system, pytest.mark.db, pytest.mark.timeout(120)]

SUPPORT = "assistenza@helpdesk.localhost"
DOMAIN = "helpdesk.localhost"


def _send(sut: System, msg: EmailMessage) -> None:
    host, port = split_hostport(sut.env["HELPDESK_SMTP_LISTEN"])
    with smtplib.SMTP(host, port, timeout=30) as client:
        client.send_message(msg, to_addrs=[SUPPORT])


def _to(box: Mailbox, address: str, words: str) -> list[EmailMessage]:
    return [
        m
        for m in box.messages
        if address.lower() in str(m["To"]).lower() and words in str(m["Subject"])
    ]


def _text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


async def test_a_prospect_mail_is_answered_by_the_sales_office_and_the_answer_threads_back(
    tmp_path: Path,
    temporal_dev_server: EmbeddedProcess,
    nats_url: str,
    database_url: str,
) -> None:
    async with running_system(
        tmp_path,
        temporal_dev_server,
        nats_url,
        database_url,
        processes=("tickets", "intake", "notify"),
    ) as (sut, box):
        suffix = uuid.uuid4().hex[:6]
        seller = await sut.directory().CreateAgent(
            dpb.CreateAgentRequest(
                name="Sara Vendite", email=f"sara.{suffix}@desk.it", role=pb.AGENT_ROLE_SALES
            ),
            metadata=sut.metadata,
        )
        signer = TokenSigner(sut.env["HELPDESK_SIGNING_KEY"])
        as_seller = bearer_metadata(
            signer.access_token(
                Principal(role=Role.SALES, kind="AGENT", id=seller.id, name=seller.name)
            )
        )
        sales = sgrpc.SalesServiceStub(sut._channel("HELPDESK_TICKETS_ADDR"))
        prospect = f"eva.verdi.{suffix}@example.com"

        first = EmailMessage()
        first["From"] = f"Eva Verdi <{prospect}>"
        first["To"] = SUPPORT
        first["Subject"] = "Informazioni sul gestionale"
        first["Message-ID"] = f"<{uuid.uuid4().hex}@example.com>"
        first.set_content("Buongiorno,\nvorrei sapere i prezzi per 5 postazioni.\nEva")
        await asyncio.to_thread(_send, sut, first)

        # The sales office is told, and the request is there, NEW.
        [told] = await eventually(
            lambda: _to(box, seller.email, "Nuova richiesta commerciale"), timeout=30
        )
        assert "vorrei sapere i prezzi per 5 postazioni" in _text(told)
        assert prospect in _text(told)

        async def mine() -> list[spb.SalesRequest]:
            page = await sales.ListSalesRequests(
                spb.ListSalesRequestsRequest(page_size=100), metadata=as_seller
            )
            return [r for r in page.requests if r.sender == prospect]

        [request] = await eventually(mine, timeout=10)
        assert request.status == spb.SALES_REQUEST_STATUS_NEW
        assert request.source == spb.SALES_REQUEST_SOURCE_EMAIL
        number = f"V-{request.number}"
        assert f"[{number}]" in str(told["Subject"])
        assert f"/agent/sales/{request.id}" in _text(told)

        # The agent answers: the prospect gets it, threaded; the request is CONTACTED.
        answered = await sales.ReplyToSalesRequest(
            spb.ReplyToSalesRequestRequest(
                id=request.id,
                body="Gentile Eva,\nle mando il listino: 5 postazioni costano 1.200 euro l'anno.",
                request_id=uuid.uuid4().hex,
            ),
            metadata=as_seller,
        )
        assert answered.status == spb.SALES_REQUEST_STATUS_CONTACTED
        [answer] = await eventually(
            lambda: _to(box, prospect, f"Re: Informazioni sul gestionale [{number}]"), timeout=30
        )
        assert "5 postazioni costano 1.200 euro" in _text(answer)
        thread = f"<sales-{request.id}@{DOMAIN}>"
        assert thread in str(answer["References"]).split()
        assert answer["In-Reply-To"] == first["Message-ID"]

        # The prospect answers that mail from their client, quoting it.
        again = EmailMessage()
        again["From"] = f"Eva Verdi <{prospect}>"
        again["To"] = SUPPORT
        again["Subject"] = str(answer["Subject"])
        again["Message-ID"] = f"<{uuid.uuid4().hex}@example.com>"
        again["In-Reply-To"] = str(answer["Message-ID"])
        again["References"] = f"{answer['References']} {answer['Message-ID']}"
        again.set_content(
            "Perfetto, procediamo con l'ordine.\n\n"
            "Il giorno mer 2 dic 2026, Ufficio commerciale ha scritto:\n> le mando il listino"
        )
        await asyncio.to_thread(_send, sut, again)

        async def conversation() -> list[spb.SalesMessage]:
            got = await sales.GetSalesRequest(
                spb.GetSalesRequestRequest(id=request.id), metadata=as_seller
            )
            return [m for m in got.messages if m.inbound and "procediamo con l'ordine" in m.body]

        [message] = await eventually(conversation, timeout=30)
        assert message.body == "Perfetto, procediamo con l'ordine."  # the quote left out
        # No ticket and no second sales request.
        tickets = await sut.tickets().ListTickets(
            tpb.ListTicketsRequest(requester_email=prospect), metadata=sut.metadata
        )
        assert list(tickets.tickets) == []
        assert len(await mine()) == 1
        # Without a token, nothing of it is shown.
        with pytest.raises(grpc.aio.AioRpcError):
            await sales.GetSalesRequest(spb.GetSalesRequestRequest(id=request.id))
