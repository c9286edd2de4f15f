"""``task`` commands: real programs started without a shell, under the operator's policy.

Every test runs real programs (``/bin/echo``, ``/bin/sleep``, ``/bin/sh``, this Python);
"gone" means the process no longer exists (or is a zombie waiting for its parent).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from processors.commands import CommandPolicy, CommandRunner
from processors.runtime import Completed, Failed, Outcome
from processors.task import TaskProcessor
from server.config import load_settings
from server.definitions import ValidationContext, validate_definition
from server.errors import ConfigurationError
from tests.unit.processors.runtime.conftest import Harness

PYTHON = sys.executable
SEARCH_PATH = "/usr/bin:/bin"
TASK = TaskProcessor()


def runner(*allowed: str, enabled: bool = True, max_output_bytes: int = 1 << 20) -> CommandRunner:
    return CommandRunner(
        CommandPolicy(enabled, allowed, SEARCH_PATH),
        default_timeout=60,
        max_output_bytes=max_output_bytes,
    )


async def run(harness: Harness, commands: CommandRunner, **config: Any) -> Outcome:
    return await TASK.run(config, harness.ctx(services={"commands": commands}))


def py(source: str) -> list[str]:
    """A command running ``source`` in this Python."""
    return [PYTHON, "-c", source]


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def sleepers(marker: str) -> list[int]:
    """Live processes whose command line is ``sleep <marker>``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        is_sleeper = len(argv) > 1 and argv[0].endswith(b"sleep") and argv[1] == marker.encode()
        if is_sleeper and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


async def wait_gone(pid: int) -> None:
    """A SIGKILLed process that is not our child dies asynchronously: poll for it."""
    deadline = time.monotonic() + 10
    while alive(pid):
        assert time.monotonic() < deadline, f"process {pid} is still alive"
        await asyncio.sleep(0.01)


def unique_seconds() -> str:
    return f"{random.randint(3000, 9000)}.{random.randint(100, 999)}"


# --- running --------------------------------------------------------------------------


async def test_echo_runs_with_command_and_args(harness: Harness) -> None:
    outcome = await run(
        harness, runner("/bin/echo"), command=["/bin/echo", "hello"], args=["big", "world"]
    )
    assert outcome == Completed({"exit_code": 0, "stdout": "hello big world", "stderr": ""})
    assert harness.logs[0].startswith("/bin/echo exited with code 0")


async def test_a_string_command_is_the_program_alone(harness: Harness) -> None:
    outcome = await run(harness, runner("/bin/echo"), command="/bin/echo", args=["x"])
    assert outcome == Completed({"exit_code": 0, "stdout": "x", "stderr": ""})


async def test_json_stdout_is_parsed_unless_told_otherwise(harness: Harness) -> None:
    source = "import json; print(json.dumps({'total': 3, 'items': [1, 2]}))"
    parsed = await run(harness, runner(PYTHON), command=py(source))
    assert isinstance(parsed, Completed)
    assert parsed.output["stdout"] == {"total": 3, "items": [1, 2]}
    text = await run(harness, runner(PYTHON), command=py(source), parse_json=False)
    assert isinstance(text, Completed)
    assert text.output["stdout"] == '{"total": 3, "items": [1, 2]}'


@pytest.mark.parametrize(
    ("printed", "expected"),
    [("42", 42), ("NaN", "NaN"), ("plain words", "plain words"), ("[1, 2", "[1, 2"), ("", "")],
)
async def test_only_strict_json_is_parsed(harness: Harness, printed: str, expected: Any) -> None:
    outcome = await run(harness, runner(PYTHON), command=py(f"print({printed!r})"))
    assert isinstance(outcome, Completed)
    assert outcome.output["stdout"] == expected


async def test_arguments_are_never_shell_syntax(harness: Harness, tmp_path: Path) -> None:
    target = tmp_path / "created"
    outcome = await run(
        harness, runner("/bin/echo"), command=["/bin/echo", f"$(touch {target}); `id` | cat"]
    )
    assert isinstance(outcome, Completed)
    assert outcome.output["stdout"] == f"$(touch {target}); `id` | cat"
    assert not target.exists()


async def test_numbers_and_booleans_become_text_other_values_fail(harness: Harness) -> None:
    outcome = await run(harness, runner("/bin/echo"), command=["/bin/echo"], args=[1, True, 2.5])
    assert isinstance(outcome, Completed)
    assert outcome.output["stdout"] == "1 true 2.5"
    for bad in (None, {"a": 1}, [1]):
        failed = await run(harness, runner("/bin/echo"), command=["/bin/echo"], args=[bad])
        assert isinstance(failed, Failed)
        assert failed.retryable is False
        assert "argument 1 of the command" in failed.error


async def test_environment_is_minimal_plus_env_and_the_server_env_does_not_leak(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWYARD_SECRET_KEY", "server-secret-value")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "another-secret")
    source = "import json, os; print(json.dumps(dict(os.environ)))"
    outcome = await run(
        harness, runner(PYTHON), command=py(source), env={"GREETING": "hi", "COUNT": 3}
    )
    assert isinstance(outcome, Completed)
    env = outcome.output["stdout"]
    assert "server-secret-value" not in json.dumps(env)
    assert "another-secret" not in json.dumps(env)
    assert env["GREETING"] == "hi"
    assert env["COUNT"] == "3"
    assert env["PATH"] == SEARCH_PATH
    assert env["LANG"] == "C.UTF-8"
    assert env["FLOWYARD_EXECUTION_ID"] == "exec-1"
    assert env["FLOWYARD_NODE_ID"] == "node"
    assert env["FLOWYARD_IDEMPOTENCY_KEY"] == "exec-1:node"
    assert env["FLOWYARD_ATTEMPT"] == "1"
    assert env["HOME"] == env["TMPDIR"]
    expected = {"PATH", "LANG", "HOME", "TMPDIR", "GREETING", "COUNT"}
    flowyard = {"FLOWYARD_EXECUTION_ID", "FLOWYARD_WORKFLOW_ID", "FLOWYARD_NODE_ID"}
    flowyard |= {"FLOWYARD_ATTEMPT", "FLOWYARD_IDEMPOTENCY_KEY"}
    assert set(env) == expected | flowyard


async def test_each_run_gets_a_fresh_empty_directory_removed_afterwards(
    harness: Harness,
) -> None:
    source = (
        "import json, os; print(json.dumps([os.getcwd(), os.listdir('.')]));"
        "open('scratch.txt', 'w').write('x')"
    )
    first = await run(harness, runner(PYTHON), command=py(source))
    second = await run(harness, runner(PYTHON), command=py(source))
    assert isinstance(first, Completed)
    assert isinstance(second, Completed)
    (first_dir, first_listing), (second_dir, second_listing) = (
        first.output["stdout"],
        second.output["stdout"],
    )
    assert first_listing == second_listing == []
    assert first_dir != second_dir
    assert not Path(first_dir).exists()
    assert not Path(second_dir).exists()


@pytest.mark.parametrize("name", ["LD_PRELOAD", "ld_library_path", "PYTHONPATH", "BASH_ENV"])
async def test_env_names_that_load_code_are_refused(harness: Harness, name: str) -> None:
    outcome = await run(harness, runner("/bin/echo"), command=["/bin/echo"], env={name: "/x"})
    assert isinstance(outcome, Failed)
    assert outcome.retryable is False
    assert "may not be set" in outcome.error


async def test_a_nul_character_is_refused(harness: Harness) -> None:
    outcome = await run(harness, runner("/bin/echo"), command=["/bin/echo", "a\x00b"])
    assert isinstance(outcome, Failed)
    assert "NUL" in outcome.error


# --- failing ------------------------------------------------------------------------


async def test_non_zero_exit_fails_retryably_with_the_stderr_tail(harness: Harness) -> None:
    source = "import sys; print('partial'); sys.stderr.write('x' * 900 + 'disk full\\n'); exit(3)"
    outcome = await run(harness, runner(PYTHON), command=py(source))
    assert isinstance(outcome, Failed)
    assert outcome.retryable is True
    assert f"command {PYTHON} exited with code 3: …" in outcome.error
    assert outcome.error.endswith("disk full")
    assert len(outcome.error) < 700  # the tail, not the whole stderr
    assert outcome.details["exit_code"] == 3
    assert outcome.details["stdout"] == "partial"
    assert outcome.details["stderr"].endswith("disk full")


async def test_a_program_killed_by_a_signal_says_which(harness: Harness) -> None:
    source = "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"
    outcome = await run(harness, runner(PYTHON), command=py(source))
    assert isinstance(outcome, Failed)
    assert "was killed by SIGTERM" in outcome.error
    assert outcome.details["exit_code"] == -15


async def test_timeout_kills_the_program(harness: Harness) -> None:
    marker = unique_seconds()
    outcome = await run(harness, runner("/bin/sleep"), command=["/bin/sleep", marker], timeout=0.3)
    assert isinstance(outcome, Failed)
    assert outcome.retryable is True
    assert "timed out after 300ms and was killed with its process group" in outcome.error
    assert "'timeout'" in outcome.error
    assert outcome.details["exit_code"] == -9
    assert sleepers(marker) == []


async def test_timeout_kills_the_whole_process_group(harness: Harness) -> None:
    marker = unique_seconds()
    script = f"/bin/sleep {marker} & echo $!; /bin/sleep {marker}"
    outcome = await run(harness, runner("/bin/sh"), command=["/bin/sh", "-c", script], timeout=0.5)
    assert isinstance(outcome, Failed)
    assert "timed out" in outcome.error
    background = outcome.details["stdout"]
    assert isinstance(background, int)
    await wait_gone(background)
    assert sleepers(marker) == []


async def test_what_a_program_leaves_running_is_killed_when_it_exits(harness: Harness) -> None:
    marker = unique_seconds()
    script = f"/bin/sleep {marker} & echo $!"
    outcome = await run(harness, runner("/bin/sh"), command=["/bin/sh", "-c", script])
    assert isinstance(outcome, Completed)  # not held up by the child holding stdout
    assert outcome.output["exit_code"] == 0
    await wait_gone(outcome.output["stdout"])
    assert sleepers(marker) == []


async def test_cancelling_the_node_kills_the_program(harness: Harness, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    source = "import os, sys, time; open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(600)"
    task = asyncio.ensure_future(run(harness, runner(PYTHON), command=[*py(source), str(pid_file)]))
    deadline = time.monotonic() + 20
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the program did not start"
        assert not task.done(), task.result()
        await asyncio.sleep(0.01)
    pid = int(pid_file.read_text())
    assert alive(pid)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not alive(pid)


async def test_output_is_capped_and_the_program_is_not_blocked(harness: Harness) -> None:
    source = "import sys; sys.stdout.write('o' * 300000); sys.stderr.write('e' * 300000)"
    outcome = await run(harness, runner(PYTHON, max_output_bytes=1000), command=py(source))
    assert isinstance(outcome, Completed)
    assert outcome.output["stdout"] == "o" * 1000
    assert outcome.output["stderr"] == "e" * 1000
    assert "stdout truncated: kept the first 1,000 of 300,000 bytes" in harness.logs[1]
    assert "stderr truncated" in harness.logs[2]


async def test_bad_timeouts_fail_without_retry(harness: Harness) -> None:
    for timeout in ("soon", 0, -1):
        outcome = await run(harness, runner("/bin/echo"), command="/bin/echo", timeout=timeout)
        assert isinstance(outcome, Failed)
        assert outcome.retryable is False
        assert outcome.error.startswith("timeout: ")


# --- the policy -----------------------------------------------------------------------


async def test_commands_are_refused_while_disabled(harness: Harness) -> None:
    outcome = await run(harness, runner("/bin/echo", enabled=False), command=["/bin/echo", "x"])
    assert isinstance(outcome, Failed)
    assert outcome.retryable is False
    assert "allow_commands = true" in outcome.error
    assert "FLOWYARD_TASKS_ALLOW_COMMANDS" in outcome.error


async def test_a_shell_that_is_not_allow_listed_is_refused(
    harness: Harness, tmp_path: Path
) -> None:
    target = tmp_path / "pwned"
    outcome = await run(harness, runner("/bin/echo"), command=["/bin/sh", "-c", f"touch {target}"])
    assert isinstance(outcome, Failed)
    assert outcome.retryable is False
    assert "/bin/sh is not on this server's [tasks] command_allowlist" in outcome.error
    assert not target.exists()


@pytest.mark.parametrize(
    "program",
    ["../../bin/sh", "bin/sh", "/bin/../bin/sh", "/usr/bin/../../bin/sh", "/bin//./sh"],
)
async def test_paths_cannot_walk_around_the_allowlist(harness: Harness, program: str) -> None:
    outcome = await run(harness, runner("/bin/echo"), command=[program, "-c", "echo pwned"])
    assert isinstance(outcome, Failed)
    assert outcome.retryable is False
    assert "relative path" in outcome.error or "command_allowlist" in outcome.error


async def test_a_bare_entry_means_the_program_on_the_server_path(harness: Harness) -> None:
    commands = CommandRunner(
        CommandPolicy(True, ("echo",), "/bin"), default_timeout=60, max_output_bytes=1000
    )
    by_name = await run(harness, commands, command=["echo", "a"])
    by_path = await run(harness, commands, command=["/bin/echo", "b"])
    assert by_name == Completed({"exit_code": 0, "stdout": "a", "stderr": ""})
    assert by_path == Completed({"exit_code": 0, "stdout": "b", "stderr": ""})


async def test_the_node_env_path_cannot_swap_the_program(harness: Harness, tmp_path: Path) -> None:
    fake = tmp_path / "echo"
    fake.write_text("#!/bin/sh\nprintf fake\n")
    fake.chmod(0o755)
    outcome = await run(
        harness, runner("echo"), command=["echo", "real"], env={"PATH": str(tmp_path)}
    )
    assert outcome == Completed({"exit_code": 0, "stdout": "real", "stderr": ""})


async def test_a_link_with_an_allowed_name_elsewhere_is_refused(
    harness: Harness, tmp_path: Path
) -> None:
    link = tmp_path / "echo"
    link.symlink_to("/bin/sh")
    outcome = await run(harness, runner("echo"), command=[str(link), "-c", "echo pwned"])
    assert isinstance(outcome, Failed)
    assert "command_allowlist" in outcome.error


async def test_a_differently_named_link_to_an_allowed_program_is_refused(
    harness: Harness, tmp_path: Path
) -> None:
    link = tmp_path / "tool"
    link.symlink_to("/bin/sh")  # e.g. a multi-call binary deciding by its name
    allowed = runner(str(link))
    outcome = await run(harness, allowed, command=["/bin/sh", "-c", "echo pwned"])
    assert isinstance(outcome, Failed)
    assert "command_allowlist" in outcome.error


async def test_a_missing_program_is_a_clear_failure(harness: Harness) -> None:
    outcome = await run(harness, runner("no-such-program-here"), command="no-such-program-here")
    assert isinstance(outcome, Failed)
    assert outcome.retryable is False
    assert "not an executable on the server's PATH" in outcome.error
    spaced = await run(harness, runner("/bin/echo"), command="echo hello")
    assert isinstance(spaced, Failed)
    assert "write the command as a list" in spaced.error


# --- settings and definition-time checks ----------------------------------------------


def test_command_settings_are_read_and_checked() -> None:
    settings = load_settings(
        environ={
            "FLOWYARD_TASKS_COMMAND_TIMEOUT": "30s",
            "FLOWYARD_TASKS_MAX_OUTPUT_BYTES": "4096",
            "FLOWYARD_TASKS_COMMAND_ALLOWLIST": "/bin/echo, python3",
        }
    )
    commands = CommandRunner.from_settings(settings.tasks, search_path=SEARCH_PATH)
    assert commands.default_timeout == 30
    assert commands.max_output_bytes == 4096
    assert commands.policy.allowlist == ("/bin/echo", "python3")
    assert commands.policy.allow_commands is False
    defaults = load_settings(environ={}).tasks
    assert (defaults.command_timeout, defaults.max_output_bytes) == ("10m", 1024 * 1024)
    for key, value in [
        ("FLOWYARD_TASKS_COMMAND_TIMEOUT", "forever"),
        ("FLOWYARD_TASKS_COMMAND_TIMEOUT", "0"),
        ("FLOWYARD_TASKS_MAX_OUTPUT_BYTES", "0"),
        ("FLOWYARD_TASKS_COMMAND_ALLOWLIST", "bin/sh"),
    ]:
        with pytest.raises(ConfigurationError) as caught:
            load_settings(environ={key: value})
        assert caught.value.key.startswith("tasks.")


def command_doc(config: dict[str, Any]) -> dict[str, Any]:
    node = {"id": "run", "name": "Run", "type": "task", "config": config}
    return {"id": "cmd", "name": "cmd", "nodes": [node]}


def report(config: dict[str, Any], policy: CommandPolicy | None) -> dict[str, list[str]]:
    found = validate_definition(command_doc(config), ValidationContext(commands=policy))
    return {
        "errors": [f"{p.path} {p.message}" for p in found.errors],
        "warnings": [f"{p.path} {p.message}" for p in found.warnings],
    }


def test_disabled_or_unlisted_commands_are_warnings_at_definition_time() -> None:
    disabled = report({"command": ["/bin/echo", "x"]}, CommandPolicy(False, ("/bin/echo",)))
    assert disabled["errors"] == []
    (warning,) = disabled["warnings"]
    assert warning.startswith("/nodes/0/config/command/0 task commands are disabled")
    unlisted = report({"command": "/bin/sh"}, CommandPolicy(True, ("/bin/echo",), SEARCH_PATH))
    assert unlisted["errors"] == []
    (warning,) = unlisted["warnings"]
    assert "/nodes/0/config/command " in warning
    assert "command_allowlist" in warning
    allowed = report({"command": ["/bin/echo"]}, CommandPolicy(True, ("/bin/echo",)))
    assert allowed == {"errors": [], "warnings": []}
    unknown_server = report({"command": "/bin/sh"}, None)  # e.g. `flowyard validate`
    assert unknown_server == {"errors": [], "warnings": []}
    templated = report({"command": "${program}"}, CommandPolicy(False))
    assert not any("disabled" in w for w in templated["warnings"])


def test_command_config_errors_at_definition_time() -> None:
    policy = CommandPolicy(True, ("/bin/echo",))
    found = report(
        {
            "command": ["/bin/echo"],
            "args": {"a": 1},
            "env": {"LD_PRELOAD": "/x", "OK": "1", "BAD-NAME": "x"},
            "timeout": "whenever",
        },
        policy,
    )
    paths = sorted(e.split(" ", 1)[0] for e in found["errors"])
    assert paths == [
        "/nodes/0/config/args",
        "/nodes/0/config/env/BAD-NAME",
        "/nodes/0/config/env/LD_PRELOAD",
        "/nodes/0/config/timeout",
    ]
    assert report({"command": []}, policy)["errors"]
    assert report({"command": ["/bin/echo"], "timeout": 0}, policy)["errors"]
    spaced = report({"command": "echo hello"}, None)
    assert any("never split at spaces" in w for w in spaced["warnings"])
    script = report({"script": "x = 1", "env": {"A": "b"}, "timeout": "5s"}, None)
    assert sorted(w.split(" ", 1)[0] for w in script["warnings"]) == [
        "/nodes/0/config/env",
        "/nodes/0/config/timeout",
    ]


def test_the_allowlist_does_not_depend_on_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bin").mkdir()
    monkeypatch.chdir(tmp_path)
    policy = CommandPolicy(True, ("/bin/echo",), SEARCH_PATH)
    assert policy.refusal("/bin/echo") is None
    assert policy.refusal("./bin/echo") is not None
    assert os.path.isabs(policy.locate("echo"))
