"""Subject and plain-text body of each email, from Jinja2 templates per locale.

Templates live in ``templates/<locale>/<name>.subject.j2`` and
``templates/<locale>/<name>.body.j2``. Rendering depends only on the event, so a failure
(a missing variable, a field the event lacks) is ``ComposeError``: retrying cannot help.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined

from services.common.mail_threading import display_id, subject_tag
from services.common.messages.tickets import TicketEventPayload
from services.notify.mail_files import NO_FILES, FileNotes
from services.notify.policy_context import policy_context
from services.notify.rules import SURVEY_TEMPLATE, PlannedEmail
from services.notify.sla_context import sla_context
from services.notify.ticket_details import detail_context
from workflows.domain.durations import format_duration

_SPACES = re.compile(r"\s+")
# How long a survey answer can be changed (TicketService.SubmitSatisfaction says the same).
SURVEY_CHANGE_WINDOW = timedelta(days=7)


class ComposeError(Exception):
    """An email that cannot be written: a template that fails on this event, a header
    the email library refuses. Permanent: the delivery ends FAILED, never retried."""


@dataclass(frozen=True)
class RenderedEmail:
    """A subject (one line) and a plain-text body."""

    subject: str
    body: str


def in_the_last(delta: timedelta, locale: str) -> str:
    """``negli ultimi 14 giorni`` / ``in the last 14 days``, with Italian agreement."""
    words = format_duration(delta, locale)
    if locale == "en":
        if words.startswith("1 ") and " and " not in words:
            return f"in the last {words[2:]}"
        return f"in the last {words}"
    first = words.split(" e ")[0]
    count, _, unit = first.partition(" ")
    feminine = unit in ("ora", "ore")
    if count == "1":
        if " e " in words:
            return f"nell'arco di {words}"
        return f"nell'ultim{'a' if feminine else 'o'} {unit}"
    return f"nelle ultime {words}" if feminine else f"negli ultimi {words}"


def one_line(text: str) -> str:
    """Collapse whitespace so that the text fits in a header."""
    return _SPACES.sub(" ", text).strip()


class Renderer:
    """Renders a planned email for an event."""

    def __init__(
        self,
        default_auto_close: timedelta = timedelta(days=14),
        survey_tokens: Callable[[int], str] | None = None,
        portal_url: str = "",
        link_tokens: Callable[[int, str, int], str] | None = None,
    ) -> None:
        self._default_auto_close = default_auto_close
        # Signs a ticket's survey link token (TokenSigner.survey_token); None: no link.
        self._survey_tokens = survey_tokens
        # Signs the solved email's confirm / reopen tokens (TokenSigner.link_token);
        # None: the email offers only the reply that reopens.
        self._link_tokens = link_tokens
        self._portal_url = portal_url.rstrip("/")
        self._env = Environment(
            loader=PackageLoader("services.notify", "templates"),
            autoescape=False,  # plain text, never HTML
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def context(
        self, event: TicketEventPayload, email: PlannedEmail, files: FileNotes = NO_FILES
    ) -> dict[str, Any]:
        """The variables every template may use; ``files``: what the body says about the
        answer's files (``services.notify.mail_files``)."""
        ticket = event["ticket"]
        seconds = ticket.get("auto_close_after_seconds") or 0
        auto_close = timedelta(seconds=seconds) if seconds > 0 else self._default_auto_close
        comment = event.get("comment")
        follow_up_of = ticket.get("follow_up_of") or 0
        return {
            "event": event,
            "ticket": ticket,
            "display_id": ticket.get("display_id") or display_id(ticket["id"]),
            "subject_tag": subject_tag(ticket["id"]),
            "subject": one_line(ticket["subject"]),
            "name": email.recipient_name,
            "comment": comment,
            "comment_body": (comment["body"].strip() if comment else ""),
            "author_name": (comment["author_name"].strip() if comment else "")
            or event.get("actor_name", ""),
            "previous_display_id": display_id(follow_up_of) if follow_up_of else "",
            "auto_close_in": format_duration(auto_close, email.locale),
            "auto_close_window": in_the_last(auto_close, email.locale),
            **files.context(),
            # The ticket on the portal, where files too large to mail are ("" : no portal).
            "ticket_link": f"{self._portal_url}/tickets/{ticket['id']}" if self._portal_url else "",
            **detail_context(event),
            **policy_context(event, email.recipient),
            **sla_context(event, email.locale),
            **(
                self._survey_context(ticket["id"], email)
                if email.template == SURVEY_TEMPLATE
                else {}
            ),
            **(self._link_context(event, auto_close) if email.template == "solved" else {}),
        }

    @property
    def portal_url(self) -> str:
        """The base of every link we email ("" : no links)."""
        return self._portal_url

    def _link_context(self, event: TicketEventPayload, auto_close: timedelta) -> dict[str, str]:
        """The solved email's confirm / reopen links, valid until the ticket would close by
        itself (none without a signer / portal)."""
        if self._link_tokens is None or not self._portal_url:
            return {"confirm_link": "", "reopen_link": ""}
        ticket = event["ticket"]
        closes = ticket.get("auto_close_at")
        try:
            until = datetime.fromisoformat(closes) if closes else None
        except ValueError:
            until = None
        if until is None:
            until = datetime.now(UTC) + auto_close
        elif until.tzinfo is None:
            until = until.replace(tzinfo=UTC)
        expires_at = int(until.timestamp())
        links = {}
        for action in ("confirm", "reopen"):
            token = self._link_tokens(ticket["id"], action, expires_at)
            links[f"{action}_link"] = f"{self._portal_url}/link/{action}?token={quote(token)}"
        return links

    def _survey_context(self, ticket_id: int, email: PlannedEmail) -> dict[str, Any]:
        """The survey's link token and link (none without a signer / portal)."""
        token = self._survey_tokens(ticket_id) if self._survey_tokens else ""
        link = f"{self._portal_url}/survey?token={token}" if token and self._portal_url else ""
        return {
            "survey_token": token,
            "survey_link": link,
            "survey_change_window": format_duration(SURVEY_CHANGE_WINDOW, email.locale),
        }

    def render(
        self, event: TicketEventPayload, email: PlannedEmail, files: FileNotes = NO_FILES
    ) -> RenderedEmail:
        """Subject and body of ``email`` in its locale; ``ComposeError`` when they cannot
        be made from this event."""
        try:
            ctx = self.context(event, email, files)
        except Exception as err:
            raise ComposeError(f"template {email.locale}/{email.template}: {err!r}") from err
        return self.render_template(email.template, email.locale, ctx)

    def render_template(self, template: str, locale: str, ctx: dict[str, Any]) -> RenderedEmail:
        """Subject and body of ``template`` in ``locale`` with the variables ``ctx``;
        ``ComposeError`` when the template fails on them."""
        base = f"{locale}/{template}"
        try:
            subject = self._env.get_template(f"{base}.subject.j2").render(ctx)
            body = self._env.get_template(f"{base}.body.j2").render(ctx)
        except Exception as err:  # rendering is pure: the same event fails the same way
            raise ComposeError(f"template {base}: {err!r}") from err
        return RenderedEmail(subject=one_line(subject), body=body.strip() + "\n")
