"""Where an execution's time goes: the sequential 10-node chain, instrumented.

Wraps the engine's awaited steps with wall-clock timers (no engine code changes; the
wrappers are installed on the classes and modules at run time) and times the journal
thread's transactions, then prints, per execution and per node, how long each step
took. Also measures the bare costs the steps are built from (a thread hop through
``asyncio.to_thread``, a journal round trip with no SQL, one simpleeval evaluation).

    .venv/bin/python bench/profile_engine.py [--executions 200] [--cprofile out.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.engine_throughput import Harness  # noqa: E402

STATS: dict[str, list[float]] = defaultdict(list)
LOCK = threading.Lock()


def record(name: str, seconds: float) -> None:
    with LOCK:
        STATS[name].append(seconds * 1e6)


def wrap_async(owner: Any, attr: str, name: str) -> None:
    original = getattr(owner, attr)

    @functools.wraps(original)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            record(name, time.perf_counter() - t)

    setattr(owner, attr, timed)


def wrap_sync(owner: Any, attr: str, name: str) -> None:
    original = getattr(owner, attr)

    @functools.wraps(original)
    def timed(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            record(name, time.perf_counter() - t)

    setattr(owner, attr, timed)


def instrument() -> None:
    import processors.transform as transform
    import server.engine.engine as engine_module
    from server.engine.engine import Engine
    from server.engine.journal import Journal, _Item
    from server.engine.runner import Runner
    from server.engine.service import ExecutionService
    from server.registry.service import WorkflowRegistry

    wrap_async(ExecutionService, "start", "service.start (total)")
    wrap_async(WorkflowRegistry, "pinned", "  registry.pinned (async ORM)")
    wrap_async(Engine, "adopt", "  engine.adopt (load + runner)")
    wrap_async(Runner, "_run", "node: Runner._run (total)")
    wrap_sync(Runner, "_render", "  node: _render config")
    wrap_sync(Runner, "_context", "  node: _context")
    wrap_async(Runner, "_invoke", "  node: _invoke processor (evaluate)")
    wrap_async(Runner, "_record", "  node: _record (lock + commit)")
    wrap_async(Runner, "_settle", "end: Runner._settle (complete + release)")
    wrap_async(Engine, "release", "  end: engine.release")
    wrap_async(engine_module, "evaluate_async", "    evaluate_async (to_thread)")
    import server.expressions.evaluator as evaluator

    original_evaluate = evaluator.evaluate
    transform_eval = getattr(transform, "evaluate", None)
    del transform_eval

    def timed_evaluate(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return original_evaluate(*args, **kwargs)
        finally:
            record("      evaluate (simpleeval, in the thread)", time.perf_counter() - t)

    evaluator.evaluate = timed_evaluate

    # Journal: time from put to commit start (queue), the transaction, and the hop back.
    original_run = Journal.run

    async def run(self: Journal, work: Any) -> Any:
        t = time.perf_counter()
        try:
            return await original_run(self, work)
        finally:
            record("journal.run round trip (awaited)", time.perf_counter() - t)

    Journal.run = run  # type: ignore[method-assign]

    original_commit = Journal._commit

    def commit(self: Journal, group: list[_Item]) -> None:
        t = time.perf_counter()
        try:
            return original_commit(self, group)
        finally:
            record("journal thread: one group commit (SQL + COMMIT)", time.perf_counter() - t)
            with LOCK:
                STATS["journal group size"].append(len(group))

    Journal._commit = commit  # type: ignore[method-assign]


def print_stats(executions: int, nodes: int) -> dict[str, Any]:
    out = {}
    print(f"\n{'step':<52} {'calls':>7} {'median µs':>10} {'mean µs':>9} {'per exec ms':>12}")
    for name, values in STATS.items():
        if name == "journal group size":
            continue
        total_ms = sum(values) / 1000
        row = {
            "calls": len(values),
            "median_us": statistics.median(values),
            "mean_us": statistics.fmean(values),
            "per_execution_ms": total_ms / executions,
        }
        out[name] = row
        print(
            f"{name:<52} {row['calls']:>7} {row['median_us']:>10.0f} {row['mean_us']:>9.0f} "
            f"{row['per_execution_ms']:>12.3f}"
        )
    sizes = STATS.get("journal group size", [])
    if sizes:
        print(
            f"journal: {len(sizes)} commits, {statistics.fmean(sizes):.2f} units per commit, "
            f"{len(sizes) / executions:.1f} commits per execution ({nodes} nodes)"
        )
    return out


async def bare_costs() -> dict[str, float]:
    """Costs of the mechanisms themselves, without the engine around them."""
    from server.expressions import evaluate, evaluate_async

    results = {}
    n = 2000

    t = time.perf_counter()
    for _ in range(n):
        await asyncio.to_thread(int)
    results["asyncio.to_thread(noop) µs"] = (time.perf_counter() - t) / n * 1e6

    scope = {"doc": {"n": 1, "tag": "bench"}}
    text = "{'n': doc['n'] + 1, 'tag': doc['tag'], 'step': 1}"
    t = time.perf_counter()
    for _ in range(n):
        evaluate(text, scope)
    results["evaluate (simpleeval, inline) µs"] = (time.perf_counter() - t) / n * 1e6

    t = time.perf_counter()
    for _ in range(n):
        await evaluate_async(text, scope)
    results["evaluate_async (to_thread + wait_for) µs"] = (time.perf_counter() - t) / n * 1e6

    loop = asyncio.get_running_loop()
    t = time.perf_counter()
    for _ in range(n):
        await asyncio.wait_for(loop.create_future() if False else asyncio.sleep(0), 5)
    results["asyncio.wait_for(sleep(0)) µs"] = (time.perf_counter() - t) / n * 1e6
    return results


async def journal_costs(h: Harness, execution_id: str) -> dict[str, float]:
    from server.engine.ops import Ops

    n = 1000
    journal = h.engine.journal
    results = {}
    t = time.perf_counter()
    for _ in range(n):
        await journal.run(lambda c: None)
    results["journal.run(no SQL: BEGIN IMMEDIATE + COMMIT + 2 hops) µs"] = (
        (time.perf_counter() - t) / n * 1e6
    )
    ops = Ops(execution_id)
    ops.event("bench", None, {})
    t = time.perf_counter()
    for _ in range(n):
        await journal.run(ops.apply)
    results["journal.run(one event INSERT) µs"] = (time.perf_counter() - t) / n * 1e6
    return results


def sql_costs(h: Harness, execution_id: str) -> dict[str, float]:
    """One node result's transaction, on the journal's own engine, with no other thread
    running: as the engine writes it, with a prepared UPDATE, and in plain sqlite3."""
    import json as jsonlib
    import sqlite3

    from sqlalchemy import bindparam, update

    # Its own engine on the same file: the journal holds its one connection for its thread.
    from server.engine.journal import create_sync_engine
    from server.engine.records import Run
    from server.store import runs as store
    from server.store.models import new_id, utcnow

    engine = create_sync_engine(h.url)
    n = 1000
    out: dict[str, float] = {}
    doc = {"n": 3, "tag": "bench", "step": 3}

    def node_result(static: bool) -> Any:
        run = Run(
            new_id(),
            f"t3-{new_id()[:13]}",
            0,
            1,
            "completed",
            input={"transform_type": "expression", "expression": "{'n': s2['result']['n'] + 1}"},
            output={"result": doc},
            taken_edges=["e1"],
            seq=3,
            ready_at=utcnow(),
            started_at=utcnow(),
            completed_at=utcnow(),
        )
        row = run.row(execution_id)
        values = {k: v for k, v in row.items() if k not in {"id", "execution_id"}}
        nxt = Run(new_id(), f"t4-{new_id()[:13]}", 0, 1, "ready", ready_at=utcnow()).row(
            execution_id
        )
        event = {
            "execution_id": execution_id,
            "node_id": "t3",
            "type": "node.completed",
            "actor": None,
            "data": {"attempt": 1},
            "at": utcnow(),
        }
        return row, values, nxt, event

    prepared = update(store.node_runs).where(store.node_runs.c.id == bindparam("_id"))

    def txn(kind: str) -> None:
        row, values, nxt, event = node_result(kind == "static")
        with engine.begin() as c:
            if kind == "empty":
                return
            store.insert_runs(c, [row])  # the run being completed must exist
            if kind == "static":
                c.execute(prepared, {"_id": row["id"], **values})
            else:
                store.update_run(c, row["id"], values)
            store.insert_events(c, [event])
            store.insert_runs(c, [nxt])
            store.update_execution(c, execution_id, {"updated_at": utcnow(), "current_node": "t3"})

    for kind, label in (
        ("empty", "SQLAlchemy: BEGIN IMMEDIATE + COMMIT only"),
        ("engine", "SQLAlchemy: node result as the engine writes it (+1 insert)"),
        ("static", "SQLAlchemy: same, prepared UPDATE statement"),
    ):
        for _ in range(50):
            txn(kind)
        t = time.perf_counter()
        for _ in range(n):
            txn(kind)
        out[f"{label} µs"] = (time.perf_counter() - t) / n * 1e6

    db = sqlite3.connect(h.path, isolation_level=None)
    db.execute("PRAGMA synchronous=NORMAL")
    cols = [c.name for c in store.node_runs.columns if c.name not in ("lease_owner", "lease_until")]
    insert_run = f"INSERT INTO node_runs ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})"
    upd = "UPDATE node_runs SET status=?, output=?, taken_edges=?, seq=?, completed_at=? WHERE id=?"

    def raw() -> None:
        row, _, nxt, _event = node_result(False)
        enc = {k: jsonlib.dumps(v) if isinstance(v, dict | list) else v for k, v in row.items()}
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            insert_run,
            [enc.get(c) if not hasattr(enc.get(c), "isoformat") else str(enc[c]) for c in cols],
        )
        db.execute(
            upd, ("completed", jsonlib.dumps(row["output"]), '["e1"]', 3, str(utcnow()), row["id"])
        )
        db.execute(
            "INSERT INTO execution_events (execution_id, node_id, type, actor, data, at) "
            "VALUES (?,?,?,?,?,?)",
            (execution_id, "t3", "node.completed", None, "{}", str(utcnow())),
        )
        encn = {k: jsonlib.dumps(v) if isinstance(v, dict | list) else v for k, v in nxt.items()}
        db.execute(
            insert_run,
            [str(encn[c]) if hasattr(encn.get(c), "isoformat") else encn.get(c) for c in cols],
        )
        db.execute(
            "UPDATE executions SET updated_at=?, current_node=?, row_version=row_version+1 "
            "WHERE id=?",
            (str(utcnow()), "t3", execution_id),
        )
        db.execute("COMMIT")

    for _ in range(50):
        raw()
    t = time.perf_counter()
    for _ in range(n):
        raw()
    out["stdlib sqlite3: the same five statements µs"] = (time.perf_counter() - t) / n * 1e6
    db.close()
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="flowyard-profile-") as directory:
        async with Harness(Path(directory)) as h:
            bare = await bare_costs()
            for i in range(20):
                last = await h.run_one("chain10", i)
            journal = await journal_costs(h, last)
            journal.update(await asyncio.to_thread(sql_costs, h, last))
            STATS.clear()
            profiler = cProfile.Profile() if args.cprofile else None
            if profiler:
                profiler.enable()
            t = time.perf_counter()
            if args.at_once:
                await asyncio.gather(*(h.run_one("chain10", i) for i in range(args.executions)))
            else:
                for i in range(args.executions):
                    await h.run_one("chain10", i)
            elapsed = time.perf_counter() - t
            if profiler:
                profiler.disable()
                profiler.dump_stats(args.cprofile)
    busy = sum(STATS["journal thread: one group commit (SQL + COMMIT)"]) / 1e6
    print(
        f"{args.executions} {'started at once' if args.at_once else 'one after another'}, "
        "10-node chain: "
        f"{args.executions / elapsed:.1f}/s, {elapsed / args.executions * 1000:.2f} ms each "
        "(instrumented: the wrappers add a few µs per call)"
    )
    print(f"journal thread busy {busy:.2f} s of {elapsed:.2f} s wall ({busy / elapsed:.0%})")
    steps = print_stats(args.executions, 10)
    print("\nbare costs:")
    for name, value in {**bare, **journal}.items():
        print(f"  {name:<60} {value:8.1f}")
    return {
        "mode": "at_once" if args.at_once else "sequential",
        "executions": args.executions,
        "journal_busy_fraction": busy / elapsed,
        "executions_per_s": args.executions / elapsed,
        "steps": steps,
        "bare_costs_us": {**bare, **journal},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executions", type=int, default=200)
    parser.add_argument("--at-once", action="store_true", help="start them all at once")
    parser.add_argument("--cprofile", help="also write a cProfile of the event-loop thread")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "profile.json")
    args = parser.parse_args()
    instrument()
    result = asyncio.run(main_async(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
