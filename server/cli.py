"""The ``flowyard`` command: serve, demo, validate, push, migrate."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from server import __version__
from server.config import Settings, load_settings, settings_help
from server.durations import parse_duration
from server.errors import ConfigurationError

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
    push.add_argument("--url", default=os.environ.get("FLOWYARD_URL", "http://127.0.0.1:8000"))
    push.add_argument("--api-key", default=os.environ.get("FLOWYARD_API_KEY"))
    push.set_defaults(run=_push)

    migrate = commands.add_parser("migrate", help="bring the database schema up to date")
    migrate.add_argument("--database-url")
    migrate.add_argument("--config")
    migrate.set_defaults(run=_migrate)
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


def _push(args: argparse.Namespace) -> int:
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    failed = False
    with httpx.Client(base_url=args.url, headers=headers, timeout=30) as client:
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
