"""The application: settings in, a Litestar app out.

This is the one composition root: it builds the database, the services and the HTTP
layers (API, dashboard, demo) and wires them together. Migrations run at start, so a
server never serves on a schema older than its code.
"""

from __future__ import annotations

import functools
import gc
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
from demo.mailbox_page import HANDLERS as MAILBOX_PAGE_HANDLERS
from demo.routes import DemoController
from demo.standins import DemoStandins
from demo.users import announce as announce_demo_users
from demo.users import create_demo_users
from processors.commands import CommandPolicy, CommandRunner
from processors.handlers import Handlers
from processors.registry import default_registry
from server.api.api_keys import ApiKeyController
from server.api.audit import AuditController
from server.api.callbacks import CallbackController
from server.api.errors import EXCEPTION_HANDLERS
from server.api.executions import ExecutionController, WorkflowExecutionController
from server.api.health import HealthController, MetricsController
from server.api.hooks import HookController
from server.api.idempotency import BODY_KEY_STATE
from server.api.node_types import NodeTypeController
from server.api.openapi import openapi_config, register_definition_schema
from server.api.secrets import SecretController
from server.api.tasks import TaskController
from server.api.triggers import TriggerController
from server.api.users import UserController
from server.api.workflows import WorkflowController
from server.callbacks import Callbacks
from server.config import Settings
from server.definitions.validation import DefinitionLimits, ValidationContext
from server.durations import parse_duration
from server.engine.children import Children
from server.engine.engine import Engine
from server.engine.journal import Journal
from server.engine.service import ExecutionService
from server.identity import AUTHENTICATOR, current_actor
from server.integrations.databases import Databases
from server.integrations.mail import Mailer
from server.keys import derive, load_master_key
from server.outbound.client import OutboundHTTP
from server.ratelimit import RateLimiter
from server.registry.service import WorkflowRegistry
from server.secrets.vault import SecretsVault
from server.security.apikeys import ApiKeyService, check_bootstrap_key
from server.security.audit import AuditLog
from server.security.authn import Authenticator
from server.security.bootstrap import ensure_identities
from server.security.csrf import LoginCsrf
from server.security.headers import cors_config, security_headers
from server.security.permissions import authorize, check_routes, permission
from server.security.route_audit import RouteAuditMiddleware
from server.security.sessions import SignIn
from server.security.users import UserService
from server.store.database import Database
from server.store.migrate import upgrade
from server.tasks.service import HumanTasks
from server.triggers.service import Triggers
from ui import templating
from ui.errors import page_exception_handlers
from ui.login import SIGN_IN_HANDLERS
from ui.pages import HANDLERS as PAGE_HANDLERS

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
    services["limits"] = settings.limits  # loop iterations, scope size (run-time limits)
    services["handlers"] = Handlers.load(settings.tasks.handler_modules)
    services["children"] = Children(executions)
    services["commands"] = CommandRunner.from_settings(settings.tasks)
    services["http"] = OutboundHTTP.from_settings(settings)
    services["databases"] = Databases(settings.connections)
    services["mail"] = Mailer(settings.smtp)
    services["tasks"] = tasks = HumanTasks.from_settings(database, engine, settings)
    services["secrets"] = vault = SecretsVault.from_settings(database, settings)
    callbacks = Callbacks(
        engine,
        database,
        RateLimiter(settings.triggers.hook_rate_per_minute, settings.triggers.hook_rate_burst),
    )
    # Cron schedules and webhook paths, following the registry (docs/triggers.md).
    triggers = Triggers(database, registry, executions, settings, secrets=vault.values)
    audit = AuditLog(database)
    users = UserService(database, audit)
    api_keys = ApiKeyService(database, audit)
    if settings.auth.bootstrap_admin_key:
        check_bootstrap_key(settings.auth.bootstrap_admin_key)
    # Who is calling (API keys, JWTs; the dashboard adds its session cookie as a source).
    authenticator = Authenticator.from_settings(settings.auth, api_keys)
    sign_in = SignIn.from_settings(database, settings, users, audit)
    authenticator.add_source(sign_in.sessions.actor_for_request)

    @functools.cache
    def idempotency_body_key() -> bytes:
        return derive(load_master_key(settings.server.data_dir), "idempotency-body")

    login_csrf = LoginCsrf(lambda: derive(load_master_key(settings.server.data_dir), "login-csrf"))
    standins = DemoStandins(settings) if settings.demo.enabled else None
    started_at = time.monotonic()

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await upgrade(database)
        await ensure_identities(settings, users, api_keys)
        if standins is not None:
            await standins.start()
        await engine.start()
        await triggers.start()
        if settings.demo.enabled:
            await load_definitions(registry, definitions_dir)
            announce_demo_users(await create_demo_users(users), settings.server.resolved_public_url)
        # What is alive once started (modules, services, compiled templates) lives as long
        # as the process: take it out of the collector's view, so a full collection scans
        # only what requests and executions create. With the ~200,000 objects of a started
        # server, each full collection otherwise paused a request for ~110 ms
        # (docs/benchmarks.md, dashboard render time).
        gc.freeze()
        log.info(
            "flowyard started", extra={"action": "server.started", "backend": database.backend}
        )
        try:
            yield
        finally:
            await triggers.stop()  # a fire under way still needs the engine
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
        HookController,
        TriggerController,
        TaskController,
        UserController,
        ApiKeyController,
        AuditController,
        SecretController,
        *PAGE_HANDLERS,
        *SIGN_IN_HANDLERS,
        create_static_files_router(
            path="/static",
            directories=[UI_DIR / "static"],
            include_in_schema=False,
            opt=permission("public"),
        ),
    ]
    if settings.demo.enabled:
        handlers.extend([DemoController, DemoApiController, *MAILBOX_PAGE_HANDLERS])

    app = Litestar(
        route_handlers=handlers,
        dependencies={
            "settings": const(settings),
            "database": const(database),
            "registry": const(registry),
            "executions": const(executions),
            "engine": const(engine),
            "callbacks": const(callbacks),
            "hooks": const(triggers.hooks),
            "triggers": const(triggers),
            "tasks": const(tasks),
            "vault": const(vault),
            "users": const(users),
            "api_keys": const(api_keys),
            "audit": const(audit),
            "sign_in": const(sign_in),
            "login_csrf": const(login_csrf),
            "actor": Provide(current_actor),
            "started_at": const(started_at),
            "demo": const(standins),
        },
        # JSON errors everywhere; dashboard pages show them as a page (ui.errors).
        exception_handlers=page_exception_handlers(EXCEPTION_HANDLERS),
        # Every route declares its permission (opt=permission(...)); one guard applies it.
        guards=[authorize],
        middleware=[RouteAuditMiddleware(audit)],
        openapi_config=openapi_config(),
        template_config=TemplateConfig(
            directory=UI_DIR / "templates",
            engine=JinjaTemplateEngine,
            engine_callback=templating.register,
        ),
        before_send=[security_headers],
        cors_config=cors_config(settings.auth.cors_origins),
        request_max_body_size=settings.limits.max_body_bytes,
        lifespan=[lifespan],
        state=State(
            {
                BODY_KEY_STATE: idempotency_body_key,
                "database": database,
                "registry": registry,
                "engine": engine,
                "executions": executions,
                "users": users,
                "api_keys": api_keys,
                "audit": audit,
                AUTHENTICATOR: authenticator,
                templating.DEMO_MODE_STATE: settings.demo.enabled,
            }
        ),
        logging_config=None,
    )
    register_definition_schema(app)
    check_routes(app)
    return app
