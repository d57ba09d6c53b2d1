"""Mail to the desk as a customer's mail server sends it: smtplib to intake's SMTP listener
of a running ``System``."""

from __future__ import annotations

import smtplib
import uuid
from email.message import EmailMessage

from helpdesk.v1 import common_pb2 as pb
from helpdesk.v1 import tickets_pb2 as tpb
from services.common.settings import split_hostport
from tests.system.harness import System

SUPPORT = "assistenza@helpdesk.localhost"


def deliver(sut: System, msg: EmailMessage, to: str = SUPPORT) -> None:
    host, port = split_hostport(sut.env["HELPDESK_SMTP_LISTEN"])
    with smtplib.SMTP(host, port, timeout=30) as client:
        client.send_message(msg, to_addrs=[to])


def inbound(sender: str, subject: str, body: str, **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Mario Rossi <{sender}>"
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@rossi.it>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


async def tickets_of(sut: System, email: str) -> list[pb.Ticket]:
    page = await sut.tickets().ListTickets(
        tpb.ListTicketsRequest(requester_email=email), metadata=sut.metadata
    )
    return list(page.tickets)
