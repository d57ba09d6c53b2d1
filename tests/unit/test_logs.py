"""JSON log lines: one object a line, the trace and ticket named, secrets redacted."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider

from services.common import logs

pytestmark = pytest.mark.unit


@pytest.fixture
def out(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    monkeypatch.delenv(logs.FORMAT_ENV, raising=False)
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    stream = io.StringIO()
    logs.configure("helpdesk-test", stream=stream)
    yield stream
    root.handlers[:] = saved
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_is_one_json_object_with_the_trace_and_the_ticket(out: io.StringIO) -> None:
    log = logging.getLogger("helpdesk.test")
    with TracerProvider().get_tracer("t").start_as_current_span("work") as span:
        log.info("ticket %d created", 42, extra={"ticket_id": 42})
    with logs.ticket_context(7, "ticket-7"):
        try:
            raise ValueError("two\nlines")
        except ValueError:
            log.exception("failed")
    log.warning("plain")
    first, second, third = lines(out)
    assert first["message"] == "ticket 42 created" and first["ticket_id"] == 42
    assert first["service"] == "helpdesk-test" and first["level"] == "INFO"
    assert first["trace_id"] == f"{span.get_span_context().trace_id:032x}"
    assert second["ticket_id"] == 7 and second["workflow_id"] == "ticket-7"
    assert "ValueError: two\nlines" in str(second["exception"])
    assert "trace_id" not in third and "ticket_id" not in third


def test_tokens_passwords_and_codes_are_redacted_and_the_rest_kept(out: io.StringIO) -> None:
    log = logging.getLogger("helpdesk.test")
    log.info("auth Bearer abc.def-123 for mario.rossi@rossi.it")
    log.info("login password=hunter2 code: 123456, took 12 ms")
    log.info("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-part here")
    log.info("mail <notify.ack.t42.abc@helpdesk.localhost> for ticket #42")
    texts = [str(line["message"]) for line in lines(out)]
    assert texts[0] == "auth Bearer [redacted] for mario.rossi@rossi.it"
    assert texts[1] == "login password=[redacted] code: [redacted], took 12 ms"
    assert texts[2] == "jwt [redacted] here"
    assert texts[3] == "mail <notify.ack.t42.abc@helpdesk.localhost> for ticket #42"


def test_text_format_and_configuring_twice_leaves_one_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    try:
        monkeypatch.setenv(logs.FORMAT_ENV, "text")
        stream = io.StringIO()
        logs.configure("helpdesk-test", stream=stream)
        logs.configure("helpdesk-test", stream=stream)
        assert len(root.handlers) == 1
        logging.getLogger("helpdesk.test").info("token=abc")
        assert stream.getvalue().rstrip().endswith("helpdesk.test INFO token=[redacted]")
    finally:
        root.handlers[:] = saved
        root.setLevel(level)
