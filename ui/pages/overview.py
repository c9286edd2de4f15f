"""``GET /``: the overview — what is running, what failed, what waits for a person.

Also the API's front door: JSON clients get the API information, browsers without a
session a pointer to the sign-in page (SPEC §8: ``GET /`` is public).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from litestar import MediaType, Request, Response, get
from litestar.di import NamedDependency
from litestar.response import Template

from server import __version__
from server.api.health import check_database, check_scheduler
from server.engine.views import summary_json
from server.identity import Actor
from server.metrics import EXECUTION_STATUSES
from server.security.permissions import allows, permission
from server.store import executions as store
from server.store.database import Database
from server.tasks import store as task_store
from server.tasks.service import HumanTasks
from server.triggers.service import Triggers
from ui.templating import page

API_INFO = {
    "name": "Flowyard",
    "version": __version__,
    "api": "/api/v1",
    "openapi": "/schema/openapi.json",
    "docs": "/schema",
    "health": "/api/v1/workflows/health",
}
#: The executions-per-minute chart covers this many minutes.
CHART_MINUTES = 30
#: Rows of the "failed recently" and "running now" lists.
LIST_ROWS = 8


@get(
    "/",
    opt=permission("public"),
    include_in_schema=True,
    summary="API information (JSON) or the dashboard (HTML)",
    tags=["operations"],
)
async def overview(
    request: Request[Any, Any, Any],
    database: NamedDependency[Database],
    tasks: NamedDependency[HumanTasks],
    triggers: NamedDependency[Triggers],
    actor: NamedDependency[Actor],
) -> Template | Response[dict[str, Any]]:
    wanted = request.accept.best_match(["text/html", "application/json"], default="text/html")
    if wanted == "application/json":
        return Response(API_INFO, media_type=MediaType.JSON)
    if not actor.authenticated or not allows(actor, "read"):
        # A browser without a session (or with an expired one): point it at /login.
        return Template(
            "pages/signed_out.html", context={"info": API_INFO}, media_type=MediaType.HTML
        )
    now = datetime.now(UTC)
    async with database.reader() as session:
        counts = await store.counts_by_status(session)
        per_minute = await store.started_per_minute(session, now, CHART_MINUTES)
        failed, failed_total = await store.search_summaries(
            session, store.ExecutionFilter(status="failed", limit=LIST_ROWS)
        )
        running, running_total = await store.search_summaries(
            session, store.ExecutionFilter(status="running", limit=LIST_ROWS)
        )
        waiting = await store.waiting_executions(session)
    mine = await tasks.search(
        task_store.TaskFilter(status="open", mine=(actor.name, actor.roles), limit=LIST_ROWS)
    )
    open_tasks = await tasks.search(task_store.TaskFilter(status="open", limit=1))
    health = {"database": await check_database(database), "scheduler": check_scheduler(triggers)}
    return page(
        request,
        "pages/overview.html",
        counts={status: counts.get(status, 0) for status in EXECUTION_STATUSES},
        total=sum(counts.values()),
        waiting=waiting,
        per_minute=per_minute,
        chart_peak=max(per_minute) if per_minute else 0,
        last_ten_minutes=sum(per_minute[-10:]),
        failed=[summary_json(row) for row in failed],
        failed_total=failed_total,
        running=[summary_json(row) for row in running],
        running_total=running_total,
        my_tasks=mine["tasks"],
        my_tasks_total=mine["total"],
        open_tasks_total=open_tasks["total"],
        health=health,
        healthy=all(check.status == "ok" for check in health.values()),
        info=API_INFO,
    )


HANDLERS = [overview]
