"""Answers re-sent by the ticket's ID (seed 000), from ``helpdesk.ticket.answers_resent``.

The tickets service publishes the answers to re-send and, for each, the event that first
emailed it. Each answer is one email and one delivery row (event ``<resend id>.<n>``,
template ``answer_resent``) naming the delivery it re-sends (``resend_of``, with that
email's Message-ID, which the new email answers: ``In-Reply-To`` keeps it in the thread).
A redelivered event finds its rows and sends nothing again.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from services.common.messages.tickets import ResentAnswerPayload, TicketEventPayload
from services.notify.local_time import format_instant
from services.notify.mail_files import NO_FILES, AnswerFiles, FileNotes
from services.notify.render import RenderedEmail, Renderer
from services.notify.rules import NEVER_MAIL_LOCAL_PARTS, PlannedEmail, locale_of
from services.notify.store import DeliveryDraft, DeliveryStore

if TYPE_CHECKING:
    from services.notify.notifier import Notifier, Progress

RESEND_EVENT = "answers_resent"
RESEND_TEMPLATE = "answer_resent"


async def resend_answers(
    notifier: Notifier,
    store: DeliveryStore,
    renderer: Renderer,
    event: TicketEventPayload,
    progress: Progress | None = None,
) -> float | None:
    """Send each answer of the resend; None when done, else seconds before a retry."""
    resend = event.get("resend")
    if resend is None:
        return None
    person = resend["recipient"]
    address = (person.get("email") or "").strip().lower()
    if "@" not in address or address.split("@", 1)[0] in NEVER_MAIL_LOCAL_PARTS:
        return None
    email = PlannedEmail(
        template=RESEND_TEMPLATE,
        recipient=address,
        recipient_name=(person.get("name") or "").strip(),
        locale=locale_of(person.get("locale") or ""),
    )
    retry_after: float | None = None
    for n, answer in enumerate(resend["answers"], start=1):
        original = await store.original(event["ticket_id"], answer["original_event_id"], address)
        event_id = f"{event['event_id']}.{n}"
        draft = DeliveryDraft(
            event_id=event_id,
            event_type=RESEND_EVENT,
            ticket_id=event["ticket_id"],
            recipient=address,
            subject="",
            template=RESEND_TEMPLATE,
            locale=email.locale,
            message_id=notifier.message_id(event_id, RESEND_TEMPLATE, event["ticket_id"]),
            resend_of=original.id if original else None,
            resend_of_message_id=original.message_id if original else "",
        )

        files = tuple(answer.get("attachments") or ())
        delay = await notifier.render_and_deliver(
            draft,
            email,
            partial(_render, renderer, event, email, answer),
            progress,
            in_reply_to=original.message_id if original else "",
            # The answer's files go again with it, fetched when the email is sent.
            files=(
                AnswerFiles(
                    event["ticket_id"], files, partial(_render, renderer, event, email, answer)
                )
                if files
                else None
            ),
        )
        if delay is not None:
            retry_after = max(retry_after or 0.0, delay)
    return retry_after


def _render(
    renderer: Renderer,
    event: TicketEventPayload,
    email: PlannedEmail,
    answer: ResentAnswerPayload,
    files: FileNotes = NO_FILES,
) -> RenderedEmail:
    """The email of one re-sent answer: the ticket's context, the answer as it was, and
    what became of its files."""
    ctx = renderer.context(event, email, files)
    ctx.update(
        comment_body=answer["body"].strip(),
        author_name=answer["author_name"].strip(),
        answered_on=format_instant(answer["created_at"], email.locale),
    )
    return renderer.render_template(RESEND_TEMPLATE, email.locale, ctx)
