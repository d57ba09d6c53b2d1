"""What ``helpdesk`` prints never drives the terminal, whatever a mail or a name held.

A real gRPC server on loopback answers as the tickets service would, with text from outside
(a mail's subject and body, a portal name) full of escape sequences and control
characters; the CLI's own ``main`` prints it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from helpdesk.v1 import common_pb2, tickets_pb2, tickets_pb2_grpc
from services.cli import render
from services.cli.main import main

pytestmark = pytest.mark.timeout(30)

# A window title, a clipboard write (OSC 52), clearing the screen, a cursor report request
# (8-bit CSI), a bell, a lone carriage return that would overwrite the line, DEL, NUL.
SUBJECT = "\x1b]0;rm -rf ~\x07Stampa\x1b[2J ferma"
NAME = "Mario\x1b[31m Rossi\r\x1b[8m"
DESCRIPTION = "riga 1\r\nriga 2\n\tindentata\x9b6n\x7f\x00 fine"
BODY = "ciao\x1b]52;c;ZXZpbA==\x07\x07 finto\rprompt $ "
UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class Tickets(tickets_pb2_grpc.TicketServiceServicer):
    def GetTicket(self, request: tickets_pb2.GetTicketRequest, context: Any) -> common_pb2.Ticket:
        if request.id != 42:
            context.abort(grpc.StatusCode.NOT_FOUND, "no ticket \x1b[2J\x1b]0;x\x07 43")
        return common_pb2.Ticket(
            id=42,
            display_id="#42",
            subject=SUBJECT,
            requester_name=NAME,
            requester_email="mario@acme.test",
            organization_name="ACME\x1b[5m",
            organization_id=1,
            description=DESCRIPTION,
        )

    def ListComments(
        self, request: tickets_pb2.ListCommentsRequest, context: Any
    ) -> tickets_pb2.ListCommentsResponse:
        return tickets_pb2.ListCommentsResponse(
            comments=[
                common_pb2.Comment(
                    id="c1",
                    body=BODY,
                    author_kind=common_pb2.AUTHOR_KIND_CONTACT,
                    author_id=8,
                    author_name=NAME,
                )
            ]
        )


@pytest.fixture
def tickets_addr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    tickets_pb2_grpc.add_TicketServiceServicer_to_server(Tickets(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    monkeypatch.setenv("HELPDESK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HELPDESK_TICKETS_ADDR", f"127.0.0.1:{port}")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(0)


def test_ticket_show_prints_no_control_characters(
    tickets_addr: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--token", "t", "ticket", "show", "42"]) == 0
    out = capsys.readouterr().out
    assert UNSAFE.search(out) is None, repr(out)
    assert "#42  Stampa ferma" in out  # the sequences are gone, the text stays
    assert "Mario Rossi\\x0d <mario@acme.test>" in out  # a lone CR is shown, not obeyed
    assert "  riga 1\n  riga 2\n  \tindentata\\x7f\\x00 fine" in out  # lines and tabs kept
    assert "ciao\\x07 finto\\x0dprompt $" in out
    assert "ACME (1)" in out


def test_json_output_escapes_what_json_leaves_raw(
    tickets_addr: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--token", "t", "--json", "ticket", "show", "42"]) == 0
    out = capsys.readouterr().out
    assert UNSAFE.search(out.replace("\n", "")) is None, repr(out)
    data = json.loads(out)  # still JSON, and still the service's exact text
    assert data["ticket"]["description"] == DESCRIPTION
    assert data["comments"][0]["body"] == BODY


def test_an_error_from_the_service_is_printed_safely(
    tickets_addr: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--token", "t", "ticket", "show", "43"]) == 2
    err = capsys.readouterr().err
    assert err == "error: NOT_FOUND: no ticket  43\n", repr(err)


@pytest.mark.unit
def test_terminal_safe_keeps_plain_text_and_is_idempotent() -> None:
    text = "Buongiorno,\n\tla stampa è ferma (ü, 日本).\n"
    assert render.terminal_safe(text) == text
    once = render.terminal_safe(SUBJECT + NAME + DESCRIPTION + BODY)
    assert render.terminal_safe(once) == once
    # An unterminated string hides nothing after it.
    assert render.terminal_safe("\x1b]0;titolo senza fine") == "\\x1b]0;titolo senza fine"
