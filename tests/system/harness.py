"""The whole system as processes on real servers, for system tests.

Temporal dev server, nats-server with JetStream, an aiosmtpd relay that keeps
what it receives, and every service and worker started with ``python -m``
exactly as ``make run`` starts them.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import secrets
import subprocess
import sys
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import grpc
import httpx
from aiosmtpd.controller import Controller
from grpc_health.v1 import health_pb2, health_pb2_grpc

from helpdesk.v1 import (
    dev_escalation_pb2_grpc,
    directory_pb2_grpc,
    intake_pb2_grpc,
    notify_pb2_grpc,
    tickets_pb2_grpc,
)
from services.common.auth import bearer_metadata
from services.common.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]
METRICS_ADDR_ENV = "HELPDESK_METRICS_ADDR"

PROCESSES = {
    "tickets": ("services.tickets", "HELPDESK_TICKETS_ADDR"),
    "intake": ("services.intake", "HELPDESK_INTAKE_ADDR"),
    "notify": ("services.notify", "HELPDESK_NOTIFY_ADDR"),
    "worker": ("workflows.worker", None),
    "dev_escalation": ("services.dev_escalation", "HELPDESK_DEV_ESCALATION_ADDR"),
    # HTTP, not gRPC: ready when /readyz answers 200.
    "gateway": ("services.gateway", "HELPDESK_GATEWAY_LISTEN"),
}


class Mailbox:
    """aiosmtpd handler: every message the relay accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        return "250 OK"

    def about(self, ticket_id: int) -> list[EmailMessage]:
        return [m for m in self.messages if f"[#{ticket_id}]" in str(m["Subject"])]


@contextmanager
def smtp_relay() -> Iterator[tuple[Mailbox, str]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, f"127.0.0.1:{port}"
    finally:
        controller.stop()


@dataclass
class System:
    env: dict[str, str]
    data_dir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    channels: list[grpc.aio.Channel] = field(default_factory=list)
    # Where each process serves /metrics: a new free port at each start.
    metrics_addr: dict[str, str] = field(default_factory=dict)

    @property
    def token(self) -> str:
        return self.env["HELPDESK_ADMIN_TOKEN"]

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return bearer_metadata(self.token)

    def log(self, name: str) -> Path:
        return self.data_dir / f"{name}.log"

    def start(self, name: str, like: str = "", **env: str) -> None:
        """Start process ``name`` (or a second instance called ``name`` of the process
        ``like``, with ``env`` on top of the system's environment)."""
        module, _ = PROCESSES[like or name]
        self.metrics_addr[name] = env.get(METRICS_ADDR_ENV) or f"127.0.0.1:{free_port()}"
        out = open(self.log(name), "ab")  # noqa: SIM115
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env={**self.env, METRICS_ADDR_ENV: self.metrics_addr[name], **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def kill(self, name: str) -> None:
        """SIGKILL: a crash, not a clean stop."""
        proc = self.procs.pop(name)
        proc.kill()
        proc.wait()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()

    async def scrape(self, name: str) -> str:
        """The Prometheus text process ``name`` serves on ``/metrics``."""
        async with httpx.AsyncClient() as client:
            reply = await client.get(f"http://{self.metrics_addr[name]}/metrics", timeout=5)
        reply.raise_for_status()
        return reply.text

    @property
    def portal_url(self) -> str:
        return f"http://{self.env['HELPDESK_GATEWAY_LISTEN']}"

    async def wait_http_ready(self, name: str, timeout: float = 60) -> None:
        """Until ``GET /readyz`` of the process answers 200."""
        _, addr_var = PROCESSES[name]
        assert addr_var is not None
        url = f"http://{self.env[addr_var]}/readyz"
        deadline = asyncio.get_running_loop().time() + timeout
        async with httpx.AsyncClient() as client:
            while True:
                proc = self.procs.get(name)
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"{name} exited:\n{self.log(name).read_text()[-4000:]}")
                try:
                    if (await client.get(url, timeout=2)).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    tail = self.log(name).read_text()[-4000:]
                    raise TimeoutError(f"{name} not ready after {timeout}s:\n{tail}")
                await asyncio.sleep(0.2)

    async def wait_serving(self, name: str, timeout: float = 60, address: str = "") -> None:
        """Until process ``name`` reports SERVING (a second instance: at ``address``)."""
        _, addr_var = PROCESSES.get(name, ("", None))
        if addr_var is None and not address:
            return
        if name == "gateway":
            await self.wait_http_ready(name, timeout)
            return
        channel = grpc.aio.insecure_channel(address or self.env[str(addr_var)])
        stub = health_pb2_grpc.HealthStub(channel)  # type: ignore[no-untyped-call]
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            while True:
                proc = self.procs.get(name)
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"{name} exited:\n{self.log(name).read_text()[-4000:]}")
                try:
                    reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.aio.AioRpcError:
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    tail = self.log(name).read_text()[-4000:]
                    raise TimeoutError(f"{name} not SERVING after {timeout}s:\n{tail}")
                await asyncio.sleep(0.2)
        finally:
            await channel.close()

    def _channel(self, addr_var: str) -> grpc.aio.Channel:
        channel = grpc.aio.insecure_channel(self.env[addr_var])
        self.channels.append(channel)
        return channel

    def tickets(self) -> tickets_pb2_grpc.TicketServiceStub:
        return tickets_pb2_grpc.TicketServiceStub(  # type: ignore[no-untyped-call]
            self._channel("HELPDESK_TICKETS_ADDR")
        )

    def directory(self) -> directory_pb2_grpc.DirectoryServiceStub:
        return directory_pb2_grpc.DirectoryServiceStub(  # type: ignore[no-untyped-call]
            self._channel("HELPDESK_TICKETS_ADDR")
        )

    def intake(self) -> intake_pb2_grpc.IntakeServiceStub:
        return intake_pb2_grpc.IntakeServiceStub(  # type: ignore[no-untyped-call]
            self._channel("HELPDESK_INTAKE_ADDR")
        )

    def notify(self) -> notify_pb2_grpc.NotifyServiceStub:
        return notify_pb2_grpc.NotifyServiceStub(  # type: ignore[no-untyped-call]
            self._channel("HELPDESK_NOTIFY_ADDR")
        )

    def dev(self) -> dev_escalation_pb2_grpc.DevEscalationServiceStub:
        return dev_escalation_pb2_grpc.DevEscalationServiceStub(  # type: ignore[no-untyped-call]
            self._channel("HELPDESK_DEV_ESCALATION_ADDR")
        )

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()
        self.stop_all()


def system_env(
    data_dir: Path,
    temporal_address: str,
    nats_url: str,
    database_url: str,
    relay: str,
    auto_close_after: str,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")}
    env.update(
        HELPDESK_DATA_DIR=str(data_dir),
        HELPDESK_DATABASE_URL=database_url,
        HELPDESK_TEMPORAL_ADDRESS=temporal_address,
        HELPDESK_NATS_URL=nats_url,
        HELPDESK_SMTP_RELAY=relay,
        HELPDESK_AUTO_CLOSE_AFTER=auto_close_after,
        HELPDESK_ADMIN_TOKEN=secrets.token_urlsafe(24),
        HELPDESK_SERVICE_TOKEN=secrets.token_urlsafe(24),
        HELPDESK_SIGNING_KEY=secrets.token_urlsafe(32),
        HELPDESK_TRACES_FILE=str(data_dir / "traces.jsonl"),
        PYTHONUNBUFFERED="1",
    )
    assign_ports(env)
    return env


# Every address a process of the system listens on.
LISTEN_VARS = (
    "HELPDESK_SMTP_LISTEN",
    "HELPDESK_WEBHOOK_LISTEN",
    *(addr_var for _, addr_var in PROCESSES.values() if addr_var),
)


def assign_ports(env: dict[str, str], keep: Collection[str] = ()) -> None:
    """A free port for each listen address of ``env`` but those in ``keep``."""
    for var in LISTEN_VARS:
        if var not in keep:
            env[var] = f"127.0.0.1:{free_port()}"
    env["HELPDESK_PORTAL_URL"] = f"http://{env['HELPDESK_GATEWAY_LISTEN']}"
