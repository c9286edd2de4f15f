"""Cron triggers on real ``flowyard serve`` processes: exactly once across two processes
on one PostgreSQL database, and the misfire policies after a ``kill -9`` and a restart.

Schedules fire every second (6-field cron). Fires are read through
``GET /api/v1/workflows/{id}/triggers`` (each with its scheduled time, kind and
execution) and executions through ``GET /api/v1/workflows/{id}/executions``; the
servers' JSON log lines say which process started which fire.
"""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.conftest import RunningServer, start_server
from tests.auth import ADMIN_HEADERS, ADMIN_KEY

pytestmark = pytest.mark.slow

ENV = {"FLOWYARD_BOOTSTRAP_ADMIN_KEY": ADMIN_KEY}
BASE = "/api/v1/workflows"
EVERY_SECOND = "* * * * * *"
WAIT_SECONDS = 60.0  # liveness bound for what the tests wait for, not a performance figure


def cron_workflow(workflow_id: str, version: str = "1.0.0", **trigger: Any) -> dict[str, Any]:
    return {
        "id": workflow_id,
        "name": workflow_id,
        "version": version,
        "nodes": [
            {
                "id": "a",
                "name": "a",
                "type": "transform",
                "config": {"transform_type": "expression", "expression": "1"},
            }
        ],
        "triggers": [{"id": "every", "type": "cron", "schedule": EVERY_SECOND, **trigger}],
    }


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def call(server: RunningServer, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, server.url + path, headers=ADMIN_HEADERS, timeout=30, **kw)


def fires(server: RunningServer, workflow_id: str) -> list[dict[str, Any]]:
    """The fires of the workflow's ``every`` trigger, oldest first."""
    response = call(server, "GET", f"{BASE}/{workflow_id}/triggers", params={"last": 200})
    assert response.status_code == 200, response.text
    (trigger,) = response.json()["triggers"]
    return sorted(trigger["last_fires"], key=lambda fire: fire["scheduled_for"])


def wait_for_fires(server: RunningServer, workflow_id: str, predicate: Any) -> list[dict]:
    """Poll every 100 ms until ``predicate`` holds for the fires; the fires then."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        found = fires(server, workflow_id)
        if predicate(found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{workflow_id}: fires never matched: {found}\n{server.log()}")
        time.sleep(0.1)


def started(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [fire for fire in found if fire["execution_id"]]


def log_entries(server: RunningServer, action: str) -> list[dict[str, Any]]:
    entries = []
    for line in server.log().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("action") == action:
                entries.append(entry)
    return entries


@pytest.mark.postgres
def test_two_servers_on_one_database_start_each_cron_fire_once(
    tmp_path: Path, postgres_url: str
) -> None:
    servers = [
        start_server(
            ["serve", "--database-url", postgres_url, "--data-dir", str(tmp_path / name)],
            tmp_path,
            env=ENV,
        )
        for name in ("a", "b")
    ]
    first, second = servers
    try:
        created = call(first, "POST", BASE, json=cron_workflow("shared"))
        assert created.status_code == 201, created.text
        # a new version published through the second server: both now run the schedule
        newer = call(second, "PUT", f"{BASE}/shared", json=cron_workflow("shared", "1.1.0"))
        assert newer.status_code == 201, newer.text
        both_live = datetime.now(UTC)
        wait_for_fires(
            first,
            "shared",
            lambda found: sum(at(f["scheduled_for"]) > both_live for f in started(found)) >= 6,
        )
        for version in ("1.1.0", "1.0.0"):  # no active version left: no live trigger
            change = {"status": "inactive", "version": version}
            stopped = call(first, "PATCH", f"{BASE}/shared", json=change)
            assert stopped.status_code == 200, stopped.text
        stopped_at = datetime.now(UTC)
        # two more scheduled seconds pass: neither process may fire after the change
        time.sleep(max((stopped_at - datetime.now(UTC)).total_seconds() + 2.5, 0))
        found = wait_for_fires(  # fires under way at the change have started theirs
            second, "shared", lambda found: all(f["execution_id"] for f in found)
        )
        listed = call(second, "GET", f"{BASE}/shared/executions", params={"limit": 200})
        assert listed.status_code == 200, listed.text
        executions = {e["id"] for e in listed.json()["executions"]}
    finally:
        codes = [server.stop(signal.SIGTERM) for server in servers]
    assert codes == [0, 0], "a graceful stop with live schedules exits 0"

    times = [at(fire["scheduled_for"]) for fire in found]
    assert max(times) <= stopped_at, "a process fired after the schedule was deactivated"
    assert all(b - a == timedelta(seconds=1) for a, b in pairwise(times)), times
    ids = [fire["execution_id"] for fire in started(found)]
    assert len(ids) == len(found) >= 6
    assert len(set(ids)) == len(ids)
    assert executions == set(ids)  # every execution is one fire's, none started twice
    # Both processes ran the schedule, and each fire was started by exactly one of them.
    for server in servers:
        scheduled = log_entries(server, "triggers.cron_scheduled")
        assert any(entry["workflow_id"] == "shared" for entry in scheduled), server.log()
    started_by = [
        entry["scheduled_for"]
        for server in servers
        for entry in log_entries(server, "triggers.cron_fired")
        if entry["workflow_id"] == "shared"
    ]
    assert sorted(at(text) for text in started_by) == times


def test_misfire_policies_after_kill_9_and_restart(tmp_path: Path) -> None:
    policies = {
        "once": {},  # run_once is the default
        "skip": {"misfire": "skip"},
        "all": {"misfire": "run_all", "max_catch_up": 2},
    }
    args = ["serve", "--data-dir", str(tmp_path / "data")]
    first = start_server(args, tmp_path, env=ENV)
    try:
        for workflow_id, trigger in policies.items():
            response = call(first, "POST", BASE, json=cron_workflow(workflow_id, **trigger))
            assert response.status_code == 201, response.text
        for workflow_id in policies:
            wait_for_fires(first, workflow_id, lambda found: len(started(found)) >= 2)
    finally:
        first.stop(signal.SIGKILL)
        killed = datetime.now(UTC)
    time.sleep(3.5)  # the server stays down across three or more scheduled fires
    second = start_server(args, tmp_path, env=ENV)
    restarted = datetime.now(UTC)
    try:
        outcome = {
            workflow_id: wait_for_fires(
                second,
                workflow_id,
                lambda found: (
                    all(f["execution_id"] for f in found)
                    and any(
                        f["kind"] == "scheduled" and at(f["scheduled_for"]) > restarted
                        for f in found
                    )
                ),
            )
            for workflow_id in policies
        }
    finally:
        second.stop(signal.SIGKILL)

    caught_up = {}
    for workflow_id, found in outcome.items():
        before = [at(f["scheduled_for"]) for f in found if at(f["scheduled_for"]) <= killed]
        # the first fire the restarted process ran on schedule (it may come due while
        # the process is still starting, before ``restarted`` was measured)
        resumed = min(
            at(f["scheduled_for"])
            for f in found
            if f["kind"] == "scheduled" and at(f["scheduled_for"]) > killed
        )
        assert before, workflow_id
        missed = (resumed - max(before)).total_seconds() - 1
        assert missed >= 3, f"{workflow_id}: the premise (3 missed fires) does not hold"
        catch_ups = [at(f["scheduled_for"]) for f in found if f["kind"] == "catch_up"]
        # the newest missed fires, right before the schedule resumed
        assert catch_ups == [resumed - timedelta(seconds=n) for n in range(len(catch_ups), 0, -1)]
        caught_up[workflow_id] = len(catch_ups)
    assert caught_up == {"once": 1, "skip": 0, "all": 2}
