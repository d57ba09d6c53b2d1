"""``helpdesk-process <name>`` / ``python -m services.entrypoint <name>``: start one process.

The container image's entry point, and what ``make run`` starts (``python -m
services.entrypoint <name>``; ``python -m services.<name>`` comes here too), so that
logging, telemetry and the exit are the same everywhere:

=============================  ==============================================================
``intake``                     IntakeService (gRPC) and the SMTP listener
``tickets``                    TicketService, DirectoryService and the ticket activity worker
``notify``                     NotifyService and the JetStream consumer
``dev-escalation``             DevEscalationService and the programming-ticket activity worker
``workflow-worker``            the Temporal worker hosting the workflows
``gateway``                    the web gateway (HTTP): portal, agent console, JSON API
``migrate``                    every service's Alembic migrations (the gateway's too), then exit
``register-search-attributes`` add the missing ticket search attributes, then exit
=============================  ==============================================================

Settings come from the ``HELPDESK_*`` environment, never from the command line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

log = logging.getLogger("helpdesk.entrypoint")

EXIT_USAGE = 2


async def _intake() -> None:
    from services.common.settings import Settings
    from services.intake.app import serve

    await serve(Settings.from_env())


async def _tickets() -> None:
    from services.common.settings import Settings
    from services.tickets.app import serve

    await serve(Settings.from_env())


async def _dev_escalation() -> None:
    from services.common.settings import Settings
    from services.dev_escalation.app import serve

    await serve(Settings.from_env())


async def _notify() -> None:
    from services.common.settings import Settings
    from services.notify.app import serve

    await serve(Settings.from_env())


async def _workflow_worker() -> None:
    from workflows.worker import main

    await main()


async def _gateway() -> None:
    from services.common.settings import Settings
    from services.gateway.server import serve

    await serve(Settings.from_env())


async def _migrate() -> None:
    """Every service's tables to their latest revision (idempotent; one version table each)."""
    from services.common.db import upgrade
    from services.common.settings import Settings
    from services.dev_escalation import app as dev_escalation
    from services.gateway import store as gateway
    from services.intake import app as intake
    from services.notify import app as notify
    from services.tickets import app as tickets

    settings = Settings.from_env()
    await tickets.migrate(settings)
    log.info("tickets: migrated")
    await intake.migrate(settings)
    log.info("intake: migrated")
    await upgrade(notify.MIGRATIONS_DIR, settings.database_url_for("notify"), notify.VERSION_TABLE)
    log.info("notify: migrated")
    await dev_escalation.migrate(settings)
    log.info("dev-escalation: migrated")
    await gateway.migrate(settings)  # its sessions table
    log.info("gateway: migrated")


async def _register_search_attributes() -> None:
    """Add the ticket search attributes that are missing (idempotent)."""
    from services.common.settings import Settings
    from services.common.temporal_client import connect, register_search_attributes

    settings = Settings.from_env()
    client = await connect(settings.temporal_address, settings.temporal_namespace)
    added = await register_search_attributes(client, settings.temporal_namespace)
    if added:
        log.info("added search attributes: %s", ", ".join(added))
    else:
        log.info("every search attribute was already registered")


PROCESSES: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
    "intake": _intake,
    "tickets": _tickets,
    "notify": _notify,
    "dev-escalation": _dev_escalation,
    "workflow-worker": _workflow_worker,
    "gateway": _gateway,
    "migrate": _migrate,
    "register-search-attributes": _register_search_attributes,
}

# Named in the design but not built yet: refused with a reason rather than as unknown.
NOT_YET: dict[str, str] = {}


def usage() -> str:
    return "usage: helpdesk-process {" + ",".join(PROCESSES) + "}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the named process; returns the exit code (2 for a wrong name)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print(usage(), file=sys.stderr)
        return 0 if args and args[0] in ("-h", "--help") else EXIT_USAGE
    name = args[0]
    if name in NOT_YET:
        print(f"helpdesk-process: {name}: {NOT_YET[name]}", file=sys.stderr)
        return EXIT_USAGE
    run = PROCESSES.get(name)
    if run is None:
        print(
            f"helpdesk-process: unknown process {name!r}; known: {', '.join(PROCESSES)}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from services.common import telemetry

    if name in telemetry.SERVICE_NAMES:
        telemetry.start(name)
    else:  # the one-off jobs: logs only
        from services.common import logs

        logs.configure(f"helpdesk-{name}")
    asyncio.run(run())
    telemetry.stop()
    # Everything is closed by now. Skip the interpreter's finalization: the Temporal SDK's
    # native threads can abort it (SIGABRT in PyGILState_Release), turning a clean exit
    # into exit code 134 for Kubernetes.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
