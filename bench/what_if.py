"""What-if experiments: the sequential 10-node chain with one mechanism swapped out.

Nothing here changes the engine's code: each experiment patches a function at run time,
in this process only, to measure how much of the time one mechanism accounts for. Some
patches drop a guarantee (say so in their description); they size the cost, they are
not proposals as they stand.

    .venv/bin/python bench/what_if.py [--executions 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EXPERIMENTS: dict[str, str] = {
    "baseline": "the engine as it is",
    "switchinterval": "sys.setswitchinterval(0.0002) (GIL hand-over 0.2 ms instead of 5 ms)",
    "inline_eval": "expressions evaluated on the loop thread (no asyncio.to_thread + wait_for)",
    "no_mark_started": "node.started not committed separately (drops the 'running' marker: "
    "sizes the cost of the second transaction per node)",
    "pinned_cache": "registry.pinned answered from an in-process cache (needs invalidation "
    "on publish/status change)",
    "static_update_run": "update_run as one prepared UPDATE of the changed columns "
    "(statement built once; no per-call .values() cache-key walk)",
    "all": "all of the above together",
}


def apply(name: str) -> None:
    parts = list(EXPERIMENTS) if name == "all" else [name]
    if "switchinterval" in parts:
        sys.setswitchinterval(0.0002)
    if "inline_eval" in parts:
        import server.engine.engine as engine_module
        from server.expressions import evaluate

        async def evaluate_inline(
            text: str, scope: Any, *, limits: Any = None, extra_functions: Any = None
        ) -> Any:
            kwargs = {"extra_functions": extra_functions}
            if limits is not None:
                kwargs["limits"] = limits
            return evaluate(text, scope, **kwargs)

        engine_module.evaluate_async = evaluate_inline
    if "no_mark_started" in parts:
        import server.engine.runner as runner_module

        runner_module._mark_started = lambda execution_id, run: lambda connection: None
    if "pinned_cache" in parts:
        from server.registry.service import WorkflowRegistry

        original = WorkflowRegistry.pinned
        cache: dict[Any, Any] = {}

        async def pinned(self: Any, workflow_id: str, version: str | None = None) -> Any:
            key = (workflow_id, version)
            if key not in cache:
                cache[key] = await original(self, workflow_id, version)
            return cache[key]

        WorkflowRegistry.pinned = pinned  # type: ignore[method-assign]
    if "static_update_run" in parts:
        from sqlalchemy import bindparam, update

        import server.store.runs as store

        statements: dict[tuple[str, ...], Any] = {}

        def update_run(conn: Any, run_id: str, values: Any) -> None:
            columns = tuple(sorted(values))
            statement = statements.get(columns)
            if statement is None:
                statement = (
                    update(store.node_runs)
                    .where(store.node_runs.c.id == bindparam("_run_id"))
                    .values({c: bindparam(c) for c in columns})
                )
                statements[columns] = statement
            conn.execute(statement, {"_run_id": run_id, **values})

        store.update_run = update_run


async def measure(executions: int) -> dict[str, Any]:
    from bench.engine_throughput import Harness

    with tempfile.TemporaryDirectory(prefix="flowyard-whatif-") as directory:
        async with Harness(Path(directory)) as h:
            for i in range(20):
                await h.run_one("chain10", i)
            ids, latencies = [], []
            began = time.perf_counter()
            for i in range(executions):
                t = time.perf_counter()
                ids.append(await h.run_one("chain10", i))
                latencies.append((time.perf_counter() - t) * 1000)
            elapsed = time.perf_counter() - began
            h.check(ids, 10)
            began = time.perf_counter()
            together = await asyncio.gather(*(h.run_one("chain10", i) for i in range(500)))
            concurrent_s = time.perf_counter() - began
            h.check(list(together), 10)
    return {
        "executions_per_s": executions / elapsed,
        "latency_ms_median": statistics.median(latencies),
        "concurrent_500_per_s": 500 / concurrent_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executions", type=int, default=200)
    parser.add_argument("--experiment", choices=EXPERIMENTS)
    parser.add_argument("--only", nargs="*", choices=EXPERIMENTS, default=list(EXPERIMENTS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "what_if.json")
    args = parser.parse_args()
    if args.experiment:
        apply(args.experiment)
        print(json.dumps(asyncio.run(measure(args.executions))))
        return
    results = {}
    print(f"{'experiment':<18} {'seq exec/s':>10} {'median ms':>10} {'500 at once/s':>14}  what")
    for name in args.only:
        done = subprocess.run(
            [sys.executable, __file__, f"--experiment={name}", f"--executions={args.executions}"],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ},
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        results[name] = {**result, "what": EXPERIMENTS[name]}
        print(
            f"{name:<18} {result['executions_per_s']:>10.1f} {result['latency_ms_median']:>10.2f} "
            f"{result['concurrent_500_per_s']:>14.1f}  {EXPERIMENTS[name]}",
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
