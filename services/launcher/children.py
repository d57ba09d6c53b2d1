"""Child processes of the launcher: each in its own session, its output appended to a log file."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common.embedded import EmbeddedProcess


@dataclass
class Child:
    """One process the launcher owns; ``log_offset`` is where this run's output starts."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    log_offset: int = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _group_alive(self) -> bool:
        """Whether any process of the child's group (itself or what it spawned) is left."""
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def _signal(self, sig: signal.Signals) -> None:
        """``sig`` to the child's whole process group (it leads its own session)."""
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    async def stop(self, grace: float, force: Callable[[], bool] = lambda: False) -> str:
        """SIGTERM, then SIGKILL after ``grace`` seconds (or at once when ``force()`` turns true).

        Returns how it ended: ``"exited N"``, ``"killed"`` or ``"had exited N"``.
        """
        if not self.alive() and not self._group_alive():
            return "had " + exit_text(self.proc.wait())
        self._signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while True:
            if not (self.alive() or self._group_alive()) or loop.time() > deadline or force():
                break
            await asyncio.sleep(0.05)
        how = exit_text(self.proc.returncode) if not self.alive() else "killed"
        if self.alive() or self._group_alive():
            self._signal(signal.SIGKILL)
            how = "killed"
        # Reap it: the SIGKILL above makes this short.
        await asyncio.to_thread(self.proc.wait)
        return how

    def tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines this run wrote to the log."""
        return tail(self.log_path, self.log_offset, lines)


def tail(path: Path, offset: int = 0, lines: int = 40) -> str:
    """The last ``lines`` lines of ``path`` after byte ``offset``."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError as err:
        return f"(cannot read {path}: {err})"
    text = data.decode("utf-8", errors="replace").rstrip("\n")
    if not text:
        return "(the log is empty)"
    return "\n".join(text.splitlines()[-lines:])


def exit_text(returncode: int | None) -> str:
    """``exited 0``, ``exited on SIGTERM``."""
    if returncode is not None and returncode < 0:
        with contextlib.suppress(ValueError):
            return f"exited on {signal.Signals(-returncode).name}"
    return f"exited {returncode}"


def log_offset(path: Path) -> int:
    """Current size of ``path`` (0 when missing): this run's output starts there."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def start_process(
    name: str, env: Mapping[str, str], log_path: Path, cwd: Path | None = None
) -> Child:
    """``python -m services.entrypoint name`` (what the container image runs) with this
    interpreter, in its own session, output to ``log_path``.

    Its own session keeps a Ctrl-C at the terminal away from it: the launcher
    stops the children itself, in order.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    offset = log_offset(log_path)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.entrypoint", name],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    return Child(name, proc, log_path, offset)


def adopt(embedded: EmbeddedProcess, log_path: Path, offset: int) -> Child:
    """A server that ``services.common.embedded`` started (already in its own session)."""
    return Child(embedded.name, embedded.proc, log_path, offset)
