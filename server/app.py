"""The application: settings in, a Litestar app out.

This is the one composition root: it builds the database, the services and the HTTP
layers (API, dashboard, demo) and wires them together. Migrations run at start, so a
server never serves on a schema older than its code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from demo.api import DemoApiController
from demo.loader import DEFINITIONS_DIR, load_definitions
from demo.routes import DemoController
from demo.standins import DemoStandins
from processors.commands import CommandPolicy, CommandRunner
from processors.handlers import Handlers
from processors.registry import default_registry
from server.api.callbacks import CallbackController
from server.api.errors import EXCEPTION_HANDLERS
from server.api.executions import ExecutionController, WorkflowExecutionController
from server.api.health import HealthController, MetricsController
from server.api.node_types import NodeTypeController
from server.api.openapi import openapi_config, register_definition_schema
from server.api.tasks import TaskController, TaskLinkController
from server.api.workflows import WorkflowController
from server.callbacks import Callbacks
from server.config import Settings
from server.definitions.validation import DefinitionLimits, ValidationContext
from server.durations import parse_duration
from server.engine.children import Children
from server.engine.engine import Engine
from server.engine.journal import Journal
from server.engine.service import ExecutionService
from server.identity import current_actor
from server.integrations.databases import Databases
from server.integrations.mail import Mailer
from server.outbound.client import OutboundHTTP
from server.registry.service import WorkflowRegistry
from server.store.database import Database
from server.store.migrate import upgrade
from server.tasks.service import HumanTasks
from ui.views import root

log = logging.getLogger("flowyard")

UI_DIR = Path(__file__).resolve().parents[1] / "ui"


def validation_context(settings: Settings, *, check_names: bool = True) -> ValidationContext:
    """What the validator may check against this server's configuration.

    ``check_names=False`` leaves connection and SMTP account names unchecked, for
    validating files away from the server that will run them.
    """
    limits = settings.limits
    return ValidationContext(
        connections=frozenset(settings.connections) if check_names else None,
        smtp_accounts=frozenset(settings.smtp) if check_names else None,
        commands=CommandPolicy.from_settings(settings.tasks) if check_names else None,
        limits=DefinitionLimits(
            max_nodes=limits.max_nodes,
            max_depth=limits.max_depth,
            max_expression_length=limits.max_expression_length,
            max_jsonpath_length=limits.max_jsonpath_length,
        ),
    )


def create_app(settings: Settings, *, definitions_dir: Path = DEFINITIONS_DIR) -> Litestar:
    database = Database(settings.server.resolved_database_url)
    context = validation_context(settings)
    registry = WorkflowRegistry(database, lambda: context)
    engine = Engine(
        Journal(settings.server.resolved_database_url),
        default_registry(),
        max_workers=settings.server.max_workers,
    )
    executions = ExecutionService(registry, engine, settings)
    # What node types use at run time, through ``NodeContext.services`` (one entry per
    # integration; a service with an ``aclose()`` is closed when the server stops).
    services = engine.services
    services["handlers"] = Handlers.load(settings.tasks.handler_modules)
    services["children"] = Children(executions)
    services["commands"] = CommandRunner.from_settings(settings.tasks)
    services["http"] = OutboundHTTP.from_settings(settings)
    services["databases"] = Databases(settings.connections)
    services["mail"] = Mailer(settings.smtp)
    services["tasks"] = tasks = HumanTasks.from_settings(database, engine, settings)
    callbacks = Callbacks(engine, database)
    standins = DemoStandins(settings) if settings.demo.enabled else None
    started_at = time.monotonic()

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await upgrade(database)
        if standins is not None:
            await standins.start()
        await engine.start()
        if settings.demo.enabled:
            await load_definitions(registry, definitions_dir)
        log.info(
            "flowyard started", extra={"action": "server.started", "backend": database.backend}
        )
        try:
            yield
        finally:
            await engine.stop(grace=parse_duration(settings.server.shutdown_grace))
            for service in services.values():
                close = getattr(service, "aclose", None)
                if close is not None:
                    await close()
            if standins is not None:
                await standins.stop()
            await database.dispose()
            log.info("flowyard stopped", extra={"action": "server.stopped"})

    def const(value: Any) -> Provide:
        return Provide(lambda: value, sync_to_thread=False, use_cache=True)

    handlers: list[Any] = [
        ExecutionController,
        WorkflowExecutionController,
        WorkflowController,
        HealthController,
        MetricsController,
        NodeTypeController,
        CallbackController,
        TaskController,
        TaskLinkController,
        root,
        create_static_files_router(
            path="/static", directories=[UI_DIR / "static"], include_in_schema=False
        ),
    ]
    if settings.demo.enabled:
        handlers.extend([DemoController, DemoApiController])

    app = Litestar(
        route_handlers=handlers,
        dependencies={
            "settings": const(settings),
            "database": const(database),
            "registry": const(registry),
            "executions": const(executions),
            "engine": const(engine),
            "callbacks": const(callbacks),
            "tasks": const(tasks),
            "actor": Provide(current_actor, sync_to_thread=False),
            "started_at": const(started_at),
            "demo": const(standins),
        },
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=openapi_config(),
        template_config=TemplateConfig(directory=UI_DIR / "templates", engine=JinjaTemplateEngine),
        request_max_body_size=settings.limits.max_body_bytes,
        lifespan=[lifespan],
        state=State(
            {"database": database, "registry": registry, "engine": engine, "executions": executions}
        ),
        logging_config=None,
    )
    register_definition_schema(app)
    return app
