"""The engine in a real app on a real database (SQLite and PostgreSQL), and helpers to
build small definitions, run them through the REST API and read what happened.

Tests import the helpers from here (``from tests.integration.engine.conftest import …``).
Every wait polls the execution; nothing sleeps in place of work.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from server.app import create_app
from server.config import load_settings
from tests.auth import ADMIN_HEADERS, with_admin_key

Client = AsyncTestClient[Any]
BASE = "/api/v1/workflows"
EXECUTIONS = f"{BASE}/executions"
TERMINAL = ("completed", "failed", "cancelled")
POLL_SECONDS = 0.02


# --- the app ------------------------------------------------------------------------------


@asynccontextmanager
async def engine_client(database_url: str, **flags: Any) -> AsyncIterator[Client]:
    """An in-process app on ``database_url``; ``flags`` are extra settings (dotted keys)."""
    settings = load_settings(
        with_admin_key({"server.database_url": database_url, **flags}), environ={}
    )
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        test_client.headers.update(ADMIN_HEADERS)
        yield test_client


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Client]:
    async with engine_client(database_url) as test_client:
        yield test_client


# --- definitions --------------------------------------------------------------------------


def workflow(
    nodes: Iterable[dict[str, Any]],
    edges: Iterable[dict[str, Any]] = (),
    *,
    id: str = "wf",
    **fields: Any,
) -> dict[str, Any]:
    """A definition; ``fields`` are further top-level fields (variables, config, output…)."""
    return {"id": id, "name": id, "nodes": list(nodes), "edges": list(edges), **fields}


def node(node_id: str, type_: str, config: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"id": node_id, "name": node_id, "type": type_, "config": config, **fields}


def expr(node_id: str, expression: str, **fields: Any) -> dict[str, Any]:
    """A transform node whose output is ``{result: expression}``."""
    return node(
        node_id, "transform", {"transform_type": "expression", "expression": expression}, **fields
    )


def script(node_id: str, *lines: str, **fields: Any) -> dict[str, Any]:
    """A task node running ``lines`` (``name = expression``); its output is the names set."""
    return node(node_id, "task", {"script": list(lines)}, **fields)


def decision(node_id: str, **config: Any) -> dict[str, Any]:
    """A decision node: ``decision_rules=[…]`` or ``condition="…"`` (and ``default``)."""
    return node(node_id, "decision", config)


def timer(node_id: str, duration: float | str, **fields: Any) -> dict[str, Any]:
    return node(node_id, "timer", {"duration": duration}, **fields)


def edge(source: str, target: str, condition: str | None = None, **fields: Any) -> dict[str, Any]:
    found = {"from_node": source, "to_node": target, **fields}
    if condition is not None:
        found["condition"] = condition
    return found


def chain(*node_ids: str) -> list[dict[str, Any]]:
    """Unconditional edges a → b → c …"""
    return [edge(a, b) for a, b in itertools.pairwise(node_ids)]


# --- the REST API -------------------------------------------------------------------------


async def upload(client: Client, document: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(BASE, json=document)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def start(client: Client, workflow_id: str = "wf", **body: Any) -> dict[str, Any]:
    """Start an execution (201) and return its JSON."""
    response = await client.post(f"{BASE}/{workflow_id}/execute", json=body)
    assert response.status_code == 201, response.text
    execution: dict[str, Any] = response.json()
    return execution


async def get_execution(client: Client, execution_id: str) -> dict[str, Any]:
    response = await client.get(f"{EXECUTIONS}/{execution_id}")
    assert response.status_code == 200, response.text
    execution: dict[str, Any] = response.json()
    return execution


async def wait_until(
    client: Client,
    execution_id: str,
    predicate: Callable[[dict[str, Any]], bool],
    *,
    timeout: float = 20,
    what: str = "the condition",
) -> dict[str, Any]:
    """Poll the execution every 20 ms until ``predicate`` holds for it; its JSON then."""
    deadline = time.monotonic() + timeout
    while True:
        execution = await get_execution(client, execution_id)
        if predicate(execution):
            return execution
        if execution["status"] in TERMINAL or time.monotonic() > deadline:
            raise AssertionError(
                f"execution {execution_id} did not reach {what} within {timeout}s; it is "
                f"{execution['status']}: {summary(execution)}"
            )
        await asyncio.sleep(POLL_SECONDS)


async def wait_for_status(
    client: Client, execution_id: str, statuses: Collection[str] | str, timeout: float = 20
) -> dict[str, Any]:
    """Poll every 20 ms until the execution's status is one of ``statuses``."""
    wanted = (statuses,) if isinstance(statuses, str) else tuple(statuses)
    return await wait_until(
        client,
        execution_id,
        lambda execution: execution["status"] in wanted,
        timeout=timeout,
        what=" or ".join(wanted),
    )


async def run(
    client: Client, document: dict[str, Any], *, timeout: float = 20, **body: Any
) -> dict[str, Any]:
    """Upload ``document``, start it with ``body`` and return the terminal execution."""
    await upload(client, document)
    execution = await start(client, document["id"], **body)
    return await wait_for_status(client, execution["id"], TERMINAL, timeout=timeout)


async def control(
    client: Client, execution_id: str, action: str, body: dict[str, Any] | None = None, **kw: Any
) -> Any:
    """POST a control action; the raw response."""
    return await client.post(f"{EXECUTIONS}/{execution_id}/{action}", json=body or {}, **kw)


async def events(client: Client, execution_id: str, **params: Any) -> dict[str, Any]:
    response = await client.get(f"{EXECUTIONS}/{execution_id}/events", params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def event_types(client: Client, execution_id: str) -> list[tuple[str, str | None]]:
    page = await events(client, execution_id, limit=1000)
    return [(e["type"], e["node_id"]) for e in page["events"]]


# --- reading an execution -----------------------------------------------------------------


def node_runs(execution: dict[str, Any], node_id: str | None = None) -> list[dict[str, Any]]:
    """The execution's node runs (not compensations), optionally of one node.

    Entries for nodes skipped by dead-path elimination (``attempt`` 0) are not runs: they
    never ran. See :func:`skipped_entries`.
    """
    return [
        r
        for r in execution["executed_nodes"]
        if r["kind"] == "node" and r["attempt"] > 0 and (node_id is None or r["node_id"] == node_id)
    ]


def skipped_entries(execution: dict[str, Any]) -> set[str]:
    """Nodes listed in executed_nodes as skipped by dead-path elimination."""
    return {
        r["node_id"]
        for r in execution["executed_nodes"]
        if r["attempt"] == 0 and r["status"] == "skipped"
    }


def latest(execution: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each node's current (not superseded) run with the highest generation/attempt."""
    found: dict[str, dict[str, Any]] = {}
    for run_ in node_runs(execution):
        if run_["superseded"]:
            continue
        current = found.get(run_["node_id"])
        key = (run_["generation"], run_["attempt"])
        if current is None or key >= (current["generation"], current["attempt"]):
            found[run_["node_id"]] = run_
    return found


def statuses(execution: dict[str, Any]) -> dict[str, str]:
    """node id → status of its current run (nodes never reached are absent)."""
    return {node_id: run_["status"] for node_id, run_ in latest(execution).items()}


def completed(execution: dict[str, Any]) -> set[str]:
    return {n for n, s in statuses(execution).items() if s == "completed"}


def started(execution: dict[str, Any]) -> list[str]:
    """Node ids whose runs started, once per run (attempts and reruns count)."""
    return [r["node_id"] for r in node_runs(execution) if r["started_at"] is not None]


def summary(execution: dict[str, Any]) -> str:
    runs = ", ".join(
        f"{r['node_id']}#{r['generation']}.{r['attempt']}={r['status']}"
        for r in execution["executed_nodes"]
    )
    return f"error={execution.get('error')} runs=[{runs}]"


#: One script line of ~0.1 s of evaluation (90,000 comprehension steps; the limit is 100,000).
SLOW_LINE = "w = len([0 for i in split('a ' * 300) for j in split('a ' * 300) if false])"


def slow_script(node_id: str, *, lines: int = 30, until: str | None = None, **fields: Any) -> dict:
    """A task that works for seconds (``lines`` slow lines), or, with ``until`` (the name
    of an ISO timestamp in the scope), only while ``now()`` is before that time — a node
    that really is slow at first and quick later, without mocks."""
    line = SLOW_LINE if until is None else f"{SLOW_LINE} if now() < parse_date({until}) else 0"
    return script(node_id, *([line] * lines), **fields)
