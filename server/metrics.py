"""Real figures about this server: what ``/api/v1/workflows/metrics`` and ``/metrics`` show.

Counts come from the database (so every process reports the same totals); the process
figures (uptime, memory, CPU, what this engine has in memory) are this process's own.
"""

from __future__ import annotations

import os
import resource
import time
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from server.engine.engine import Engine
from server.store import executions as store
from server.store.database import Database

EXECUTION_STATUSES = ("pending", "running", "completed", "failed", "cancelled", "suspended")


async def snapshot(database: Database, engine: Engine, started_at: float) -> dict[str, Any]:
    async with database.reader() as session:
        by_status = await store.counts_by_status(session)
        durations = sorted(await store.recent_durations(session))
        node_runs = await store.node_runs_by_status(session)
        waiting = await store.waiting_executions(session)
    return {
        "executions": {
            "total": sum(by_status.values()),
            "by_status": {status: by_status.get(status, 0) for status in EXECUTION_STATUSES},
            "waiting": waiting,
            "duration_seconds": {
                "sample": len(durations),
                "average": round(sum(durations) / len(durations), 6) if durations else None,
                "p95": round(_percentile(durations, 0.95), 6) if durations else None,
            },
        },
        "node_runs": {"total": sum(node_runs.values()), "by_status": node_runs},
        "engine": {
            "executions_in_memory": len(engine.runners),
            "nodes_run_by_this_process": engine.nodes_run,
            "max_workers": engine.max_workers,
            "journal_commits": engine.journal.commits,
            "journal_units": engine.journal.units,
        },
        "process": {
            "uptime_seconds": round(time.monotonic() - started_at, 3),
            "memory_rss_bytes": _rss_bytes(),
            "cpu_seconds": round(time.process_time(), 3),
            "pid": os.getpid(),
        },
    }


def prometheus_text(figures: dict[str, Any]) -> bytes:
    registry = CollectorRegistry()
    executions = Gauge("flowyard_executions", "Executions by status", ["status"], registry=registry)
    for status, count in figures["executions"]["by_status"].items():
        executions.labels(status=status).set(count)
    Gauge(
        "flowyard_executions_waiting",
        "Executions waiting on a timer, person or callback",
        registry=registry,
    ).set(figures["executions"]["waiting"])
    duration = figures["executions"]["duration_seconds"]
    runtime = Gauge(
        "flowyard_execution_duration_seconds",
        "Run time of recent completed executions",
        ["stat"],
        registry=registry,
    )
    for stat in ("average", "p95"):
        if duration[stat] is not None:
            runtime.labels(stat=stat).set(duration[stat])
    nodes = Gauge("flowyard_node_runs", "Node runs by status", ["status"], registry=registry)
    for status, count in figures["node_runs"]["by_status"].items():
        nodes.labels(status=status).set(count)
    engine = figures["engine"]
    Gauge(
        "flowyard_engine_executions_in_memory",
        "Executions driven by this process",
        registry=registry,
    ).set(engine["executions_in_memory"])
    Gauge(
        "flowyard_engine_nodes_run", "Nodes run by this process since start", registry=registry
    ).set(engine["nodes_run_by_this_process"])
    process = figures["process"]
    Gauge("flowyard_process_uptime_seconds", "Seconds since start", registry=registry).set(
        process["uptime_seconds"]
    )
    Gauge("flowyard_process_memory_rss_bytes", "Resident memory", registry=registry).set(
        process["memory_rss_bytes"]
    )
    Gauge("flowyard_process_cpu_seconds", "CPU time used", registry=registry).set(
        process["cpu_seconds"]
    )
    return generate_latest(registry)


def _percentile(values: list[float], fraction: float) -> float:
    index = max(0, min(len(values) - 1, round(fraction * (len(values) - 1))))
    return values[index]


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
