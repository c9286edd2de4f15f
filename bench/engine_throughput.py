"""Flowyard engine throughput, per-node cost and memory (no HTTP), on SQLite WAL/NORMAL.

Builds the engine the way ``server.app.create_app`` does (Database + migrations,
WorkflowRegistry, Journal, Engine, ExecutionService) on a fresh SQLite file in a temp
dir, publishes the benchmark workflows and runs one phase per subprocess, so each phase
starts from a fresh process, a fresh database and a clean heap:

* ``sequential`` — N executions of a 10-node ``transform`` chain, one after another
  (start → wait until finished); executions/s.
* ``concurrent`` — C executions started at once (``asyncio.gather`` of the starts and
  waits); executions/s from the first start to the last finish.
* ``marginal`` — the engine's marginal cost per node: pairs of executions of a 10-node
  and a 20-node chain, interleaved; per pair (t20 - t10) / 10; median and p99. Also the
  gap between consecutive node completions read back from ``node_runs``.
* ``memory`` — RSS added by W executions of a one-node workflow whose node is a 1-hour
  timer, once all are waiting and released (no runner in memory), after gc.collect().

Every node is durably recorded: each node result is committed by the journal (SQLite
WAL, synchronous=NORMAL) before the next node is dispatched.

    .venv/bin/python bench/engine_throughput.py            # all phases, JSON to bench/results
    .venv/bin/python bench/engine_throughput.py --quick    # smaller counts, a smoke test
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results"
PHASES = ("sequential", "concurrent", "marginal", "memory")


# --- definitions ------------------------------------------------------------------------


def chain(workflow_id: str, length: int) -> dict[str, Any]:
    """``length`` transform nodes; each reads the previous node's dict and bumps a field."""
    nodes = []
    for i in range(1, length + 1):
        source = "doc" if i == 1 else f"s{i - 1}['result']"
        nodes.append(
            {
                "id": f"t{i}",
                "name": f"Step {i}",
                "type": "transform",
                "config": {
                    "transform_type": "expression",
                    "expression": (
                        f"{{'n': {source}['n'] + 1, 'tag': {source}['tag'], 'step': {i}}}"
                    ),
                },
                "output_key": f"s{i}",
            }
        )
    edges = [{"from_node": f"t{i}", "to_node": f"t{i + 1}"} for i in range(1, length)]
    return {
        "id": workflow_id,
        "name": f"Bench chain of {length}",
        "version": "1.0.0",
        "status": "active",
        "variables": {
            "doc": {"name": "doc", "type": "object", "required": True, "description": "input"}
        },
        "nodes": nodes,
        "edges": edges,
    }


def timer_workflow() -> dict[str, Any]:
    return {
        "id": "bench-timer",
        "name": "Bench timer",
        "version": "1.0.0",
        "status": "active",
        "nodes": [{"id": "wait", "name": "Wait", "type": "timer", "config": {"duration": "1h"}}],
        "edges": [],
    }


# --- the engine, wired as in server/app.py --------------------------------------------


class Harness:
    def __init__(self, directory: Path) -> None:
        self.path = directory / "flowyard.db"
        self.url = f"sqlite+aiosqlite:///{self.path}"

    async def __aenter__(self) -> Harness:
        from processors.registry import default_registry
        from server.config import Settings
        from server.definitions.context import ValidationContext
        from server.engine.engine import Engine
        from server.engine.journal import Journal
        from server.engine.service import ExecutionService
        from server.registry.service import WorkflowRegistry
        from server.store.database import Database
        from server.store.migrate import upgrade

        settings = Settings()
        self.database = Database(self.url)
        await upgrade(self.database)
        context = ValidationContext(connections=frozenset(), smtp_accounts=frozenset())
        self.registry = WorkflowRegistry(self.database, lambda: context)
        self.engine = Engine(
            Journal(self.url), default_registry(), max_workers=settings.server.max_workers
        )
        self.service = ExecutionService(self.registry, self.engine, settings)
        await self.engine.start()
        for document in (chain("chain10", 10), chain("chain20", 20), timer_workflow()):
            await self.registry.create(document)
        return self

    async def __aexit__(self, *_: Any) -> None:
        await self.engine.stop(grace=5)
        await self.database.dispose()

    async def run_one(self, workflow_id: str, n: int = 0) -> str:
        from server.engine.service import StartOptions

        execution_id, _ = await self.service.start(
            workflow_id, StartOptions(input={"doc": {"n": n, "tag": "bench"}})
        )
        if execution_id in self.engine.runners:
            finished = await self.engine.wait_finished(execution_id, 60)
            if not finished and execution_id in self.engine.runners:
                raise RuntimeError(f"execution {execution_id} did not finish in 60 s")
        return execution_id

    async def pragmas(self) -> dict[str, Any]:
        with sqlite3.connect(self.path) as db:
            mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        # synchronous is per connection: ask the journal's own connection.
        sync = await self.engine.journal.run(
            lambda connection: connection.exec_driver_sql("PRAGMA synchronous").scalar()
        )
        return {"journal_mode": mode, "synchronous": {1: "NORMAL", 2: "FULL"}.get(sync, sync)}

    def check(self, ids: list[str], nodes: int) -> None:
        """Every execution completed, with ``nodes`` completed node runs each."""
        with sqlite3.connect(self.path) as db:
            placeholders = ",".join("?" * len(ids))
            done = db.execute(
                "SELECT count(*) FROM executions "
                f"WHERE status='completed' AND id IN ({placeholders})",
                ids,
            ).fetchone()[0]
            runs = db.execute(
                f"SELECT count(*) FROM node_runs WHERE status='completed' "
                f"AND execution_id IN ({placeholders})",
                ids,
            ).fetchone()[0]
        if done != len(ids) or runs != len(ids) * nodes:
            raise RuntimeError(
                f"check failed: {done}/{len(ids)} completed, {runs}/{len(ids) * nodes} node runs"
            )

    def node_gaps_ms(self, ids: list[str]) -> list[float]:
        """Time between consecutive node completions inside each execution (ms)."""
        from datetime import datetime

        gaps: list[float] = []
        with sqlite3.connect(self.path) as db:
            for execution_id in ids:
                rows = db.execute(
                    "SELECT completed_at FROM node_runs "
                    "WHERE execution_id=? AND status='completed' ORDER BY seq",
                    (execution_id,),
                ).fetchall()
                times = [datetime.fromisoformat(str(r[0])) for r in rows]
                gaps += [(b - a).total_seconds() * 1000 for a, b in itertools.pairwise(times)]
        return gaps


# --- phases ---------------------------------------------------------------------------


def rss_mb(field: str = "VmRSS") -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def phase_sequential(h: Harness, n: int, warmup: int) -> dict[str, Any]:
    for i in range(warmup):
        await h.run_one("chain10", i)
    ids = []
    latencies = []
    began = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        ids.append(await h.run_one("chain10", i))
        latencies.append((time.perf_counter() - t) * 1000)
    elapsed = time.perf_counter() - began
    h.check(ids, 10)
    return {
        "executions": n,
        "nodes_per_execution": 10,
        "seconds": elapsed,
        "executions_per_s": n / elapsed,
        "latency_ms_median": statistics.median(latencies),
        "latency_ms_p99": pct(latencies, 99),
        "commits": h.engine.journal.commits,
        "units": h.engine.journal.units,
    }


async def phase_concurrent(h: Harness, n: int, warmup: int) -> dict[str, Any]:
    await asyncio.gather(*(h.run_one("chain10", i) for i in range(warmup)))
    commits0, units0 = h.engine.journal.commits, h.engine.journal.units
    began = time.perf_counter()
    ids = await asyncio.gather(*(h.run_one("chain10", i) for i in range(n)))
    elapsed = time.perf_counter() - began
    h.check(list(ids), 10)
    commits = h.engine.journal.commits - commits0
    units = h.engine.journal.units - units0
    return {
        "executions": n,
        "nodes_per_execution": 10,
        "seconds": elapsed,
        "executions_per_s": n / elapsed,
        "node_results_per_s": n * 10 / elapsed,
        "commits": commits,
        "units": units,
        "units_per_commit": units / commits if commits else None,
    }


async def phase_marginal(h: Harness, pairs: int, warmup: int) -> dict[str, Any]:
    for i in range(warmup):
        await h.run_one("chain10", i)
        await h.run_one("chain20", i)
    t10, t20, ids10, ids20 = [], [], [], []
    for i in range(pairs):
        # Alternate the order so drift (WAL growth, checkpoints) hits both sides alike.
        order = ("chain10", "chain20") if i % 2 == 0 else ("chain20", "chain10")
        for workflow in order:
            t = time.perf_counter()
            execution_id = await h.run_one(workflow, i)
            ms = (time.perf_counter() - t) * 1000
            if workflow == "chain10":
                t10.append(ms)
                ids10.append(execution_id)
            else:
                t20.append(ms)
                ids20.append(execution_id)
    h.check(ids10, 10)
    h.check(ids20, 20)
    per_pair = [(b - a) / 10 for a, b in zip(t10, t20, strict=True)]
    gaps = h.node_gaps_ms(ids20)
    return {
        "pairs": pairs,
        "chain10_ms_median": statistics.median(t10),
        "chain20_ms_median": statistics.median(t20),
        "marginal_ms_from_medians": (statistics.median(t20) - statistics.median(t10)) / 10,
        "marginal_ms_median": statistics.median(per_pair),
        "marginal_ms_p99": pct(per_pair, 99),
        "marginal_ms_mean": statistics.fmean(per_pair),
        "node_gap_ms_median": statistics.median(gaps),
        "node_gap_ms_p99": pct(gaps, 99),
        "fixed_cost_ms_per_execution": statistics.median(t10)
        - 10 * (statistics.median(t20) - statistics.median(t10)) / 10,
    }


async def phase_memory(h: Harness, waiting: int, batch: int) -> dict[str, Any]:
    from server.engine.service import StartOptions

    async def start_batch(count: int) -> list[str]:
        started = await asyncio.gather(
            *(h.service.start("bench-timer", StartOptions(input={})) for _ in range(count))
        )
        return [execution_id for execution_id, _ in started]

    async def settle(expected: int) -> float:
        t = time.perf_counter()
        while True:
            with sqlite3.connect(h.path) as db:
                waits = db.execute("SELECT count(*) FROM waits").fetchone()[0]
            if waits >= expected and not h.engine.runners:
                return time.perf_counter() - t
            await asyncio.sleep(0.05)

    # Warm up (imports, caches, pools) with a few, then take the baseline.
    warm = await start_batch(100)
    await settle(len(warm))
    gc.collect()
    before = rss_mb()
    began = time.perf_counter()
    ids: list[str] = []
    while len(ids) < waiting:
        ids += await start_batch(min(batch, waiting - len(ids)))
    started_s = time.perf_counter() - began
    settle_s = await settle(len(warm) + waiting)
    await asyncio.sleep(0.5)
    gc.collect()
    after = rss_mb()
    with sqlite3.connect(h.path) as db:
        statuses = dict(
            db.execute("SELECT status, count(*) FROM executions GROUP BY status").fetchall()
        )
    return {
        "waiting_executions": waiting,
        "rss_mb_before": before,
        "rss_mb_after": after,
        "rss_mb_added": after - before,
        "peak_rss_mb": rss_mb("VmHWM"),
        "kb_per_waiting_execution": (after - before) * 1024 / waiting,
        "runners_in_memory": len(h.engine.runners),
        "engine_tasks": len(h.engine._tasks),
        "execution_statuses": statuses,
        "start_seconds": started_s,
        "starts_per_s": waiting / started_s,
        "settle_seconds": settle_s,
    }


async def run_phase(name: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="flowyard-bench-") as directory:
        async with Harness(Path(directory)) as h:
            if name == "sequential":
                result = await phase_sequential(h, args.sequential, args.warmup)
            elif name == "concurrent":
                result = await phase_concurrent(h, args.concurrent, args.warmup)
            elif name == "marginal":
                result = await phase_marginal(h, args.pairs, args.warmup)
            else:
                result = await phase_memory(h, args.waiting, args.batch)
            result["sqlite"] = await h.pragmas()
            return result


def versions() -> dict[str, Any]:
    import sqlalchemy

    return {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
    }


# --- main --------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase", choices=PHASES, help="run one phase in this process")
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--concurrent", type=int, default=500)
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--waiting", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500, help="starts gathered at once (memory)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="small counts (smoke test)")
    parser.add_argument("--only", nargs="*", choices=PHASES, default=list(PHASES))
    parser.add_argument("--out", type=Path, default=RESULTS / "engine.json")
    args = parser.parse_args()
    if args.quick:
        args.sequential, args.concurrent, args.pairs, args.waiting, args.warmup = 20, 50, 20, 500, 5

    if args.phase:
        result = asyncio.run(run_phase(args.phase, args))
        print(json.dumps(result, default=str))
        return

    forwarded = [
        f"--{k}={getattr(args, k)}"
        for k in ("sequential", "concurrent", "pairs", "waiting", "batch", "warmup")
    ]
    results: dict[str, Any] = {
        "versions": versions(),
        "parameters": {
            k: getattr(args, k) for k in ("sequential", "concurrent", "pairs", "waiting", "warmup")
        },
    }
    for phase in args.only:
        print(f"engine: {phase} …", file=sys.stderr, flush=True)
        done = subprocess.run(
            [sys.executable, __file__, f"--phase={phase}", *forwarded],
            check=True,
            capture_output=True,
            text=True,
        )
        if done.stderr.strip():
            print(done.stderr, file=sys.stderr)
        results[phase] = json.loads(done.stdout.strip().splitlines()[-1])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print_table(results)
    print(f"\nwritten {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


def print_table(r: dict[str, Any]) -> None:
    rows = []
    if "sequential" in r:
        s = r["sequential"]
        rows.append(
            (
                "sequential, 10-node chain",
                f"{s['executions_per_s']:.1f} exec/s",
                f"latency median {s['latency_ms_median']:.2f} ms, p99 {s['latency_ms_p99']:.2f} ms",
            )
        )
    if "concurrent" in r:
        c = r["concurrent"]
        rows.append(
            (
                f"{c['executions']} started at once",
                f"{c['executions_per_s']:.1f} exec/s",
                f"{c['node_results_per_s']:.0f} node results/s, "
                f"{c['units_per_commit']:.1f} units/commit",
            )
        )
    if "marginal" in r:
        m = r["marginal"]
        rows.append(
            (
                "marginal cost per node",
                f"median {m['marginal_ms_median']:.3f} ms",
                f"p99 {m['marginal_ms_p99']:.3f} ms; node-to-node gap median "
                f"{m['node_gap_ms_median']:.3f} ms, p99 {m['node_gap_ms_p99']:.3f} ms",
            )
        )
    if "memory" in r:
        m = r["memory"]
        rows.append(
            (
                f"{m['waiting_executions']} waiting on timers",
                f"+{m['rss_mb_added']:.1f} MB RSS",
                f"{m['kb_per_waiting_execution']:.2f} KB each; "
                f"runners left {m['runners_in_memory']}",
            )
        )
    width = max(len(a) for a, _, _ in rows)
    for a, b, c in rows:
        print(f"{a:<{width}}  {b:>22}  {c}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
