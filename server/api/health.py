"""``GET /api/v1/workflows/health``: real checks, 200 when all pass, else 503."""

from __future__ import annotations

import time
from typing import Any

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec

from server import __version__
from server.api.schemas import Health, HealthCheck
from server.engine.engine import Engine
from server.errors import Unavailable
from server.metrics import prometheus_text, snapshot
from server.security.permissions import permission
from server.store.database import Database
from server.triggers.service import Triggers


class HealthController(Controller):
    path = "/api/v1/workflows/health"
    tags = ["operations"]

    @get(
        "/",
        opt=permission("public"),
        summary="Health of the server and what it depends on",
        responses={503: ResponseSpec(Health, description="A check failed")},
    )
    async def health(
        self,
        database: NamedDependency[Database],
        started_at: NamedDependency[float],
        triggers: NamedDependency[Triggers],
    ) -> Response[Health]:
        checks = {
            "database": await check_database(database),
            "scheduler": check_scheduler(triggers),
        }
        healthy = all(check.status == "ok" for check in checks.values())
        body = Health(
            status="ok" if healthy else "unavailable",
            version=__version__,
            uptime_seconds=round(time.monotonic() - started_at, 3),
            checks=checks,
        )
        return Response(body, status_code=200 if healthy else 503)


async def check_database(database: Database) -> HealthCheck:
    began = time.perf_counter()
    try:
        await database.check()
    except Unavailable as error:
        return HealthCheck(status="failed", message=error.message)
    return HealthCheck(status="ok", latency_ms=round((time.perf_counter() - began) * 1000, 2))


def check_scheduler(triggers: Triggers) -> HealthCheck:
    """Cron triggers can fire: the scheduler runs and follows the registry."""
    problem = triggers.problem()
    return HealthCheck(status="ok") if problem is None else HealthCheck("failed", message=problem)


class MetricsController(Controller):
    path = "/"
    tags = ["operations"]

    @get(
        "/api/v1/workflows/metrics",
        summary="Figures: executions, node runs, durations, process",
        opt=permission("read"),
    )
    async def metrics(
        self,
        database: NamedDependency[Database],
        engine: NamedDependency[Engine],
        started_at: NamedDependency[float],
    ) -> dict[str, Any]:
        return await snapshot(database, engine, started_at)

    @get(
        "/metrics",
        opt=permission("read", public_when="metrics_public"),
        summary="The same figures in Prometheus text format",
        media_type="text/plain; version=0.0.4",
    )
    async def prometheus(
        self,
        database: NamedDependency[Database],
        engine: NamedDependency[Engine],
        started_at: NamedDependency[float],
    ) -> Response[bytes]:
        figures = await snapshot(database, engine, started_at)
        return Response(
            prometheus_text(figures), media_type="text/plain; version=0.0.4; charset=utf-8"
        )
