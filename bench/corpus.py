"""A mix of realistic inbound support mail: plain and HTML bodies, quoted replies, encoded
headers and legacy charsets, screenshots and PDFs attached. Every message opens a ticket."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from email.message import EmailMessage
from email.mime.text import MIMEText
from email.policy import SMTP

SUPPORT = "assistenza@helpdesk.localhost"

_RNG = random.Random(7)
_PDF = b"%PDF-1.4\n" + bytes(_RNG.getrandbits(8) for _ in range(40_000)) + b"\n%%EOF\n"
_PNG = b"\x89PNG\r\n\x1a\n" + bytes(_RNG.getrandbits(8) for _ in range(120_000))

_BODY = (
    "Buongiorno,\n\ndalla postazione della contabilità non riusciamo a stampare le fatture "
    "di vendita: il programma mostra l'errore 1234 «stampante non disponibile» e poi si "
    "chiude. Abbiamo già riavviato il PC e la stampante.\n\nVersione 5.2.1, Windows 11.\n\n"
    "Grazie, cordiali saluti\nMario Rossi\nUfficio amministrazione\n"
)
_QUOTED = (
    "\n\nIl giorno lun 23 nov 2026 alle 10:12 Assistenza <assistenza@helpdesk.localhost> "
    "ha scritto:\n"
    + "".join(f"> riga {i} del messaggio precedente, citata per intero\n" for i in range(40))
)
_HTML = (
    "<html><head><style>p {{ font-family: Calibri }}</style></head><body>"
    "<p>Buongiorno,</p><p>{body}</p><div>Cordiali saluti<br>Mario Rossi</div>"
    "<table><tr><td>Tel. 02 1234567</td></tr></table></body></html>"
)


def _base(sender: str, subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Mario Rossi <{sender}>"
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Date"] = "Mon, 23 Nov 2026 10:15:00 +0100"
    msg["Message-ID"] = f"<{uuid.uuid4().hex}@rossi.it>"
    return msg


def plain(sender: str) -> EmailMessage:
    msg = _base(sender, "Errore 1234 in stampa fattura")
    msg.set_content(_BODY)
    return msg


def quoted_reply(sender: str) -> EmailMessage:
    # No [#id] tag: a reply to some older thread, which opens a ticket.
    msg = _base(sender, "R: problema con l'aggiornamento di ieri")
    msg["In-Reply-To"] = f"<{uuid.uuid4().hex}@helpdesk.localhost>"
    msg.set_content(_BODY + _QUOTED)
    return msg


def html_only(sender: str) -> EmailMessage:
    msg = _base(sender, "Gestionale bloccato all'avvio")
    msg.set_content(_HTML.format(body=_BODY.replace("\n", "<br>")), subtype="html")
    return msg


def alternative(sender: str) -> EmailMessage:
    msg = _base(sender, "Richiesta preventivo modulo magazzino")
    msg.set_content(_BODY)
    msg.add_alternative(_HTML.format(body=_BODY.replace("\n", "<br>")), subtype="html")
    return msg


def pdf_attached(sender: str) -> EmailMessage:
    msg = _base(sender, "Fattura non conforme, allego il PDF")
    msg.set_content(_BODY)
    msg.add_attachment(_PDF, maintype="application", subtype="pdf", filename="fattura 2026-118.pdf")
    return msg


def screenshot(sender: str) -> EmailMessage:
    msg = _base(sender, "Schermata di errore")
    msg.set_content(_BODY)
    msg.add_alternative(_HTML.format(body="Vedi schermata allegata."), subtype="html")
    msg.add_attachment(_PNG, maintype="image", subtype="png", filename="errore.png")
    return msg


def encoded_headers(sender: str) -> EmailMessage:
    msg = _base(sender, "Perché la procedura di chiusura è così lenta? — urgente")
    msg.replace_header("From", f"Niccolò Àlberti <{sender}>")
    msg.set_content(_BODY, cte="quoted-printable")
    return msg


def latin1(sender: str) -> EmailMessage:
    # An old client: ISO-8859-1, base64 body, hand-built MIME.
    part = MIMEText(_BODY.replace("«", '"').replace("»", '"'), "plain", "iso-8859-1")
    msg = _base(sender, "Problema con la contabilità")
    msg.set_content(
        part.get_payload(decode=True) or b"", maintype="text", subtype="plain", cte="base64"
    )
    msg.set_param("charset", "iso-8859-1")
    return msg


KINDS: list[tuple[str, Callable[[str], EmailMessage]]] = [
    ("plain", plain),
    ("quoted_reply", quoted_reply),
    ("html_only", html_only),
    ("alternative", alternative),
    ("pdf_attached", pdf_attached),
    ("screenshot", screenshot),
    ("encoded_headers", encoded_headers),
    ("latin1", latin1),
]


def messages(senders: list[str], count: int) -> list[tuple[str, bytes]]:
    """``count`` messages (sender, raw bytes), the kinds in turn, each with its own Message-ID."""
    out = []
    for i in range(count):
        sender = senders[i % len(senders)]
        _, make = KINDS[i % len(KINDS)]
        out.append((sender, make(sender).as_bytes(policy=SMTP)))
    return out
