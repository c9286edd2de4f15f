"""Property-based API testing: schemathesis reads ``/schema/openapi.json`` from a real
``flowyard serve`` and sends generated requests — valid and invalid, boundary values,
and sequences that follow the schema's links — to every operation. Whatever it sends,
the server must never answer 5xx (SPEC §6, §8: no input may produce a 500).

The server runs as a subprocess on 127.0.0.1 with an admin API key
(``FLOWYARD_BOOTSTRAP_ADMIN_KEY``) that every request carries, so generated requests
reach the handlers rather than stopping at authentication. Outbound calls are denied for
every address, so no generated workflow ever connects beyond the machine. A workflow, an
execution waiting on a human task and that task exist before the run, and half of the
generated ids are theirs, so the handlers behind ``…/{id}`` routes run too, not only
their 404s.

schemathesis runs as its own command (its pytest integration does not work with
pytest 9), with a fixed seed, one worker (CPython 3.11's ``ast.parse``, which Hypothesis
calls, is not thread-safe) and a limited number of examples per operation, so the run is
reproducible and takes one to two minutes.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.conftest import RunningServer, start_server
from tests.auth import ADMIN_HEADERS, ADMIN_KEY

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
EXAMPLES_PER_OPERATION = 40
SEED = 20261121

pytestmark = pytest.mark.slow

PROBE = {
    "id": "probe",
    "name": "Probe",
    "nodes": [
        {"id": "start", "name": "Start", "type": "transform",
         "config": {"transform_type": "expression", "expression": "1 + 1"}},
        {"id": "review", "name": "Review", "type": "human_task",
         "config": {"assignee": "admin", "title": "Look"}},
    ],
    "edges": [{"from_node": "start", "to_node": "review"}],
}  # fmt: skip


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(
        ["serve", "--data-dir", str(tmp_path / "data")],
        tmp_path,
        env={
            "FLOWYARD_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY,
            # a generated definition run by a generated request must never call out
            "FLOWYARD_OUTBOUND_DENY": "0.0.0.0/0,::/0",
        },
    )
    yield running
    running.stop(signal.SIGTERM)


def seed(url: str) -> dict[str, str]:
    """Create a workflow, an execution and its open task; their ids by parameter name."""
    with httpx.Client(base_url=url, headers=ADMIN_HEADERS, timeout=30) as client:
        created = client.post("/api/v1/workflows", json=PROBE)
        assert created.status_code == 201, created.text
        started = client.post("/api/v1/workflows/probe/execute", json={})
        assert started.status_code == 201, started.text
        execution_id = started.json()["id"]
        deadline = time.monotonic() + 30
        tasks: list[dict[str, Any]] = []
        while not tasks and time.monotonic() < deadline:
            listed = client.get("/api/v1/tasks", params={"execution_id": execution_id})
            assert listed.status_code == 200, listed.text
            tasks = listed.json()["tasks"]
            time.sleep(0.05)  # poll interval while the execution reaches its task
        assert tasks, "the probe execution never opened its task"
    return {"workflow_id": "probe", "execution_id": execution_id, "task_id": tasks[0]["id"]}


def config(ids: dict[str, str]) -> str:
    """schemathesis.toml: half of the values drawn for each id parameter are real ids."""
    lines = []
    for name, value in ids.items():
        lines += [f"[dictionaries.{name}]", f"values = [{json.dumps(value)}]", ""]
    lines.append("[parameters]")
    for name in ids:
        lines.append(f'"path.{name}" = {{ dictionary = "{name}", probability = 0.5 }}')
    return "\n".join(lines) + "\n"


def test_no_generated_request_gets_a_server_error(server: RunningServer, tmp_path: Path) -> None:
    config_file = tmp_path / "schemathesis.toml"
    config_file.write_text(config(seed(server.url)))
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config_file),
        "run",
        f"{server.url}/schema/openapi.json",
        "--checks",
        "not_a_server_error",
        "--header",
        f"Authorization: Bearer {ADMIN_KEY}",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        "--no-color",
    ]
    # cwd: schemathesis and hypothesis write their working files there, not in the repo
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False
    )
    report = result.stdout[-20_000:] + result.stderr[-5_000:]
    assert result.returncode == 0, report
    assert "Tested:" in result.stdout, report  # it really ran the operations
    # A 500 a check somehow missed would still be in the server's log.
    assert '"api.internal_error"' not in server.log(), server.log()[-20_000:]
