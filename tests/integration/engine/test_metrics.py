"""/api/v1/workflows/metrics and /metrics report real figures (issue: engine, item 8)."""

from __future__ import annotations

import re

from tests.integration.engine.conftest import (
    TERMINAL,
    Client,
    expr,
    run,
    script,
    start,
    timer,
    upload,
    wait_for_status,
    wait_until,
    workflow,
)


def prometheus_value(text: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name}{labels} not in the Prometheus text"
    return float(match.group(1))


async def test_metrics_count_what_really_happened(client: Client) -> None:
    done = workflow([expr("a", "1"), expr("b", "2")], [], id="ok")
    broken = workflow([script("boom", "x = 1 / 0")], [], id="broken")
    waiting = workflow([timer("pause", "1h")], [], id="waits")
    await upload(client, done)
    for _ in range(2):
        started = await start(client, "ok")
        await wait_for_status(client, started["id"], TERMINAL)
    await run(client, broken)
    await upload(client, waiting)
    parked = await start(client, "waits")
    await wait_until(client, parked["id"], lambda e: bool(e["waiting_on"]))

    figures = (await client.get("/api/v1/workflows/metrics")).json()
    executions = figures["executions"]
    assert executions["total"] == 4
    assert executions["by_status"]["completed"] == 2
    assert executions["by_status"]["failed"] == 1
    assert executions["by_status"]["running"] == 1
    assert executions["waiting"] == 1
    durations = executions["duration_seconds"]
    assert durations["sample"] == 2
    assert 0 < durations["average"] <= durations["p95"]
    assert figures["node_runs"]["by_status"]["completed"] == 4
    assert figures["node_runs"]["by_status"]["failed"] == 1
    assert figures["node_runs"]["by_status"]["waiting"] == 1
    assert figures["node_runs"]["total"] == 6
    assert figures["engine"]["nodes_run_by_this_process"] >= 5
    assert figures["process"]["memory_rss_bytes"] > 10_000_000
    assert figures["process"]["uptime_seconds"] > 0

    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert prometheus_value(text, "flowyard_executions", '{status="completed"}') == 2
    assert prometheus_value(text, "flowyard_executions", '{status="failed"}') == 1
    assert prometheus_value(text, "flowyard_executions_waiting") == 1
    assert prometheus_value(text, "flowyard_node_runs", '{status="failed"}') == 1
    assert prometheus_value(text, "flowyard_execution_duration_seconds", '{stat="p95"}') > 0
