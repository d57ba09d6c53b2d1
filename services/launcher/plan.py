"""What the launcher starts and where it listens: the processes, their addresses, their env."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from services.common.embedded import free_port
from services.common.settings import DEFAULT_ADDRS, split_hostport
from services.launcher.readiness import dial_address
from workflows.contracts import TICKETS_TASK_QUEUE, WORKFLOW_TASK_QUEUE
from workflows.prog_contracts import DEV_ESCALATION_TASK_QUEUE


@dataclass(frozen=True)
class ProcessSpec:
    """One help-desk process: ``helpdesk-process <name>`` (``services.entrypoint``), ready
    when its checks pass."""

    name: str
    # The HELPDESK_*_ADDR it serves gRPC on, if any.
    addr_env: str | None = None
    # Names it must report SERVING on the standard health service.
    health: tuple[str, ...] = ()
    # (task queue, "workflow" | "activity") it must poll.
    task_queues: tuple[tuple[str, str], ...] = ()
    # The HELPDESK_*_LISTEN it serves HTTP on, if any: ready once ``ready_path`` answers 200.
    http_env: str | None = None
    ready_path: str = "/readyz"


# Start order; they stop in reverse.
PROCESSES: tuple[ProcessSpec, ...] = (
    ProcessSpec(
        "tickets",
        "HELPDESK_TICKETS_ADDR",
        ("helpdesk.v1.TicketService", "helpdesk.v1.DirectoryService"),
        ((TICKETS_TASK_QUEUE, "activity"),),
    ),
    ProcessSpec("intake", "HELPDESK_INTAKE_ADDR", ("helpdesk.v1.IntakeService",)),
    ProcessSpec("notify", "HELPDESK_NOTIFY_ADDR", ("helpdesk.v1.NotifyService",)),
    ProcessSpec(
        "dev-escalation",
        "HELPDESK_DEV_ESCALATION_ADDR",
        ("helpdesk.v1.DevEscalationService",),
        ((DEV_ESCALATION_TASK_QUEUE, "activity"),),
    ),
    ProcessSpec("workflow-worker", task_queues=((WORKFLOW_TASK_QUEUE, "workflow"),)),
    # Last: its /readyz waits for the gRPC services it calls (tickets, intake).
    ProcessSpec("gateway", http_env="HELPDESK_GATEWAY_LISTEN"),
)

# Listen addresses the launcher hands to the processes, with their defaults (DESIGN.md §4).
LISTEN_DEFAULTS: dict[str, str] = {
    "HELPDESK_INTAKE_ADDR": DEFAULT_ADDRS["intake"],
    "HELPDESK_TICKETS_ADDR": DEFAULT_ADDRS["tickets"],
    "HELPDESK_DEV_ESCALATION_ADDR": DEFAULT_ADDRS["dev_escalation"],
    "HELPDESK_NOTIFY_ADDR": DEFAULT_ADDRS["notify"],
    "HELPDESK_SMTP_LISTEN": "127.0.0.1:2525",
    "HELPDESK_WEBHOOK_LISTEN": "127.0.0.1:8088",
    "HELPDESK_GATEWAY_LISTEN": "127.0.0.1:8080",
}
# Each process serves its Prometheus metrics on its own port, from this one up.
METRICS_FIRST_PORT = 9464
METRICS_HOST = "127.0.0.1"
# Where every process appends its finished spans, under the data directory.
TRACES_FILE = "traces.jsonl"
# Addresses handed on as they are: nothing started here listens on them.
PASS_THROUGH_DEFAULTS: dict[str, str] = {}


@dataclass
class Addresses:
    """The chosen listen addresses, and a note for each default that was busy."""

    env: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def choose_addresses(environ: Mapping[str, str]) -> Addresses:
    """Addresses set in the environment stay as they are; a default whose port is taken
    by other software moves to a free port on the same host."""
    chosen = Addresses()
    taken: set[int] = set()
    for var, default in LISTEN_DEFAULTS.items():
        explicit = environ.get(var, "").strip()
        if explicit:
            chosen.env[var] = explicit
            continue
        host, port = split_hostport(default)
        actual = free_port(port, host)
        while actual in taken:
            actual = free_port(0, host)
        taken.add(actual)
        chosen.env[var] = f"{host}:{actual}"
        if actual != port:
            chosen.notes.append(f"port {port} is taken: {var}={host}:{actual}")
    for var, default in PASS_THROUGH_DEFAULTS.items():
        chosen.env[var] = environ.get(var, "").strip() or default
    # The links we email point at the gateway this run starts, unless set elsewhere.
    gateway = chosen.env.get("HELPDESK_GATEWAY_LISTEN")
    if gateway and not environ.get("HELPDESK_PORTAL_URL", "").strip():
        chosen.env["HELPDESK_PORTAL_URL"] = portal_url(gateway)
    return chosen


def metrics_addresses(taken: set[int] | None = None) -> dict[str, str]:
    """A ``HELPDESK_METRICS_ADDR`` for each process: 9464, 9465, ... where free."""
    taken = set() if taken is None else taken
    chosen: dict[str, str] = {}
    for offset, spec in enumerate(PROCESSES):
        port = free_port(METRICS_FIRST_PORT + offset, METRICS_HOST)
        while port in taken:
            port = free_port(0, METRICS_HOST)
        taken.add(port)
        chosen[spec.name] = f"{METRICS_HOST}:{port}"
    return chosen


def portal_url(gateway_listen: str) -> str:
    """``http://host:port`` of a gateway listening on ``gateway_listen`` (a wildcard
    address becomes loopback: a browser cannot open ``0.0.0.0``)."""
    return f"http://{dial_address(gateway_listen)}"
