"""Human tasks through the REST API, on SQLite and PostgreSQL.

The app runs with ``auth.enabled = false``, so callers name themselves with the
development headers ``X-Flowyard-User`` / ``X-Flowyard-Roles`` (``server.identity``),
and with its data dir (where the link-signing key file is made) in the test's tmp dir.
Every wait polls; nothing sleeps in place of work.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from server.app import create_app
from server.config import load_settings
from server.store.database import Database
from server.store.models import ExecutionRow, WaitRow
from tests.integration.engine.conftest import Client, node

TASKS = "/api/v1/tasks"
POLL_SECONDS = 0.02


@asynccontextmanager
async def tasks_client(
    database_url: str, tmp_path: Path, *, smtp_port: int | None = None, **flags: Any
) -> AsyncIterator[Client]:
    """The app with auth disabled, its data dir under ``tmp_path`` and, with
    ``smtp_port``, an SMTP account ``default`` on 127.0.0.1 at that port."""
    config = tmp_path / "flowyard.toml"
    port = smtp_port if smtp_port is not None else free_port()  # nothing listens: mail fails
    config.write_text(
        f'[smtp.default]\nhost = "127.0.0.1"\nport = {port}\ntimeout = "5s"\n'
        'from = "flowyard@test.invalid"\n'
    )
    settings = load_settings(
        {
            "server.database_url": database_url,
            "server.data_dir": str(tmp_path / "data"),
            "auth.enabled": False,
            **flags,
        },
        environ={},
        config_file=config,
    )
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
async def client(database_url: str, tmp_path: Path) -> AsyncIterator[Client]:
    async with tasks_client(database_url, tmp_path) as test_client:
        yield test_client


# --- a real SMTP server on 127.0.0.1 ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Mailbox:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"

    async def wait(
        self, count: int = 1, timeout: float = 20
    ) -> list[tuple[list[str], EmailMessage]]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} message(s), got {len(self.messages)}")
            await asyncio.sleep(POLL_SECONDS)
        return self.messages


@pytest.fixture
def smtp() -> Iterator[tuple[int, Mailbox]]:
    """An SMTP server on 127.0.0.1 (random port) and the mailbox it fills."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, mailbox
    finally:
        controller.stop()


def who(name: str, *roles: str) -> dict[str, str]:
    """Headers that name the caller (development identity, auth disabled)."""
    headers = {"X-Flowyard-User": name}
    if roles:
        headers["X-Flowyard-Roles"] = ",".join(roles)
    return headers


def human(node_id: str = "review", **config: Any) -> dict[str, Any]:
    """A human_task node (assignee bob unless said otherwise)."""
    return node(node_id, "human_task", {"assignee": "bob", **config})


async def wait_for_task(
    client: Client,
    execution_id: str,
    *,
    status: str = "open",
    park: bool = True,
    timeout: float = 20,
) -> dict[str, Any]:
    """Poll the inbox until the execution has a task in ``status``; that task.

    With ``park``, an open task is returned once its execution is parked on it (see
    :func:`parked`); tasks due within seconds keep their execution in memory instead,
    so tests of timeouts pass ``park=False``.
    """
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(TASKS, params={"execution_id": execution_id})
        assert response.status_code == 200, response.text
        found = [t for t in response.json()["tasks"] if t["status"] == status]
        if found:
            if status == "open" and park:
                await parked(client, execution_id, timeout=timeout)
            return found[0]
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no {status} task for execution {execution_id} within {timeout}s: "
                f"{response.json()['tasks']}"
            )
        await asyncio.sleep(POLL_SECONDS)


async def parked(client: Client, execution_id: str, *, timeout: float = 20) -> None:
    """Wait until the engine has recorded the node's wait and handed the execution back
    (lease released), as it is whenever a person gets to a task.

    Deciding in the few milliseconds between the two can lose the engine's wake-up (the
    lease release overwrites ``next_wake_at``; reported to the engine's owner), which
    these tests are not about.
    """
    settings = client.app.dependencies["settings"].dependency()
    database = Database(settings.server.resolved_database_url)  # the app's runs on its loop
    deadline = time.monotonic() + timeout
    try:
        while not await _parked(database, execution_id):
            if time.monotonic() > deadline:
                raise AssertionError(f"execution {execution_id} did not park on a wait")
            await asyncio.sleep(POLL_SECONDS)
    finally:
        await database.dispose()


async def _parked(database: Database, execution_id: str) -> bool:
    async with database.reader() as session:
        row = (
            await session.execute(
                select(ExecutionRow.lease_owner).where(ExecutionRow.id == execution_id)
            )
        ).first()
        waits = await session.scalar(
            select(func.count())
            .select_from(WaitRow)
            .where(WaitRow.execution_id == execution_id, WaitRow.resolved_at.is_(None))
        )
    return row is not None and row[0] is None and bool(waits)


async def wait_for_change(
    client: Client, task_id: str, predicate: Any, *, timeout: float = 20
) -> dict[str, Any]:
    """Poll one task (every 20 ms) until ``predicate(task)`` holds; the task then."""
    deadline = time.monotonic() + timeout
    while True:
        task = await get_task(client, task_id)
        if predicate(task):
            return task
        if time.monotonic() > deadline:
            raise AssertionError(f"task {task_id} did not change as expected: {task}")
        await asyncio.sleep(POLL_SECONDS)


async def get_task(client: Client, task_id: str, **headers: str) -> dict[str, Any]:
    response = await client.get(f"{TASKS}/{task_id}", headers=headers)
    assert response.status_code == 200, response.text
    task: dict[str, Any] = response.json()
    return task


async def complete(
    client: Client,
    task_id: str,
    outcome: str,
    headers: dict[str, str],
    **body: Any,
) -> Any:
    """POST a decision; the raw response."""
    return await client.post(
        f"{TASKS}/{task_id}/complete", json={"outcome": outcome, **body}, headers=headers
    )
