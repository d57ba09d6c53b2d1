"""Logs: one JSON object a line (``HELPDESK_LOG_FORMAT=json``, the default) or plain text.

A JSON line carries ``time``, ``level``, ``logger``, ``message``, ``service`` and, where
known, ``trace_id``/``span_id`` (the current OpenTelemetry span), ``ticket_id`` and
``workflow_id`` (from the record's extras, from ``ticket_context``, or from the Temporal
activity being run). Tokens, passwords and codes are redacted from every line, whatever
the format.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any

from opentelemetry import trace

FORMAT_ENV = "HELPDESK_LOG_FORMAT"
LEVEL_ENV = "HELPDESK_LOG_LEVEL"
TEXT_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"

_ticket: contextvars.ContextVar[tuple[int, str] | None] = contextvars.ContextVar(
    "helpdesk_log_ticket", default=None
)
_WORKFLOW_TICKET = re.compile(r"^ticket-(\d{1,12})(?:-|$)")
_REDACTIONS = (
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"), "[redacted]"),
    (
        re.compile(
            r"""(?ix)
            (["']?\b(?:password|passwd|secret|token|code|api_key|access_token)\b["']?
             \s*[=:]\s*["']?)
            ([^\s"',;&]+)"""
        ),
        r"\1[redacted]",
    ),
)
# Record attributes that are logging's own, never copied as extras.
_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_SECRET_KEY = re.compile(r"(?i)password|secret|token|code|body|raw|key")


def redact(text: str) -> str:
    """``text`` with bearer tokens, JWTs and ``password=…``-style values replaced."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


@contextlib.contextmanager
def ticket_context(ticket_id: int, workflow_id: str = "") -> Iterator[None]:
    """Log lines written inside name this ticket (and workflow)."""
    token = _ticket.set((ticket_id, workflow_id))
    try:
        yield
    finally:
        _ticket.reset(token)


def _activity_ids() -> tuple[int, str] | None:
    try:
        from temporalio import activity

        if not activity.in_activity():
            return None
        workflow_id = activity.info().workflow_id or ""
    except Exception:
        return None
    match = _WORKFLOW_TICKET.match(workflow_id)
    return (int(match.group(1)) if match else 0), workflow_id


def _ids(record: logging.LogRecord) -> dict[str, Any]:
    found: dict[str, Any] = {}
    ticket = getattr(record, "ticket_id", None)
    workflow = getattr(record, "workflow_id", None)
    context = _ticket.get() or _activity_ids()
    if ticket is None and context is not None and context[0]:
        ticket = context[0]
    if workflow is None and context is not None and context[1]:
        workflow = context[1]
    if isinstance(ticket, int) and ticket:
        found["ticket_id"] = ticket
    if isinstance(workflow, str) and workflow:
        found["workflow_id"] = workflow
    return found


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "service": self.service,
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            line["trace_id"] = trace.format_trace_id(span.trace_id)
            line["span_id"] = trace.format_span_id(span.span_id)
        line.update(_ids(record))
        for key, value in vars(record).items():
            if key in _RESERVED or key in line or _SECRET_KEY.search(key):
                continue
            if isinstance(value, str | int | float | bool) or value is None:
                line[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class RedactingTextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure(service: str, *, level: str | None = None, stream: IO[str] | None = None) -> None:
    """The root logger: one handler to ``stream`` (stderr) in the configured format."""
    chosen = (os.environ.get(FORMAT_ENV, "") or "json").strip().lower()
    handler = logging.StreamHandler(stream or sys.stderr)
    formatter: logging.Formatter = (
        RedactingTextFormatter(TEXT_FORMAT) if chosen == "text" else JsonFormatter(service)
    )
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel((level or os.environ.get(LEVEL_ENV, "") or "INFO").upper())
