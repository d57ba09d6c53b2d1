"""Reading inbound mail: identity from the parsed From only, Italian text, quoted history
stripped, automatic mail recognised, threading references; never a crash."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.intake.mailparse import html_to_text, parse, strip_quoted

pytestmark = pytest.mark.unit


def _raw(headers: dict[str, str], body: bytes, ctype: str = "text/plain; charset=utf-8") -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (head + f"Content-Type: {ctype}\r\nMIME-Version: 1.0\r\n\r\n").encode() + body


def test_sender_is_the_one_parsed_address_lower_cased() -> None:
    mail = parse(_raw({"From": "Mario Rossi <Mario.Rossi@ROSSI.it>", "Subject": "x"}, b"ciao"))
    assert mail.sender == "mario.rossi@rossi.it" and mail.sender_name == "Mario Rossi"


@pytest.mark.parametrize(
    "from_header",
    [
        "alice@example.org <bob@evil.example>, carol@x.it",  # two addresses
        "",  # none
        "not an address",
    ],
)
def test_ambiguous_senders_identify_nobody(from_header: str) -> None:
    assert parse(_raw({"From": from_header, "Subject": "x"}, b"ciao")).sender == ""


def test_a_display_name_that_looks_like_an_address_does_not_become_the_sender() -> None:
    mail = parse(_raw({"From": '"alice@rossi.it" <bob@evil.example>', "Subject": "x"}, b"c"))
    assert mail.sender == "bob@evil.example"


def test_italian_text_survives_latin1_and_rfc2047_subjects() -> None:
    body = "Il prezzo è 10 € e c’è un errore".encode("cp1252")
    mail = parse(
        _raw(
            {"From": "m@rossi.it", "Subject": "=?utf-8?q?Perch=C3=A9_non_va=3F?="},
            body,
            "text/plain; charset=windows-1252",
        )
    )
    assert mail.subject == "Perché non va?"
    assert "è 10 €" in mail.text and "c’è" in mail.text


def test_reply_history_is_stripped() -> None:
    text = "Grazie, funziona.\n\nIl giorno lun 23 nov 2026, Assistenza ha scritto:\n> vecchio"
    assert strip_quoted(text) == "Grazie, funziona."
    assert strip_quoted("On Mon, Bob wrote:\n> x") == "On Mon, Bob wrote:"


def test_html_only_mail_becomes_readable_text() -> None:
    html = "<html><head><style>p{}</style></head><body><p>Errore</p><p>in stampa</p></body>"
    assert html_to_text(html) == "Errore\nin stampa"
    mail = parse(_raw({"From": "m@rossi.it", "Subject": "x"}, html.encode(), "text/html"))
    assert "Errore" in mail.text and "<p>" not in mail.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied"},
        {"Precedence": "bulk"},
        {"List-Id": "<news.example.org>"},
        {"X-Autoreply": "yes"},
    ],
)
def test_automatic_mail_is_recognised(headers: dict[str, str]) -> None:
    mail = parse(_raw({"From": "m@rossi.it", "Subject": "x", **headers}, b"fuori sede"))
    assert mail.automatic
    assert parse(_raw({"From": "mailer-daemon@rossi.it", "Subject": "x"}, b"")).automatic
    assert not parse(_raw({"From": "m@rossi.it", "Subject": "x"}, b"ciao")).automatic


def test_tag_and_references_for_threading() -> None:
    mail = parse(
        _raw(
            {
                "From": "m@rossi.it",
                "Subject": "Re: [#42] Stampa",
                "In-Reply-To": "<notify.x@helpdesk.localhost>",
                "References": "<ticket-42@helpdesk.localhost> <notify.x@helpdesk.localhost>",
            },
            b"ok",
        )
    )
    assert mail.ticket_tag == 42
    assert mail.replies_to == ["<notify.x@helpdesk.localhost>", "<ticket-42@helpdesk.localhost>"]


def test_without_message_id_the_same_content_makes_the_same_key() -> None:
    raw = _raw(
        {"From": "m@rossi.it", "Subject": "x", "Date": "Mon, 23 Nov 2026 10:00 +0100"}, b"ciao"
    )
    assert parse(raw).dedup_key == parse(raw).dedup_key
    assert parse(raw).dedup_key != parse(raw.replace(b"ciao", b"salve")).dedup_key


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_parse_without_a_crash(raw: bytes) -> None:
    parse(raw)


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=80),
    st.text(max_size=80),
    st.text(max_size=300),
    st.sampled_from(["utf-8", "iso-8859-1", "bogus-charset", ""]),
)
def test_hostile_headers_and_charsets_never_crash(
    sender: str, subject: str, body: str, charset: str
) -> None:
    raw = (
        f"From: {sender}\r\nSubject: {subject}\r\n"
        f"Content-Type: text/plain; charset={charset}\r\n\r\n"
    ).encode("utf-8", "surrogatepass") + body.encode("utf-8", "surrogatepass")
    mail = parse(raw)
    assert "\r" not in mail.sender and "\n" not in mail.sender
