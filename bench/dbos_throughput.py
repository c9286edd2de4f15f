"""The same workload in DBOS Transact, on the same machine and store (SQLite WAL/NORMAL).

One ``@DBOS.workflow`` calling ten ``@DBOS.step`` functions, each a trivial dict
transform (the Flowyard chain's ``{'n': n + 1, 'tag': tag, 'step': i}``). DBOS records
every step's output in its system database before the next step runs, as Flowyard does
with every node.

* ``sequential`` — N workflows one after another (the workflow function called directly).
* ``concurrent`` — C workflows started at once (``DBOS.start_workflow`` for each, then
  every handle's ``get_result``).
* the same two with an ``async`` workflow and ``async`` steps
  (``DBOS.start_workflow_async`` gathered), since Flowyard is asyncio.
* ``marginal`` — pairs of a 10-step and a 20-step workflow, (t20 - t10) / 10.

The system database is a SQLite file in a temp dir. DBOS's own SQLite engine sets only
``busy_timeout`` and ``foreign_keys`` (rollback journal, synchronous=FULL), so this
script passes DBOS an engine made the same way plus ``journal_mode=WAL`` and
``synchronous=NORMAL``, the settings Flowyard runs with.

    .venv/bin/python bench/dbos_throughput.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"

from dbos import DBOS, DBOSConfig  # noqa: E402

# --- the workload ----------------------------------------------------------------------


def _transform(doc: dict[str, Any], i: int) -> dict[str, Any]:
    return {"n": doc["n"] + 1, "tag": doc["tag"], "step": i}


def _make_steps(prefix: str, count: int, is_async: bool) -> list[Any]:
    steps = []
    for i in range(1, count + 1):
        if is_async:

            async def step(doc: dict[str, Any], i: int = i) -> dict[str, Any]:
                return _transform(doc, i)
        else:

            def step(doc: dict[str, Any], i: int = i) -> dict[str, Any]:  # type: ignore[misc]
                return _transform(doc, i)

        steps.append(DBOS.step(name=f"{prefix}_step{i}")(step))
    return steps


STEPS10 = _make_steps("s10", 10, False)
STEPS20 = _make_steps("s20", 20, False)
ASTEPS10 = _make_steps("a10", 10, True)


@DBOS.workflow(name="chain10")
def chain10(doc: dict[str, Any]) -> dict[str, Any]:
    for step in STEPS10:
        doc = step(doc)
    return doc


@DBOS.workflow(name="chain20")
def chain20(doc: dict[str, Any]) -> dict[str, Any]:
    for step in STEPS20:
        doc = step(doc)
    return doc


@DBOS.workflow(name="achain10")
async def achain10(doc: dict[str, Any]) -> dict[str, Any]:
    for step in ASTEPS10:
        doc = await step(doc)
    return doc


# --- set-up ------------------------------------------------------------------------------


def sqlite_engine(path: Path, pool_size: int) -> sa.Engine:
    """DBOS's SQLite engine (dbos/_sys_db_sqlite.py) plus WAL and synchronous=NORMAL."""
    engine = sa.create_engine(
        f"sqlite:///{path}",
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=30,
        pool_pre_ping=True,
    )

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = "IMMEDIATE"  # as DBOS does
        dbapi_conn.execute("PRAGMA busy_timeout=30000")
        dbapi_conn.execute("PRAGMA foreign_keys=ON")
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")

    return engine


def launch(directory: Path, pool_size: int, dbos_defaults: bool) -> tuple[Path, sa.Engine]:
    path = directory / "dbos_sys.sqlite"
    config: DBOSConfig = {
        "name": "flowyard-bench",
        "system_database_url": f"sqlite:///{path}",
        "log_level": "WARNING",
    }
    if dbos_defaults:  # DBOS's own SQLite engine: rollback journal, synchronous=FULL
        config["sys_db_pool_size"] = pool_size
        engine = sa.create_engine(f"sqlite:///{path}")
    else:
        engine = sqlite_engine(path, pool_size)
        config["system_database_engine"] = engine
    DBOS(config=config)
    DBOS.launch()
    for name in ("dbos", "dbos_transact"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return path, engine


def pragmas(engine: sa.Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
        sync = connection.exec_driver_sql("PRAGMA synchronous").scalar()
    return {"journal_mode": mode, "synchronous": {1: "NORMAL", 2: "FULL"}.get(sync, sync)}


def check(path: Path, expected_workflows: int, expected_steps: int) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        workflows = db.execute(
            "SELECT count(*) FROM workflow_status WHERE status='SUCCESS'"
        ).fetchone()[0]
        steps = db.execute("SELECT count(*) FROM operation_outputs").fetchone()[0]
    if workflows < expected_workflows or steps < expected_steps:
        raise RuntimeError(f"check failed: {workflows} workflows, {steps} step outputs recorded")
    return {"workflows_succeeded": workflows, "step_outputs": steps}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


# --- phases ------------------------------------------------------------------------------


def doc(i: int) -> dict[str, Any]:
    return {"n": i, "tag": "bench"}


def sequential(n: int, warmup: int) -> dict[str, Any]:
    for i in range(warmup):
        chain10(doc(i))
    latencies = []
    began = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        result = chain10(doc(i))
        latencies.append((time.perf_counter() - t) * 1000)
        assert result["n"] == i + 10
    elapsed = time.perf_counter() - began
    return {
        "executions": n,
        "seconds": elapsed,
        "executions_per_s": n / elapsed,
        "latency_ms_median": statistics.median(latencies),
        "latency_ms_p99": pct(latencies, 99),
    }


def concurrent(n: int, warmup: int) -> dict[str, Any]:
    for handle in [DBOS.start_workflow(chain10, doc(i)) for i in range(warmup)]:
        handle.get_result()
    began = time.perf_counter()
    handles = [DBOS.start_workflow(chain10, doc(i)) for i in range(n)]
    results = [handle.get_result() for handle in handles]
    elapsed = time.perf_counter() - began
    assert all(r["n"] == i + 10 for i, r in enumerate(results))
    return {"executions": n, "seconds": elapsed, "executions_per_s": n / elapsed}


async def async_sequential(n: int, warmup: int) -> dict[str, Any]:
    for i in range(warmup):
        await achain10(doc(i))
    began = time.perf_counter()
    for i in range(n):
        result = await achain10(doc(i))
        assert result["n"] == i + 10
    elapsed = time.perf_counter() - began
    return {"executions": n, "seconds": elapsed, "executions_per_s": n / elapsed}


async def async_concurrent(n: int, warmup: int) -> dict[str, Any]:
    async def one(i: int) -> dict[str, Any]:
        handle = await DBOS.start_workflow_async(achain10, doc(i))
        return await handle.get_result()

    await asyncio.gather(*(one(i) for i in range(warmup)))
    began = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - began
    assert all(r["n"] == i + 10 for i, r in enumerate(results))
    return {"executions": n, "seconds": elapsed, "executions_per_s": n / elapsed}


def marginal(pairs: int, warmup: int) -> dict[str, Any]:
    for i in range(warmup):
        chain10(doc(i))
        chain20(doc(i))
    t10, t20 = [], []
    for i in range(pairs):
        order = (chain10, chain20) if i % 2 == 0 else (chain20, chain10)
        for workflow in order:
            t = time.perf_counter()
            workflow(doc(i))
            ms = (time.perf_counter() - t) * 1000
            (t10 if workflow is chain10 else t20).append(ms)
    per_pair = [(b - a) / 10 for a, b in zip(t10, t20, strict=True)]
    return {
        "pairs": pairs,
        "chain10_ms_median": statistics.median(t10),
        "chain20_ms_median": statistics.median(t20),
        "marginal_ms_from_medians": (statistics.median(t20) - statistics.median(t10)) / 10,
        "marginal_ms_median": statistics.median(per_pair),
        "marginal_ms_p99": pct(per_pair, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--concurrent", type=int, default=500)
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--pool-size", type=int, default=20, help="DBOS's default is 20")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--dbos-defaults",
        action="store_true",
        help="DBOS's own SQLite settings (no WAL, synchronous=FULL), for reference",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "dbos.json")
    args = parser.parse_args()
    if args.quick:
        args.sequential, args.concurrent, args.pairs, args.warmup = 20, 50, 10, 5

    import dbos

    results: dict[str, Any] = {
        "versions": {
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "sqlalchemy": sa.__version__,
            "dbos": dbos.__version__ if hasattr(dbos, "__version__") else _dist_version(),
        },
        "parameters": {
            k: getattr(args, k)
            for k in ("sequential", "concurrent", "pairs", "warmup", "pool_size", "dbos_defaults")
        },
    }
    with tempfile.TemporaryDirectory(prefix="dbos-bench-") as directory:
        path, engine = launch(Path(directory), args.pool_size, args.dbos_defaults)
        try:
            results["sqlite"] = pragmas(engine)
            for name, run in (
                ("sequential", lambda: sequential(args.sequential, args.warmup)),
                ("concurrent", lambda: concurrent(args.concurrent, args.warmup)),
                (
                    "async_sequential",
                    lambda: asyncio.run(async_sequential(args.sequential, args.warmup)),
                ),
                (
                    "async_concurrent",
                    lambda: asyncio.run(async_concurrent(args.concurrent, args.warmup)),
                ),
                ("marginal", lambda: marginal(args.pairs, args.warmup)),
            ):
                print(f"dbos: {name} …", file=sys.stderr, flush=True)
                results[name] = run()
            results["recorded"] = check(path, 1, 10)
        finally:
            DBOS.destroy(destroy_registry=False)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    for name in ("sequential", "concurrent", "async_sequential", "async_concurrent"):
        print(f"{name:<18} {results[name]['executions_per_s']:8.1f} exec/s")
    m = results["marginal"]
    print(
        f"{'marginal per step':<18} median {m['marginal_ms_median']:.3f} ms, "
        f"p99 {m['marginal_ms_p99']:.3f} ms"
    )
    print(f"sqlite: {results['sqlite']}; written {args.out}")


def _dist_version() -> str:
    from importlib.metadata import version

    return version("dbos")


if __name__ == "__main__":
    main()
