"""kill -9 in the middle of ~50 executions, restart on the same data dir (SPEC §5 Durability).

The real ``flowyard serve`` runs three workflows whose ``task`` nodes call the handlers
of :mod:`tests.acceptance.crash_handlers`, which append ``start``/``end`` lines to a
side-effect log:

* ``crash-timer``: a 3 s timer, then 0.2 s of work;
* ``crash-chain``: three 0.6 s steps in a row;
* ``crash-retry``: a node failing twice (retried after a fixed 1 s), then 0.1 s of work.

The executions are created with ``start_at`` times spread over one chain step, so the
schedule does not depend on how fast a busy machine answers the POSTs. 1.5 s after the
first start, while chain steps are running, timers are pending and retries are waiting
out their back-off, the server gets SIGKILL. It stays down 3 s, so every timer and retry
comes due while nothing runs, and is started again on the same SQLite file. Then every
execution must complete; nothing recorded as finished before the kill may run again; an
interrupted node runs again (at-least-once) but at most once more, with the same
idempotency key; and the overdue timers fire as soon as the server is back. The test also
checks its own premises (a node really was interrupted, timers and retries really were
pending), so a change of timing cannot make it pass without testing anything.
"""

from __future__ import annotations

import os
import signal
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.conftest import REPO, RunningServer, start_server
from tests.auth import ADMIN_HEADERS

pytestmark = pytest.mark.slow

EXECUTIONS = 50
LEAD = 3.0  # seconds from the first POST to the first start: time to create all of them
STEP_SECONDS = 0.6  # one chain step; the executions' starts are spread over one step
KILL_AFTER = 1.5  # seconds after the first start: chains in step 2 or 3, retries waiting
DOWN_FOR = 3.0  # longer than what remains of every timer at the kill
TIMER_SECONDS = 3.0
COMPLETION_TIMEOUT = 60.0  # liveness bound, not a performance threshold
TIMER_FIRE_BOUND = 15.0  # overdue timers fire within this long of the restart
#: Nodes whose handler is ``slow-append``: the ones with a ``start`` … ``end`` window.
SLOW_NODES = frozenset({"after-timer", "step-1", "step-2", "step-3", "after-retry"})


def _slow(node_id: str, seconds: float) -> dict[str, Any]:
    return {
        "id": node_id,
        "name": node_id,
        "type": "task",
        "config": {"handler": "slow-append", "args": {"log": "${log_path}", "seconds": seconds}},
    }


def _workflow(workflow_id: str, nodes: list[dict[str, Any]]) -> dict[str, Any]:
    ids = [node["id"] for node in nodes]
    return {
        "id": workflow_id,
        "name": workflow_id,
        "version": "1.0.0",
        "status": "active",
        "variables": {"log_path": {"name": "log_path", "type": "string", "required": True}},
        "nodes": nodes,
        "edges": [{"from_node": a, "to_node": b} for a, b in pairwise(ids)],
    }


WORKFLOWS = [
    _workflow(
        "crash-timer",
        [
            {"id": "wait", "name": "wait", "type": "timer", "config": {"duration": TIMER_SECONDS}},
            _slow("after-timer", 0.2),
        ],
    ),
    _workflow(
        "crash-chain",
        [
            _slow("step-1", STEP_SECONDS),
            _slow("step-2", STEP_SECONDS),
            _slow("step-3", STEP_SECONDS),
        ],
    ),
    _workflow(
        "crash-retry",
        [
            {
                "id": "flaky",
                "name": "flaky",
                "type": "task",
                "config": {"handler": "flaky", "args": {"log": "${log_path}", "fail_times": 2}},
                "retry_policy": {"max_attempts": 4, "delay": "1s", "backoff": "fixed"},
            },
            _slow("after-retry", 0.1),
        ],
    ),
]


@dataclass(frozen=True)
class Line:
    event: str  # start | end
    key: str
    attempt: int
    at: float
    execution_id: str
    node_id: str


def read_side_effects(path: Path) -> list[Line]:
    lines = []
    for text in path.read_text().splitlines():
        event, key, attempt, at, execution_id, node_id = text.split(" ")
        lines.append(Line(event, key, int(attempt), float(at), execution_id, node_id))
    return lines


def timestamp(value: str) -> float:
    moment = datetime.fromisoformat(value)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def start_all(server: RunningServer, log_path: Path, begin: float) -> dict[str, str]:
    """Upload the workflows and start the executions; execution id -> workflow id.

    Each execution is created with a ``start_at`` between ``begin`` and ``begin`` + one
    chain step, so when they begin does not depend on how fast the POSTs were answered
    (the machine may be busy), and at any moment some chains are in the middle of a step.
    """
    started: dict[str, str] = {}
    with httpx.Client(base_url=server.url, headers=ADMIN_HEADERS, timeout=10) as client:
        for document in WORKFLOWS:
            created = client.post("/api/v1/workflows", json=document)
            assert created.status_code == 201, created.text
        for index in range(EXECUTIONS):
            workflow_id = WORKFLOWS[index % len(WORKFLOWS)]["id"]
            start_at = begin + STEP_SECONDS * index / EXECUTIONS
            response = client.post(
                f"/api/v1/workflows/{workflow_id}/execute",
                json={
                    "input": {"log_path": str(log_path)},
                    "start_at": datetime.fromtimestamp(start_at, UTC).isoformat(),
                },
            )
            assert response.status_code == 201, response.text
            started[response.json()["id"]] = workflow_id
    assert time.time() < begin, "starting the executions took longer than LEAD"
    return started


def wait_all_finished(server: RunningServer, ids: set[str]) -> dict[str, dict[str, Any]]:
    """Every execution's JSON once none is pending or running (or fail after the bound)."""
    deadline = time.monotonic() + COMPLETION_TIMEOUT
    with httpx.Client(base_url=server.url, headers=ADMIN_HEADERS, timeout=10) as client:
        while True:
            listed = client.get("/api/v1/workflows/executions", params={"limit": 200}).json()
            statuses = {e["id"]: e["status"] for e in listed["executions"] if e["id"] in ids}
            if len(statuses) == len(ids) and all(
                s in ("completed", "failed", "cancelled") for s in statuses.values()
            ):
                break
            if time.monotonic() > deadline:
                pending = {i: s for i, s in statuses.items() if s not in ("completed",)}
                pytest.fail(
                    f"not finished {COMPLETION_TIMEOUT:.0f}s after the restart: {pending}\n"
                    f"server log:\n{server.log()[-5000:]}"
                )
            time.sleep(0.2)
        executions = {}
        for execution_id in sorted(ids):
            path = f"/api/v1/workflows/executions/{execution_id}"
            execution = client.get(path).json()
            execution["events"] = client.get(f"{path}/events").json()["events"]  # for messages
            executions[execution_id] = execution
        return executions


def test_kill_9_mid_run_then_restart_repeats_only_interrupted_work(tmp_path: Path) -> None:
    log_path = tmp_path / "side-effects.log"
    log_path.touch()
    args = ["serve", "--data-dir", str(tmp_path / "data")]
    env = {
        "FLOWYARD_TASKS_HANDLER_MODULES": "tests.acceptance.crash_handlers",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }

    first = start_server(args, tmp_path, env=env)
    try:
        begin = time.time() + LEAD
        started = start_all(first, log_path, begin)
        time.sleep(max(begin + KILL_AFTER - time.time(), 0.0))
    finally:
        first.stop(signal.SIGKILL)
        # Every line and commit of the first process is older than this; every one of the
        # second process is newer than ``restarted_at``.
        crashed_at = time.time()
    time.sleep(DOWN_FOR)
    restarted_at = time.time()
    second = start_server(args, tmp_path, env=env)
    try:
        executions = wait_all_finished(second, set(started))
    finally:
        second.stop(signal.SIGKILL)

    not_completed = {
        execution_id: (execution["status"], execution.get("error"))
        for execution_id, execution in executions.items()
        if execution["status"] != "completed"
    }
    assert not not_completed, f"{not_completed}\nserver log:\n{second.log()[-5000:]}"
    lines = read_side_effects(log_path)
    assert {line.execution_id for line in lines} == set(started)
    for line in lines:  # the same key before and after the crash, for every attempt
        assert line.key == f"{line.execution_id}:{line.node_id}", line

    check_nothing_finished_ran_again(executions, lines, crashed_at, restarted_at)
    check_interrupted_runs_ran_once_more(lines, crashed_at, restarted_at)
    check_work_done_once_per_node(executions, started, lines)
    check_overdue_timers_fired_at_restart(executions, started, crashed_at, restarted_at)


def check_nothing_finished_ran_again(
    executions: dict[str, dict[str, Any]], lines: list[Line], crashed_at: float, restarted_at: float
) -> None:
    """A run recorded as finished before the crash never starts again after the restart;
    a node recorded as completed does not start again under any attempt."""
    finished_before = 0
    for execution_id, execution in executions.items():
        for node in execution["executed_nodes"]:
            if node["completed_at"] is None or timestamp(node["completed_at"]) >= crashed_at:
                continue
            finished_before += 1
            again = [
                line
                for line in lines
                if line.event == "start"
                and (line.execution_id, line.node_id) == (execution_id, node["node_id"])
                and line.at > restarted_at
                and (node["status"] == "completed" or line.attempt == node["attempt"])
            ]
            assert not again, f"{node['node_id']}, {node['status']} before the kill, ran again"
    assert finished_before > 0, "the kill came before any node finished: adjust the timings"


def check_interrupted_runs_ran_once_more(
    lines: list[Line], crashed_at: float, restarted_at: float
) -> None:
    """Each (execution, node, attempt) starts at most twice, the second time only after
    the restart; a slow run cut short by the kill (a start, no end) does start again."""
    runs: dict[tuple[str, str, int], list[Line]] = defaultdict(list)
    for line in lines:
        runs[(line.execution_id, line.node_id, line.attempt)].append(line)
    interrupted = []
    for (execution_id, node_id, attempt), group in runs.items():
        starts = sorted(line.at for line in group if line.event == "start")
        run = f"{execution_id}:{node_id} attempt {attempt}"
        assert len(starts) <= 2, f"{run} started {len(starts)} times"
        if len(starts) == 2:
            assert starts[0] < crashed_at < restarted_at < starts[1], (run, starts)
        before = [line.event for line in group if line.at < crashed_at]
        if node_id in SLOW_NODES and "start" in before and "end" not in before:
            assert len(starts) == 2, f"{run} was cut short by the kill and did not run again"
            interrupted.append(run)
    assert interrupted, "no node was running at the kill: adjust the timings"
    retried = [
        ln for ln in lines if ln.node_id == "flaky" and ln.attempt > 1 and ln.at > restarted_at
    ]
    assert retried, "no retry back-off spanned the kill: adjust the timings"


def check_work_done_once_per_node(
    executions: dict[str, dict[str, Any]], started: dict[str, str], lines: list[Line]
) -> None:
    """The recorded run of every slow node finished its work; the flaky node succeeded on
    its third attempt, after two retries."""
    ended = {(ln.execution_id, ln.node_id, ln.attempt) for ln in lines if ln.event == "end"}
    for execution_id, execution in executions.items():
        completed = {
            node["node_id"]: node
            for node in execution["executed_nodes"]
            if node["status"] == "completed"
        }
        for node_id in set(completed) & SLOW_NODES:
            assert (execution_id, node_id, completed[node_id]["attempt"]) in ended
        if started[execution_id] == "crash-retry":
            assert completed["flaky"]["attempt"] == 3
            assert completed["flaky"]["output"] == {"succeeded_on_attempt": 3}


def check_overdue_timers_fired_at_restart(
    executions: dict[str, dict[str, Any]],
    started: dict[str, str],
    crashed_at: float,
    restarted_at: float,
) -> None:
    """The timers that came due while the server was down fired right after the restart.

    By design every timer is waiting at the kill; on a very busy machine an execution may
    not have reached its timer before the kill, and then its timer starts after the
    restart and is not one of the overdue ones (but it still fires, and not early).
    """
    overdue = []
    for execution_id, workflow_id in started.items():
        if workflow_id != "crash-timer":
            continue
        execution = executions[execution_id]
        (timer,) = [n for n in execution["executed_nodes"] if n["node_id"] == "wait"]
        fired = timestamp(timer["output"]["fired_at"])
        waited_from = fired - timer["output"]["waited_seconds"]
        due = waited_from + TIMER_SECONDS
        history = "\n".join(
            f"  {e['at']} {e['type']} {e['node_id'] or ''} {e['data']}" for e in execution["events"]
        )
        described = (
            f"timer of {execution_id}: waiting from {waited_from:.3f}, due {due:.3f}, fired "
            f"{fired:.3f}; crash {crashed_at:.3f}, restart {restarted_at:.3f}\n{history}"
        )
        assert fired >= due - 0.01, described
        if waited_from < crashed_at:
            assert due < restarted_at, described
            assert restarted_at <= fired <= restarted_at + TIMER_FIRE_BOUND, described
            overdue.append(execution_id)
        else:  # it started waiting after the restart: no wait was committed before the kill
            assert waited_from > restarted_at, described
            committed = [
                e
                for e in execution["events"]
                if e["type"] == "node.waiting" and timestamp(e["at"]) < crashed_at
            ]
            assert not committed, f"a committed wait was started again\n{described}"
    assert overdue, "no timer was waiting at the kill: adjust the timings"
