"""``task`` nodes through the REST API on a real database: commands and installed handlers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.engine.conftest import (
    BASE,
    Client,
    edge,
    engine_client,
    latest,
    node,
    node_runs,
    run,
    script,
    workflow,
)
from tests.unit.processors.runtime.test_handler_entry_points import install_plugin
from tests.unit.processors.runtime.test_task_command import sleepers, unique_seconds, wait_gone

PYTHON = sys.executable
#: Doubles its first argument and answers JSON.
DOUBLE = "import json, sys; print(json.dumps({'n': int(sys.argv[1]) * 2, 'via': sys.argv[2]}))"


def commands_allowed(*programs: str) -> dict[str, Any]:
    """Settings flags that enable commands for ``programs``."""
    return {"tasks.allow_commands": True, "tasks.command_allowlist": list(programs)}


def command(node_id: str, argv: list[str], **config: Any) -> dict[str, Any]:
    """A command task; ``retry_policy`` and ``node_timeout`` are node fields."""
    fields = {}
    if "retry_policy" in config:
        fields["retry_policy"] = config.pop("retry_policy")
    if "node_timeout" in config:
        fields["timeout"] = config.pop("node_timeout")
    return node(node_id, "task", {"command": argv, **config}, **fields)


async def test_a_command_runs_and_its_json_stdout_feeds_the_next_node(database_url: str) -> None:
    document = workflow(
        [
            command("double", [PYTHON, "-c", DOUBLE], args=["${n}", "${label}"]),
            script("after", "result = stdout.n + 1", "code = exit_code"),
        ],
        [edge("double", "after")],
        output={"result": "${result}", "via": "${stdout.via}", "code": "${code}"},
    )
    async with engine_client(database_url, **commands_allowed(PYTHON)) as client:
        execution = await run(client, document, input={"n": 21, "label": "a b; c"})
    assert execution["status"] == "completed", execution["error"]
    assert execution["output"] == {"result": 43, "via": "a b; c", "code": 0}
    ran = latest(execution)["double"]
    assert ran["output"] == {"exit_code": 0, "stdout": {"n": 42, "via": "a b; c"}, "stderr": ""}
    assert any("exited with code 0" in line for line in ran["logs"])


async def test_a_server_without_commands_warns_at_upload_and_fails_the_node(
    client_without_commands: Client,
) -> None:
    document = workflow(
        [
            command(
                "echo",
                ["/bin/echo", "hi"],
                retry_policy={"max_attempts": 3, "delay": 0.01, "backoff": "fixed"},
            )
        ]
    )
    verdict = (await client_without_commands.post(f"{BASE}/validate", json=document)).json()
    assert verdict["valid"] is True
    (warning,) = verdict["warnings"]
    assert warning["path"] == "/nodes/0/config/command/0"
    assert "allow_commands = true" in warning["message"]
    execution = await run(client_without_commands, document)
    assert execution["status"] == "failed"
    (only,) = node_runs(execution, "echo")  # a refusal is not retried
    assert "task commands are disabled on this server" in only["error"]["message"]


@pytest.fixture
async def client_without_commands(database_url: str) -> Any:
    async with engine_client(database_url) as test_client:
        yield test_client


async def test_a_program_off_the_allowlist_is_refused(database_url: str, tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    document = workflow([command("shell", ["/bin/sh", "-c", f"touch {target}"])])
    async with engine_client(database_url, **commands_allowed("/bin/echo")) as client:
        verdict = (await client.post(f"{BASE}/validate", json=document)).json()
        assert any("command_allowlist" in w["message"] for w in verdict["warnings"])
        execution = await run(client, document)
    assert execution["status"] == "failed"
    assert (
        "/bin/sh is not on this server's [tasks] command_allowlist"
        in (latest(execution)["shell"]["error"]["message"])
    )
    assert not target.exists()


async def test_a_failing_command_is_retried_by_its_policy_and_keeps_its_output(
    database_url: str,
) -> None:
    source = "import sys; print('half done'); sys.stderr.write('quota exceeded'); sys.exit(2)"
    policy = {"max_attempts": 2, "delay": 0.01, "backoff": "fixed"}
    document = workflow([command("flaky", [PYTHON, "-c", source], retry_policy=policy)])
    async with engine_client(database_url, **commands_allowed(PYTHON)) as client:
        execution = await run(client, document)
    assert execution["status"] == "failed"
    runs = node_runs(execution, "flaky")
    assert [r["attempt"] for r in runs] == [1, 2]
    error = runs[-1]["error"]
    assert error["message"] == f"command {PYTHON} exited with code 2: quota exceeded"
    assert (error["exit_code"], error["stdout"], error["stderr"]) == (
        2,
        "half done",
        "quota exceeded",
    )


async def test_the_node_timeout_kills_the_program(database_url: str) -> None:
    marker = unique_seconds()
    document = workflow([command("slow", ["/bin/sleep", marker], node_timeout="0.5s")])
    async with engine_client(database_url, **commands_allowed("/bin/sleep")) as client:
        execution = await run(client, document)
        assert execution["status"] == "failed"
        assert "timed out" in latest(execution)["slow"]["error"]["message"]
        for pid in sleepers(marker):  # the engine does not wait for the kill: poll for it
            await wait_gone(pid)
    assert sleepers(marker) == []


async def test_the_task_timeout_fails_with_a_message(database_url: str) -> None:
    marker = unique_seconds()
    document = workflow([command("slow", ["/bin/sleep", marker], timeout="0.3s")])
    async with engine_client(database_url, **commands_allowed("/bin/sleep")) as client:
        execution = await run(client, document)
    assert execution["status"] == "failed"
    message = latest(execution)["slow"]["error"]["message"]
    assert message.startswith("command /bin/sleep timed out after 300ms and was killed")
    assert sleepers(marker) == []


async def test_handlers_from_an_installed_package_run_through_the_api(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_plugin(tmp_path, monkeypatch)
    document = workflow(
        [
            node("double", "task", {"handler": "plugin-double", "args": {"value": "${n}"}},
                 output_key="doubled"),
            node("greet", "task", {"handler": "plugin-greet", "args": {"name": "${who}"}},
                 output_key="greeted"),
        ],
        [edge("double", "greet")],
        output={"doubled": "${doubled}", "greeted": "${greeted}"},
    )  # fmt: skip
    async with engine_client(database_url) as client:
        execution = await run(client, document, input={"n": 21, "who": "Ada"})
    assert execution["status"] == "completed", execution["error"]
    doubled, greeted = execution["output"]["doubled"], execution["output"]["greeted"]
    assert doubled["doubled"] == 42
    assert doubled["key"] == f"{execution['id']}:double"
    assert greeted["greeting"] == "hello Ada"
    # async handlers run on the engine's event loop, sync ones in a worker thread
    assert (greeted["on_event_loop"], doubled["on_event_loop"]) == (True, False)
    assert doubled["thread_id"] != greeted["thread_id"]
    assert latest(execution)["double"]["logs"] == ["doubling 21"]


async def test_without_the_package_its_handler_is_unknown(database_url: str) -> None:
    document = workflow([node("double", "task", {"handler": "plugin-double"})])
    async with engine_client(database_url) as client:
        execution = await run(client, document)
    assert execution["status"] == "failed"
    assert (
        "no task handler named 'plugin-double'" in (latest(execution)["double"]["error"]["message"])
    )
