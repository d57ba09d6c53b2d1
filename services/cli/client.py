"""Channels and stubs for the CLI: addresses from ``Settings``, the admin bearer token."""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import grpc

from helpdesk.v1 import (
    dev_escalation_pb2_grpc,
    directory_pb2_grpc,
    intake_pb2_grpc,
    knowledge_pb2_grpc,
    notify_pb2_grpc,
    sales_pb2_grpc,
    tickets_pb2_grpc,
)
from services.common.auth import bearer_metadata
from services.common.settings import Settings, read_tokens
from services.launcher import ENDPOINTS_FILE

Req = TypeVar("Req")
Resp = TypeVar("Resp")


class CliError(Exception):
    """A problem the CLI reports as ``error: <message>`` (exit code 2)."""


def data_dir_from_env() -> Path:
    return Path(os.environ.get("HELPDESK_DATA_DIR", "").strip() or "./var").resolve()


def load_endpoints(data_dir: Path, environ: MutableMapping[str, str]) -> None:
    """Fill the ``HELPDESK_*`` addresses that are not set from the launcher's endpoints file,
    so that the CLI finds a system that had to move off its default ports."""
    path = data_dir / ENDPOINTS_FILE
    try:
        text = path.read_text()
    except OSError:
        return
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key.startswith("HELPDESK_") and not environ.get(key, "").strip():
            environ[key] = value.strip()


SESSION_FILE = "session.token"


def session_path(data_dir: Path) -> Path:
    """Where ``helpdesk login`` keeps the access token of whoever logged in."""
    return data_dir / SESSION_FILE


def resolve_token(explicit: str | None, data_dir: Path, required: bool = True) -> str:
    """``--token``, else ``HELPDESK_TOKEN``, else the session of ``helpdesk login``, else
    ``HELPDESK_ADMIN_TOKEN``, else the data dir's ``admin.token``."""
    token = (explicit or "").strip() or os.environ.get("HELPDESK_TOKEN", "").strip()
    session = session_path(data_dir)
    if not token and session.is_file():
        token = session.read_text().strip()
    token = token or os.environ.get("HELPDESK_ADMIN_TOKEN", "").strip()
    token = token or read_tokens(data_dir).get("admin", "")
    if not token and required:
        raise CliError(
            "no admin token: pass --token, set HELPDESK_ADMIN_TOKEN, or run `make run` once"
            f" to create {data_dir / 'admin.token'}"
        )
    return token


@dataclass
class Client:
    """Lazily opened channels to the help-desk services, one per address."""

    settings: Settings
    token: str
    timeout: float = 30.0
    _channels: dict[str, grpc.Channel] = field(default_factory=dict)

    @classmethod
    def from_env(cls, token: str | None, timeout: float, required: bool = True) -> Client:
        load_endpoints(data_dir_from_env(), os.environ)
        settings = Settings.from_env()
        return cls(settings, resolve_token(token, settings.data_dir, required), timeout)

    def _channel(self, address: str) -> grpc.Channel:
        if address not in self._channels:
            self._channels[address] = grpc.insecure_channel(address)
        return self._channels[address]

    @property
    def directory(self) -> directory_pb2_grpc.DirectoryServiceStub:
        return directory_pb2_grpc.DirectoryServiceStub(self._channel(self.settings.tickets_addr))

    @property
    def tickets(self) -> tickets_pb2_grpc.TicketServiceStub:
        return tickets_pb2_grpc.TicketServiceStub(self._channel(self.settings.tickets_addr))

    @property
    def knowledge(self) -> knowledge_pb2_grpc.KnowledgeServiceStub:
        return knowledge_pb2_grpc.KnowledgeServiceStub(self._channel(self.settings.tickets_addr))

    @property
    def sales(self) -> sales_pb2_grpc.SalesServiceStub:
        return sales_pb2_grpc.SalesServiceStub(self._channel(self.settings.tickets_addr))

    @property
    def intake(self) -> intake_pb2_grpc.IntakeServiceStub:
        return intake_pb2_grpc.IntakeServiceStub(self._channel(self.settings.intake_addr))

    @property
    def dev(self) -> dev_escalation_pb2_grpc.DevEscalationServiceStub:
        return dev_escalation_pb2_grpc.DevEscalationServiceStub(
            self._channel(self.settings.dev_escalation_addr)
        )

    @property
    def notify(self) -> notify_pb2_grpc.NotifyServiceStub:
        return notify_pb2_grpc.NotifyServiceStub(self._channel(self.settings.notify_addr))

    def call(self, method: grpc.UnaryUnaryMultiCallable[Req, Resp], request: Req) -> Resp:
        """One RPC with the bearer token and the deadline."""
        return method(request, metadata=bearer_metadata(self.token), timeout=self.timeout)

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()
