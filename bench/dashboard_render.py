"""Server-side render time of the dashboard's heaviest pages (issue 6: target < 300 ms).

Builds the real app (``server.app.create_app``) on a fresh SQLite file (or the
PostgreSQL database given with ``--database-url``), fills it through the real engine,
then times whole requests through the ASGI app in-process — routing, authentication,
database queries and template rendering, everything but the network:

* ``executions list`` — ``GET /executions`` (first page, newest first) with 10,000
  executions in the database; also a deep page (``offset=9950``) and a status filter;
* ``execution page`` — ``GET /executions/{id}`` of one execution with 500 node runs (a
  chain of 500 ``transform`` nodes), and of one with 1,000 node runs;
* ``live fragment`` — what the execution page polls while it runs, for the 500-run one.

The 10,000 executions are real: one-node ``transform`` executions started through the
REST API and run by the engine, 50 requests at a time.

    .venv/bin/python bench/dashboard_render.py            # 10,000 executions, 30 requests a page
    .venv/bin/python bench/dashboard_render.py --quick    # 1,000 executions, a smoke test
    .venv/bin/python bench/dashboard_render.py --database-url postgresql+asyncpg://…
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results"
ADMIN_KEY = "fy_benchdashboardadminkey0123456789abcdef"
API = {"Authorization": f"Bearer {ADMIN_KEY}"}
HEADERS = {**API, "Accept": "text/html"}


def chain(workflow_id: str, length: int) -> dict[str, Any]:
    nodes = [
        {
            "id": f"t{i}",
            "name": f"Step {i}",
            "type": "transform",
            "config": {"transform_type": "expression", "expression": f"{{'step': {i}}}"},
        }
        for i in range(1, length + 1)
    ]
    edges = [{"from_node": f"t{i}", "to_node": f"t{i + 1}"} for i in range(1, length)]
    return {
        "id": workflow_id,
        "name": f"Bench chain of {length}",
        "version": "1.0.0",
        "status": "active",
        "nodes": nodes,
        "edges": edges,
    }


async def fill(client: Any, executions: int, batch: int = 50) -> dict[str, str]:
    """Start ``executions`` one-node executions and two long chains through the REST API
    (the app runs on the test client's own event loop); wait until all have finished."""
    for document in (chain("bench-one", 1), chain("bench-500", 500), chain("bench-1000", 1000)):
        response = await client.post("/api/v1/workflows", json=document, headers=API)
        assert response.status_code in (200, 201), response.text

    async def start(workflow_id: str, n: int) -> str:
        response = await client.post(
            f"/api/v1/workflows/{workflow_id}/execute", json={"input": {"n": n}}, headers=API
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    began = time.perf_counter()
    for first in range(0, executions, batch):
        await asyncio.gather(*(start("bench-one", n) for n in range(first, first + batch)))
    chains = {"500": await start("bench-500", 0), "1000": await start("bench-1000", 0)}
    while True:
        response = await client.get(
            "/api/v1/workflows/executions", params={"status": "completed", "limit": 1}, headers=API
        )
        if response.json()["total"] >= executions + 2:
            break
        await asyncio.sleep(0.5)  # polling the real engine's progress, not standing in for it
    took = time.perf_counter() - began
    print(f"  {executions + 2:,} executions in {took:.1f} s", file=sys.stderr)
    return chains


async def timed(client: Any, url: str, rounds: int) -> dict[str, Any]:
    for _ in range(3):  # warm-up: template compilation, connection pool, caches
        response = await client.get(url, headers=HEADERS)
        assert response.status_code == 200, (url, response.status_code, response.text[:500])
    samples = []
    for _ in range(rounds):
        began = time.perf_counter()
        response = await client.get(url, headers=HEADERS)
        samples.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    samples.sort()
    return {
        "url": url,
        "rounds": rounds,
        "bytes": len(response.content),
        "median_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[int(0.95 * (len(samples) - 1))], 1),
        "max_ms": round(samples[-1], 1),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from litestar.testing import AsyncTestClient

    from server.app import create_app
    from server.config import load_settings

    directory = Path(tempfile.mkdtemp(prefix="flowyard-bench-ui-"))
    url = args.database_url or f"sqlite+aiosqlite:///{directory / 'flowyard.db'}"
    settings = load_settings(
        {
            "server.database_url": url,
            "server.data_dir": str(directory / "data"),
            "auth.bootstrap_admin_key": ADMIN_KEY,
        },
        environ={},
    )
    app = create_app(settings)
    async with AsyncTestClient(app=app, timeout=120) as client:
        ids = await fill(client, args.executions)
        pages = {
            "executions list, first page": "/executions",
            "executions list, deep page": f"/executions?offset={max(0, args.executions - 50)}",
            "executions list, status filter": "/executions?status=completed",
            "execution page, 500 node runs": f"/executions/{ids['500']}",
            "execution page, 1,000 node runs": f"/executions/{ids['1000']}",
            "execution live fragment, 500 node runs": f"/executions/{ids['500']}/live",
            "overview": "/",
        }
        results = {name: await timed(client, path, args.rounds) for name, path in pages.items()}
    return {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "database": "postgresql" if args.database_url else "sqlite",
        "executions": args.executions + 2,
        "pages": results,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 executions, 10 rounds")
    parser.add_argument("--executions", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--out", type=Path, default=RESULTS / "dashboard.json")
    options = parser.parse_args()
    if options.quick:
        options.executions, options.rounds = 1_000, 10
    figures = asyncio.run(main(options))
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(figures, indent=2) + "\n")
    width = max(len(name) for name in figures["pages"])
    print(f"{'page':<{width}}  median    p95    max   (ms, {figures['database']})")
    for name, row in figures["pages"].items():
        print(f"{name:<{width}}  {row['median_ms']:>6}  {row['p95_ms']:>5}  {row['max_ms']:>5}")
