"""The mail mix of ``mail_to_ticket`` (and of ``mail_accept``'s sends): the realistic test
corpus under ``tests/data/email/`` (Outlook, Apple Mail, Gmail, legacy charsets, RFC 2047,
attachments, a fax gateway, broken headers...), limited to the messages that become a ticket
or a comment.

Bounces, auto-replies, mailing lists, messages that identify no sender and a prospect's
mail are left out of the measured mix (``EXCLUDED`` says why): they never open a ticket.

Each copy gets its own Message-ID (the help desk stores a message once per Message-ID; a
message without one gets its own Date, since it is keyed by a hash of sender, date, subject
and body), and replies that name ticket 42 or 7 (subject tag, ``<ticket-N@...>`` reference)
are pointed at tickets that exist in the bench's help desk, so they become comments.

The corpus comes from one customer (rossi.it, plus two senders of other domains that are
contacts of it). ``messages(..., domains=...)`` spreads the copies over several customer
domains instead (``DOMAINS``, one organisation each in the bench): copy ``i`` goes to domain
``i % len(domains)``, its sender's address (From, Return-Path, envelope) rewritten to the
same local part at that domain, and a reply points at a ticket of that domain's organisation
(a reply naming another organisation's ticket would open a ticket of its own).
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
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
# The customer domains ``messages(..., domains=...)`` spreads copies over (none of them is a
# corpus sender's own domain, so no existing contact or organisation claims them).
DOMAINS = (
    "ferrari-impianti.it",
    "lombardi.com",
    "moretti-srl.it",
    "colombo.eu",
    "ricci-group.it",
    "marino.net",
    "greco-sas.it",
    "bruno-spa.it",
)
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


def rehome(address: str, domain: str) -> str:
    """``address``'s local part at ``domain``."""
    return f"{address.rsplit('@', 1)[0]}@{domain}"


def senders(mix: list[Sample]) -> dict[str, bool]:
    """The mix's sender addresses, lower case: whether each sends a reply (a comment)."""
    out: dict[str, bool] = {}
    for sample in mix:
        email = sample.sender.lower()
        out[email] = out.get(email, False) or sample.comment
    return out


def domain_senders(count: int, domains: list[str]) -> dict[str, dict[str, bool]]:
    """The senders ``messages(count, ..., domains=...)`` writes from, per domain (the
    rewritten addresses, lower case): whether each sends a reply. The first ``n`` copies of a
    longer run are those of a run of ``n``, so a run's senders cover its shorter warm-up's."""
    mix = samples()
    out: dict[str, dict[str, bool]] = {d: {} for d in domains}
    for i in range(count):
        sample = mix[i % len(mix)]
        domain = domains[i % len(domains)]
        email = rehome(sample.sender, domain).lower()
        out[domain][email] = out[domain].get(email, False) or sample.comment
    return out


def _copy(sample: Sample, seq: int, target: int, run: str, sender: str = "") -> bytes:
    head, body = _split(sample.raw)
    domain = sender.rsplit("@", 1)[1] if sender else "rossi.it"
    if sender:  # the sender's address in the header block (From, Return-Path), any case
        head = re.sub(re.escape(sample.sender.encode()), sender.encode(), head, flags=re.I)
    if _MESSAGE_ID.search(head):
        head = _MESSAGE_ID.sub(
            lambda mt: mt.group(1) + f"<bench-{run}-{seq}-{uuid.uuid4().hex}@{domain}>".encode(),
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


def messages(
    count: int,
    targets: list[int],
    run: str = "",
    domains: Mapping[str, list[int]] | None = None,
) -> list[tuple[Sample, bytes]]:
    """``count`` messages, the samples in turn: (sample, raw bytes of this copy).

    Without ``domains``, the corpus as it is (one customer domain): replies point at
    ``targets`` in turn (tickets of the bench organisation). With ``domains`` (domain: open
    tickets of its organisation), copy ``i`` is sent from domain ``i % len(domains)`` (the
    returned sample carries the rewritten sender) and its reply points at that domain's
    tickets in turn."""
    mix = samples()
    run = run or uuid.uuid4().hex[:6]
    names = list(domains or {})
    replies: dict[str, int] = {}
    out = []
    for i in range(count):
        sample = mix[i % len(mix)]
        if not names:
            target = targets[(i // len(mix)) % len(targets)] if targets else 0
            out.append((sample, _copy(sample, i, target, run)))
            continue
        domain = names[i % len(names)]
        own = (domains or {})[domain]
        target = 0
        if sample.comment and own:
            n = replies[domain] = replies.get(domain, -1) + 1
            target = own[n % len(own)]
        sender = rehome(sample.sender, domain)
        out.append((replace(sample, sender=sender), _copy(sample, i, target, run, sender)))
    return out
