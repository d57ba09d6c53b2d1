"""Mail into the system under test, as a customer's mail server sends it."""

from __future__ import annotations

import smtplib
import time
import uuid
from email.message import EmailMessage

from services.common.settings import split_hostport
from tests.system.harness import System

SUPPORT = "assistenza@helpdesk.localhost"


def mail(
    sender: str, subject: str, body: str, message_id: str = "", **headers: str
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Message-ID"] = message_id or f"<{uuid.uuid4().hex}@{sender.rsplit('@', 1)[1]}>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


def send(
    sut: System,
    msg: EmailMessage | bytes,
    sender: str = "",
    retry_for: float = 0,
    listen: str = "",
) -> int:
    """Send one message (to the intake at ``listen``, by default the system's); with
    ``retry_for``, resend it (same bytes) while the listener is down, as a mail server does.
    Returns the number of tries."""
    host, port = split_hostport(listen or sut.env["HELPDESK_SMTP_LISTEN"])
    deadline = time.monotonic() + retry_for
    tries = 0
    while True:
        tries += 1
        try:
            with smtplib.SMTP(host, port, timeout=30) as client:
                if isinstance(msg, bytes):
                    # SMTP lines end in CRLF (EmailMessage.as_bytes() writes bare LF).
                    raw = msg.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
                    client.sendmail(sender, [SUPPORT], raw)
                else:
                    client.send_message(msg, to_addrs=[SUPPORT])
            return tries
        except smtplib.SMTPResponseException as err:
            if err.smtp_code >= 500 or time.monotonic() > deadline:
                raise  # refused for good (552 too large, ...), or out of time
            time.sleep(0.3)
        except (OSError, smtplib.SMTPServerDisconnected):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
