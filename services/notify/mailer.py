"""Composing an email and handing it over: an SMTP relay, or a local Maildir spool.

Handing over is at least once: the delivery log marks a message SENT after the relay (or
the spool) took it, so a crash or a lost reply in between sends it again, with the same
Message-ID (``services.common.mail_threading``), by which receivers can drop the copy.
"""

from __future__ import annotations

import asyncio
import email.policy
import logging
import mailbox
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from typing import Protocol

import aiosmtplib
from opentelemetry.trace import SpanKind, Status, StatusCode

from services.common import telemetry
from services.common.mail_threading import is_message_id, mail_domain, thread_id
from services.common.settings import Settings, split_hostport
from services.notify.mail_files import MailFile
from services.notify.models import utcnow
from services.notify.render import ComposeError, one_line

log = logging.getLogger(__name__)
_tracer = telemetry.tracer(__name__)

SMTP_TIMEOUT_SECONDS = 15.0
# Connections to the relay kept open between messages.
SMTP_POOL_SIZE = 4


class SendError(Exception):
    """The message was not accepted; ``permanent`` says whether retrying can help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Envelope:
    """Everything that goes into the headers and body of one message."""

    sender: str  # the support address, maybe with a display name
    recipient: str
    recipient_name: str
    subject: str
    body: str
    message_id: str
    ticket_id: int  # 0: not about a ticket (credentials, reset codes): no thread headers
    locale: str
    # The customer's message this one answers (acknowledgements, prospects' replies).
    in_reply_to: str = ""
    # RFC 3834: "auto-replied" for answers to a message, "auto-generated" otherwise.
    auto_submitted: str = "auto-generated"
    # Further thread references (``<sales-<id>@domain>``: mail about a sales request).
    references: tuple[str, ...] = ()
    # Further headers of our own (``X-Helpdesk-Survey``), added after the standard ones.
    headers: tuple[tuple[str, str], ...] = ()
    # Files attached after the body (an answer's, ``services.notify.mail_files``).
    attachments: tuple[MailFile, ...] = ()


# Headers are not folded at 78 columns (RFC 5322 allows 998): a folded Message-ID or
# References reads back with a leading space in some clients and breaks their threading.
UNFOLDED = email.policy.default.clone(max_line_length=998)


def compose(envelope: Envelope) -> EmailMessage:
    """The message with the headers every notification carries; ``ComposeError`` when the
    email library refuses a header (a line break in an address, say): that is permanent.

    Names and the subject are folded to one line first (a staff-entered name may hold a
    line break); an ``in_reply_to`` that is no single Message-ID is left out.
    """
    try:
        return _compose(envelope)
    except (ValueError, TypeError, IndexError) as err:  # the email library's refusals
        raise ComposeError(f"cannot compose the message: {err}") from err


def _compose(envelope: Envelope) -> EmailMessage:
    domain = mail_domain(envelope.sender)
    msg = EmailMessage(policy=UNFOLDED)
    msg["From"] = envelope.sender
    msg["To"] = formataddr((one_line(envelope.recipient_name), envelope.recipient))
    msg["Reply-To"] = envelope.sender
    msg["Subject"] = one_line(envelope.subject)
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = envelope.message_id
    references = []
    if envelope.ticket_id:
        # Every message about a ticket in one thread of the customer's mail client.
        references.append(thread_id(envelope.ticket_id, domain))
    references.extend(r for r in envelope.references if is_message_id(r))
    in_reply_to = envelope.in_reply_to.strip()
    if in_reply_to and not is_message_id(in_reply_to):
        log.warning("not answering %r: not a Message-ID", in_reply_to[:80])
        in_reply_to = ""
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
        references.append(in_reply_to)
    if references:
        msg["References"] = " ".join(references)
    msg["Auto-Submitted"] = envelope.auto_submitted
    msg["Precedence"] = "auto_reply"
    # Our loop header: intake ignores mail carrying it with our address (and X-Helpdesk-*).
    msg["X-Loop"] = parseaddr(envelope.sender)[1] or envelope.sender
    # Ask Exchange / Outlook not to answer with out-of-office replies (no mail loops).
    msg["X-Auto-Response-Suppress"] = "OOF, AutoReply"
    if envelope.ticket_id:
        msg["X-Helpdesk-Ticket"] = str(envelope.ticket_id)
    for name, value in envelope.headers:
        msg[name] = one_line(value)
    msg.set_content(envelope.body)
    msg["Content-Language"] = envelope.locale  # after set_content, which drops Content-*
    for f in envelope.attachments:  # the message becomes multipart/mixed, the text first
        msg.add_attachment(
            f.data, maintype=f.maintype, subtype=f.subtype, filename=one_line(f.filename)
        )
    return msg


class Mailer(Protocol):
    """Something that accepts a message for delivery, or raises ``SendError``."""

    async def send(self, message: EmailMessage, sender: str, recipient: str) -> None: ...

    async def close(self) -> None:
        """Let go of what it holds open (connections to the relay)."""
        ...


class SmtpMailer:
    """Hands messages to an SMTP relay (``host:port``) with aiosmtplib, over connections
    kept open between messages (at most ``pool_size`` idle; one per message in flight).

    A kept connection the relay has closed meanwhile fails before anything is sent (at
    ``MAIL FROM``): the message then goes once more over a new connection.
    """

    def __init__(
        self, relay: str, timeout: float = SMTP_TIMEOUT_SECONDS, pool_size: int = SMTP_POOL_SIZE
    ) -> None:
        self.host, self.port = split_hostport(relay)
        self.timeout = timeout
        self.pool_size = pool_size
        self._idle: list[aiosmtplib.SMTP] = []
        self.connections_opened = 0  # how many it has made (the tests read it)

    async def send(self, message: EmailMessage, sender: str, recipient: str) -> None:
        """Send one message; ``SendError(permanent=True)`` on a 5xx refusal."""
        with _tracer.start_as_current_span(
            "smtp send",
            kind=SpanKind.CLIENT,
            attributes={
                "server.address": self.host,
                "server.port": self.port,
                "helpdesk.message_id": str(message["Message-ID"] or ""),
            },
        ) as span:
            try:
                await self._send(message, sender, recipient)
            except SendError as err:
                span.set_status(Status(StatusCode.ERROR, str(err)))
                raise

    async def close(self) -> None:
        """Say QUIT on every kept connection."""
        idle, self._idle = self._idle, []
        for smtp in idle:
            await _quit(smtp)

    async def _connection(self) -> tuple[aiosmtplib.SMTP, bool]:
        """A connected client, and whether it was kept from an earlier message."""
        while self._idle:
            smtp = self._idle.pop()
            if smtp.is_connected:
                return smtp, True
        smtp = aiosmtplib.SMTP(hostname=self.host, port=self.port, timeout=self.timeout)
        await smtp.connect()
        self.connections_opened += 1
        return smtp, False

    async def _release(self, smtp: aiosmtplib.SMTP) -> None:
        if smtp.is_connected and len(self._idle) < self.pool_size:
            self._idle.append(smtp)
        else:
            await _quit(smtp)

    async def _transaction(
        self, data: bytes, sender: str, recipient: str
    ) -> dict[str, aiosmtplib.SMTPResponse]:
        while True:
            smtp, kept = await self._connection()
            try:
                responses, _ = await smtp.sendmail(sender, [recipient], data)
            except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPResponseException) as err:
                gone = not isinstance(err, aiosmtplib.SMTPResponseException) or err.code == 421
                if gone or not smtp.is_connected:
                    smtp.close()
                    if kept:  # closed by the relay while idle: nothing was sent
                        continue
                else:  # refused, and the envelope reset: the connection is still good
                    await self._release(smtp)
                raise
            except aiosmtplib.SMTPRecipientsRefused:
                await self._release(smtp)  # the envelope was reset: still good
                raise
            except BaseException:
                smtp.close()
                raise
            await self._release(smtp)
            return responses

    async def _send(self, message: EmailMessage, sender: str, recipient: str) -> None:
        # Flattened here: aiosmtplib's own policy would fold headers at 78 columns.
        data = message.as_bytes(policy=UNFOLDED.clone(linesep="\r\n"))
        try:
            responses = await self._transaction(data, sender, recipient)
        except aiosmtplib.SMTPRecipientsRefused as err:
            codes = [r.code for r in err.recipients]
            text = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in err.recipients)
            raise SendError(text, permanent=all(c >= 500 for c in codes)) from err
        except aiosmtplib.SMTPResponseException as err:
            raise SendError(f"{err.code} {err.message}", permanent=err.code >= 500) from err
        except (aiosmtplib.SMTPException, OSError) as err:
            raise SendError(f"{type(err).__name__}: {err}", permanent=False) from err
        refused = {rcpt: resp for rcpt, resp in responses.items() if resp.code >= 400}
        if refused:  # only possible with several recipients; kept for safety
            text = "; ".join(f"{r}: {resp.code} {resp.message}" for r, resp in refused.items())
            raise SendError(text, permanent=all(r.code >= 500 for r in refused.values()))
        log.info(
            "relayed %s to %s via %s:%s", message["Message-ID"], recipient, self.host, self.port
        )


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    try:
        await smtp.quit()
    except (aiosmtplib.SMTPException, OSError):
        smtp.close()


class MaildirMailer:
    """Writes messages into a Maildir (created when missing): the spool when no relay is set."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _add(self, message: EmailMessage) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        box = mailbox.Maildir(self.path, create=True)
        return box.add(message)

    async def close(self) -> None:
        """Nothing is held open."""

    async def send(self, message: EmailMessage, sender: str, recipient: str) -> None:
        """Store one message as a new file of the Maildir."""
        try:
            key = await asyncio.to_thread(self._add, message)
        except OSError as err:
            raise SendError(f"maildir {self.path}: {err}", permanent=False) from err
        log.info("spooled %s for %s into %s (%s)", message["Message-ID"], recipient, self.path, key)


def make_mailer(settings: Settings) -> Mailer:
    """The relay when ``HELPDESK_SMTP_RELAY`` is set, else the Maildir under the data dir."""
    if settings.smtp_relay:
        return SmtpMailer(settings.smtp_relay)
    return MaildirMailer(settings.data_dir / "maildir")
