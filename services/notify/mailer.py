"""Composing an email and handing it over: an SMTP relay, or a local Maildir spool."""

from __future__ import annotations

import asyncio
import email.policy
import hashlib
import logging
import mailbox
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from pathlib import Path
from typing import Protocol

import aiosmtplib

from services.common.settings import Settings, split_hostport
from services.notify.models import utcnow

log = logging.getLogger(__name__)

SMTP_TIMEOUT_SECONDS = 15.0


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
    # Further headers of our own (``X-Helpdesk-Survey``), added after the standard ones.
    headers: tuple[tuple[str, str], ...] = ()


def mail_domain(mail_from: str) -> str:
    """The domain of the support address (``helpdesk.localhost`` by default)."""
    _, address = parseaddr(mail_from)
    domain = address.rpartition("@")[2].strip().lower()
    return domain or "helpdesk.localhost"


# Headers are not folded at 78 columns (RFC 5322 allows 998): a folded Message-ID or
# References reads back with a leading space in some clients and breaks their threading.
UNFOLDED = email.policy.default.clone(max_line_length=998)


def make_message_id(event_id: str, template: str, domain: str, ticket_id: int = 0) -> str:
    """A Message-ID that depends only on the event and the template: a resend keeps it.

    A ticket's mail names the ticket (``.t42.``), so that an answer quoting only this ID in
    ``In-Reply-To`` (an out-of-office) still finds its ticket.
    """
    digest = hashlib.sha256(f"{event_id}\x00{template}".encode()).hexdigest()[:32]
    ticket = f"t{ticket_id}." if ticket_id > 0 else ""
    return f"<notify.{template}.{ticket}{digest}@{domain}>"


def compose(envelope: Envelope) -> EmailMessage:
    """The message with the headers every notification carries."""
    domain = mail_domain(envelope.sender)
    msg = EmailMessage(policy=UNFOLDED)
    msg["From"] = envelope.sender
    msg["To"] = formataddr((envelope.recipient_name, envelope.recipient))
    msg["Reply-To"] = envelope.sender
    msg["Subject"] = envelope.subject
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = envelope.message_id
    references = []
    if envelope.ticket_id:
        # Every message about a ticket in one thread of the customer's mail client.
        references.append(f"<ticket-{envelope.ticket_id}@{domain}>")
    if envelope.in_reply_to:
        msg["In-Reply-To"] = envelope.in_reply_to
        references.append(envelope.in_reply_to)
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
        msg[name] = value
    msg.set_content(envelope.body)
    msg["Content-Language"] = envelope.locale  # after set_content, which drops Content-*
    return msg


class Mailer(Protocol):
    """Something that accepts a message for delivery, or raises ``SendError``."""

    async def send(self, message: EmailMessage, sender: str, recipient: str) -> None: ...


class SmtpMailer:
    """Hands messages to an SMTP relay (``host:port``) with aiosmtplib."""

    def __init__(self, relay: str, timeout: float = SMTP_TIMEOUT_SECONDS) -> None:
        self.host, self.port = split_hostport(relay)
        self.timeout = timeout

    async def send(self, message: EmailMessage, sender: str, recipient: str) -> None:
        """Send one message; ``SendError(permanent=True)`` on a 5xx refusal."""
        try:
            responses, _ = await aiosmtplib.send(
                # Flattened here: aiosmtplib's own policy would fold headers at 78 columns.
                message.as_bytes(policy=UNFOLDED.clone(linesep="\r\n")),
                sender=sender,
                recipients=[recipient],
                hostname=self.host,
                port=self.port,
                timeout=self.timeout,
            )
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


class MaildirMailer:
    """Writes messages into a Maildir (created when missing): the spool when no relay is set."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _add(self, message: EmailMessage) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        box = mailbox.Maildir(self.path, create=True)
        return box.add(message)

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
