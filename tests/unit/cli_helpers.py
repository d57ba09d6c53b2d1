"""Helpers of the ``helpdesk`` command-line tests: parse an argument list, run a command
against a client that records its calls (no servers)."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.cli.main import build_parser


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def parse_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exc:
        parse(*argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


class RecordingClient:
    """Stands in for ``Client``: records (method name, request); answers each method with
    its reply in ``replies`` (or ``reply``)."""

    def __init__(self, reply: Any = None, **replies: Any) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.reply = reply
        self.replies = replies
        self.directory = self.tickets = self.intake = self.notify = self.dev = self
        self.knowledge = self

    def __getattr__(self, name: str) -> str:
        return name  # c.tickets.MergeTickets -> "MergeTickets"

    def call(self, method: str, request: Any) -> Any:
        self.calls.append((method, request))
        return self.replies.get(method, self.reply)


def one_call(args: argparse.Namespace, reply: Any) -> tuple[str, Any]:
    """Run the parsed command: it makes exactly one call, (method name, request)."""
    client = RecordingClient(reply)
    args.func(client, args)
    assert len(client.calls) == 1
    return client.calls[0]


def run_command(args: argparse.Namespace, reply: Any) -> tuple[str, Any, str]:
    """Run the parsed command: its one call (method name, request) and the text printed."""
    client = RecordingClient(reply)
    result = args.func(client, args)
    assert len(client.calls) == 1
    return client.calls[0][0], client.calls[0][1], result.text


def ts(text: str) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.fromisoformat(text))
    return stamp
