"""The corpus of real-world-shaped messages under tests/data/email/: each parses to the
outcome its entry in expected.json states. Large and hostile shapes are generated here."""

from __future__ import annotations

import json
import os
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from services.intake.mailparse import Limits, ParsedMail, parse, quick_dedup_key

pytestmark = pytest.mark.unit

CORPUS = Path(__file__).resolve().parents[1] / "data" / "email"
EXPECTED: dict[str, dict[str, Any]] = {
    k: v for k, v in json.loads((CORPUS / "expected.json").read_text()).items() if k != "_about"
}


def test_every_message_of_the_corpus_has_an_expectation() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.eml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_message_parses_as_expected(name: str) -> None:
    raw = (CORPUS / name).read_bytes()
    want = EXPECTED[name]
    mail = parse(raw)
    assert mail.sender == want["sender"]
    if "sender_name" in want:
        assert mail.sender_name == want["sender_name"]
    assert mail.subject == want["subject"]
    assert "\r" not in mail.subject and "\n" not in mail.subject
    assert "\r" not in mail.sender_name and "\n" not in mail.sender_name
    assert mail.ticket_tag == want.get("ticket_tag")
    if "text" in want:
        assert mail.text == want["text"]
    for fragment in want.get("text_contains", []):
        assert fragment in mail.text, f"{fragment!r} not in {mail.text!r}"
    for fragment in want.get("text_excludes", []):
        assert fragment not in mail.text, f"{fragment!r} in {mail.text!r}"
    for fragment in want.get("html_contains", []):
        assert fragment in mail.html
    for fragment in want.get("html_excludes", []):
        assert fragment not in mail.html.lower()
    assert mail.automatic is want["is_automatic"]
    assert mail.is_bounce is want["is_bounce"]
    if mail.bounce is not None:
        assert mail.bounce.original_message_ids == want["bounce_ids"]
        assert mail.bounce.recipients == want["bounce_recipients"]
        assert mail.bounce.status == want["bounce_status"]
    if "replies_to_first" in want:
        assert mail.replies_to[0] == want["replies_to_first"]
    if "recipients" in want:
        assert mail.recipients == want["recipients"]
    got = [
        {"name": a.filename, "type": a.content_type, "size": a.size}
        | ({"inline": True} if a.inline else {})
        for a in mail.attachments
    ]
    assert got == want["attachments"]
    for attachment in mail.attachments:
        assert "/" not in attachment.filename and "\\" not in attachment.filename
        assert len(attachment.sha256) == 64
    key = mail.dedup_key
    assert key.startswith(want.get("dedup_prefix", "mid:"))
    # The SMTP listener computes the same key from the header block alone.
    assert quick_dedup_key(raw) == key


def _with_attachment(size: int, name: str = "dump.bin") -> bytes:
    msg = EmailMessage()
    msg["From"] = "Mario Rossi <mario.rossi@rossi.it>"
    msg["To"] = "assistenza@helpdesk.localhost"
    msg["Subject"] = "Dump del database"
    msg["Message-ID"] = "<big-0001@rossi.it>"
    msg.set_content("Vi mando il dump.")
    msg.add_attachment(
        os.urandom(size), maintype="application", subtype="octet-stream", filename=name
    )
    return msg.as_bytes()


def test_a_10_mib_attachment_arrives_whole() -> None:
    raw = _with_attachment(10 * 1024 * 1024)
    started = time.monotonic()
    mail = parse(raw)
    assert time.monotonic() - started < 10
    assert [(a.filename, a.size) for a in mail.attachments] == [("dump.bin", 10 * 1024 * 1024)]
    assert mail.text == "Vi mando il dump." and mail.skipped_attachments == []


def test_attachments_over_the_limits_are_left_out_and_named() -> None:
    raw = _with_attachment(300_000, "grande.zip")
    per_file = parse(raw, Limits(max_attachment_bytes=200_000))
    assert per_file.attachments == []
    assert per_file.skipped_attachments == ["grande.zip (293 KiB, oltre il limite di 195 KiB)"]
    msg = EmailMessage()
    msg["From"] = "mario.rossi@rossi.it"
    msg["Subject"] = "tre file"
    msg.set_content("tre file")
    for i in range(3):
        msg.add_attachment(b"x" * 1000, maintype="application", subtype="pdf", filename=f"f{i}.pdf")
    total = parse(msg.as_bytes(), Limits(max_total_attachment_bytes=2500))
    assert [a.filename for a in total.attachments] == ["f0.pdf", "f1.pdf"]
    assert total.skipped_attachments == [
        "f2.pdf (1000 byte, oltre il limite di 2,4 KiB per messaggio)"
    ]
    count = parse(msg.as_bytes(), Limits(max_attachments=1))
    assert [a.filename for a in count.attachments] == ["f0.pdf"]
    assert len(count.skipped_attachments) == 2


def _nested(depth: int) -> bytes:
    head = "From: mario.rossi@rossi.it\r\nSubject: matrioska\r\nMIME-Version: 1.0\r\n"
    parts = [head]
    for i in range(depth):
        parts.append(f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n')
    parts.append("Content-Type: text/plain\r\n\r\nin fondo\r\n")
    for i in reversed(range(depth)):
        parts.append(f"--b{i}--\r\n")
    return "".join(parts).encode()


def _wide(count: int) -> bytes:
    head = (
        "From: mario.rossi@rossi.it\r\nSubject: tante parti\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="w"\r\n\r\n'
    )
    part = "--w\r\nContent-Type: text/plain\r\n\r\nx\r\n"
    return (head + part * count + "--w--\r\n").encode()


def _is_sound(mail: ParsedMail) -> None:
    assert mail.sender == "mario.rossi@rossi.it"
    assert mail.dedup_key


@pytest.mark.parametrize("depth", [50, 400])
def test_absurd_nesting_is_bounded(depth: int) -> None:
    started = time.monotonic()
    mail = parse(_nested(depth))
    assert time.monotonic() - started < 10
    _is_sound(mail)


def test_too_many_parts_reads_the_headers_only() -> None:
    mail = parse(_wide(5000))
    _is_sound(mail)
    assert mail.subject == "tante parti"
    assert any("MIME parts" in p for p in mail.problems)
    assert mail.attachments == []


def test_an_oversized_header_block_is_cut_not_fatal() -> None:
    raw = (
        "From: mario.rossi@rossi.it\r\nSubject: intestazioni enormi\r\n"
        + "".join(f"X-Padding-{i}: {'a' * 900}\r\n" for i in range(400))
        + "\r\ncorpo\r\n"
    ).encode()
    mail = parse(raw, Limits(max_header_bytes=64 * 1024))
    _is_sound(mail)
    assert mail.text == "corpo"
    assert any("header block" in p for p in mail.problems)
