"""``flowyard`` as an operator runs it: serve, demo, validate, push, migrate."""

from __future__ import annotations

import json
import signal
import sqlite3
from pathlib import Path

import httpx

from demo.loader import definition_files
from tests.acceptance.conftest import REPO, RunningServer, run_cli, start_server
from tests.auth import ADMIN_HEADERS

MIGRATIONS = REPO / "server" / "store" / "migrations" / "versions"


def test_serve_answers_and_shuts_down_cleanly_on_sigterm(server: RunningServer) -> None:
    document = json.loads((REPO / "definitions" / "examples-task-script.json").read_text())
    created = httpx.post(
        f"{server.url}/api/v1/workflows", json=document, headers=ADMIN_HEADERS, timeout=10
    )
    assert created.status_code == 201, created.text
    assert (
        httpx.get(
            f"{server.url}/api/v1/workflows/{document['id']}", headers=ADMIN_HEADERS, timeout=10
        ).status_code
        == 200
    )
    assert server.stop(signal.SIGTERM) == 0
    assert '"action": "server.stopped"' in server.log()


def test_serve_help_documents_each_setting() -> None:
    result = run_cli("serve", "--help")
    assert result.returncode == 0
    for name in (
        "--host",
        "--port",
        "--database-url",
        "--config",
        "max_workers",
        "execution_timeout",
        "FLOWYARD_",
    ):
        assert name in result.stdout


def test_bad_setting_fails_at_start_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[server]\nmax_workers = 'many'\n")
    result = run_cli("serve", "--config", str(config))
    assert result.returncode == 2
    assert "server.max_workers" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_examples_and_broken_files(tmp_path: Path) -> None:
    files = [str(p) for p in definition_files()]
    assert len(files) >= 3
    result = run_cli("validate", *files)
    assert result.returncode == 0, result.stdout
    assert result.stdout.count(": valid") == len(files)

    broken = tmp_path / "broken.json"
    broken.write_text(
        json.dumps({"name": "x", "nodes": [{"id": "a", "type": "nope", "config": {}}], "edges": []})
    )
    not_json = tmp_path / "not.json"
    not_json.write_text("{oops")
    result = run_cli("validate", str(broken), str(not_json))
    assert result.returncode == 1
    assert f"{broken}: error /nodes/0/type:" in result.stdout
    assert f"{not_json}: not valid JSON" in result.stdout


def test_validate_checks_connection_names_against_a_config(tmp_path: Path) -> None:
    etl = str(REPO / "definitions" / "etl-pipeline.json")
    config = tmp_path / "server.toml"
    config.write_text("[connections.warehouse]\nurl = 'sqlite:///w.db'\n")
    result = run_cli("validate", etl, "--config", str(config))
    assert result.returncode == 1
    assert 'connection "demo_db" is not configured' in result.stdout
    assert "warehouse" in result.stdout
    config.write_text(
        "[connections.demo_db]\nurl = 'sqlite:///d.db'\n[smtp.default]\nport = 8025\n"
    )
    assert run_cli("validate", etl, "--config", str(config)).returncode == 0


def test_push_uploads_and_reports_each_file(server: RunningServer, tmp_path: Path) -> None:
    good = REPO / "definitions" / "examples-timer.json"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"nodes": []}))
    result = run_cli("push", str(good), str(bad), "--url", server.url)
    assert result.returncode == 1
    assert f"{good}: created" in result.stdout
    assert f"{bad}: rejected (422)" in result.stdout
    assert "  /name:" in result.stdout
    again = run_cli("push", str(good), "--url", server.url)
    assert again.returncode == 0
    assert "unchanged" in again.stdout


def test_migrate_creates_the_schema(tmp_path: Path) -> None:
    database = tmp_path / "fresh.db"
    result = run_cli("migrate", "--database-url", f"sqlite+aiosqlite:///{database}")
    assert result.returncode == 0, result.stderr
    newest = max(p.name[:4] for p in MIGRATIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))
    assert f"revision {newest}" in result.stdout
    tables = {
        row[0]
        for row in sqlite3.connect(database).execute(
            "SELECT name FROM sqlite_master WHERE type='table'"
        )
    }
    assert {"workflows", "workflow_versions", "executions", "node_runs", "human_tasks"} <= tables


def test_demo_serves_every_example(tmp_path: Path) -> None:
    demo = start_server(["demo", "--data-dir", str(tmp_path / "demo-data")], tmp_path)
    try:
        listed = httpx.get(f"{demo.url}/demo/workflows", headers=ADMIN_HEADERS, timeout=10).json()
        expected = {json.loads(p.read_text())["id"] for p in definition_files()}
        assert {w["id"] for w in listed["workflows"]} == expected
        assert httpx.get(
            f"{demo.url}/demo/executions", headers=ADMIN_HEADERS, timeout=10
        ).json() == {
            "executions": [],
            "total": 0,
        }
        page = httpx.get(
            f"{demo.url}/workflows", headers={**ADMIN_HEADERS, "Accept": "text/html"}, timeout=10
        )
        assert "approval-workflow" in page.text
        assert "Document Approval Process" in page.text
        info = httpx.get(
            demo.url, headers={**ADMIN_HEADERS, "Accept": "application/json"}, timeout=10
        ).json()
        assert info["name"] == "Flowyard"
    finally:
        assert demo.stop() == 0
