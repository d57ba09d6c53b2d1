"""Reading an inbound email into what a ticket needs (standard library ``email`` only,
plus nh3 to sanitise HTML for display).

Identity comes from the strictly parsed ``From`` address alone (two parsers must agree on
one plain address; CVE-2023-27043-style tricks identify nobody). The text is the plain
part, or readable text made from the HTML part, decoded right whatever the charset label
says, without the quoted history of a reply. Attachments are bounded per file and per
message, and the work is bounded before it is done: the lines of the message, its MIME
parts and their nesting, the size of every header field and of all part headers are
counted while the parser reads them (past a limit only the top header block is read), and
HTML is measured (size, nesting) before anything parses it. ``parse`` never raises; it
runs in a child process that can be killed (``services.intake.parse_worker``).
"""

from __future__ import annotations

import hashlib
import html as htmllib
import mimetypes
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.feedparser import BytesFeedParser
from email.message import EmailMessage, Message
from email.policy import EmailPolicy
from email.utils import parseaddr
from html.parser import HTMLParser
from typing import TYPE_CHECKING, NamedTuple

import nh3

from services.common.limits import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS, MAX_ATTACHMENTS_TOTAL
from services.common.mail_threading import message_ids_in, ticket_in_subject

# A dot-atom local part and a dotted ASCII domain: nothing quoted, no comments, no routes.
_STRICT_ADDR = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
ROBOT_LOCAL_PARTS = frozenset({"mailer-daemon", "postmaster", "noreply", "no-reply"})


@dataclass(frozen=True)
class Limits:
    """What one message may cost. Attachments beyond a limit are left out (and named)."""

    max_attachment_bytes: int = MAX_ATTACHMENT_BYTES  # one file
    max_total_attachment_bytes: int = MAX_ATTACHMENTS_TOTAL  # all files of one message
    max_attachments: int = MAX_ATTACHMENTS
    max_parts: int = 200  # MIME parts; beyond this only the headers are read
    max_depth: int = 20  # nesting of parts (multiparts, attached messages)
    max_lines: int = 1_000_000  # lines of the whole message; beyond: only the headers
    max_header_bytes: int = 256 * 1024  # the top-level header block (cut beyond)
    max_part_headers_bytes: int = 64 * 1024  # the header blocks of all parts together
    # One header field: structured ones (addresses, Content-*, dates) are parsed again on
    # every read, so they are kept short; a longer field is left out (and noted).
    max_field_bytes: int = 2 * 1024
    max_address_list_bytes: int = 16 * 1024  # To, Cc, Bcc
    max_unstructured_field_bytes: int = 64 * 1024  # Subject, References, X-...
    max_text_chars: int = 100_000  # what goes into a ticket's description
    max_html_chars: int = 1_000_000  # HTML read (made into text, sanitised); cut beyond
    max_html_depth: int = 256  # open elements at once; deeper HTML is read as bare text


DEFAULT_LIMITS = Limits()


@dataclass
class Attachment:
    filename: str  # a bare name, never a path
    content_type: str
    content: bytes
    inline: bool = False

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass
class Bounce:
    """What a delivery-status report says about the message it reports."""

    original_message_ids: list[str]
    recipients: list[str]
    action: str  # "failed", "delayed", ... (RFC 3464)
    status: str  # "5.1.1"
    diagnostic: str


@dataclass
class ParsedMail:
    sender: str  # lower-case address; "" when none could be parsed strictly
    sender_name: str
    subject: str
    text: str
    message_id: str
    dedup_key: str
    ticket_tag: int | None
    automatic: bool  # an auto-reply, bulk, list mail or report: never opens a ticket
    # Why it is automatic, or why no automatic answer may go to it (empty: none).
    automatic_reason: str = ""
    no_auto_reply_reason: str = ""
    # Message-IDs this mail answers (In-Reply-To first, then References, newest first).
    replies_to: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    # Attachments left out, with why: "video.mp4 (31 MiB, oltre il limite di 20 MiB)".
    skipped_attachments: list[str] = field(default_factory=list)
    # Why part of the message was not read ("" when all of it was): for the agents.
    unread: str = ""
    html: str = ""  # the HTML body, sanitised with nh3 ("" for plain-text mail)
    full_text: str = ""  # the text before the quoted history was stripped
    bounce: Bounce | None = None
    recipients: list[str] = field(default_factory=list)  # To and Cc, as parsed
    cc: list[str] = field(default_factory=list)  # Cc alone (colleagues who follow the ticket)
    content_language: str = ""
    x_loop: str = ""  # the X-Loop header, lower-cased (ours: our own mail came back)
    problems: list[str] = field(default_factory=list)  # what could not be read

    @property
    def is_bounce(self) -> bool:
        return self.bounce is not None

    @property
    def auto_reply_allowed(self) -> bool:
        return not self.automatic and not self.no_auto_reply_reason


# -- text ---------------------------------------------------------------------------------

_BLOCK = {
    "br",
    "p",
    "div",
    "tr",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "ul",
    "ol",
    "pre",
    "hr",
    "blockquote",
    "section",
    "article",
    "header",
    "footer",
}
_SKIP = {"script", "style", "head", "title", "template"}


class _Text(HTMLParser):
    """Readable text from HTML: blocks on their own lines, list items with a dash, links
    with their address, quoted blocks (``blockquote``) prefixed with ``>``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = [""]
        self._skip = 0
        self._quote = 0
        self._href: list[str | None] = []

    def _newline(self) -> None:
        if self.lines[-1].strip(" >"):
            self.lines.append("")
        else:
            self.lines[-1] = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip += 1
        elif tag == "blockquote":
            self._newline()
            self._quote += 1
        elif tag in _BLOCK:
            self._newline()
        if tag == "li":
            self._write("- ")
        elif tag == "a":
            self._href.append(dict(attrs).get("href"))
        elif tag == "img":
            alt = (dict(attrs).get("alt") or "").strip()
            if alt:
                self._write(f"[{alt}]")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "hr"):
            self.lines.append("")
        else:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag == "blockquote":
            self._quote = max(0, self._quote - 1)
            self._newline()
        elif tag in _BLOCK:
            self._newline()
        elif tag == "a" and self._href:
            href = self._href.pop()
            line = self.lines[-1]
            if href and href.startswith(("http://", "https://")) and href not in line:
                self._write(f" <{href}>")

    def _write(self, data: str) -> None:
        if not self.lines[-1] and self._quote:
            self.lines[-1] = "> " * self._quote
        self.lines[-1] += data

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        data = re.sub(r"[ \t\r\n\f\u00a0]+", " ", data)
        if not self.lines[-1].strip() and not self._quote:
            data = data.lstrip()
        if data:
            self._write(data)


# HTML is measured before it is parsed: both parsers (html5ever in nh3, and HTMLParser)
# take time that grows with the square of the input on some shapes (unclosed "<a<a<a",
# "<!--" or formatting elements, deeply nested blocks). Size is cut at
# ``max_html_chars``; HTML whose elements nest deeper than ``max_html_depth`` (as the
# simple count below sees it) is read as bare text, never parsed. What is parsed is first
# made well-formed by nh3, so that HTMLParser only ever sees complete markup.
_HTML_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]{0,40})")
_VOID = frozenset(
    {"area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "img",
     "input", "keygen", "link", "meta", "param", "source", "track", "wbr"}
)  # fmt: skip
# End tags a parser supplies itself (a new <p> closes the last one, and so on).
_IMPLIED_END = frozenset(
    {"body", "caption", "colgroup", "dd", "dt", "head", "html", "li", "optgroup", "option",
     "p", "rb", "rp", "rt", "rtc", "tbody", "td", "tfoot", "th", "thead", "tr"}
)  # fmt: skip
# What the text needs of the HTML (nh3 keeps the text of every other element).
_TEXT_TAGS = _BLOCK | {"a", "img", "li"}
_TEXT_DROP = {"script", "style", "title", "template"}  # their content is no text


def html_nesting(html: str, stop: int) -> int:
    """How deep the elements of ``html`` nest (open tags not yet closed), counted simply;
    counting ends as soon as it passes ``stop``. Linear in the size of ``html``."""
    open_now: dict[str, int] = {}
    depth = deepest = 0
    for match in _HTML_TAG.finditer(html):
        name = match.group(2).lower()
        if name in _VOID or name in _IMPLIED_END:
            continue
        if match.group(1):
            if open_now.get(name, 0) > 0:
                open_now[name] -= 1
                depth -= 1
            continue
        open_now[name] = open_now.get(name, 0) + 1
        depth += 1
        if depth > deepest:
            deepest = depth
            if deepest > stop:
                break
    return deepest


def _html_check(html: str, limits: Limits) -> tuple[str, list[str], bool]:
    """(the HTML to read, what was noted, whether to read it as bare text only)."""
    problems: list[str] = []
    if len(html) > limits.max_html_chars:
        html = html[: limits.max_html_chars]
        problems.append(f"HTML over {limits.max_html_chars} characters: cut")
    if html_nesting(html, limits.max_html_depth) > limits.max_html_depth:
        problems.append(f"HTML nested more than {limits.max_html_depth} deep: read as text")
        return html, problems, True
    return html, problems, False


def _bare_text(html: str) -> str:
    """Text without parsing: tags dropped, entities read (linear: no backtracking)."""
    text = htmllib.unescape(re.sub(r"<[^<>]*>", " ", html))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _readable_text(html: str) -> str:
    """Text of HTML already measured by ``_html_check``."""
    try:
        cleaned = nh3.clean(
            html,
            tags=_TEXT_TAGS,
            clean_content_tags=_TEXT_DROP,
            attributes={"a": {"href"}, "img": {"alt"}},
            link_rel=None,
        )
    except Exception:
        return _bare_text(html)
    parser = _Text()
    try:
        parser.feed(cleaned)
        parser.close()
    except Exception:  # HTMLParser is lenient; this is belt and braces
        return _bare_text(cleaned)
    lines = [line.rstrip() for line in parser.lines]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _sanitized(html: str) -> str:
    try:
        return nh3.clean(html, link_rel="noopener noreferrer nofollow").strip()
    except Exception:
        return ""


def html_to_text(html: str, limits: Limits | None = None) -> str:
    """Readable text from HTML, in time linear in its size."""
    checked, _, flat = _html_check(html, limits or DEFAULT_LIMITS)
    return _bare_text(checked) if flat else _readable_text(checked)


def sanitize_html(html: str, limits: Limits | None = None) -> str:
    """HTML safe to show to an agent: no scripts, styles, event handlers or remote tricks
    ("" for HTML too deeply nested to be parsed safely)."""
    checked, _, flat = _html_check(html, limits or DEFAULT_LIMITS)
    return "" if flat else _sanitized(checked)


# Lines that introduce quoted history ("Il giorno ... ha scritto:", "On ... wrote:").
_ATTRIBUTION = re.compile(
    r"^(?:On\b.{0,300}\bwrote:|Il giorno\b.{0,300}\bha scritto:|Il\b.{0,300}\bha scritto:"
    r"|Le\b.{0,300}\ba écrit\s?:|Am\b.{0,300}\bschrieb\b.{0,100}:|.{0,200}\bha scritto:)$",
    re.IGNORECASE,
)
_ORIGINAL = re.compile(
    r"^-{2,}\s*(?:Original Message|Messaggio originale|Messaggio Originale)\s*-{2,}$",
    re.IGNORECASE,
)
# Outlook's header block: "Da: X" / "From: X" followed by "Inviato:" / "Sent:" / "Data:".
_OUTLOOK_FROM = re.compile(r"^\*?(?:From|Da|De|Von)\s*:\*?\s*\S", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(
    r"^\*?(?:Sent|Inviato|Date|Data|Envoyé|Gesendet|To|A|Subject|Oggetto)\s*:", re.IGNORECASE
)
_FORWARD = re.compile(
    r"^(?:-{2,}\s*(?:Forwarded message|Messaggio inoltrato|Inizio messaggio inoltrato"
    r"|Begin forwarded message)\s*:?\s*-*|(?:Inizio messaggio inoltrato|Begin forwarded "
    r"message)\s*:)$",
    re.IGNORECASE,
)


def _starts_history(lines: list[str], i: int) -> bool:
    line = lines[i].strip()
    if _ORIGINAL.match(line) or _ATTRIBUTION.match(line):
        return True
    # An attribution wrapped over two lines ("On Mon, ... Rossi <\nm@rossi.it> wrote:").
    if i + 1 < len(lines) and re.match(r"^(?:On|Il giorno|Il)\b", line, re.IGNORECASE):
        joined = f"{line} {lines[i + 1].strip()}"
        if _ATTRIBUTION.match(joined):
            return True
    if _OUTLOOK_FROM.match(line):
        following = [x.strip() for x in lines[i + 1 : i + 4] if x.strip()]
        return sum(1 for x in following if _OUTLOOK_NEXT.match(x)) >= 2
    return False


def strip_quoted(text: str) -> str:
    """What the sender wrote, without the history a reply quotes below it.

    Cuts at the first attribution line ("Il giorno ... ha scritto:", "On ... wrote:"),
    Outlook's "-----Original Message-----" or its "Da: / Inviato:" header block, and drops
    ``>`` lines. A forwarded message is what the sender means to send us: it is kept whole.
    """
    lines = text.splitlines()
    kept: list[str] = []
    for i, line in enumerate(lines):
        if _FORWARD.match(line.strip()):
            kept.extend(lines[i:])
            break
        if any(k.strip() for k in kept) and _starts_history(lines, i):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line.rstrip())
    result = "\n".join(kept).strip()
    return re.sub(r"\n{3,}", "\n\n", result) or text.strip()


# -- charsets -----------------------------------------------------------------------------

_LATIN1_LABELS = {
    "iso-8859-1",
    "iso8859-1",
    "latin-1",
    "latin1",
    "l1",
    "iso_8859-1",
    "us-ascii",
    "ascii",
    "iso-8859-15",
    "iso8859-15",
    "",
}


def decode_text(payload: bytes, label: str | None) -> str:
    """Bytes of a text part as a string, trusting the label only as far as the bytes allow.

    - labelled ISO-8859-1 / ASCII (or unlabelled) but valid UTF-8 with non-ASCII: UTF-8;
    - labelled ISO-8859-1 but holding C1 bytes (0x80-0x9F): Windows-1252 (``’``, ``€``);
    - labelled UTF-8 but invalid: Windows-1252;
    - an unknown label: UTF-8, else Windows-1252, else Latin-1 (which never fails).
    """
    charset = (label or "").strip().strip('"').lower()
    if charset in _LATIN1_LABELS:
        if any(b > 0x7F for b in payload):
            try:
                return payload.decode("utf-8")
            except UnicodeDecodeError:
                pass
        if any(0x80 <= b <= 0x9F for b in payload):
            return payload.decode("cp1252", "replace")
        return payload.decode("iso-8859-15" if "15" in charset else "latin-1")
    candidates = [charset, "utf-8", "cp1252", "latin-1"]
    for candidate in candidates:
        try:
            return payload.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("latin-1")  # pragma: no cover - latin-1 decodes anything


def _part_text(part: Message, max_bytes: int | None = None) -> str:
    """The decoded text of a part; at most ``max_bytes`` of it are read (cut before a
    UTF-8 sequence, so that the cut never changes how the rest decodes)."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        text = raw if isinstance(raw, str) else ""
        return text if max_bytes is None else text[:max_bytes]
    if max_bytes is not None and len(payload) > max_bytes:
        cut = max_bytes
        while cut > max_bytes - 4 and cut > 0 and 0x80 <= payload[cut] <= 0xBF:
            cut -= 1
        payload = payload[:cut]
    return decode_text(payload, part.get_content_charset())


# -- headers ------------------------------------------------------------------------------


def one_line(value: object, limit: int = 300) -> str:
    """A header value on one line: CR, LF and every other control character gone."""
    text = "".join(" " if unicodedata.category(c)[0] == "C" else c for c in str(value))
    return " ".join(text.split())[:limit]


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # a header the structured parser cannot read
        return ""
    return "" if value is None else str(value)


def strict_sender(msg: Message) -> tuple[str, str]:
    """The one ``From`` address, when it is beyond doubt; otherwise ``("", "")``.

    Beyond doubt means: exactly one ``From`` header, holding exactly one mailbox, with no
    parse defects, a plain dot-atom address (no quoted local part, no comment, no route)
    on a dotted domain, and the legacy parser (``parseaddr``) reading the very same
    address from the raw header. Any disagreement (the CVE-2023-27043 family) identifies
    nobody rather than the wrong person.
    """
    raw_values = [v for k, v in msg.raw_items() if k.lower() == "from"]
    if len(raw_values) != 1:
        return "", ""
    raw = str(raw_values[0])
    if "\x00" in raw or re.search(r"[\r\n](?![ \t])", raw.strip("\r\n")):
        return "", ""
    try:
        header = msg.get("From")
    except Exception:  # e.g. CR/LF in the display name: the header parser refuses it
        return "", ""
    addresses = getattr(header, "addresses", None)
    if not addresses or len(addresses) != 1 or getattr(header, "defects", None):
        return "", ""
    address = addresses[0]
    spec = str(address.addr_spec)
    if not _STRICT_ADDR.match(spec) or len(spec) > 254:
        return "", ""
    _, legacy_addr = parseaddr(raw.replace("\r", " ").replace("\n", " "))
    if legacy_addr.strip().lower() != spec.lower():
        return "", ""
    name = one_line(address.display_name, 200)
    return spec.lower(), name


def _addresses(msg: Message, *names: str) -> list[str]:
    """The addresses of the first header of each name (a repeated To is not read again)."""
    found: list[str] = []
    for name in names:
        try:
            for header in (msg.get_all(name) or [])[:1]:
                for address in getattr(header, "addresses", ()):
                    spec = str(address.addr_spec).lower()
                    if _STRICT_ADDR.match(spec) and spec not in found:
                        found.append(spec)
        except Exception:
            continue
    return found[:100]


def _classify(msg: Message, sender: str) -> tuple[str, str]:
    """(why it is automatic, why no automatic answer may go to it); "" when not."""
    auto = _header(msg, "Auto-Submitted").strip().lower()
    precedence = _header(msg, "Precedence").strip().lower()
    local = sender.split("@", 1)[0]
    if msg.get_content_type() == "multipart/report":
        return "delivery or disposition report (multipart/report)", ""
    if auto and auto != "no" and not auto.startswith("no "):
        return f"Auto-Submitted: {auto}", ""
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}", ""
    for name in ("List-Id", "List-Unsubscribe", "List-Post"):
        if msg.get(name) is not None:
            return f"mailing list ({name})", ""
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Reply", "X-Autogenerated"):
        if msg.get(name) is not None:
            return f"auto-reply ({name})", ""
    if msg.get("X-Helpdesk-Ticket") is not None:
        return "one of our own messages came back (X-Helpdesk-Ticket)", ""
    if local in ROBOT_LOCAL_PARTS:
        return f"sent by a robot address ({local})", ""
    if msg.get("X-Loop") is not None:
        return "", "X-Loop"
    if msg.get("X-Auto-Response-Suppress") is not None:
        return "", "X-Auto-Response-Suppress"
    return "", ""


# -- structure ----------------------------------------------------------------------------


class _TooComplex(Exception):
    """The message passes a structural limit: only its top header block is read."""


_STRUCTURED = frozenset(
    {"from", "sender", "reply-to", "date", "message-id", "mime-version", "content-type",
     "content-disposition", "content-transfer-encoding", "content-id", "content-language",
     "resent-from", "resent-sender", "resent-date", "orig-date", "auto-submitted"}
)  # fmt: skip
_ADDRESS_LISTS = frozenset({"to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc"})


@dataclass
class _Guard:
    """Counts what the parser reads, as it reads it (see ``_GuardedParser``)."""

    limits: Limits
    parts: int = 0
    part_header_bytes: int = 0
    dropped: list[str] = field(default_factory=list)

    def message(self, depth: int) -> None:
        self.parts += 1
        if self.parts > self.limits.max_parts:
            raise _TooComplex(f"more than {self.limits.max_parts} MIME parts")
        if depth > self.limits.max_depth + 1:
            raise _TooComplex(f"MIME parts nested more than {self.limits.max_depth} deep")

    def keeps(self, name: str, size: int) -> bool:
        """Whether to keep a header field of ``size`` bytes (False: it is left out)."""
        if self.parts > 1:
            self.part_header_bytes += size
            if self.part_header_bytes > self.limits.max_part_headers_bytes:
                raise _TooComplex(
                    f"MIME part headers over {self.limits.max_part_headers_bytes} bytes"
                )
        key = name.strip().lower()
        if key in _STRUCTURED:
            limit = self.limits.max_field_bytes
        elif key in _ADDRESS_LISTS:
            limit = self.limits.max_address_list_bytes
        else:
            limit = self.limits.max_unstructured_field_bytes
        if size <= limit:
            return True
        if len(self.dropped) < 20:
            self.dropped.append(one_line(name, 60))
        return False


if TYPE_CHECKING:
    _Policy = EmailPolicy[EmailMessage]
    _FeedParser = BytesFeedParser[EmailMessage]
else:  # not subscriptable at run time
    _Policy = EmailPolicy
    _FeedParser = BytesFeedParser


class _GuardedPolicy(_Policy):
    """``policy.default`` whose header fields pass through a ``_Guard`` as they are read:
    one too long to parse cheaply is kept empty."""

    guard: _Guard | None = None

    def header_source_parse(self, sourcelines: list[str]) -> tuple[str, str]:
        name, value = super().header_source_parse(sourcelines)
        guard = self.guard
        if guard is not None and not guard.keeps(name, sum(len(x) for x in sourcelines)):
            return name, ""
        return name, value


_GUARDED = _GuardedPolicy()
# Attached messages are written back out as they came, never re-parsed to be refolded.
_AS_RECEIVED = policy.default.clone(refold_source="none")


class _GuardedParser(_FeedParser):
    """The standard feed parser, counting every part it opens (and its depth)."""

    def __init__(self, guard: _Guard) -> None:
        guarded = _GUARDED.clone()
        object.__setattr__(guarded, "guard", guard)  # a policy is read-only once made
        super().__init__(EmailMessage, policy=guarded)
        self._guard = guard

    def _new_message(self) -> None:
        super()._new_message()  # type: ignore[misc]
        self._guard.message(len(self._msgstack))  # type: ignore[attr-defined]


_FEED = 256 * 1024


def _parse_guarded(raw: bytes, guard: _Guard) -> EmailMessage:
    """Fed in pieces: the parser never holds the whole message decoded at once."""
    parser = _GuardedParser(guard)
    for start in range(0, len(raw), _FEED):
        parser.feed(raw[start : start + _FEED])
    return parser.close()


def _line_count(raw: bytes) -> int:
    """Lines as the parser splits them (CRLF, LF or a lone CR)."""
    return raw.count(b"\n") + raw.count(b"\r") - raw.count(b"\r\n")


def _walk(msg: Message, limits: Limits) -> Iterator[tuple[Message, int]]:
    """Every part with its depth, iteratively, stopping at ``max_parts`` and ``max_depth``."""
    stack: list[tuple[Message, int]] = [(msg, 0)]
    seen = 0
    while stack and seen < limits.max_parts:
        part, depth = stack.pop()
        seen += 1
        yield part, depth
        if part.is_multipart() and depth < limits.max_depth:
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend(
                    (c, depth + 1)
                    for c in reversed(children[: limits.max_parts])
                    if isinstance(c, Message)
                )


def _safe_filename(name: str | None, content_type: str, index: int) -> str:
    """A bare file name: no directories, no control characters, bounded length."""
    cleaned = one_line(name or "", 400).replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = cleaned.strip().lstrip(".").strip()
    if cleaned in ("", ".", ".."):
        ext = mimetypes.guess_extension(content_type) or ".bin"
        stem = "immagine" if content_type.startswith("image/") else "allegato"
        cleaned = f"{stem}-{index}{ext}"
    if len(cleaned) > 200:
        stem, dot, ext = cleaned.rpartition(".")
        cleaned = (stem[:190] + dot + ext[:9]) if dot and len(ext) < 10 else cleaned[:200]
    return cleaned


def human_size(size: int) -> str:
    """``31 MiB``, ``2,5 MiB``, ``300 KiB``, ``512 byte`` (Italian decimal comma)."""
    for unit, scale in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if size >= scale:
            value = size / scale
            shown = f"{value:.1f}".replace(".", ",") if value < 10 else f"{value:.0f}"
            return f"{shown.removesuffix(',0')} {unit}"
    return f"{size} byte"


_CONTENT_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]{1,48}/[A-Za-z0-9!#$&^_.+-]{1,48}$")


def safe_content_type(value: str) -> str:
    """A content type the tickets service takes (``type/subtype``, at most 100
    characters); ``application/octet-stream`` for anything else: the file is kept."""
    ctype = value.split(";", 1)[0].strip().lower()
    return ctype if _CONTENT_TYPE.match(ctype) else "application/octet-stream"


def refused_for_size(name: str, size: int, limit: int, scope: str = "") -> str:
    """How a file left out for its size is named: ``video.mp4 (31 MiB, oltre il limite
    di 20 MiB)``."""
    return f"{name} ({human_size(size)}, oltre il limite di {human_size(limit)}{scope})"


def _body_parts(msg: EmailMessage) -> tuple[Message | None, Message | None]:
    """The plain and the HTML body (either may be missing)."""
    plain = html = None
    try:
        plain = msg.get_body(preferencelist=("plain",))
        html = msg.get_body(preferencelist=("html",))
    except Exception:
        pass
    return plain, html


def _attachments(
    msg: EmailMessage, bodies: set[int], limits: Limits
) -> tuple[list[Attachment], list[str]]:
    found: list[Attachment] = []
    skipped: list[str] = []
    total = 0
    index = 0
    for part, _depth in _walk(msg, limits):
        if id(part) in bodies or (
            part.is_multipart() and part.get_content_type() != "message/rfc822"
        ):
            continue
        if part is msg:
            continue
        ctype = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        if ctype.startswith("text/") and disposition != "attachment" and not part.get_filename():
            continue  # an alternative body or a text fragment, not a file
        if ctype in (
            "message/delivery-status",
            "message/disposition-notification",
            "text/rfc822-headers",
        ):
            continue
        index += 1
        try:
            filename = part.get_filename()
        except Exception:
            filename = None
        if ctype == "message/rfc822":
            inner = part.get_payload()
            payload: bytes | None = None
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                try:
                    payload = inner[0].as_bytes(policy=_AS_RECEIVED)
                except Exception:
                    payload = None
            filename = filename or f"messaggio-inoltrato-{index}.eml"
        else:
            try:
                decoded = part.get_payload(decode=True)
            except Exception:
                decoded = None
            payload = decoded if isinstance(decoded, bytes) else None
        name = _safe_filename(filename, ctype, index)
        if payload is None:
            skipped.append(f"{name} (illeggibile)")
            continue
        if len(found) >= limits.max_attachments:
            skipped.append(f"{name} (oltre il limite di {limits.max_attachments} allegati)")
            continue
        if len(payload) > limits.max_attachment_bytes:
            skipped.append(refused_for_size(name, len(payload), limits.max_attachment_bytes))
            continue
        if total + len(payload) > limits.max_total_attachment_bytes:
            skipped.append(
                refused_for_size(
                    name, len(payload), limits.max_total_attachment_bytes, " per messaggio"
                )
            )
            continue
        total += len(payload)
        found.append(
            Attachment(
                filename=name,
                content_type=ctype,
                content=payload,
                inline=disposition == "inline"
                or (not disposition and bool(part.get("Content-ID"))),
            )
        )
    return found, skipped


def _bounce(msg: EmailMessage, sender: str, limits: Limits) -> Bounce | None:
    """The report in a ``multipart/report; report-type=delivery-status`` (RFC 3464), or a
    robot's non-standard bounce that quotes the original headers."""
    is_report = msg.get_content_type() == "multipart/report"
    report_type = str(msg.get_param("report-type", "") or "").lower() if is_report else ""
    if is_report and report_type not in ("delivery-status", ""):
        return None  # read receipts (disposition-notification) are not bounces
    local = sender.split("@", 1)[0]
    if not is_report and local not in ("mailer-daemon", "postmaster"):
        return None
    ids: list[str] = []
    recipients: list[str] = []
    action = status = diagnostic = ""
    for part, _depth in _walk(msg, limits):
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            blocks = part.get_payload()
            for block in blocks if isinstance(blocks, list) else []:
                if not isinstance(block, Message):
                    continue
                recipient = str(block.get("Final-Recipient", "") or "")
                if recipient:
                    address = recipient.split(";", 1)[-1].strip().lower()
                    if address and address not in recipients:
                        recipients.append(address)
                action = action or one_line(block.get("Action", "") or "", 40).lower()
                status = status or one_line(block.get("Status", "") or "", 40)
                diagnostic = diagnostic or one_line(block.get("Diagnostic-Code", "") or "", 500)
        elif ctype in ("message/rfc822", "text/rfc822-headers"):
            if ctype == "message/rfc822":
                inner = part.get_payload()
                headers: Message | None = (
                    inner[0]
                    if isinstance(inner, list) and inner and isinstance(inner[0], Message)
                    else None
                )
            else:
                payload = part.get_payload(decode=True)
                headers = (
                    _headers_only(payload, limits, _Guard(limits))
                    if isinstance(payload, bytes)
                    else None
                )
            if headers is not None:
                for ref in message_ids_in(_header(headers, "Message-ID")):
                    if ref not in ids:
                        ids.append(ref)
    if not ids and not is_report:
        # A robot that pasted the original message into its text.
        plain, _ = _body_parts(msg)
        text = _part_text(plain) if plain is not None else ""
        for match in re.finditer(r"(?im)^\s*Message-ID:\s*(<[^<>\s]{1,250}>)", text):
            if match.group(1) not in ids:
                ids.append(match.group(1))
        if not ids:
            return None
    return Bounce(
        original_message_ids=ids[:10],
        recipients=recipients[:20],
        action=action,
        status=status,
        diagnostic=diagnostic,
    )


def raw_key(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _split_raw(raw: bytes) -> tuple[bytes, bytes]:
    for sep in (b"\r\n\r\n", b"\n\n"):
        head, found, body = raw.partition(sep)
        if found:
            return head, body
    return raw, b""


def dedup_key(msg: Message, raw: bytes, sender: str) -> str:
    """The Message-ID, or a hash of sender, date, subject and body when there is none."""
    message_id = one_line(_header(msg, "Message-ID"), 280)
    if message_id:
        return "mid:" + message_id
    digest = hashlib.sha256()
    for part in (sender, one_line(_header(msg, "Date")), one_line(_header(msg, "Subject"))):
        digest.update(part.encode("utf-8", "replace") + b"\0")
    digest.update(_split_raw(raw)[1])
    return "sha256:" + digest.hexdigest()


def quick_dedup_key(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> str:
    """``dedup_key`` from the header block alone (cheap: what the SMTP listener needs)."""
    try:
        msg = _headers_only(raw, limits, _Guard(limits))
        return dedup_key(msg, raw, strict_sender(msg)[0])
    except Exception:
        return raw_key(raw)


def header_block(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> EmailMessage:
    """The top header block, parsed within the limits (no body; bounded work)."""
    return _headers_only(raw, limits, _Guard(limits))


def _headers_only(raw: bytes, limits: Limits, guard: _Guard) -> EmailMessage:
    head = _split_raw(_bounded_headers(raw, limits)[0])[0]
    return _parse_guarded(head + b"\r\n\r\n", guard)


def _bounded_headers(raw: bytes, limits: Limits) -> tuple[bytes, bool]:
    """``raw`` with its header block cut to ``max_header_bytes`` (on a line boundary)."""
    head, body = _split_raw(raw)
    if len(head) <= limits.max_header_bytes:
        return raw, False
    cut = head[: limits.max_header_bytes]
    cut = cut[: max(cut.rfind(b"\n"), 0)]
    return cut + b"\r\n\r\n" + body, True


class ThreadHead(NamedTuple):
    """What orders a stored message among the others, from its header block."""

    refs: list[str]  # the Message-IDs it answers (In-Reply-To, then References, newest first)
    sender: str  # its sender's address, lower-cased ("" when there is no single well-formed one)
    answers: bool  # it answers something: it names a message, or a ticket in its subject


def thread_head(head: bytes, limits: Limits = DEFAULT_LIMITS) -> ThreadHead:
    """``ThreadHead`` of a stored message, read from its header block alone (``head`` may
    be the first bytes of the raw message: a reference cut short is dropped); empty when
    the headers cannot be read."""
    try:
        msg = _headers_only(head, limits, _Guard(limits))
        refs = _replies_to(msg)
        tagged = ticket_in_subject(one_line(_header(msg, "Subject"))) is not None
    except Exception:
        return ThreadHead([], "", False)
    try:
        sender = strict_sender(msg)[0].lower()
    except Exception:  # a header the parser chokes on identifies nobody
        sender = ""
    return ThreadHead(refs, sender, bool(refs) or tagged)


def _replies_to(msg: Message) -> list[str]:
    found: list[str] = []
    in_reply_to = message_ids_in(_header(msg, "In-Reply-To"))
    references = message_ids_in(_header(msg, "References"))
    for ref in [*in_reply_to, *reversed(references)]:
        if ref not in found:
            found.append(ref)
    return found[:50]


def parse(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> ParsedMail:
    """Never raises on malformed mail: what cannot be read is left empty (and noted).

    The work is bounded before and while it is done: past ``max_lines`` lines, or once the
    parser has opened more than ``max_parts`` parts, nested them deeper than
    ``max_depth``, or read more than ``max_part_headers_bytes`` of part headers, only the
    top header block is read (``unread`` says why)."""
    problems: list[str] = []
    raw_bounded, truncated = _bounded_headers(raw, limits)
    if truncated:
        problems.append(f"header block over {limits.max_header_bytes} bytes: truncated")
    guard = _Guard(limits)
    unread = ""
    if _line_count(raw_bounded) > limits.max_lines:
        unread = f"more than {limits.max_lines} lines"
    else:
        try:
            msg = _parse_guarded(raw_bounded, guard)
        except _TooComplex as err:
            unread = str(err)
        except Exception as err:  # pragma: no cover - the feed parser is lenient
            unread = f"unparseable: {err!r:.200}"
    if unread:
        problems.append(f"{unread}: only the headers were read")
        guard = _Guard(limits)
        try:
            msg = _headers_only(raw, limits, guard)
        except Exception as err:  # a header block even the guarded parser refuses
            problems.append(f"headers unreadable: {err!r:.200}")
            msg = EmailMessage()
    return _read(msg, raw, limits, guard, problems, unread)


def parse_headers(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> ParsedMail:
    """What the top header block says (sender, subject, threading), nothing of the body:
    for a message that could not be parsed whole."""
    guard = _Guard(limits)
    problems = ["only the headers were read"]
    try:
        msg = _headers_only(raw, limits, guard)
    except Exception as err:
        problems.append(f"headers unreadable: {err!r:.200}")
        msg = EmailMessage()
    return _read(msg, raw, limits, guard, problems, "the message could not be parsed")


def _read(
    msg: EmailMessage,
    raw: bytes,
    limits: Limits,
    guard: _Guard,
    problems: list[str],
    unread: str,
) -> ParsedMail:
    """What a ticket needs, from the parsed message (only its headers when ``unread``)."""
    try:
        sender, name = strict_sender(msg)
    except Exception:  # a header the parser chokes on identifies nobody
        sender, name = "", ""
    subject = one_line(_header(msg, "Subject"))
    try:
        automatic_reason, no_auto_reply_reason = _classify(msg, sender)
    except Exception:
        automatic_reason, no_auto_reply_reason = "", ""
    text = html = ""
    attachments: list[Attachment] = []
    skipped: list[str] = []
    bounce: Bounce | None = None
    if not unread:
        plain, html_part = _body_parts(msg)
        try:
            html_source = ""
            flat = False
            if html_part is not None:
                html_source, noted, flat = _html_check(
                    _part_text(html_part, limits.max_html_chars * 4), limits
                )
                problems.extend(noted)
                html = "" if flat else _sanitized(html_source)
            if plain is not None:
                text = _part_text(plain, limits.max_text_chars * 4)
            elif html_part is not None:
                text = _bare_text(html_source) if flat else _readable_text(html_source)
            elif not msg.is_multipart() and msg.get_content_maintype() == "text":
                text = _part_text(msg, limits.max_text_chars * 4)
        except Exception as err:
            problems.append(f"body unreadable: {err!r:.200}")
            unread = unread or "the text could not be read"
        bodies = {id(p) for p in (plain, html_part) if p is not None}
        try:
            attachments, skipped = _attachments(msg, bodies, limits)
        except Exception as err:  # out of memory, say: the ticket must say files are missing
            problems.append(f"attachments unreadable: {err!r:.200}")
            unread = unread or "the attachments could not be read"
        try:
            bounce = _bounce(msg, sender, limits)
        except Exception as err:
            problems.append(f"report unreadable: {err!r:.200}")
    text = text.replace("\r\n", "\n").replace("\x00", "")
    if bounce is not None and not automatic_reason:
        automatic_reason = "delivery-status report (bounce)"
    if guard.dropped:
        problems.append("header fields too long, left out: " + ", ".join(guard.dropped))
    for defect in getattr(msg, "defects", [])[:5]:
        problems.append(type(defect).__name__)
    full = text.strip()[: limits.max_text_chars]
    return ParsedMail(
        sender=sender,
        sender_name=name,
        subject=subject,
        text=strip_quoted(full) if full else "",
        full_text=full,
        html=html[: limits.max_text_chars * 4],
        message_id=one_line(_header(msg, "Message-ID"), 280),
        dedup_key=dedup_key(msg, raw, sender),
        ticket_tag=ticket_in_subject(subject),
        replies_to=_replies_to(msg),
        automatic=bool(automatic_reason),
        automatic_reason=automatic_reason,
        no_auto_reply_reason=no_auto_reply_reason,
        attachments=attachments,
        skipped_attachments=skipped,
        unread=unread,
        bounce=bounce,
        recipients=_addresses(msg, "To", "Cc"),
        cc=_addresses(msg, "Cc"),
        content_language=one_line(_header(msg, "Content-Language"), 35).lower(),
        x_loop=one_line(_header(msg, "X-Loop"), 320).lower(),
        problems=problems,
    )
