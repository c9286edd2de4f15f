"""Screenshots of every dashboard page at 1280 px and 390 px, for README and docs.

    .venv/bin/python scripts/screenshots.py            # writes docs/screenshots/*.png

Starts a real ``flowyard demo`` (fresh database, its users and stand-ins), gives it
something to show through the REST API — the seed's demos run, an approval waiting for
its reviewer, a failed execution, a second version of a workflow — then signs in as the
demo ``admin`` in Debian's Chromium and photographs each page at both widths.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, PHONE, WIDE  # noqa: E402
from tests.servers import free_port, start_server  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
TERMINAL = ("completed", "failed", "cancelled")


def wait_for(http: httpx.Client, execution_id: str, statuses: tuple[str, ...]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        execution: dict[str, Any] = http.get(f"/api/v1/workflows/executions/{execution_id}").json()
        if execution["status"] in statuses:
            return execution
        time.sleep(0.2)
    raise SystemExit(f"execution {execution_id} did not reach {statuses}")


def start(http: httpx.Client, workflow_id: str, **inputs: Any) -> str:
    response = http.post(f"/api/v1/workflows/{workflow_id}/execute", json={"input": inputs})
    response.raise_for_status()
    return str(response.json()["id"])


def prepare(http: httpx.Client, url: str) -> dict[str, str]:
    """Executions of every kind, a waiting approval and a second version; their ids."""
    shown: dict[str, str] = {}
    shown["pipeline"] = start(http, "data-processing-pipeline", api_base=url)
    wait_for(http, shown["pipeline"], TERMINAL)
    etl = start(http, "etl-pipeline")
    wait_for(http, etl, TERMINAL)
    loop = start(http, "examples-loop")
    wait_for(http, loop, TERMINAL)
    shown["approval"] = start(http, "approval-workflow", document_id="DOC-1042")
    wait_for(http, shown["approval"], ("running",))
    failing = {
        "id": "invoice-import",
        "name": "Invoice import",
        "version": "1.0.0",
        "status": "active",
        "description": "Reads an invoice total and converts it (fails on a bad amount).",
        "variables": {"amount": {"name": "amount", "type": "string", "required": True}},
        "nodes": [
            {
                "id": "parse",
                "name": "Parse amount",
                "type": "transform",
                "config": {"transform_type": "expression", "expression": "float(amount) * 100"},
            }
        ],
        "edges": [],
    }
    http.post("/api/v1/workflows", json=failing)
    shown["failed"] = start(http, "invoice-import", amount="12,50 EUR")
    wait_for(http, shown["failed"], TERMINAL)
    timer = http.get("/api/v1/workflows/examples-timer").json()
    newer = json.loads(json.dumps(timer))
    newer["version"] = "1.1.0"
    newer["description"] = (newer.get("description") or "") + " Now waits half as long."
    http.put("/api/v1/workflows/examples-timer", json=newer).raise_for_status()
    shown["diff"] = f"/workflows/examples-timer/diff?from={timer['version']}&to=1.1.0"
    tasks = http.get("/api/v1/tasks", params={"status": "open"}).json()["tasks"]
    shown["task"] = next(t["id"] for t in tasks if t["execution_id"] == shown["approval"])
    return shown


async def photograph(url: str, password: str, shown: dict[str, str]) -> list[Path]:
    from playwright.async_api import async_playwright

    pages = {
        "login": "/login",
        "overview": "/",
        "workflows": "/workflows",
        "workflow": "/workflows/approval-workflow",
        "workflow-diff": shown["diff"],
        "executions": "/executions",
        "execution": f"/executions/{shown['pipeline']}",
        "execution-failed": f"/executions/{shown['failed']}",
        "approvals": "/approvals",
        "task": f"/tasks/{shown['task']}",
        "audit": "/audit",
        "admin": "/admin",
    }
    written = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        for label, viewport in (("1280", WIDE), ("390", PHONE)):
            context = await browser.new_context(viewport=viewport, base_url=url)  # type: ignore[arg-type]
            tab = await context.new_page()
            await tab.goto("/login")
            await tab.screenshot(path=str(OUT / f"login-{label}.png"))
            await tab.get_by_label("Username").fill("admin")
            await tab.get_by_label("Password").fill(password)
            await tab.get_by_role("button", name="Sign in").click()
            await tab.wait_for_url(f"{url}/")
            for name, path in pages.items():
                if name == "login":
                    continue
                response = await tab.goto(path)
                if response is None or response.status != 200:
                    status = response.status if response else "no answer"
                    raise SystemExit(f"{path}: {status}")
                target = OUT / f"{name}-{label}.png"
                await tab.screenshot(path=str(target), full_page=True)
                written.append(target)
            await context.close()
        await browser.close()
    return written


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    where = Path(tempfile.mkdtemp(prefix="flowyard-screenshots-"))
    server = start_server(
        ["demo", "--data-dir", str(where / "data")],
        where,
        env={"FLOWYARD_DEMO_SMTP_PORT": str(free_port())},
    )
    try:
        passwords = dict(re.findall(r"^\s+(\w+)\s+password (\S+)", server.log(), re.MULTILINE))
        from tests.auth import ADMIN_HEADERS

        with httpx.Client(base_url=server.url, headers=ADMIN_HEADERS, timeout=30) as http:
            shown = prepare(http, server.url)
        written = asyncio.run(photograph(server.url, passwords["admin"], shown))
        for path in written:
            print(path.relative_to(ROOT))
    finally:
        server.stop(signal.SIGTERM)


if __name__ == "__main__":
    main()
