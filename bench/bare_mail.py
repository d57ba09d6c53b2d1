"""The bare mail activity: one message per call, handed to an SMTP relay with aiosmtplib over
connections kept open between messages (at most ``POOL_SIZE`` idle, one per message in flight:
as notify's ``SmtpMailer``), without the help desk's templates, delivery log or events."""

from __future__ import annotations

import uuid
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib
from temporalio import activity

from services.common.settings import split_hostport

POOL_SIZE = 4  # as services.notify.mailer.SMTP_POOL_SIZE
TIMEOUT_SECONDS = 15.0
SENDER = "assistenza@bench.example"


def bare_message(label: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = f"cliente.{label}@rossi.it"
    msg["Subject"] = f"Request closed ({label})"
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@bench.example>"
    msg.set_content(f"Your request {label} is closed.\n")
    return msg


class BareMailer:
    """Hosts ``bare_send_mail`` on the bare activity worker, with its connection pool."""

    def __init__(self, relay: str) -> None:
        self.host, self.port = split_hostport(relay)
        self._idle: list[aiosmtplib.SMTP] = []
        self.connections_opened = 0

    async def _connection(self) -> tuple[aiosmtplib.SMTP, bool]:
        while self._idle:
            smtp = self._idle.pop()
            if smtp.is_connected:
                return smtp, True
        smtp = aiosmtplib.SMTP(hostname=self.host, port=self.port, timeout=TIMEOUT_SECONDS)
        await smtp.connect()
        self.connections_opened += 1
        return smtp, False

    async def _release(self, smtp: aiosmtplib.SMTP) -> None:
        if smtp.is_connected and len(self._idle) < POOL_SIZE:
            self._idle.append(smtp)
        else:
            try:
                await smtp.quit()
            except aiosmtplib.SMTPException:
                smtp.close()

    @activity.defn(name="bare_send_mail")
    async def send(self, label: str) -> str:
        msg = bare_message(label)
        while True:
            smtp, kept = await self._connection()
            try:
                await smtp.send_message(msg)
            except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError):
                smtp.close()
                if kept:  # closed by the relay meanwhile: once more on a new connection
                    continue
                raise
            await self._release(smtp)
            return label

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for smtp in idle:
            try:
                await smtp.quit()
            except aiosmtplib.SMTPException:
                smtp.close()
