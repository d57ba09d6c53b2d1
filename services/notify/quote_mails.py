"""The mails of a quote's workflow (seed 003), from its ``helpdesk.sales.quote_<type>`` events.

- ``quote_sent``: the requester gets the quote (title, total VAT included, validity,
  proposed dates, the portal page with Accept / Decline) with its PDF attached;
- ``quote_reminder``: the requester, once, that it expires at the end of its last day;
- ``quote_expired``: the requester, that it expired; the ticket's assignee (if any), that
  the ticket is back to them;
- ``quote_accepted`` / ``quote_declined``: the assignee (if any), by whom (and why).

Each mail is one row of the delivery log (event, template, recipient) with a sealed,
stable Message-ID, and is in the ticket's thread (``References: <ticket-<id>@domain>``).
The PDF is fetched from ``SalesService.GetQuote`` (the service token) only when the mail
is about to be handed to the relay, as an answer's files are (``services.notify.mail_files``):
when the tickets service cannot give it, the mail waits and is retried, never sent without
it.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import grpc

from helpdesk.v1 import sales_pb2 as spb
from services.common.auth import bearer_metadata
from services.common.local_dates import language, month_name, weekday_name
from services.common.mail_threading import display_id, subject_tag
from services.common.messages.tickets import AttachmentPayload
from services.notify.mail_files import (
    AnswerFiles,
    CommentFiles,
    Fetched,
    FileNotes,
    FilesDeferred,
    MailFile,
)
from services.notify.mailer import Mailer
from services.notify.notifier import Notifier, Progress, RetryPolicy
from services.notify.render import RenderedEmail, Renderer, one_line
from services.notify.rules import NEVER_MAIL_LOCAL_PARTS, PlannedEmail, locale_of
from services.notify.store import DeliveryDraft, DeliveryStore

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    from helpdesk.v1.sales_pb2_grpc import SalesServiceAsyncStub

log = logging.getLogger(__name__)

# Templates by recipient: the customer who asked (the ticket's requester), the assignee.
REQUESTER_TEMPLATES = {
    "quote_sent": "quote_sent",
    "quote_reminder": "quote_reminder",
    "quote_expired": "quote_expired",
}
ASSIGNEE_TEMPLATES = {
    "quote_expired": "quote_expired_agent",
    "quote_accepted": "quote_accepted_agent",
    "quote_declined": "quote_declined_agent",
}
# The template that carries the quote's PDF.
PDF_TEMPLATE = "quote_sent"
# The desk's people read Italian (as the sales office's mail, ``services.notify.sales_out``).
AGENT_LOCALE = "it"
GET_QUOTE_TIMEOUT_SECONDS = 60.0
CURRENCY_SIGNS = {"EUR": "€"}


def long_date(day: str, locale: str) -> str:
    """``venerdì 15 gennaio 2027`` / ``Friday 15 January 2027`` for ``2027-01-15``."""
    when = date.fromisoformat(day)
    weekday = weekday_name(datetime.combine(when, time()), locale)
    return f"{weekday} {when.day} {month_name(when.month, locale)} {when.year}"


def amount(value: str, currency: str, locale: str) -> str:
    """``1.250,00 €`` / ``€1,250.00`` for ``"1250.00"`` EUR (the text itself when unreadable)."""
    try:
        number = Decimal(value)
    except InvalidOperation:
        return f"{value} {currency}".strip()
    text = f"{number:,.2f}"
    sign = CURRENCY_SIGNS.get(currency, "")
    if language(locale) == "en":
        return f"{sign}{text}" if sign else f"{currency} {text}".strip()
    text = text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return f"{text} {sign or currency}".strip()


def pdf_name(event: dict[str, Any]) -> str:
    """The attached file's name: ``preventivo-Q-3.pdf`` / ``quote-Q-3.pdf``."""
    word = "quote" if language(str(event.get("locale") or "")) == "en" else "preventivo"
    return f"{word}-{event['number']}.pdf"


def _address(value: object) -> str:
    """A usable address (lower case), "" for none or a robot's."""
    address = str(value or "").strip().lower()
    if "@" not in address or address.split("@", 1)[0] in NEVER_MAIL_LOCAL_PARTS:
        return ""
    return address


class QuotePdf(CommentFiles):
    """The quote's PDF for its mail, from ``SalesService.GetQuote(with_pdf)``.

    Takes the place of an answer's files in the notifier's delivery (``Notifier.deliver``
    fetches them only for a mail about to be sent, and retries the mail when they cannot
    be had): the one "file" is the quote (``id`` its ID). The PDF is never left out: no
    size limit applies, and a quote the tickets service cannot give now, or gives for
    another ticket, defers the mail (``FilesDeferred``)."""

    def __init__(
        self,
        sales: SalesServiceAsyncStub,
        service_token: str,
        timeout: float = GET_QUOTE_TIMEOUT_SECONDS,
    ) -> None:
        # Not CommentFiles.__init__: the bytes come from SalesService, not TicketService,
        # and only ``planned``, ``fetch`` and ``forget`` are used.
        self._sales = sales
        self._metadata = bearer_metadata(service_token)
        self._timeout = timeout
        self.max_bytes = 0

    def planned(self, files: Sequence[AttachmentPayload]) -> FileNotes:
        return FileNotes(attached=tuple(f["filename"] for f in files))

    def forget(self) -> None:
        """Nothing is held between mails."""

    async def fetch(self, ticket_id: int, files: Sequence[AttachmentPayload]) -> Fetched:
        got: list[MailFile] = []
        for f in files:
            try:
                quote = await self._sales.GetQuote(
                    spb.GetQuoteRequest(id=int(f["id"]), with_pdf=True),
                    metadata=self._metadata,
                    timeout=self._timeout,
                )
            except grpc.aio.AioRpcError as err:
                raise FilesDeferred(
                    f"quote {f['id']}: {err.code().name} {err.details() or ''}"
                ) from err
            # The PDF of this ticket's quote only: never another organisation's.
            if quote.ticket_id != ticket_id:
                raise FilesDeferred(
                    f"quote {f['id']} is of ticket {quote.ticket_id}, not {ticket_id}"
                )
            if not quote.pdf:
                raise FilesDeferred(f"quote {f['id']}: the tickets service gave no PDF")
            got.append(MailFile(f["filename"], "application", "pdf", quote.pdf))
        return Fetched(self.planned(files), tuple(got))


class QuoteMails:
    """Renders and sends one quote event's mails (each at least once)."""

    def __init__(
        self,
        store: DeliveryStore,
        renderer: Renderer,
        mailer: Mailer,
        mail_from: str,
        retry: RetryPolicy | None = None,
        *,
        signing_key: str,
        sales: SalesServiceAsyncStub,
        service_token: str,
    ) -> None:
        self._renderer = renderer
        # The notifier's own delivery (log, retries, Message-IDs), its "files" the PDF.
        self._notifier = Notifier(
            store,
            renderer,
            mailer,
            mail_from,
            retry,
            signing_key=signing_key,
            files=QuotePdf(sales, service_token),
        )

    def plan(self, event: dict[str, Any]) -> list[PlannedEmail]:
        """Whom ``event`` writes to: the requester and / or the assignee, when they have
        an address."""
        kind = event["type"]
        emails: list[PlannedEmail] = []
        people = (
            (REQUESTER_TEMPLATES, "requester", locale_of(str(event.get("locale") or ""))),
            (ASSIGNEE_TEMPLATES, "assignee", AGENT_LOCALE),
        )
        for templates, who, locale in people:
            template = templates.get(kind)
            recipient = _address(event.get(f"{who}_email"))
            if template is None:
                continue
            if not recipient:
                log.info("event %s: no %s to write %s to", event["event_id"], who, template)
                continue
            emails.append(
                PlannedEmail(
                    template=template,
                    recipient=recipient,
                    recipient_name=one_line(str(event.get(f"{who}_name") or "")),
                    locale=locale,
                )
            )
        return emails

    async def handle(self, event: dict[str, Any], progress: Progress | None = None) -> float | None:
        """Send what ``event`` calls for; None when done, else seconds to wait before a retry."""
        retry_after: float | None = None
        for email in self.plan(event):
            draft = DeliveryDraft(
                event_id=event["event_id"],
                event_type=f"sales.{event['type']}",
                ticket_id=event["ticket_id"],  # the ticket's thread (References)
                recipient=email.recipient,
                subject="",
                template=email.template,
                locale=email.locale,
                message_id=self._notifier.message_id(
                    event["event_id"], email.template, event["ticket_id"]
                ),
            )
            files = None
            if email.template == PDF_TEMPLATE:
                pdf: AttachmentPayload = {
                    "id": str(event["quote_id"]),
                    "filename": pdf_name(event),
                    "content_type": "application/pdf",
                    "size": 0,
                }
                files = AnswerFiles(
                    event["ticket_id"], (pdf,), functools.partial(self._render_with, event, email)
                )
            delay = await self._notifier.render_and_deliver(
                draft,
                email,
                functools.partial(self._render, event, email),
                progress,
                files=files,
            )
            if delay is not None:
                retry_after = max(retry_after or 0.0, delay)
        return retry_after

    def _render_with(
        self, event: dict[str, Any], email: PlannedEmail, _files: FileNotes
    ) -> RenderedEmail:
        """The mail carrying the PDF: its body names it whatever ``_files`` says (it is
        never sent without it)."""
        return self._render(event, email)

    def _render(self, event: dict[str, Any], email: PlannedEmail) -> RenderedEmail:
        return self._renderer.render_template(
            email.template, email.locale, quote_context(event, email, self._renderer.portal_url)
        )


def quote_context(event: dict[str, Any], email: PlannedEmail, portal_url: str) -> dict[str, Any]:
    """The variables the ``quote_*`` templates may use."""
    ticket_id = event["ticket_id"]
    agent = email.template in ASSIGNEE_TEMPLATES.values()
    page = f"/agent/tickets/{ticket_id}" if agent else f"/tickets/{ticket_id}"
    return {
        "name": email.recipient_name,
        "number": str(event["number"]),
        "display_id": display_id(ticket_id),
        "subject_tag": subject_tag(ticket_id),
        "subject": one_line(str(event.get("subject") or "")),
        "title": one_line(str(event.get("title") or "")),
        "organization_name": one_line(str(event.get("organization_name") or "")),
        "total": amount(event["total"], str(event.get("currency") or "EUR"), email.locale),
        "valid_until": long_date(event["valid_until"], email.locale),
        "proposed_dates": str(event.get("proposed_dates") or "").strip(),
        "decided_by": one_line(str(event.get("decided_by_name") or "")),
        "reason": str(event.get("reason") or "").strip(),
        "requester": one_line(str(event.get("requester_name") or "")),
        "requester_email": str(event.get("requester_email") or ""),
        "pdf_name": pdf_name(event),
        "link": f"{portal_url}{page}" if portal_url else "",
    }
