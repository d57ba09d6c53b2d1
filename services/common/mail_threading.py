"""How our mail threads, written and read back in one place: the Message-IDs and the
subject tag.

Notify writes them; intake reads them back, to thread a reply or an out-of-office to its
ticket and to tell a delivery report about mail we really sent from a forged one.

- ``[#42]`` in the subject (``subject_tag``) names ticket 42 to people and to intake
  (``ticket_in_subject``), for a client that drops the references. ``#42`` alone
  (``display_id``) is how every page and mail names the ticket.

- ``<ticket-42@domain>`` goes in ``References`` of every message about ticket 42, so that
  they make one thread in the customer's mail client. Anyone can write it: it threads,
  it proves nothing.
- ``<sales-<id>@domain>`` does the same for every message about sales request ``<id>``
  (seed 003): a prospect's answer to the sales office threads back to its request by it.
  It proves nothing either: the tickets service checks that the sender is the requester.
- ``<notify.<template>.t42.<stamp><seal>@domain>`` is the Message-ID of one notification
  (``t42.`` only on mail about a ticket). ``stamp`` (16 hex digits) comes from the event
  and the template, so a resend carries the same ID; ``seal`` (16 hex digits) is an
  HMAC-SHA256 over the template, the ticket, the stamp and the domain, keyed with a key
  derived from the token signing key (``Settings.token_signing_key()``), which every
  service has. Only we can write an ID whose seal verifies.

IDs written before the seal existed have the same shape (32 hex digits) but do not
verify: they still thread (``ticket_id``), they are not ``verified``, so a delivery report
quoting one is not trusted. The same holds for an ID written under another signing key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from email.utils import parseaddr

_KEY_LABEL = b"helpdesk notification message-id seal"
_STAMP_HEX = 16
_SEAL_HEX = 16
# A sales request's ID: intake's row IDs and the sales office's (hex), kept to a safe set.
_SALES_ID = r"[0-9A-Za-z_-]{1,64}"
_SALES_THREAD = re.compile(rf"^<sales-(?P<sales>{_SALES_ID})@(?P<domain>[^<>@\s]{{1,253}})>$")
_OURS = re.compile(
    r"^<(?:ticket-(?P<thread>\d{1,12})"
    r"|notify\.(?P<template>[a-z_]{1,64})\.(?:t(?P<ticket>\d{1,12})\.)?"
    rf"(?P<stamp>[0-9a-f]{{{_STAMP_HEX}}})(?P<seal>[0-9a-f]{{{_SEAL_HEX}}}))"
    r"@(?P<domain>[^<>@\s]{1,253})>$",
    re.IGNORECASE,
)


# Any Message-ID we read or answer: one token in angle brackets, nothing folded inside.
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")
_SUBJECT_TAG = re.compile(r"\[#(\d{1,12})\]")


def message_ids_in(header: str) -> list[str]:
    """The Message-IDs in a ``Message-ID``, ``In-Reply-To`` or ``References`` value."""
    return _MESSAGE_ID.findall(header)


def is_message_id(value: str) -> bool:
    """Whether ``value`` is exactly one Message-ID (one we may answer or refer to)."""
    return _MESSAGE_ID.fullmatch(value) is not None


def display_id(ticket_id: int) -> str:
    """How pages and mail name ticket ``ticket_id``: ``#42``."""
    return f"#{ticket_id}"


def subject_tag(ticket_id: int) -> str:
    """The tag that opens the subject of every mail about ``ticket_id``: ``[#42]``."""
    return f"[{display_id(ticket_id)}]"


def ticket_in_subject(subject: str) -> int | None:
    """The ticket the first subject tag names (``Re: [#42] ...`` gives 42); None without
    one."""
    found = _SUBJECT_TAG.search(subject)
    return int(found.group(1)) if found else None


def mail_domain(mail_from: str) -> str:
    """The domain of the support address (``helpdesk.localhost`` by default): the right-hand
    side of every Message-ID we write."""
    _, address = parseaddr(mail_from)
    domain = address.rpartition("@")[2].strip().lower()
    return domain or "helpdesk.localhost"


def thread_id(ticket_id: int, domain: str) -> str:
    """The reference every message about ``ticket_id`` carries in ``References``."""
    return f"<ticket-{ticket_id}@{domain.strip().lower()}>"


def sales_thread_id(sales_request_id: str, domain: str) -> str:
    """The reference every message about sales request ``sales_request_id`` carries in
    ``References``; ``ValueError`` for an ID outside the safe set (it goes into a header)."""
    if not re.fullmatch(_SALES_ID, sales_request_id):
        raise ValueError(f"sales request ID {sales_request_id!r}: not usable in a Message-ID")
    return f"<sales-{sales_request_id}@{domain.strip().lower()}>"


def sales_request_of(reference: str, domain: str) -> str:
    """The sales request a reference names (``<sales-<id>@domain>`` of our ``domain``);
    "" for any other. It threads, it proves nothing: whoever quotes it is checked."""
    found = _SALES_THREAD.match(reference.strip())
    if found is None or found["domain"].lower() != domain.strip().lower():
        return ""
    return found["sales"]


@dataclass(frozen=True)
class OurMessageId:
    """What one of our Message-IDs says."""

    ticket_id: int  # the ticket it names; 0: none
    template: str  # the notification's template; "" for a ticket's thread reference
    verified: bool  # a notification ID sealed with our key: we wrote it


class MessageIds:
    """Writes and reads the Message-IDs of one support domain under one signing key."""

    def __init__(self, signing_key: str, domain: str) -> None:
        if not signing_key:
            raise ValueError("a signing key is required to seal Message-IDs")
        self._key = hmac.new(signing_key.encode(), _KEY_LABEL, hashlib.sha256).digest()
        self.domain = domain.strip().lower()

    def notification(self, event_id: str, template: str, ticket_id: int = 0) -> str:
        """The Message-ID of the email ``template`` for ``event_id``: the same on every
        resend. Mail about a ticket names it (``.t42.``), so that an answer quoting only
        this ID in ``In-Reply-To`` (an out-of-office) still finds its ticket."""
        if not re.fullmatch(r"[a-z_]{1,64}", template):
            raise ValueError(f"template {template!r}: not a template name")
        ticket = max(ticket_id, 0)
        stamp = hashlib.sha256(f"{event_id}\x00{template}".encode()).hexdigest()[:_STAMP_HEX]
        part = f"t{ticket}." if ticket else ""
        seal = self._seal(template, ticket, stamp)
        return f"<notify.{template}.{part}{stamp}{seal}@{self.domain}>"

    def parse(self, message_id: str) -> OurMessageId | None:
        """What ``message_id`` says when it has the shape of one of ours, on our domain;
        None otherwise. Only a notification ID whose seal checks is ``verified``: trust a
        delivery report only about those; thread a reply by ``ticket_id`` either way."""
        found = _OURS.match(message_id.strip())
        if found is None or found["domain"].lower() != self.domain:
            return None
        if found["thread"] is not None:
            return OurMessageId(int(found["thread"]), "", verified=False)
        template = found["template"].lower()
        ticket = int(found["ticket"] or 0)
        stamp = found["stamp"].lower()
        verified = hmac.compare_digest(found["seal"].lower(), self._seal(template, ticket, stamp))
        return OurMessageId(ticket, template, verified=verified)

    def _seal(self, template: str, ticket_id: int, stamp: str) -> str:
        signed = f"{template}\x00{ticket_id}\x00{stamp}\x00{self.domain}".encode()
        return hmac.new(self._key, signed, hashlib.sha256).hexdigest()[:_SEAL_HEX]
