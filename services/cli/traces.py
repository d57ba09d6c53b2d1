"""``helpdesk trace 42``: the traces of one ticket, read from the spans file.

Every process appends its finished spans to ``HELPDESK_TRACES_FILE`` (``make run``: the
data dir's ``traces.jsonl``). This prints each trace that touched the ticket as a tree,
with when each step began after the first and how long it took: "why did #42's
acknowledgement take four minutes?" answered without a tracing backend.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from services.cli.client import Client, CliError, data_dir_from_env
from services.cli.commands import Result
from services.common.telemetry import TRACES_FILE_ENV

Span = dict[str, Any]
TRACES_FILE = "traces.jsonl"


def traces_file(explicit: str | None) -> Path:
    """``--file``, else ``HELPDESK_TRACES_FILE``, else the data dir's ``traces.jsonl``."""
    chosen = explicit or os.environ.get(TRACES_FILE_ENV, "").strip()
    return Path(chosen) if chosen else data_dir_from_env() / TRACES_FILE


def load(path: Path) -> list[Span]:
    """Every span in the file (a line that is not a span, e.g. cut by a crash, is skipped)."""
    if not path.exists():
        raise CliError(f"no spans file at {path} (is HELPDESK_TRACES_FILE set?)")
    spans: list[Span] = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                span = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(span, dict) and "context" in span:
                spans.append(span)
    return spans


def about_ticket(span: Span, ticket_id: int) -> bool:
    """Whether the span names the ticket: our ``helpdesk.ticket_id`` attribute, or the
    ticket's workflow (Temporal's ``temporalWorkflowID``)."""
    attributes = span.get("attributes") or {}
    return (
        attributes.get("helpdesk.ticket_id") == ticket_id
        or attributes.get("temporalWorkflowID") == f"ticket-{ticket_id}"
    )


def traces_of(spans: Iterable[Span], ticket_id: int) -> dict[str, list[Span]]:
    """The whole traces (by trace ID, oldest first) that have a span about the ticket."""
    by_trace: dict[str, list[Span]] = {}
    for span in spans:
        by_trace.setdefault(span["context"]["trace_id"], []).append(span)
    wanted = {
        trace_id: sorted(members, key=_start)
        for trace_id, members in by_trace.items()
        if any(about_ticket(s, ticket_id) for s in members)
    }
    return dict(sorted(wanted.items(), key=lambda item: _start(item[1][0])))


def _start(span: Span) -> datetime:
    return _time(span["start_time"])


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 10 else f"{seconds:.1f} s"


def tree(spans: list[Span]) -> list[str]:
    """One line per span, children under their parent in the order they began."""
    ids = {s["context"]["span_id"] for s in spans}
    children: dict[str | None, list[Span]] = {}
    for span in spans:
        parent = span.get("parent_id")
        children.setdefault(parent if parent in ids else None, []).append(span)
    first = min(_start(s) for s in spans)
    lines: list[str] = []

    def walk(span: Span, depth: int) -> None:
        began = (_start(span) - first).total_seconds()
        took = (_time(span["end_time"]) - _start(span)).total_seconds()
        service = str(span["resource"]["attributes"].get("service.name", "?"))
        failed = " FAILED" if span.get("status", {}).get("status_code") == "ERROR" else ""
        lines.append(
            f"{'  ' * depth}{span['name']}  [{service}]  +{_ms(began)}, {_ms(took)}{failed}"
        )
        for child in children.get(span["context"]["span_id"], []):
            walk(child, depth + 1)

    for root in children.get(None, []):
        walk(root, 0)
    return lines


def show(client: Client, args: argparse.Namespace) -> Result:
    path = traces_file(args.file)
    found = traces_of(load(path), args.ticket_id)
    if not found:
        return Result(f"no trace of ticket #{args.ticket_id} in {path}", {"traces": []})
    blocks = [
        "\n".join([f"trace {trace_id.removeprefix('0x')}", *tree(spans)])
        for trace_id, spans in found.items()
    ]
    return Result("\n\n".join(blocks), {"traces": list(found.values())})


def add_command(groups: Any, common: argparse.ArgumentParser) -> None:
    """``helpdesk trace TICKET [--file PATH]`` (reads a file: no token, no service)."""
    from services.cli.args import ticket_id

    p = groups.add_parser(
        "trace",
        help="the traces of one ticket, from the spans file (HELPDESK_TRACES_FILE)",
        parents=[common],
    )
    p.set_defaults(func=show)
    p.add_argument("ticket_id", type=ticket_id, metavar="TICKET")
    p.add_argument(
        "--file", help="the spans file (default: HELPDESK_TRACES_FILE, var/traces.jsonl)"
    )
