"""What one message may cost to read: shapes that are quadratic (or worse) in the standard
parsers finish in bounded time, and a parse that still overruns is killed with its worker.

Each bomb below took more than ten seconds to parse before the bounds (measured on the
development machine: HTML ``<a<a<a`` 16 s, ``<b><div>`` 16 s, a flat multipart of tiny
parts 19 s, a long parameter list in Content-Type 14 s); each must now take less than five.
"""

from __future__ import annotations

import asyncio
import time
from email.message import EmailMessage

import pytest

from services.intake.mailparse import Limits, parse
from services.intake.parse_worker import ParseFailed, ParseWorkers

pytestmark = pytest.mark.unit

HEAD = b"From: Mario Rossi <mario.rossi@rossi.it>\r\nSubject: bomba\r\nMIME-Version: 1.0\r\n"


def _html(body: bytes) -> bytes:
    return HEAD + b"Content-Type: text/html; charset=utf-8\r\n\r\n" + body


def _flat_multipart(parts: int) -> bytes:
    return (
        HEAD
        + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        + b"--b\r\n\r\nx\r\n" * parts
        + b"--b--\r\n"
    )


BOMBS = {
    "unclosed <a (HTMLParser)": _html(b"<a" * 64_000),
    "<b><div> (html5ever)": _html(b"<b><div>" * 48_000),
    "tiny MIME parts": _flat_multipart(200_000),
    "Content-Type parameters": HEAD
    + b"Content-Type: text/plain;"
    + b" a=b;" * 24_000
    + b"\r\n\r\nciao\r\n",
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_a_bomb_is_read_in_bounded_time(name: str) -> None:
    started = time.monotonic()
    mail = parse(BOMBS[name])
    took = time.monotonic() - started
    assert took < 5, f"{name}: {took:.1f}s"
    assert mail.sender == "mario.rossi@rossi.it" and mail.subject == "bomba"
    assert mail.problems, "what was left unread is noted"


def test_html_too_deep_is_read_as_text_and_never_shown() -> None:
    mail = parse(_html(b"<div>" * 2000 + b"Errore di stampa" + b"</div>" * 2000))
    assert mail.text == "Errore di stampa"
    assert mail.html == ""  # not parsed, so not offered to the agents as HTML
    assert any("nested" in p for p in mail.problems)
    shallow = parse(_html(b"<div><p>Errore <b>di</b> stampa</p></div>"))
    assert shallow.text == "Errore di stampa" and "<b>di</b>" in shallow.html


def test_too_many_lines_read_the_headers_only() -> None:
    mail = parse(HEAD + b"\r\n" + b"\n" * 1_200_000)
    assert mail.sender == "mario.rossi@rossi.it"
    assert mail.unread == "more than 1000000 lines" and mail.text == ""


def test_an_overlong_header_field_is_left_out() -> None:
    raw = (
        b"From: mario.rossi@rossi.it\r\nTo: "
        + b"x@rossi.it, " * 2000
        + b"\r\nSubject: ok\r\n\r\nciao\r\n"
    )
    mail = parse(raw)
    assert (mail.sender, mail.subject, mail.text, mail.recipients) == (
        "mario.rossi@rossi.it",
        "ok",
        "ciao",
        [],
    )
    assert any("To" in p and "left out" in p for p in mail.problems)


async def test_a_parse_that_overruns_is_killed_and_the_next_one_works() -> None:
    # Bounds off: this parse would take more than ten seconds.
    unbounded = Limits(max_html_depth=10**9, max_html_chars=10**9)
    workers = ParseWorkers(workers=1, timeout=1.5)
    try:
        started = time.monotonic()
        with pytest.raises(ParseFailed, match="not parsed within"):
            await workers.parse(BOMBS["<b><div> (html5ever)"], unbounded)
        assert time.monotonic() - started < 5
        assert workers.killed == 1
        msg = EmailMessage()
        msg["From"] = "mario.rossi@rossi.it"
        msg["Subject"] = "dopo"
        msg.set_content("la stampante è ferma")
        after, headers = await asyncio.gather(
            workers.parse(msg.as_bytes()), workers.parse_headers(BOMBS["tiny MIME parts"])
        )
        assert after.text == "la stampante è ferma"
        assert (headers.subject, headers.text) == ("bomba", "")
    finally:
        await workers.close()
