"""``GET /api/v1/workflows/{id}/triggers``: a workflow's triggers, next fires, last fires."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import Parameter, QueryParameter

from server.api.schemas import ErrorResponse
from server.security.permissions import permission
from server.triggers.service import Triggers

WorkflowId = Annotated[str, Parameter(description="Workflow id", max_length=128)]
MAX_LISTED = 200


class TriggerController(Controller):
    path = "/api/v1/workflows/{workflow_id:str}"
    tags = ["triggers"]

    @get(
        "/triggers",
        opt=permission("read"),
        summary="A workflow's triggers with their next and last fires",
        description=(
            "The triggers of the workflow's newest active version (`live: true`), or of its "
            "newest version when none is active (`live: false`). Cron triggers list "
            "`next_fires` (UTC) and `last_fires` (`scheduled_for, fired_at, kind: "
            "scheduled|catch_up, execution_id, status, error`); webhook triggers list their "
            "`url` and `last_fires` (`execution_id, status, received_at`). `last` and `next` "
            "choose how many (default 5, at most 200)."
        ),
        responses={404: ResponseSpec(ErrorResponse, description="No such workflow")},
    )
    async def list_triggers(
        self,
        workflow_id: WorkflowId,
        triggers: NamedDependency[Triggers],
        last: Annotated[int, QueryParameter(ge=1, le=MAX_LISTED)] = 5,
        next_fires: Annotated[int, QueryParameter(ge=1, le=MAX_LISTED, name="next")] = 5,
    ) -> dict[str, Any]:
        return await triggers.describe(workflow_id, last=last, upcoming=next_fires)
