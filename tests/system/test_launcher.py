"""``python -m services.launcher`` (``make run``) as a process: everything comes up, Ctrl-C
stops every child, a child that dies takes the rest down with a non-zero exit."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from temporalio.client import Client

from services.common.embedded import EmbeddedProcess, free_port
from services.launcher.plan import PROCESSES
from services.launcher.report import READY_LINE

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 180
ALL_CHILDREN = {
    "temporal",
    "nats",
    "tickets",
    "intake",
    "notify",
    "dev-escalation",
    "workflow-worker",
    "gateway",
}


class LauncherRun:
    """The launcher as a subprocess; its output read line by line on a thread."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.launcher", "--start-timeout", "150"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {text!r} after {timeout}s:\n{self.output()}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(
                    f"launcher exited ({self.proc.wait()}) before {text!r}:\n{self.output()}"
                )
            self.lines.append(line)

    def wait_ready(self) -> str:
        """The printed table, once it is complete."""
        self.wait_for(READY_LINE, START_TIMEOUT)
        self.wait_for("Press Ctrl-C to stop.", 10)
        start = next(i for i, line in enumerate(self.lines) if READY_LINE in line)
        return "\n".join(self.lines[start:])

    def finish(self, timeout: float) -> int:
        code = self.proc.wait(timeout)
        self.wait_for_eof(10)
        return code

    def wait_for_eof(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                return
            self.lines.append(line)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def child_pids(table: str) -> dict[str, int]:
    """``name: pid N`` entries of the table."""
    return {name: int(pid) for name, pid in re.findall(r"([\w-]+): pid (\d+)", table)}


def pids_with_parent(parent: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:  # fields: state, ppid, ...
            found.add(int(entry.name))
    return found


def gone(pid: int) -> bool:
    """Neither the process nor anything left in its process group exists."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        pass
    else:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def launcher_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HELPDESK_")}
    env.update(
        HELPDESK_DATA_DIR=str(data_dir),
        HELPDESK_INTAKE_ADDR=f"127.0.0.1:{free_port()}",
        HELPDESK_TICKETS_ADDR=f"127.0.0.1:{free_port()}",
        HELPDESK_DEV_ESCALATION_ADDR=f"127.0.0.1:{free_port()}",
        HELPDESK_NOTIFY_ADDR=f"127.0.0.1:{free_port()}",
        HELPDESK_SMTP_LISTEN=f"127.0.0.1:{free_port()}",
        HELPDESK_WEBHOOK_LISTEN=f"127.0.0.1:{free_port()}",
        HELPDESK_GATEWAY_LISTEN=f"127.0.0.1:{free_port()}",
    )
    env.update(extra)
    return env


@pytest.fixture
def launcher_factory() -> Iterator[list[LauncherRun]]:
    runs: list[LauncherRun] = []
    yield runs
    for run in runs:  # a failed test must not leave a system running
        if run.proc.poll() is None:
            run.proc.send_signal(signal.SIGTERM)
            try:
                run.proc.wait(60)
            except subprocess.TimeoutExpired:
                run.kill()


def health(address: str, service: str) -> str:
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def http_get(url: str) -> int:
    """The status of ``GET url`` (an error status too)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as err:
        return err.code


def helpdesk(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    """The CLI in another shell: only the data dir is known, the rest comes from it."""
    cli_env = {k: v for k, v in env.items() if not k.startswith("HELPDESK_")}
    cli_env["HELPDESK_DATA_DIR"] = env["HELPDESK_DATA_DIR"]
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *argv],
        cwd=ROOT,
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def temporal_healthy(address: str) -> bool:
    client = await Client.connect(address)
    return await client.service_client.check_health()


def test_make_run_starts_everything_and_ctrl_c_stops_it(
    tmp_path: Path, launcher_factory: list[LauncherRun]
) -> None:
    data_dir = tmp_path / "var"
    env = launcher_env(data_dir)
    run = LauncherRun(env)
    launcher_factory.append(run)
    table = run.wait_ready()

    # The admin token is printed once, and kept owner-only.
    token = (data_dir / "admin.token").read_text().strip()
    assert token and token in run.output()
    for name in ("admin", "service"):
        assert stat.S_IMODE((data_dir / f"{name}.token").stat().st_mode) == 0o600

    pids = child_pids(table)
    assert set(pids) == ALL_CHILDREN, table
    assert set(pids.values()) == pids_with_parent(run.proc.pid)

    temporal_address = re.search(r"Temporal frontend\s+(\S+)", table)
    assert temporal_address, table
    assert asyncio.run(temporal_healthy(temporal_address.group(1)))
    assert re.search(r"Temporal Web UI\s+http://127\.0\.0\.1:\d+", table)
    assert re.search(r"NATS JetStream\s+nats://127\.0\.0\.1:\d+", table)

    for spec in PROCESSES:
        if spec.addr_env is None:
            continue
        address = env[spec.addr_env]
        assert address in table
        for service in ("", *spec.health):
            assert health(address, service) == "SERVING", (spec.name, service)
    assert env["HELPDESK_SMTP_LISTEN"] in table
    assert str(data_dir / "maildir") in table

    # The web gateway, started last: ready (the launcher waited for /readyz) and alive.
    portal = f"http://{env['HELPDESK_GATEWAY_LISTEN']}"
    assert re.search(rf"Web portal\s+{re.escape(portal)}\s+gateway: pid \d+", table), table
    assert re.search(rf"Agent console\s+{re.escape(portal)}/agent/", table), table
    assert re.search(rf"JSON API\s+{re.escape(portal)}/api/v1/ \(docs /api/docs\)", table)
    assert http_get(f"{portal}/healthz") == 200
    assert http_get(f"{portal}/readyz") == 200
    endpoints = (data_dir / "endpoints.env").read_text().splitlines()
    assert f"HELPDESK_PORTAL_URL={portal}" in endpoints

    # The CLI finds the system and the token from the data dir alone.
    created = helpdesk(env, "org", "create", "ACME S.p.A.", "--domain", "acme.it")
    assert created.returncode == 0, created.stderr
    listed = helpdesk(env, "org", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "ACME S.p.A." in listed.stdout

    run.proc.send_signal(signal.SIGINT)
    assert run.finish(120) == 0, run.output()
    for name, pid in pids.items():
        assert gone(pid), f"{name} (pid {pid}) outlived the launcher"
    assert not (data_dir / "endpoints.env").exists()

    # A second run reuses the tokens of the first.
    rerun = LauncherRun(env)
    launcher_factory.append(rerun)
    rerun.wait_for("Registering the search attributes", START_TIMEOUT)
    rerun.proc.send_signal(signal.SIGTERM)
    assert rerun.finish(120) == 0, rerun.output()
    assert (data_dir / "admin.token").read_text().strip() == token
    assert "Generated the admin token" not in rerun.output()


def test_a_child_that_dies_stops_everything(
    tmp_path: Path,
    launcher_factory: list[LauncherRun],
    temporal_dev_server: EmbeddedProcess,
    nats_server: EmbeddedProcess,
) -> None:
    env = launcher_env(
        tmp_path / "var",
        HELPDESK_TEMPORAL_ADDRESS=temporal_dev_server.addresses["temporal"],
        HELPDESK_NATS_URL=nats_server.addresses["nats"],
        HELPDESK_ADMIN_TOKEN="admin-secret",
        HELPDESK_SERVICE_TOKEN="service-secret",
    )
    run = LauncherRun(env)
    launcher_factory.append(run)
    table = run.wait_ready()
    pids = child_pids(table)
    # External Temporal and NATS: the launcher starts only the help-desk processes.
    assert set(pids) == ALL_CHILDREN - {"temporal", "nats"}, table
    assert not (tmp_path / "var" / "admin.token").exists()

    os.kill(pids["notify"], signal.SIGKILL)
    assert run.finish(120) == 1, run.output()
    out = run.output()
    assert f"notify (pid {pids['notify']}) exited unexpectedly" in out
    assert "notify.log" in out
    for name, pid in pids.items():
        assert gone(pid), f"{name} (pid {pid}) outlived the launcher"
