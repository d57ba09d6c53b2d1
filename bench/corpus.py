"""The mail mix of ``mail_ingest``: the realistic test corpus under ``tests/data/email/``
(Outlook, Apple Mail, Gmail, legacy charsets, RFC 2047, attachments, a fax gateway, broken
headers...), limited to the messages that become a ticket or a comment.

Bounces, auto-replies, mailing lists, messages that identify no sender and a prospect's
mail are left out of the measured mix (``EXCLUDED`` says why): they never open a ticket.

Each copy gets its own Message-ID (the help desk stores a message once per Message-ID; a
message without one gets its own Date, since it is keyed by a hash of sender, date, subject
and body), and replies that name ticket 42 or 7 (subject tag, ``<ticket-N@...>`` reference)
are pointed at tickets that exist in the bench's help desk, so they become comments.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "email"
SUPPORT = "assistenza@helpdesk.localhost"
FAX = "fax@helpdesk.localhost"

# Left out of the measured mix, and why (none of them opens a ticket or adds a comment).
EXCLUDED = {
    "out_of_office.eml": "auto-reply (at most an internal note)",
    "dsn_bounce.eml": "bounce (delivery status report)",
    "mailing_list.eml": "mailing list (automatic, ignored)",
    "header_injection_from.eml": "no single well-formed sender (FAILED)",
    "address_trick.eml": "no single well-formed sender (FAILED)",
    "two_from_headers.eml": "no single well-formed sender (FAILED)",
    "display_name_address.eml": "sender of no customer's domain (a prospect, not a ticket)",
}
# Corpus senders outside the bench organisation's domain (rossi.it): contacts made up front.
FOREIGN_CONTACTS = {
    "marco.neri@gmail.com": "Marco Neri",
    "john.smith@contoso.co.uk": "John Smith",
}
_TAGGED = (42, 7)  # the ticket numbers the corpus's replies name
_MESSAGE_ID = re.compile(rb"^(Message-I[Dd]:[ \t]*)<[^>\r\n]*>", re.MULTILINE | re.IGNORECASE)
_DATE = re.compile(rb"^Date:[^\r\n]*", re.MULTILINE)
_DATES = itertools.count()  # distinct dates for every copy made in this process


@dataclass(frozen=True)
class Sample:
    name: str
    raw: bytes
    sender: str  # envelope sender (the parsed From address)
    rcpt: str  # envelope recipient: the support address, or the fax gateway's
    comment: bool  # names an existing ticket: becomes a comment


def samples() -> list[Sample]:
    """The corpus messages that become a ticket or a comment, in file-name order."""
    expected = json.loads((CORPUS / "expected.json").read_text())
    out = []
    for path in sorted(CORPUS.glob("*.eml")):
        if path.name in EXCLUDED:
            continue
        exp = expected.get(path.name)
        if not exp or exp.get("is_automatic") or exp.get("is_bounce") or not exp.get("sender"):
            continue
        raw = path.read_bytes()
        to_fax = b"\nTo: fax@helpdesk.localhost" in raw
        out.append(
            Sample(
                name=path.name,
                raw=raw,
                sender=str(exp["sender"]),
                rcpt=FAX if to_fax else SUPPORT,
                comment=exp.get("ticket_tag") in _TAGGED,
            )
        )
    return out


def _split(raw: bytes) -> tuple[bytes, bytes]:
    for sep in (b"\r\n\r\n", b"\n\n"):
        head, found, body = raw.partition(sep)
        if found:
            return head, found + body
    return raw, b""


def _copy(sample: Sample, seq: int, target: int, run: str) -> bytes:
    head, body = _split(sample.raw)
    if _MESSAGE_ID.search(head):
        head = _MESSAGE_ID.sub(
            lambda mt: mt.group(1) + f"<bench-{run}-{seq}-{uuid.uuid4().hex}@rossi.it>".encode(),
            head,
            count=1,
        )
    else:  # keyed by sender, date, subject and body: a date of its own
        when = datetime(2026, 11, 23, 9, 0, tzinfo=UTC) + timedelta(seconds=next(_DATES))
        head = _DATE.sub(f"Date: {format_datetime(when)}".encode(), head, count=1)
    raw = head + body
    if sample.comment:
        for old in _TAGGED:
            raw = raw.replace(f"[#{old}]".encode(), f"[#{target}]".encode())
            raw = raw.replace(f"<ticket-{old}@".encode(), f"<ticket-{target}@".encode())
    return raw


def messages(count: int, targets: list[int], run: str = "") -> list[tuple[Sample, bytes]]:
    """``count`` messages, the samples in turn: (sample, raw bytes of this copy). Replies
    point at ``targets`` in turn (tickets of the bench organisation)."""
    mix = samples()
    run = run or uuid.uuid4().hex[:6]
    out = []
    for i in range(count):
        sample = mix[i % len(mix)]
        target = targets[(i // len(mix)) % len(targets)] if targets else 0
        out.append((sample, _copy(sample, i, target, run)))
    return out
