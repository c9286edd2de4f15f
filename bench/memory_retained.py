"""What waiting executions really keep in memory, separate from the allocator's high water.

RSS after starting thousands of executions includes the peak of starting them; this
counts the Python objects still allocated once they all wait on a timer and were handed
back (``tracemalloc`` snapshots before and after, after a warm-up batch).

    .venv/bin/python bench/memory_retained.py [--batches 6] [--batch 500]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from engine_throughput import Harness, timer_workflow  # type: ignore[import-not-found]

from server.engine.service import StartOptions


async def measure(batches: int, size: int) -> None:
    async with Harness(Path(tempfile.mkdtemp())) as harness:
        workflow_id = timer_workflow()["id"]

        async def batch() -> None:
            await asyncio.gather(
                *(harness.service.start(workflow_id, StartOptions()) for _ in range(size))
            )
            for _ in range(400):  # until every execution waits and was handed back
                if not harness.engine.runners:
                    return
                await asyncio.sleep(0.05)
            raise RuntimeError("executions stayed in memory")

        await batch()
        gc.collect()
        tracemalloc.start(25)
        before = tracemalloc.take_snapshot()
        for _ in range(batches):
            await batch()
        gc.collect()
        after = tracemalloc.take_snapshot()
        stats = after.compare_to(before, "traceback")
        total = sum(stat.size_diff for stat in stats)
        count = batches * size
        held = len(harness.engine.runners)
        print(f"executions waiting, not in memory: {count}; runners held: {held}")
        print(f"Python memory retained: {total / 1e6:.2f} MB ({total / count:.0f} B per execution)")
        for stat in stats[:5]:
            print(f"  {stat.size_diff / 1e3:8.1f} kB  {stat.traceback.format()[-1].strip()[:100]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(measure(args.batches, args.batch))


if __name__ == "__main__":
    main()
