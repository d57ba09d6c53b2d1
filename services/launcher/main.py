"""``helpdesk-run`` / ``python -m services.launcher``: what ``make run`` runs.

Starts the Temporal dev server and nats-server (unless ``HELPDESK_TEMPORAL_ADDRESS`` /
``HELPDESK_NATS_URL`` point elsewhere), registers the search attributes, starts
every help-desk process with its environment filled in, waits until each one is
ready, prints where everything listens and then watches: Ctrl-C or SIGTERM stops
the children in reverse order and exits 0; a child that dies stops everything
and exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from temporalio.client import Client

from services.common.embedded import EmbeddedProcess, start_nats, start_temporal
from services.common.settings import Settings
from services.common.temporal_client import connect, register_search_attributes
from services.launcher import ENDPOINTS_FILE
from services.launcher.children import (
    Child,
    adopt,
    exit_text,
    log_offset,
    start_process,
    tail,
)
from services.launcher.plan import (
    PROCESSES,
    TRACES_FILE,
    ProcessSpec,
    choose_addresses,
    metrics_addresses,
)
from services.launcher.readiness import (
    ChildDied,
    StartupError,
    dial_address,
    wait_http,
    wait_polling,
    wait_serving,
)
from services.launcher.report import Row, database_description, mail_description, render, shown
from services.launcher.tokens import ensure_tokens, token_path

T = TypeVar("T")

TEMPORAL_PORT = 7233
TEMPORAL_UI_PORT = 8233
NATS_PORT = 4222


class Interrupted(Exception):
    """A stop signal arrived."""


def say(message: str) -> None:
    print(message, flush=True)


class Launcher:
    """Owns the children of one ``make run``; ``run()`` returns the exit code."""

    def __init__(self, settings: Settings, start_timeout: float, stop_timeout: float) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir
        self.logs = self.data_dir / "logs"
        self.endpoints_file = self.data_dir / ENDPOINTS_FILE
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.children: list[Child] = []
        self.rows: list[Row] = []
        self.notes: list[str] = []
        # Each process's HELPDESK_METRICS_ADDR, once they are started.
        self.metrics: dict[str, str] = {}
        self._stop = asyncio.Event()
        self._force = False

    # Signals -----------------------------------------------------------------

    def on_signal(self, sig: signal.Signals) -> None:
        if self._stop.is_set():
            self._force = True
            say(f"{sig.name} again: killing what is left")
        else:
            say(f"\n{sig.name}: stopping")
            self._stop.set()

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise Interrupted

    async def _until_stopped(self, aw: Awaitable[T]) -> T:
        """``aw``'s result, or ``Interrupted`` (``aw`` cancelled) if a stop signal comes first."""
        task = asyncio.ensure_future(aw)
        stopper = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            stopper.cancel()
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise Interrupted

    # Start -------------------------------------------------------------------

    async def _embedded(
        self, name: str, start: Callable[[Path], EmbeddedProcess]
    ) -> EmbeddedProcess:
        log_path = self.logs / f"{name}.log"
        offset = log_offset(log_path)
        try:
            # Not cancellable: the thread would leave a server behind. Both wait at most 60s.
            server = await asyncio.to_thread(start, log_path)
        except (OSError, RuntimeError, TimeoutError) as err:
            raise StartupError(
                f"{name} did not start: {err}; see its log {shown(log_path)}", log_path, offset
            ) from err
        self.children.append(adopt(server, log_path, offset))
        self._check_stop()
        return server

    async def start(self) -> None:
        """Everything up and ready, or ``StartupError`` / ``ChildDied`` / ``Interrupted``."""
        self.logs.mkdir(parents=True, exist_ok=True)
        tokens = ensure_tokens(self.data_dir)
        if "admin" in tokens.generated:
            say(f"Generated the admin token (kept in {shown(token_path(self.data_dir, 'admin'))}):")
            say(f"  {tokens.admin}")
        addresses = choose_addresses(os.environ)
        self.notes += addresses.notes
        temporal_address = await self._start_temporal()
        nats_url = await self._start_nats()

        namespace = self.settings.temporal_namespace
        say(f"Registering the search attributes on {temporal_address} ...")
        try:
            client = await self._until_stopped(connect(temporal_address, namespace, attempts=30))
            await self._until_stopped(register_search_attributes(client, namespace))
        except RuntimeError as err:
            raise StartupError(str(err)) from err

        env = {
            **os.environ,
            **addresses.env,
            "HELPDESK_DATA_DIR": str(self.data_dir),
            "HELPDESK_TEMPORAL_ADDRESS": temporal_address,
            "HELPDESK_NATS_URL": nats_url,
            "HELPDESK_ADMIN_TOKEN": tokens.admin,
            "HELPDESK_SERVICE_TOKEN": tokens.service,
            "HELPDESK_TRACES_FILE": os.environ.get("HELPDESK_TRACES_FILE", "").strip()
            or str(self.data_dir / TRACES_FILE),
            "PYTHONUNBUFFERED": "1",
        }
        self._write_endpoints(env)
        await self._start_processes(env, client)
        self.rows += [
            Row("SMTP in (intake)", env["HELPDESK_SMTP_LISTEN"]),
            Row("Telegram / WhatsApp webhooks", f"http://{env['HELPDESK_WEBHOOK_LISTEN']}"),
            Row("Database", database_description(self.settings.database_url, self.data_dir)),
            Row("Outgoing mail", mail_description(self.settings.smtp_relay, self.data_dir)),
            Row(
                "Metrics (Prometheus)",
                ", ".join(f"{name} http://{a}/metrics" for name, a in self.metrics.items()),
            ),
            Row("Traces (one span a line)", shown(Path(env["HELPDESK_TRACES_FILE"]))),
            Row(
                "Admin token",
                "$HELPDESK_ADMIN_TOKEN"
                if os.environ.get("HELPDESK_ADMIN_TOKEN", "").strip()
                else shown(token_path(self.data_dir, "admin")),
            ),
        ]

    async def _start_temporal(self) -> str:
        """The Temporal frontend address: ``HELPDESK_TEMPORAL_ADDRESS``, else the dev server's."""
        namespace = self.settings.temporal_namespace
        external = os.environ.get("HELPDESK_TEMPORAL_ADDRESS", "").strip()
        if external:
            self.rows.append(Row("Temporal frontend", external, f"namespace {namespace}"))
            return external
        say("Starting the Temporal dev server ...")
        temporal = await self._embedded(
            "temporal",
            lambda log: start_temporal(
                self.data_dir / "temporal.db",
                port=TEMPORAL_PORT,
                ui=True,
                ui_port=TEMPORAL_UI_PORT,
                log_path=log,
            ),
        )
        address, ui = temporal.addresses["temporal"], temporal.addresses["temporal_ui"]
        self._note_moved("Temporal", TEMPORAL_PORT, address)
        self._note_moved("the Temporal Web UI", TEMPORAL_UI_PORT, ui)
        self.rows += [
            Row("Temporal frontend", address, self._detail(self.children[-1])),
            Row("Temporal Web UI", ui),
        ]
        return address

    async def _start_nats(self) -> str:
        """The NATS URL: ``HELPDESK_NATS_URL``, else the embedded nats-server's."""
        external = os.environ.get("HELPDESK_NATS_URL", "").strip()
        if external:
            self.rows.append(Row("NATS JetStream", external))
            return external
        say("Starting nats-server with JetStream ...")
        nats = await self._embedded(
            "nats", lambda log: start_nats(self.data_dir / "nats", port=NATS_PORT, log_path=log)
        )
        url = nats.addresses["nats"]
        self._note_moved("NATS", NATS_PORT, url)
        self.rows.append(Row("NATS JetStream", url, self._detail(self.children[-1])))
        return url

    async def _start_processes(self, env: dict[str, str], client: Client) -> None:
        """Start every process at once, then wait for each to be ready, in order."""
        say("Starting " + ", ".join(spec.name for spec in PROCESSES) + " ...")
        self.metrics = metrics_addresses()
        started = [
            (
                spec,
                start_process(
                    spec.name,
                    {**env, "HELPDESK_METRICS_ADDR": self.metrics[spec.name]},
                    self.logs / f"{spec.name}.log",
                ),
            )
            for spec in PROCESSES
        ]
        self.children += [child for _, child in started]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout
        namespace = self.settings.temporal_namespace
        for spec, child in started:
            if spec.addr_env:
                address = env[spec.addr_env]
                await self._until_stopped(
                    wait_serving(child, address, spec.health, max(deadline - loop.time(), 1))
                )
            if spec.task_queues:
                await self._until_stopped(
                    wait_polling(
                        child, client, namespace, spec.task_queues, max(deadline - loop.time(), 1)
                    )
                )
            if spec.http_env:
                url = f"http://{dial_address(env[spec.http_env])}{spec.ready_path}"
                await self._until_stopped(wait_http(child, url, max(deadline - loop.time(), 1)))
            say(f"  {spec.name} is ready")
            self.rows += self._rows(spec, child, env)

    def _rows(self, spec: ProcessSpec, child: Child, env: dict[str, str]) -> list[Row]:
        """What the table says about one ready process."""
        if spec.http_env:
            base = f"http://{dial_address(env[spec.http_env])}"
            return [
                Row("Web portal", base, self._detail(child)),
                Row("Agent console", f"{base}/agent/"),
                Row("JSON API", f"{base}/api/v1/ (docs /api/docs)"),
            ]
        if spec.addr_env:
            names = ", ".join(s.rpartition(".")[2] for s in spec.health)
            return [Row(names, env[spec.addr_env], self._detail(child))]
        queues = ", ".join(q for q, _ in spec.task_queues)
        return [Row("Workflow worker", f"task queue {queues}", self._detail(child))]

    def _note_moved(self, what: str, preferred: int, address: str) -> None:
        if not address.endswith(f":{preferred}"):
            self.notes.append(f"port {preferred} is taken: {what} listens on {address}")

    def _detail(self, child: Child) -> str:
        return f"{child.name}: pid {child.pid}, log {shown(child.log_path)}"

    def _write_endpoints(self, env: dict[str, str]) -> None:
        """Addresses of this run for the CLI in other shells (never the tokens)."""
        keys = sorted(
            k
            for k in env
            if k.startswith("HELPDESK_")
            and (k.endswith(("_ADDR", "_LISTEN", "_URL", "_ADDRESS")))
            and k != "HELPDESK_DATABASE_URL"
        )
        body = "".join(f"{k}={env[k]}\n" for k in keys)
        self.endpoints_file.write_text(
            "# Written by the launcher (make run) for this run; removed when it stops.\n" + body
        )

    # Run and stop ------------------------------------------------------------

    async def watch(self) -> Child | None:
        """Until a stop signal (None) or until a child exits (that child)."""
        while not self._stop.is_set():
            for child in self.children:
                if not child.alive():
                    return child
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.5)
        return None

    def report_death(self, child: Child) -> None:
        print(
            f"error: {child.name} (pid {child.pid}) exited unexpectedly"
            f" ({exit_text(child.proc.returncode)})",
            file=sys.stderr,
        )
        self.show_tail(child.log_path, child.log_offset)

    def show_tail(self, log_path: Path, offset: int) -> None:
        print(f"The end of {shown(log_path)}:", file=sys.stderr)
        for line in tail(log_path, offset).splitlines():
            print(f"  | {line}", file=sys.stderr)
        sys.stderr.flush()

    async def stop_all(self) -> None:
        if self.children:
            say("Stopping ...")
        for child in reversed(self.children):
            how = await child.stop(self.stop_timeout, lambda: self._force)
            say(f"  {child.name}: {how}")
        with contextlib.suppress(FileNotFoundError):
            self.endpoints_file.unlink()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self.on_signal, sig)
        code = 0
        try:
            await self.start()
            say(render(self.rows, self.notes, self.data_dir, self.endpoints_file))
            dead = await self.watch()
            if dead is not None:
                self.report_death(dead)
                code = 1
        except Interrupted:
            pass
        except ChildDied as err:
            self.report_death(err.child)
            code = 1
        except StartupError as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            if err.log_path is not None:
                self.show_tail(err.log_path, err.log_offset)
            code = 1
        finally:
            await self.stop_all()
        if code == 0:
            say("Stopped.")
        return code


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="helpdesk-run",
        description="Run the whole help desk locally (what `make run` runs). "
        "Configuration comes from the HELPDESK_* environment variables.",
    )
    parser.add_argument(
        "--start-timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long the processes may take to become ready (default: %(default)s)",
    )
    parser.add_argument(
        "--stop-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long each process may take to stop before SIGKILL (default: %(default)s)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = Settings.from_env()
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    async def run() -> int:
        return await Launcher(settings, args.start_timeout, args.stop_timeout).run()

    return asyncio.run(run())
