"""``helpdesk trace 42`` over a spans file written by the SDK's own exporter path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from services.cli.main import main
from services.common.telemetry import JsonLinesSpanExporter

pytestmark = pytest.mark.unit


def _write(path: Path) -> None:
    """Two processes' spans: ticket 42's trace (intake then tickets) and another ticket's."""
    intake = TracerProvider(resource=Resource.create({"service.name": "helpdesk-intake"}))
    tickets = TracerProvider(resource=Resource.create({"service.name": "helpdesk-tickets"}))
    for provider in (intake, tickets):
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    with (
        intake.get_tracer("t").start_as_current_span("smtp accept"),
        tickets.get_tracer("t").start_as_current_span("CreateTicket") as created,
    ):
        created.set_attribute("helpdesk.ticket_id", 42)
    with tickets.get_tracer("t").start_as_current_span("AddComment") as other:
        other.set_attribute("temporalWorkflowID", "ticket-7")
    with path.open("a") as f:
        f.write('{"cut by a crash\n')


def test_a_tickets_trace_prints_as_a_tree_with_its_services(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "traces.jsonl"
    _write(path)
    assert main(["trace", "#42", "--file", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("trace ")
    assert lines[1].startswith("smtp accept  [helpdesk-intake]  +0 ms")
    assert lines[2].startswith("  CreateTicket  [helpdesk-tickets]  +")
    assert len(lines) == 3  # ticket 7's span is another trace


def test_the_workflow_id_finds_a_ticket_too_and_json_gives_the_spans(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "traces.jsonl"
    _write(path)
    assert main(["trace", "7", "--file", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [[s["name"] for s in t] for t in data["traces"]] == [["AddComment"]]


def test_no_trace_and_no_file_are_said_plainly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "traces.jsonl"
    _write(path)
    assert main(["trace", "99", "--file", str(path)]) == 0
    assert "no trace of ticket #99" in capsys.readouterr().out
    assert main(["trace", "99", "--file", str(tmp_path / "missing.jsonl")]) == 2
    assert "no spans file at" in capsys.readouterr().err
