"""``flowyard run`` and ``flowyard executions`` against a real server (SPEC §9)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.acceptance.conftest import RunningServer, free_port, run_cli
from tests.auth import ADMIN_HEADERS

CHAIN = {
    "id": "cli-chain",
    "name": "CLI chain",
    "version": "1.0.0",
    "status": "active",
    "variables": {"n": {"name": "n", "type": "integer", "required": True}},
    "nodes": [
        {"id": "pause", "name": "Pause", "type": "timer", "config": {"duration": "1s"}},
        {
            "id": "double",
            "name": "Double",
            "type": "transform",
            "output_key": "doubled",
            "config": {"transform_type": "expression", "expression": "n * 2"},
        },
        {
            "id": "describe",
            "name": "Describe",
            "type": "transform",
            "output_key": "text",
            "config": {
                "transform_type": "template",
                "template": "${n} doubled is ${doubled.result}",
            },
        },
    ],
    "edges": [
        {"from_node": "pause", "to_node": "double"},
        {"from_node": "double", "to_node": "describe"},
    ],
    "output": {"doubled": "${doubled.result}", "text": "${text.result}"},
}
FAILING = {
    "id": "cli-failing",
    "name": "CLI failing",
    "version": "1.0.0",
    "status": "active",
    "variables": {
        "total": {"name": "total", "type": "number", "required": True},
        "count": {"name": "count", "type": "integer", "required": True},
    },
    "nodes": [
        {
            "id": "divide",
            "name": "Divide",
            "type": "task",
            "config": {"script": ["ratio = total / count"]},
        },
        {
            "id": "report",
            "name": "Report",
            "type": "transform",
            "config": {"transform_type": "expression", "expression": "ratio"},
        },
    ],
    "edges": [{"from_node": "divide", "to_node": "report"}],
}


@pytest.fixture
def url(server: RunningServer) -> str:
    for document in (CHAIN, FAILING):
        created = httpx.post(
            f"{server.url}/api/v1/workflows", json=document, headers=ADMIN_HEADERS, timeout=10
        )
        assert created.status_code == 201, created.text
    return server.url


def run(url: str, *args: str) -> tuple[int, list[str], str]:
    result = run_cli(*args, "--url", url)
    return result.returncode, result.stdout.splitlines(), result.stderr


def output_after(lines: list[str], index: int) -> Any:
    return json.loads("\n".join(lines[index + 1 :]))


def test_run_wait_prints_each_node_once_then_the_output(url: str) -> None:
    code, lines, stderr = run(url, "run", "cli-chain", "--input", '{"n": 21}', "--wait")
    assert code == 0, stderr
    execution_id = lines[0].split()[1]
    assert lines[0] == f"execution {execution_id} (cli-chain@1.0.0)"
    progress = [line for line in lines if line.startswith("  ")]
    waiting = [line for line in progress if line.startswith("  … pause waiting (timer until ")]
    assert len(waiting) == 1, lines
    for node in ("pause", "double", "describe"):
        done = [line for line in progress if line.startswith(f"  ✓ {node} completed (")]
        assert len(done) == 1, lines
    assert len(progress) == len(set(progress)), "a state change was printed twice"
    assert lines.index(waiting[0]) < lines.index(next(x for x in lines if "✓ pause" in x))
    (end,) = [i for i, line in enumerate(lines) if line.startswith("completed in ")]
    assert output_after(lines, end) == {"doubled": 42, "text": "21 doubled is 42"}

    status = httpx.get(
        f"{url}/api/v1/workflows/executions/{execution_id}", headers=ADMIN_HEADERS, timeout=10
    ).json()
    assert status["status"] == "completed"


def test_run_without_wait_prints_only_the_id(url: str) -> None:
    code, lines, _ = run(url, "run", "cli-chain", "--input", '{"n": 1}', "--version", "1.0.0")
    assert code == 0
    (execution_id,) = lines
    found = httpx.get(
        f"{url}/api/v1/workflows/executions/{execution_id}", headers=ADMIN_HEADERS, timeout=10
    )
    assert found.status_code == 200
    assert found.json()["workflow_version"] == "1.0.0"


def test_run_of_a_failing_workflow_shows_the_error_and_exits_1(url: str) -> None:
    code, lines, _ = run(url, "run", "cli-failing", "--input", '{"total": 3, "count": 0}', "--wait")
    assert code == 1
    assert any(
        line.startswith(
            "  ✗ divide failed: script line 1 `ratio = total / count`: division by zero"
        )
        for line in lines
    ), lines
    assert not any("report" in line for line in lines)
    assert lines[-1].startswith("failed in ")
    assert " at divide: script line 1" in lines[-1]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ('{"n": ', "flowyard: --input is not valid JSON: "),
        ("[1, 2]", "flowyard: --input must be a JSON object"),
    ],
)
def test_run_with_bad_input_json_is_a_usage_error(url: str, given: str, message: str) -> None:
    code, lines, stderr = run(url, "run", "cli-chain", "--input", given)
    assert code == 2
    assert lines == []
    assert stderr.startswith(message)
    listed = httpx.get(
        f"{url}/api/v1/workflows/executions", headers=ADMIN_HEADERS, timeout=10
    ).json()
    assert listed["total"] == 0


def test_run_rejected_by_the_server_prints_its_message_and_details(url: str) -> None:
    code, lines, stderr = run(url, "run", "no-such-workflow", "--input", "{}")
    assert (code, lines) == (2, [])
    assert stderr.strip() == "flowyard: no workflow with id 'no-such-workflow' (404)"

    code, _, stderr = run(url, "run", "cli-chain", "--input", '{"n": "many"}')
    assert code == 2
    assert "(422)" in stderr.splitlines()[0]
    assert "  /input/n: must be of type integer" in stderr

    code, _, stderr = run(url, "run", "cli-chain", "--input", '{"n": 1}', "--version", "9.9.9")
    assert code == 2
    assert "no version '9.9.9'; known: 1.0.0 (404)" in stderr


def test_run_and_executions_exit_3_when_the_server_cannot_be_reached() -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    for args in (("run", "cli-chain", "--input", "{}"), ("executions",)):
        code, lines, stderr = run(nobody, *args)
        assert (code, lines) == (3, [])
        assert stderr.startswith(f"flowyard: cannot reach {nobody}")


def test_executions_lists_a_table_with_filters(url: str) -> None:
    assert run(url, "executions")[1] == ["no executions"]
    assert run(url, "run", "cli-chain", "--input", '{"n": 2}', "--wait")[0] == 0
    assert run(url, "run", "cli-failing", "--input", '{"total": 1, "count": 0}', "--wait")[0] == 1
    code, lines, _ = run(url, "executions")
    assert code == 0
    assert lines[0].split() == ["ID", "WORKFLOW", "STATUS", "STARTED", "DURATION"]
    rows = [line.split() for line in lines[1:]]
    assert [row[1:3] for row in rows] == [
        ["cli-failing@1.0.0", "failed"],
        ["cli-chain@1.0.0", "completed"],
    ]
    for execution_id, _, _, day, clock, duration in rows:
        assert len(execution_id) == 36
        assert day.count("-") == 2
        assert clock.endswith("Z")
        assert duration.endswith("s")

    code, lines, _ = run(url, "executions", "--status", "failed")
    assert [line.split()[1] for line in lines[1:]] == ["cli-failing@1.0.0"]
    code, lines, _ = run(url, "executions", "--workflow", "cli-chain")
    assert [line.split()[1] for line in lines[1:]] == ["cli-chain@1.0.0"]
    code, lines, _ = run(url, "executions", "--limit", "1")
    assert len(lines) == 3
    assert lines[-1] == "(1 of 2; --limit to see more)"


def test_executions_rejects_bad_options_as_usage_errors(url: str) -> None:
    for args in (("--status", "bogus"), ("--limit", "0")):
        code, _, stderr = run(url, "executions", *args)
        assert code == 2
        assert "usage: flowyard executions" in stderr
