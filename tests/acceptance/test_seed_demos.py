"""The seed's three demos (SPEC §10), end to end in ``flowyard demo``: real HTTP to the
demo API, real SQL on the demo database, real SMTP into the demo mailbox, and the
approvals decided through the tasks API."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.conftest import RunningServer, start_server

TERMINAL = ("completed", "failed", "cancelled")


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[RunningServer]:
    # Deciding tasks needs an identity; until sign-in exists, the development headers
    # (honoured only with authentication off) name the person.
    running = start_server(
        ["demo", "--data-dir", str(tmp_path / "data")],
        tmp_path,
        env={"FLOWYARD_AUTH_ENABLED": "false"},
    )
    yield running
    running.stop(signal.SIGKILL)


def poll(what: str, probe: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def start(http: httpx.Client, workflow_id: str, **body: Any) -> str:
    response = http.post(f"/api/v1/workflows/{workflow_id}/execute", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def finished(http: httpx.Client, execution_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        execution = http.get(f"/api/v1/workflows/executions/{execution_id}").json()
        return execution if execution["status"] in TERMINAL else None

    result: dict[str, Any] = poll(f"execution {execution_id} to finish", probe)
    return result


def outputs(execution: dict[str, Any]) -> dict[str, Any]:
    return {
        run["node_id"]: run["output"]
        for run in execution["executed_nodes"]
        if run["status"] == "completed"
    }


def mail_to(http: httpx.Client, address: str) -> list[dict[str, Any]]:
    messages = http.get("/demo/mailbox").json()["messages"]
    return [m for m in messages if address in str(m.get("to")) + str(m.get("recipients"))]


def test_the_data_processing_pipeline(demo: RunningServer) -> None:
    with httpx.Client(base_url=demo.url, timeout=10) as http:
        orders = http.get("/demo/api/orders").json()
        large = [o for o in orders if o["amount"] >= 100 and o["status"] == "pending"]
        assert large, "the demo database has large pending orders"
        execution = finished(
            http, start(http, "data-processing-pipeline", input={"api_base": demo.url})
        )
        assert execution["status"] == "completed", execution["error"]
        out = outputs(execution)
        assert out["fetch-data"]["status_code"] == 200
        assert out["summarize"]["order_count"] == len([o for o in orders if o["amount"] >= 100])
        assert out["store-results"]["row_count"] == len(large)
        after = {o["id"]: o["status"] for o in http.get("/demo/api/orders").json()}
        assert all(after[o["id"]] == "reviewed" for o in large)


def test_the_etl_pipeline(demo: RunningServer) -> None:
    with httpx.Client(base_url=demo.url, timeout=10) as http:
        execution_id = start(http, "etl-pipeline", input={"report_email": "reports@example.org"})
        execution = finished(http, execution_id)
        assert execution["status"] == "completed", execution["error"]
        out = outputs(execution)
        customers = http.get("/demo/api/customers").json()
        assert out["transform-customers"]["customer_count"] == len(customers)
        assert out["load-summary"]["row_count"] == 1
        (report,) = poll("the report mail", lambda: mail_to(http, "reports@example.org"))
        assert execution_id in report["subject"]


def test_the_document_approval(demo: RunningServer) -> None:
    people = {"reviewer": "rita", "approver": "arno"}
    with httpx.Client(base_url=demo.url, timeout=10) as http:
        execution_id = start(
            http,
            "approval-workflow",
            input={"document_id": "DOC-7", "author_email": "writer@example.org", **people},
            owner="writer",
        )

        def task_for(user: str) -> dict[str, Any] | None:
            listed = http.get("/api/v1/tasks", params={"status": "open"}).json()["tasks"]
            mine = [
                t for t in listed if t["execution_id"] == execution_id and t["assignee"] == user
            ]
            return mine[0] if mine else None

        review = poll("the review task in the inbox", lambda: task_for("rita"))
        assert review["title"] == "Review document DOC-7"
        decided = http.post(
            f"/api/v1/tasks/{review['id']}/complete",
            json={"outcome": "approved", "data": {"notes": "reads well"}},
            headers={"X-Flowyard-User": "rita"},
        )
        assert decided.status_code == 200, decided.text

        final = poll("the final approval task", lambda: task_for("arno"))
        assert "reads well" in final["description"]
        refused = http.post(
            f"/api/v1/tasks/{final['id']}/complete",
            json={"outcome": "approved"},
            headers={"X-Flowyard-User": "writer"},  # the author: four eyes say no
        )
        assert refused.status_code == 403, refused.text
        decided = http.post(
            f"/api/v1/tasks/{final['id']}/complete",
            json={"outcome": "approved"},
            headers={"X-Flowyard-User": "arno"},
        )
        assert decided.status_code == 200, decided.text

        execution = finished(http, execution_id)
        assert execution["status"] == "completed", execution["error"]
        assert "notify-approved" in outputs(execution)
        (mail,) = poll("the approval mail", lambda: mail_to(http, "writer@example.org"))
        assert mail["subject"] == "Document DOC-7 approved"
