"""Reading an inbound email into what a ticket needs (standard library ``email`` only).

Identity comes from the strictly parsed ``From`` address alone; the text is
the plain part (or readable text from the HTML part) without the quoted
history of a reply.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses
from html.parser import HTMLParser

TAG = re.compile(r"\[#(\d{1,12})\]")
_MSG_ID = re.compile(r"<[^<>\s]{1,250}>")
_QUOTE_HEADERS = re.compile(
    r"^(On .+ wrote:|Il giorno .+ ha scritto:|.+ ha scritto:|-----\s*(Original Message|"
    r"Messaggio originale)\s*-----|From: .+|Da: .+)\s*$",
    re.IGNORECASE,
)
MAX_ATTACHMENTS = 20


@dataclass
class Attachment:
    filename: str
    content_type: str
    content: bytes


@dataclass
class ParsedMail:
    sender: str  # lower-case address; "" when none could be parsed strictly
    sender_name: str
    subject: str
    text: str
    message_id: str
    dedup_key: str
    ticket_tag: int | None
    automatic: bool  # an auto-reply, bulk or list mail: never opens a ticket
    # Message-IDs this mail answers (In-Reply-To first, then References, newest first).
    replies_to: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head"):
            self._skip += 1
        if tag in ("br", "p", "div", "tr", "li", "h1", "h2", "h3"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    text = "".join(parser.parts)
    return re.sub(r"\n\s*\n+", "\n\n", text).strip()


def strip_quoted(text: str) -> str:
    """What the sender wrote, without the history a reply quotes below it."""
    kept: list[str] = []
    for line in text.splitlines():
        if _QUOTE_HEADERS.match(line.strip()) and kept:
            break
        if line.startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept).strip() or text.strip()


def _sender(msg: EmailMessage) -> tuple[str, str]:
    """The one ``From`` address, as the structured header parser reads it; nothing when the
    header holds zero or several addresses or anything that parses ambiguously."""
    values = msg.get_all("From") or []
    if len(values) != 1:
        return "", ""
    addresses = getattr(values[0], "addresses", ())
    good = [a for a in addresses if a.username and a.domain]
    if len(good) != 1 or len(getaddresses([str(values[0])])) != 1:
        return "", ""
    address = good[0]
    if any(c in address.addr_spec for c in '\r\n<>,;"') or " " in address.addr_spec:
        return "", ""
    return address.addr_spec.strip().lower(), str(address.display_name).strip()


def _is_automatic(msg: EmailMessage, sender: str) -> bool:
    auto = str(msg.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(msg.get("Precedence", "")).strip().lower()
    local = sender.split("@", 1)[0]
    return (
        auto != "no"
        or precedence in ("bulk", "junk", "list", "auto_reply")
        or msg.get("List-Id") is not None
        or msg.get("X-Autoreply") is not None
        or msg.get("X-Loop") is not None
        or local in ("mailer-daemon", "postmaster", "noreply", "no-reply")
        or msg.get_content_type() == "multipart/report"
    )


def _text(msg: EmailMessage) -> str:
    body = msg.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    try:
        content = body.get_content()
    except (LookupError, UnicodeError, AssertionError):
        payload = body.get_payload(decode=True)
        content = payload.decode("latin-1") if isinstance(payload, bytes) else ""
    if not isinstance(content, str):
        return ""
    if body.get_content_type() == "text/html":
        content = html_to_text(content)
    return strip_quoted(content)


def raw_key(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def dedup_key(msg: EmailMessage, raw: bytes, sender: str) -> str:
    message_id = str(msg.get("Message-ID", "")).strip()
    if message_id:
        return "mid:" + message_id[:280]
    digest = hashlib.sha256()
    for part in (sender, str(msg.get("Date", "")), str(msg.get("Subject", ""))):
        digest.update(part.encode("utf-8", "replace") + b"\0")
    digest.update(raw.split(b"\r\n\r\n", 1)[-1].split(b"\n\n", 1)[-1])
    return "sha256:" + digest.hexdigest()


def _replies_to(msg: EmailMessage) -> list[str]:
    found: list[str] = []
    in_reply_to = _MSG_ID.findall(str(msg.get("In-Reply-To", "")))
    references = _MSG_ID.findall(str(msg.get("References", "")))
    for ref in [*in_reply_to, *reversed(references)]:
        if ref not in found:
            found.append(ref)
    return found[:50]


def parse(raw: bytes) -> ParsedMail:
    """Never raises on malformed mail: what cannot be read is left empty."""
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    try:
        sender, name = _sender(msg)
    except Exception:  # a header the parser chokes on identifies nobody
        sender, name = "", ""
    subject = " ".join(str(msg.get("Subject", "")).split())[:300]
    tag = TAG.search(subject)
    attachments = []
    for part in list(msg.iter_attachments())[:MAX_ATTACHMENTS]:
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            attachments.append(
                Attachment(
                    filename=part.get_filename() or "allegato",
                    content_type=part.get_content_type(),
                    content=payload,
                )
            )
    return ParsedMail(
        sender=sender,
        sender_name=name,
        subject=subject,
        text=_text(msg),
        message_id=str(msg.get("Message-ID", "")).strip(),
        dedup_key=dedup_key(msg, raw, sender),
        ticket_tag=int(tag.group(1)) if tag else None,
        replies_to=_replies_to(msg),
        automatic=_is_automatic(msg, sender),
        attachments=attachments,
    )
