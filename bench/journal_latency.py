"""Where a sequential chain's time goes at the writer: journal round trips, timed in place.

Runs the sequential phase of ``engine_throughput.py`` with the journal wrapped so each
unit of work is timed three ways: the awaited round trip (loop → writer → loop), the
SQL inside the transaction, and the whole transaction (BEGIN … COMMIT).

    .venv/bin/python bench/journal_latency.py [--sequential 200]
"""

from __future__ import annotations

import argparse
import runpy
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from server.engine import journal

HERE = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sequential", type=int, default=200)
    args = parser.parse_args()
    round_trips: list[float] = []
    sql: list[float] = []
    transactions: list[float] = []
    original_run, original_commit = journal.Journal.run, journal.Journal._commit

    async def run(self: journal.Journal, work: Callable[[Any], Any]) -> Any:
        def timed(connection: Any) -> Any:
            began = time.perf_counter()
            try:
                return work(connection)
            finally:
                sql.append(time.perf_counter() - began)

        began = time.perf_counter()
        try:
            return await original_run(self, timed)
        finally:
            round_trips.append(time.perf_counter() - began)

    def commit(self: journal.Journal, group: Any) -> None:
        began = time.perf_counter()
        original_commit(self, group)
        transactions.append(time.perf_counter() - began)

    journal.Journal.run = run  # type: ignore[method-assign]
    journal.Journal._commit = commit  # type: ignore[method-assign]
    sys.argv = [
        "engine_throughput.py", "--phase=sequential", f"--sequential={args.sequential}",
        "--concurrent=500", "--pairs=50", "--waiting=100", "--batch=500", "--warmup=10",
    ]  # fmt: skip
    runpy.run_path(str(HERE / "engine_throughput.py"), run_name="__main__")
    for name, values in (("round trip", round_trips), ("SQL in the transaction", sql),
                         ("BEGIN…COMMIT", transactions)):  # fmt: skip
        ordered = sorted(values)
        p99 = ordered[int(len(ordered) * 0.99)]
        median = statistics.median(ordered) * 1e6
        print(f"{name:<24} median {median:7.0f} µs   p99 {p99 * 1e6:7.0f} µs")
    print(f"round trips: {len(round_trips)}")


if __name__ == "__main__":
    main()
