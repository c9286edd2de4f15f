"""``flowyard users …`` and ``flowyard api-keys …`` on a real database, then the real
server accepting (and, after a revoke, refusing) what they made; the first start's
one-time admin password and the demo's users."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import httpx

from tests.acceptance.conftest import FLOWYARD, REPO, run_cli, start_server


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FLOWYARD), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )


def test_users_and_keys_made_on_the_command_line_work_on_the_server(tmp_path: Path) -> None:
    url = ["--database-url", f"sqlite+aiosqlite:///{tmp_path / 'data' / 'flowyard.db'}"]
    made = cli("users", "create", "ops", "--role", "operator", "--password-stdin", *url,
               stdin="operator-password\n")  # fmt: skip
    assert made.returncode == 0, made.stderr
    generated = cli("users", "create", "rita", "--role", "viewer", *url)
    assert "password (shown once): " in generated.stdout
    listed = cli("users", "list", *url).stdout
    assert re.search(r"^ops\s+operator\s+enabled", listed, re.M), listed
    assert cli("users", "disable", "rita", *url).returncode == 0
    assert re.search(r"^rita\s+viewer\s+disabled", cli("users", "list", *url).stdout, re.M)
    assert cli("users", "disable", "nobody", *url).returncode == 1
    refused = cli(
        "users", "create", "x", "--role", "viewer", "--password-stdin", *url, stdin="short\n"
    )
    assert refused.returncode == 2
    assert "/password" in refused.stderr

    key_made = cli("api-keys", "create", "deploy bot", "--role", "manager", *url)
    assert key_made.returncode == 0, key_made.stderr
    key = key_made.stdout.split("store it now): ", 1)[1].strip()
    prefix = key[:11]
    assert prefix in cli("api-keys", "list", *url).stdout
    assert key not in cli("api-keys", "list", *url).stdout

    server = start_server(["serve", "--data-dir", str(tmp_path / "data")], tmp_path)
    try:
        headers = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{server.url}/api/v1/workflows", headers=headers).status_code == 200
        assert httpx.get(f"{server.url}/api/v1/workflows").status_code == 401
        revoked = cli("api-keys", "revoke", prefix, *url)
        assert revoked.returncode == 0, revoked.stderr
        assert httpx.get(f"{server.url}/api/v1/workflows", headers=headers).status_code == 401
    finally:
        server.stop(signal.SIGKILL)
    assert "first start" not in server.log()  # users existed: no generated password


def test_a_first_start_prints_the_admin_password_once(tmp_path: Path) -> None:
    args = ["serve", "--data-dir", str(tmp_path / "data")]
    first = start_server(args, tmp_path)
    try:
        log = first.log()
        (password,) = re.findall(r"Created user 'admin' with password\n\s+(\S+)\n", log)
        assert password not in "\n".join(line for line in log.splitlines() if '"level"' in line)
    finally:
        assert first.stop() == 0
    second = start_server(args, tmp_path)
    try:
        assert "with password" not in second.log()
    finally:
        assert second.stop() == 0


def test_generate_prints_a_key_fit_for_the_bootstrap_variable() -> None:
    result = run_cli("api-keys", "generate")
    assert result.returncode == 0
    assert re.fullmatch(r"fy_[a-z0-9]{40}\n", result.stdout)


def test_the_demo_prints_one_user_per_role(tmp_path: Path) -> None:
    demo = start_server(["demo", "--data-dir", str(tmp_path / "demo")], tmp_path)
    try:
        log = demo.log()
        found = dict(re.findall(r"^\s+(admin|manager|operator|viewer)\s+password (\S+)", log, re.M))
        assert set(found) == {"admin", "manager", "operator", "viewer"}
        assert "with password" not in log  # the demo's users replace the one-time admin
    finally:
        assert demo.stop() == 0
