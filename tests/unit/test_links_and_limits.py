"""The emailed links (confirm / reopen tokens, and the links the templates carry) and the
one set of attachment limits every service applies (pure code: no servers)."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from helpdesk.v1 import common_pb2 as pb
from services.common import limits
from services.common.rpc_errors import RpcError
from services.common.tokens import InvalidToken, TokenSigner
from services.intake.mailparse import DEFAULT_LIMITS
from services.intake.sales import check_email, sales_body, web_key
from services.intake.servicer import check_attachments
from services.notify.render import Renderer
from services.notify.rules import PlannedEmail
from services.tickets.creation import validate_attachments

pytestmark = pytest.mark.unit

KEY = "unit-test-signing-key-0123456789abcdef"
PORTAL = "https://assistenza.example.it"


def test_link_tokens_name_ticket_and_action_until_they_expire() -> None:
    signer = TokenSigner(KEY)
    until = int(time.time()) + 3600
    for action in ("confirm", "reopen"):
        token = signer.link_token(42, action, until)
        assert signer.link_claims(token) == (42, action)
        assert jwt.decode(token, options={"verify_signature": False})["exp"] == until
        with pytest.raises(InvalidToken):
            signer.principal(token)  # not a login
        with pytest.raises(InvalidToken):
            signer.survey_ticket(token)  # not a survey answer
        with pytest.raises(InvalidToken):
            TokenSigner(KEY + "x").link_claims(token)
    with pytest.raises(InvalidToken):
        signer.link_claims(signer.link_token(42, "confirm", int(time.time()) - 1))
    with pytest.raises(InvalidToken):
        signer.link_claims(signer.survey_token(42))
    with pytest.raises(ValueError, match="action"):
        signer.link_token(42, "delete", until)
    with pytest.raises(ValueError, match="ticket_id"):
        signer.link_token(0, "confirm", until)


def _solved(auto_close_at: str | None, locale: str = "it") -> Any:
    return {
        "event_id": "e1",
        "type": "solved",
        "ticket_id": 42,
        "detail": "",
        "actor_name": "Anna",
        "ticket": {
            "id": 42,
            "display_id": "#42",
            "subject": "Stampante",
            "priority": "NORMAL",
            "organization_name": "Rossi Srl",
            "requester": {"id": 1, "email": "m@rossi.it", "name": "Mario", "locale": locale},
            "assignee": None,
            "close_reason": "",
            "follow_up_of": 0,
            "auto_close_at": auto_close_at,
            "auto_close_after_seconds": 2 * 86400,
        },
        "comment": None,
    }


def test_the_solved_email_links_confirm_and_reopen_until_the_auto_close() -> None:
    signer = TokenSigner(KEY)
    email = PlannedEmail("solved", "m@rossi.it", "Mario", "it")
    renderer = Renderer(portal_url=PORTAL + "/", link_tokens=signer.link_token)
    body = renderer.render(_solved("2030-01-02T03:04:05+00:00"), email).body
    assert "Per riaprirla, rispondi a questo messaggio." in body
    tokens = {}
    for line in body.splitlines():
        for action in ("confirm", "reopen"):
            prefix = f"{PORTAL}/link/{action}?token="
            if prefix in line:
                tokens[action] = line.split(prefix, 1)[1]
    assert set(tokens) == {"confirm", "reopen"}
    for action, token in tokens.items():
        assert signer.link_claims(token) == (42, action)
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["exp"] == 1893553445  # 2030-01-02T03:04:05Z
    # Without the instant: the ticket's own auto-close delay from now.
    body = renderer.render(_solved(None), email).body
    token = body.split(f"{PORTAL}/link/confirm?token=", 1)[1].split()[0]
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert abs(expires - (time.time() + 2 * 86400)) < 60
    # No signer or no portal: only the reply that reopens.
    for plain in (Renderer(portal_url=PORTAL), Renderer(link_tokens=signer.link_token)):
        body = plain.render(_solved(None), email).body
        assert "/link/" not in body and "rispondi a questo messaggio" in body


def test_a_known_contact_asking_sales_is_not_told_they_are_no_customer() -> None:
    renderer = Renderer()
    for locale, phrase in (("it", "non risulta tra quelli"), ("en", "is not among those")):
        stranger = renderer.render_template(
            "prospect_reply", locale, {"name": "Eva", "subject": "Preventivo"}
        ).body
        known = renderer.render_template(
            "prospect_reply", locale, {"name": "Eva", "subject": "x", "known_contact": True}
        ).body
        assert phrase in stranger and phrase not in known


def test_one_set_of_attachment_limits() -> None:
    assert limits.MAX_ATTACHMENT_BYTES == 20 * 1024 * 1024
    assert limits.MAX_ATTACHMENTS_TOTAL == 25 * 1024 * 1024
    assert limits.MAX_ATTACHMENTS == 20
    # The mail parser (and so the instant-messaging downloads) keep to the same numbers.
    assert DEFAULT_LIMITS.max_attachment_bytes == limits.MAX_ATTACHMENT_BYTES
    assert DEFAULT_LIMITS.max_total_attachment_bytes == limits.MAX_ATTACHMENTS_TOTAL
    assert DEFAULT_LIMITS.max_attachments == limits.MAX_ATTACHMENTS
    largest = pb.Attachment(filename="a.bin", content=b"x" * limits.MAX_ATTACHMENT_BYTES)
    for check in (validate_attachments, check_attachments):
        check([largest])  # a 20 MiB file is accepted everywhere
        too_big = pb.Attachment(filename="b.bin", content=b"x" * (limits.MAX_ATTACHMENT_BYTES + 1))
        with pytest.raises(RpcError, match=r"attachments\[0\]\.content"):
            check([too_big])
        small = pb.Attachment(filename="c.bin", content=b"x" * (6 * 1024 * 1024))
        with pytest.raises(RpcError, match="in all"):
            check([largest, small])
        with pytest.raises(RpcError, match="at most 20 files"):
            check([pb.Attachment(filename=f"{i}.txt", content=b"x") for i in range(21)])


def test_sales_form_fields() -> None:
    assert check_email(" Eva.Verdi+web@Example.COM ") == "eva.verdi+web@example.com"
    for bad in (
        "eva",
        "eva@",
        "@example.com",
        "eva@example",
        "eva verdi@example.com",
        "<eva@example.com>",
        "eva@example.com, bob@example.com",
        "a" * 65 + "@x.it",
    ):
        with pytest.raises(RpcError, match=r"^email: "):
            check_email(bad)
    # One key per address and request ID, within the column's 64 characters.
    key = web_key("eva@example.com", "r1")
    assert key.startswith("web:") and len(key) == 64
    assert web_key("eva@example.com", "r1") == key
    assert web_key("bob@example.com", "r1") != key
    body = sales_body("Vorrei un preventivo.", "Verdi Srl", "+39 02 1234")
    assert body.startswith("Vorrei un preventivo.\n\n")
    assert "Azienda: Verdi Srl" in body and "Telefono: +39 02 1234" in body
    assert "Azienda" not in sales_body("Solo testo", "", "")
