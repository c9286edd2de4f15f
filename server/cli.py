"""The ``flowyard`` command: serve, demo, validate, push, run, executions, migrate, users,
api-keys.

``push``, ``run`` and ``executions`` talk to a running server through its REST API
(``--url``, ``--api-key``; or ``FLOWYARD_URL``, ``FLOWYARD_API_KEY``). ``run`` exits 0
when the execution completed (or, without ``--wait``, was started), 1 when it failed or
was cancelled, 2 for bad usage (including a request the server rejected with a 4xx),
and 3 when the server cannot be reached or cannot answer (5xx).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from server import __version__
from server.config import Settings, load_settings, settings_help
from server.durations import format_duration, parse_duration
from server.errors import ConfigurationError
from server.security.admin_cli import add_commands as add_identity_commands

#: Exit codes of the commands that talk to a server.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
EXECUTION_STATUSES = ("pending", "running", "completed", "failed", "cancelled", "suspended")
FINISHED = frozenset({"completed", "failed", "cancelled"})
POLL_SECONDS = 0.3

SERVER_FLAGS = {
    "host": "server.host",
    "port": "server.port",
    "database_url": "server.database_url",
    "data_dir": "server.data_dir",
    "workers": "server.max_workers",
    "log_level": "server.log_level",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args))
    except ConfigurationError as error:
        print(f"flowyard: {error.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flowyard", description="Durable workflow-engine server.")
    parser.add_argument("--version", action="version", version=f"flowyard {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    settings_rows = "\n".join(
        f"  {key:<18} default {default or '(see below)'}: {text}"
        for key, default, text in settings_help()
    )
    serve = commands.add_parser(
        "serve",
        help="run the API, dashboard, engine and scheduler in one process",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run Flowyard. Settings come from flags, then FLOWYARD_* environment "
        "variables (FLOWYARD_<SECTION>_<KEY>, or FLOWYARD_<KEY> for [server]), then the "
        "TOML file given by --config or FLOWYARD_CONFIG, then defaults.",
        epilog="[server] settings:\n" + settings_rows + "\n\nOther sections ([limits], "
        "[connections.NAME], [smtp.NAME], [outbound], [tasks], [auth]) are described in "
        "docs/configuration.md.",
    )
    _server_flags(serve)
    serve.set_defaults(run=_serve)

    demo = commands.add_parser(
        "demo", help="run the demo on a fresh database (http://127.0.0.1:8000)"
    )
    _server_flags(demo)
    demo.add_argument("--definitions", type=Path, help="directory of definitions to load")
    demo.set_defaults(run=_demo)

    validate = commands.add_parser("validate", help="validate definition files; exit 1 on errors")
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE")
    validate.add_argument("--config", help="TOML settings (for connection and SMTP names)")
    validate.set_defaults(run=_validate)

    push = commands.add_parser("push", help="upload definition files to a running server")
    push.add_argument("files", nargs="+", type=Path, metavar="FILE")
    _client_flags(push)
    push.set_defaults(run=_push)

    run = commands.add_parser(
        "run",
        help="start an execution on a running server (and follow it with --wait)",
        description="Start an execution of WORKFLOW_ID and print its id. With --wait, "
        "print each node's progress until the execution ends, then its status and output.",
        epilog="Exit status: 0 completed (or started, without --wait), 1 failed or "
        "cancelled, 2 bad usage or a request the server rejected, 3 server unreachable.",
    )
    run.add_argument("workflow_id", metavar="WORKFLOW_ID")
    run.add_argument(
        "--input", default="{}", metavar="JSON", help="the input object, e.g. '{\"n\": 3}'"
    )
    run.add_argument("--version", help="version to run (default: the newest active one)")
    run.add_argument("--wait", action="store_true", help="follow the execution until it ends")
    _client_flags(run)
    run.set_defaults(run=_run)

    executions = commands.add_parser("executions", help="list executions on a running server")
    executions.add_argument("--workflow", metavar="ID", help="only this workflow's executions")
    executions.add_argument("--status", choices=EXECUTION_STATUSES)
    executions.add_argument("--limit", type=_positive_int, default=20, help="(default 20)")
    _client_flags(executions)
    executions.set_defaults(run=_executions)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate.add_argument("--database-url")
    migrate.add_argument("--config")
    migrate.set_defaults(run=_migrate)

    add_identity_commands(commands)  # users …, api-keys …
    return parser


def _server_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML settings file (also FLOWYARD_CONFIG)")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (default 8000)")
    parser.add_argument(
        "--database-url", help="sqlite+aiosqlite:///file.db or postgresql+asyncpg://…"
    )
    parser.add_argument("--data-dir", help="directory for the default SQLite database")
    parser.add_argument("--workers", type=int, help="node runs at once in this process")
    parser.add_argument("--log-level", help="debug, info, warning or error")


def _client_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=os.environ.get("FLOWYARD_URL", "http://127.0.0.1:8000"),
        help="the server (default FLOWYARD_URL or http://127.0.0.1:8000)",
    )
    parser.add_argument(
        "--api-key", default=os.environ.get("FLOWYARD_API_KEY"), help="(or FLOWYARD_API_KEY)"
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    flags = {dotted: getattr(args, name, None) for name, dotted in SERVER_FLAGS.items()}
    return load_settings({**flags, **extra}, config_file=getattr(args, "config", None))


def _run_server(settings: Settings, **app_options: Any) -> int:
    import uvicorn

    from server.app import create_app
    from server.logging import configure_logging

    GracefulServer = _graceful_server_class()

    configure_logging(settings.server.log_level)
    app = create_app(settings, **app_options)
    config = uvicorn.Config(
        app,
        host=settings.server.host,
        port=settings.server.port,
        log_config=None,
        timeout_graceful_shutdown=int(parse_duration(settings.server.shutdown_grace)),
    )
    GracefulServer(config).run()
    return 0


def _graceful_server_class() -> type[Any]:
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """Exits 0 after a graceful shutdown on SIGTERM/SIGINT (SPEC §9).

        uvicorn re-raises the captured signal once it has shut down, which makes the
        process die "by signal"; forgetting the captured signals keeps the clean exit.
        """

        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            self._captured_signals.clear()

    return GracefulServer


def _serve(args: argparse.Namespace) -> int:
    return _run_server(_settings(args))


def _demo(args: argparse.Namespace) -> int:
    from demo.config import demo_settings

    data_dir = args.data_dir or tempfile.mkdtemp(prefix="flowyard-demo-")
    settings = demo_settings(_settings(args, **{"server.data_dir": data_dir}), Path(data_dir))
    url = f"http://{settings.server.host}:{settings.server.port}"
    print(f"Flowyard demo on {url}  (API docs: {url}/schema; data in {data_dir})", flush=True)
    print(
        f"  demo API {url}/demo/api/customers, /demo/api/orders; mail sent by the demo goes to "
        f"the SMTP sink on 127.0.0.1:{settings.demo.smtp_port}, listed at {url}/demo/mailbox",
        flush=True,
    )
    options = {"definitions_dir": args.definitions} if args.definitions else {}
    return _run_server(settings, **options)


def _validate(args: argparse.Namespace) -> int:
    from server.app import validation_context
    from server.definitions.validation import validate_definition

    # Without a configuration the server's connection and SMTP names are unknown, so
    # they are not checked; with --config (or FLOWYARD_CONFIG) they are.
    configured = bool(args.config or os.environ.get("FLOWYARD_CONFIG"))
    context = validation_context(load_settings(config_file=args.config), check_names=configured)
    failed = False
    for path in args.files:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            print(f"{path}: cannot read: {error.strerror}")
            failed = True
            continue
        except ValueError as error:
            print(f"{path}: not valid JSON: {error}")
            failed = True
            continue
        report = validate_definition(document, context)
        for problem in report.errors:
            print(f"{path}: error {problem.path or '/'}: {problem.message}")
        for problem in report.warnings:
            print(f"{path}: warning {problem.path or '/'}: {problem.message}")
        if report.valid:
            print(f"{path}: valid ({len(report.warnings)} warning(s))")
        failed = failed or not report.valid
    return 1 if failed else 0


def _client(args: argparse.Namespace) -> httpx.Client:
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    return httpx.Client(base_url=args.url, headers=headers, timeout=30)


def _push(args: argparse.Namespace) -> int:
    failed = False
    with _client(args) as client:
        for path in args.files:
            try:
                body = path.read_bytes()
            except OSError as error:
                print(f"{path}: cannot read: {error.strerror}")
                failed = True
                continue
            try:
                response = client.post(
                    "/api/v1/workflows", content=body, headers={"Content-Type": "application/json"}
                )
            except httpx.HTTPError as error:
                print(f"{path}: cannot reach {args.url}: {error}")
                return 1
            failed = _report_push(path, response) or failed
    return 1 if failed else 0


def _report_push(path: Path, response: httpx.Response) -> bool:
    """Print the outcome of one upload; True when it failed."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code in (200, 201):
        verb = "created" if response.status_code == 201 else "unchanged"
        print(f"{path}: {verb} {body.get('id')} {body.get('version')} ({body.get('status')})")
        return False
    error = body.get("error", {}) if isinstance(body, dict) else {}
    print(f"{path}: rejected ({response.status_code}): {error.get('message', response.text[:200])}")
    for detail in error.get("details", []):
        print(f"  {detail.get('path') or '/'}: {detail.get('message')}")
    return True


# --- run and executions -------------------------------------------------------------


class Unreachable(Exception):
    """The server could not be reached, or could not answer (5xx)."""


class Rejected(Exception):
    """The server refused the request (4xx); the message is already printed."""


def _request(client: httpx.Client, method: str, path: str, **options: Any) -> Any:
    """The JSON answer of a request; :class:`Rejected` or :class:`Unreachable` otherwise."""
    try:
        response = client.request(method, path, **options)
    except httpx.HTTPError as error:
        raise Unreachable(f"cannot reach {client.base_url}: {error}") from error
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 500:
        raise Unreachable(f"the server answered {response.status_code}: {_message(body, response)}")
    if response.status_code >= 400:
        print(f"flowyard: {_message(body, response)} ({response.status_code})", file=sys.stderr)
        problem = body.get("error") if isinstance(body, dict) else None
        details = problem.get("details") if isinstance(problem, dict) else None
        for detail in details or []:
            print(f"  {detail.get('path') or '/'}: {detail.get('message')}", file=sys.stderr)
        raise Rejected
    return body


def _message(body: Any, response: httpx.Response) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return response.text[:200] or response.reason_phrase


def _remote(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run a command that talks to a server, turning its errors into exit codes."""

    def run(args: argparse.Namespace) -> int:
        try:
            return int(command(args))
        except Rejected:
            return EXIT_USAGE
        except Unreachable as error:
            print(f"flowyard: {error}", file=sys.stderr)
            return EXIT_UNREACHABLE

    return run


@_remote
def _run(args: argparse.Namespace) -> int:
    try:
        data = json.loads(args.input)
    except ValueError as error:
        print(f"flowyard: --input is not valid JSON: {error}", file=sys.stderr)
        return EXIT_USAGE
    if not isinstance(data, dict):
        print('flowyard: --input must be a JSON object, e.g. \'{"name": "Ada"}\'', file=sys.stderr)
        return EXIT_USAGE
    body: dict[str, Any] = {"input": data}
    if args.version:
        body["version"] = args.version
    with _client(args) as client:
        execution = _request(
            client, "POST", f"/api/v1/workflows/{args.workflow_id}/execute", json=body
        )
        if not args.wait:
            print(execution["id"])
            return EXIT_OK
        print(f"execution {execution['id']} ({_workflow_label(execution)})", flush=True)
        progress = Progress()
        while True:
            for line in progress.changes(execution):
                print(line, flush=True)
            if execution["status"] in FINISHED:
                break
            time.sleep(POLL_SECONDS)
            execution = _request(client, "GET", f"/api/v1/workflows/executions/{execution['id']}")
    return _report_end(execution)


def _report_end(execution: Mapping[str, Any]) -> int:
    status = execution["status"]
    took = _elapsed(execution.get("started_at"), execution.get("completed_at"))
    line = status if took == "-" else f"{status} in {took}"
    error = execution.get("error")
    if status != "completed" and isinstance(error, dict) and error.get("message"):
        where = f" at {error['node_id']}" if error.get("node_id") else ""
        line += f"{where}: {error['message']}"
    print(line)
    if execution.get("output") is not None:
        print(json.dumps(execution["output"], indent=2, ensure_ascii=False))
    return EXIT_OK if status == "completed" else EXIT_FAILED


class Progress:
    """Turns successive execution documents into one line per node-run state change."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str, int, int], str] = {}

    def changes(self, execution: Mapping[str, Any]) -> list[str]:
        waits = {w.get("node_id"): w for w in execution.get("waiting_on") or []}
        nodes = [
            n for n in execution.get("executed_nodes") or [] if n.get("kind", "node") == "node"
        ]
        last_attempt: dict[tuple[str, int], int] = {}
        for n in nodes:
            run = (n["node_id"], n.get("generation", 0))
            last_attempt[run] = max(last_attempt.get(run, 1), n.get("attempt", 1))
        lines = []
        for node in nodes:
            key = (
                node["node_id"],
                node.get("kind", "node"),
                node.get("generation", 0),
                node.get("attempt", 1),
            )
            state = node["status"]
            if state == "ready" or self._seen.get(key) == state:
                continue
            self._seen[key] = state
            wait = waits.get(node["node_id"])
            retrying = (wait is not None and wait.get("kind") == "retry") or last_attempt[
                (node["node_id"], node.get("generation", 0))
            ] > node.get("attempt", 1)
            lines.append(_node_line(node, wait, retrying=retrying))
        return lines


def _node_line(node: Mapping[str, Any], wait: Mapping[str, Any] | None, *, retrying: bool) -> str:
    """``  ✓ fetch completed (0.12s)``, ``  … review waiting (human_task)``, ``  ✗ …``."""
    name, status = node["node_id"], node["status"]
    attempt = node.get("attempt", 1)
    tried = f" (attempt {attempt})" if attempt > 1 else ""
    if status == "completed":
        took = _elapsed(node.get("started_at"), node.get("completed_at"))
        return f"  ✓ {name} completed{tried}" + ("" if took == "-" else f" ({took})")
    if status == "failed":
        error = node.get("error") or {}
        message = error.get("message") if isinstance(error, dict) else str(error)
        return f"  ✗ {name} failed{tried}: {message}" + (" — will retry" if retrying else "")
    if status == "waiting":
        what = wait.get("kind") if wait else None
        until = wait.get("until") if wait else None
        detail = f"{what} until {until}" if what and until else what
        return f"  … {name} waiting" + (f" ({detail})" if detail else "")
    if status == "running":
        return f"  ▸ {name} running{tried}"
    return f"  - {name} {status}{tried}"


@_remote
def _executions(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    if args.status:
        params["status"] = args.status
    if args.workflow:
        params["workflow_id"] = args.workflow
    with _client(args) as client:
        page = _request(client, "GET", "/api/v1/workflows/executions", params=params)
    rows = [
        (
            item["id"],
            _workflow_label(item),
            item["status"],
            _clock(item.get("started_at")),
            _elapsed(
                item.get("started_at"),
                item.get("completed_at"),
                running=item["status"] not in FINISHED,
            ),
        )
        for item in page["executions"]
    ]
    if not rows:
        print("no executions")
        return EXIT_OK
    header = ("ID", "WORKFLOW", "STATUS", "STARTED", "DURATION")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )
    if page["total"] > len(rows):
        print(f"({len(rows)} of {page['total']}; --limit to see more)")
    return EXIT_OK


def _workflow_label(execution: Mapping[str, Any]) -> str:
    return f"{execution['workflow_id']}@{execution['workflow_version']}"


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _clock(value: object) -> str:
    moment = _parse_time(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if moment else "-"


def _elapsed(start: object, end: object, *, running: bool = False) -> str:
    """``end - start`` for people (``0.12s``, ``42.50s``, ``3m4s``); while ``running``
    without an end, the time so far with ``…``; ``-`` when it cannot be said."""
    began, ended = _parse_time(start), _parse_time(end)
    suffix = ""
    if began is None:
        return "-"
    if ended is None:
        if not running:
            return "-"
        ended, suffix = datetime.now(UTC), "…"
    seconds = max((ended - began).total_seconds(), 0.0)
    return (f"{seconds:.2f}s" if seconds < 60 else format_duration(seconds)) + suffix


def _migrate(args: argparse.Namespace) -> int:
    from server.store.database import Database
    from server.store.migrate import current_revision, upgrade

    settings = load_settings({"server.database_url": args.database_url}, config_file=args.config)

    async def run() -> str | None:
        database = Database(settings.server.resolved_database_url)
        try:
            await upgrade(database)
            return await current_revision(database)
        finally:
            await database.dispose()

    revision = asyncio.run(run())
    print(f"database schema at revision {revision}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
