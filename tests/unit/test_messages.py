"""The message contracts on NATS (``services.common.messages``): messages as they are on
the wire today, recorded in ``data/recorded_messages.json``, still decode; what is not a
message is refused naming the field; what a producer encodes decodes to itself."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from services.common import events
from services.common.messages import (
    desk,
    im,
    mail,
    maintenance,
    programming,
    quotes,
    reports,
    sales,
    secrets,
    tickets,
)

pytestmark = pytest.mark.unit

RECORDED = json.loads(
    (Path(__file__).parent / "data" / "recorded_messages.json").read_text(encoding="utf-8")
)
STREAMS: list[ModuleType] = [
    tickets,
    programming,
    mail,
    reports,
    im,
    desk,
    maintenance,
    sales,
    secrets,
]


def _covers(wide: str, subject: str) -> bool:
    prefix = wide.removesuffix(">")
    return subject.startswith(prefix) and len(subject) > len(prefix)


def module_of(subject: str) -> ModuleType:
    [module] = [m for m in STREAMS if _covers(m.FILTER, subject)]
    return module


def decoder_of(subject: str) -> Any:
    module = module_of(subject)
    return sales.decode_any if module is sales else module.decode


@pytest.mark.parametrize("message", RECORDED, ids=[m["subject"] for m in RECORDED])
def test_a_recorded_message_still_decodes(message: dict[str, str]) -> None:
    body = message["body"].encode()
    decoded = decoder_of(message["subject"])(body)
    assert decoded == json.loads(body)  # nothing lost, nothing renamed


def test_every_stream_is_recorded_and_kept_by_its_stream() -> None:
    recorded = {module_of(m["subject"]) for m in RECORDED}
    assert recorded == set(STREAMS)
    assert any(quotes.is_quote(m["body"].encode()) for m in RECORDED)
    for module in STREAMS:
        kept = events.SECRET_SUBJECTS if module is secrets else events.SUBJECTS
        assert module.FILTER in kept, module.__name__


def test_each_subject_is_built_under_its_filter() -> None:
    assert tickets.subject("created") == "helpdesk.ticket.created"
    assert mail.subject("bounce") == "helpdesk.mail.bounce"
    assert im.subject("send") == "helpdesk.im.send"
    assert sales.subject("quote_sent") == "helpdesk.sales.quote_sent"
    assert programming.subject("created") == "helpdesk.progticket.created"
    assert reports.subject(reports.READY) == "helpdesk.report.ready"
    assert maintenance.subject("planned") == "helpdesk.maintenance.planned"
    assert secrets.subject("password_reset") == "helpdesk.secret.password_reset"
    assert _covers(desk.FILTER, desk.DIGEST_SUBJECT)


@pytest.mark.parametrize("message", RECORDED, ids=[m["subject"] for m in RECORDED])
def test_what_a_producer_encodes_decodes_to_itself(message: dict[str, str]) -> None:
    module = module_of(message["subject"])
    payload = json.loads(message["body"])
    if module is sales and quotes.is_quote(message["body"].encode()):
        module = quotes
    assert module.decode(module.encode(payload)) == payload


def _without(payload: dict[str, Any], key: str) -> bytes:
    return json.dumps({k: v for k, v in payload.items() if k != key}).encode()


def _with(payload: dict[str, Any], **changed: Any) -> bytes:
    return json.dumps({**payload, **changed}).encode()


def recorded(subject: str) -> dict[str, Any]:
    [body] = [m["body"] for m in RECORDED if m["subject"] == subject]
    parsed: dict[str, Any] = json.loads(body)
    return parsed


@pytest.mark.parametrize(
    ("subject", "bad", "field"),
    [
        ("helpdesk.ticket.created", b"not json", "not JSON"),
        ("helpdesk.ticket.created", b"[1, 2]", "not a JSON object"),
        ("helpdesk.ticket.created", "ticket_id", "ticket_id"),
        ("helpdesk.ticket.comment_added", "comment", "comment"),
        ("helpdesk.progticket.created", "programming_ticket", "programming_ticket"),
        ("helpdesk.mail.received", "ticket_id", "ticket_id"),
        ("helpdesk.mail.bounce", "original_message_ids", "original_message_ids"),
        ("helpdesk.im.ticket", "provider", "provider"),
        ("helpdesk.report.ready", "recipients", "recipients"),
        ("helpdesk.maintenance.planned", "window", "window"),
        ("helpdesk.desk.digest", "agents", "agents"),
        ("helpdesk.sales.created", "sales_request_id", "sales_request_id"),
        ("helpdesk.sales.quote_sent", "valid_until", "valid_until"),
        ("helpdesk.secret.credentials_issued", "recipient", "recipient"),
    ],
)
def test_what_is_not_a_message_is_refused_naming_the_field(
    subject: str, bad: bytes | str, field: str
) -> None:
    body = bad if isinstance(bad, bytes) else _without(recorded(subject), bad)
    with pytest.raises(ValueError, match=field):
        decoder_of(subject)(body)


def test_a_wrong_type_is_refused() -> None:
    event = recorded("helpdesk.ticket.created")
    with pytest.raises(ValueError, match="ticket_id"):
        tickets.decode(_with(event, ticket_id="42"))
    with pytest.raises(ValueError, match="type"):
        mail.decode(_with(recorded("helpdesk.mail.received"), type="delivered"))


def test_a_refused_secret_never_echoes_the_secret() -> None:
    event = recorded("helpdesk.secret.password_reset")
    with pytest.raises(ValueError) as err:
        secrets.decode(_with(event, expires_at="soon"))
    assert event["secret"] not in str(err.value)
