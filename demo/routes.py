"""The seed's demo endpoints and the mailbox of the SMTP sink, served only in demo mode."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from demo.standins import DemoStandins
from server.registry.service import WorkflowRegistry
from server.security.permissions import permission
from server.store import executions
from server.store.database import Database
from server.store.definitions import WorkflowFilter


class DemoController(Controller):
    path = "/demo"
    tags = ["demo"]

    @get("/workflows", summary="The demo's workflows", opt=permission("read"))
    async def workflows(self, registry: NamedDependency[WorkflowRegistry]) -> dict[str, Any]:
        page = await registry.list(WorkflowFilter(limit=200, sort_by="name", sort_order="asc"))
        return {"workflows": page.items, "total": page.total}

    @get("/executions", summary="The demo's most recent executions", opt=permission("read"))
    async def executions(self, database: NamedDependency[Database]) -> dict[str, Any]:
        async with database.session() as session:
            rows, total = await executions.recent(session, 100)
        items = [
            {"id": r.id, "workflow_id": r.workflow_id, "workflow_version": r.workflow_version,
             "status": r.status, "started_at": r.started_at, "completed_at": r.completed_at}
            for r in rows
        ]  # fmt: skip
        return {"executions": items, "total": total}

    @get(
        "/mailbox",
        summary="Mail received by the demo's SMTP sink, newest first",
        opt=permission("read"),
    )
    async def mailbox(
        self,
        demo: NamedDependency[DemoStandins],
        limit: Annotated[int, QueryParameter(ge=1, le=200, description="messages to return")] = 50,
    ) -> dict[str, Any]:
        messages, total = await demo.sink.messages(limit)
        return {"messages": messages, "total": total, "smtp_port": demo.sink.port}
