"""REST routes for executions (SPEC §6): start, list, read, control, events."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromQuery, Parameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from server.api.body import read_json, read_json_object
from server.api.idempotency import idempotency_key, idempotent
from server.api.openapi import json_body
from server.api.schemas import MAX_OFFSET, ErrorResponse, Offset
from server.api.timefilters import utc_filter
from server.config import Settings
from server.engine.service import (
    PRIORITIES,
    RESERVED_KEY_MESSAGE,
    ExecutionService,
    check_start_body,
    reserved_key,
)
from server.engine.views import event_json, execution_json, summary_json
from server.errors import InvalidInput, NotFound, Problem
from server.identity import Actor, acting_name
from server.security.permissions import permission
from server.store import executions as store
from server.store.database import Database

ERRORS = {
    400: ResponseSpec(ErrorResponse, description="Malformed request"),
    404: ResponseSpec(ErrorResponse, description="No such workflow or execution"),
    409: ResponseSpec(ErrorResponse, description="Not possible in the current status"),
    422: ResponseSpec(ErrorResponse, description="Invalid input: every problem listed"),
}
PathId = Annotated[str, Parameter(description="Execution id", max_length=64)]
WorkflowId = Annotated[str, Parameter(description="Workflow id", max_length=128)]
Status = Literal["pending", "running", "completed", "failed", "cancelled", "suspended"]
START_BODY = {
    "type": "object",
    "properties": {
        "input": {"type": "object", "description": "values of the declared variables"},
        "version": {"type": "string", "description": "version to run (default: newest active)"},
        "priority": {"type": "string", "enum": list(PRIORITIES)},
        "owner": {"type": "string"},
        "triggered_by": {"type": "string"},
        "parent_execution": {"type": "string"},
        "delay": {"type": "number", "description": "seconds before it starts"},
        "start_at": {"type": "string", "format": "date-time"},
        "idempotency_key": {"type": "string", "description": "or the Idempotency-Key header"},
    },
}


class WorkflowExecutionController(Controller):
    """Routes under a workflow: start it, list its executions."""

    path = "/api/v1/workflows/{workflow_id:str}"
    tags = ["executions"]

    @post(
        "/execute",
        opt=permission("execute", audit="execution.start"),
        status_code=HTTP_201_CREATED,
        summary="Start an execution",
        description="201 with the execution; 200 with the first execution when the "
        "idempotency key (body or Idempotency-Key header) was used before.",
        responses=ERRORS,
        operation_class=json_body("Start options (SPEC §5)", START_BODY),
    )
    async def execute(
        self,
        workflow_id: WorkflowId,
        request: Request[Any, Any, Any],
        executions: NamedDependency[ExecutionService],
        database: NamedDependency[Database],
        actor: NamedDependency[Actor],
    ) -> Response[Any]:
        body = await read_json(request, required=False)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise InvalidInput(
                "the body must be a JSON object", details=[Problem("", 'send {"input": {…}}')]
            )
        if not isinstance(body.get("priority"), str | None):
            # Only text can name a priority; any other JSON value (an object is not even
            # hashable) is reported by check_start_body like an unknown name.
            body = {**body, "priority": repr(body["priority"])}
        options = check_start_body(body)
        header_key = idempotency_key(request)
        if header_key and reserved_key(header_key):
            raise InvalidInput(
                "the start request is invalid",
                details=[Problem("/headers/Idempotency-Key", RESERVED_KEY_MESSAGE)],
            )
        if header_key and not options.idempotency_key:
            options = type(options)(**{**options.__dict__, "idempotency_key": header_key})
        if acting_name(actor):
            # Who really started it: the four-eyes rule of human tasks relies on this, so
            # an authenticated caller cannot name someone else in ``triggered_by``.
            options = type(options)(**{**options.__dict__, "triggered_by": actor.name})
        execution_id, created = await executions.start(
            workflow_id, options, actor=acting_name(actor)
        )
        document = await execution_json(database, execution_id)
        return Response(document, status_code=HTTP_201_CREATED if created else HTTP_200_OK)

    @get(
        "/executions",
        summary="List the executions of one workflow",
        responses={400: ERRORS[400]},
        opt=permission("read"),
    )
    async def list_for_workflow(
        self,
        workflow_id: WorkflowId,
        database: NamedDependency[Database],
        settings: NamedDependency[Settings],
        status: FromQuery[Status | None] = None,
        limit: Annotated[int, QueryParameter(ge=1)] = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        query = store.ExecutionFilter(
            workflow_id=workflow_id,
            status=status,
            limit=min(limit, settings.limits.max_page_size),
            offset=offset,
        )
        return await _page(database, query)


def _action(action: str, summary: str) -> Any:
    """A route that applies one control action with no body (operators may: SPEC §8)."""

    @post(
        f"/{{execution_id:str}}/{action}",
        opt=permission("execute", audit=f"execution.{action}"),
        status_code=HTTP_200_OK,
        summary=summary,
        responses=ERRORS,
    )
    async def handler(
        self: Controller,
        execution_id: PathId,
        request: Request[Any, Any, Any],
        executions: NamedDependency[ExecutionService],
        database: NamedDependency[Database],
        actor: NamedDependency[Actor],
    ) -> Response[Any]:
        return await _control(request, executions, database, execution_id, action, actor)

    return handler


def _node_action(action: str, field: str, summary: str, about: str) -> Any:
    """A route that applies a control action to one node: body ``{node_id, <field>}``.

    Both (rerun with a patched input, skip with a given output) change what the
    execution computes, so they need ``write`` (managers and admins), not ``execute``.
    """
    body_schema = {
        "type": "object",
        "required": ["node_id"],
        "properties": {"node_id": {"type": "string"}, field: {"type": "object"}},
    }

    @post(
        f"/{{execution_id:str}}/{action}",
        opt=permission("write", audit=f"execution.{action}"),
        status_code=HTTP_200_OK,
        summary=summary,
        responses=ERRORS,
        operation_class=json_body(f"The node, and {about}", body_schema),
    )
    async def handler(
        self: Controller,
        execution_id: PathId,
        request: Request[Any, Any, Any],
        executions: NamedDependency[ExecutionService],
        database: NamedDependency[Database],
        actor: NamedDependency[Actor],
    ) -> Response[Any]:
        body = await read_json_object(request)
        node_id, value = body.get("node_id"), body.get(field) or {}
        problems = _node_problems(node_id)
        if not isinstance(value, dict):
            problems.append(Problem(f"/{field}", "must be an object"))
        if problems:
            raise InvalidInput(f"the {action} request is invalid", details=problems)
        options = {"node_id": node_id, field: value}
        return await _control(request, executions, database, execution_id, action, actor, **options)

    return handler


class ExecutionController(Controller):
    path = "/api/v1/workflows/executions"
    tags = ["executions"]

    @get("/", summary="List executions", responses={400: ERRORS[400]}, opt=permission("read"))
    async def list_executions(
        self,
        database: NamedDependency[Database],
        settings: NamedDependency[Settings],
        status: FromQuery[Status | None] = None,
        workflow_id: FromQuery[str | None] = None,
        owner: FromQuery[str | None] = None,
        priority: FromQuery[Literal["low", "medium", "high", "critical"] | None] = None,
        started_from: FromQuery[datetime | None] = None,
        started_to: FromQuery[datetime | None] = None,
        limit: Annotated[int, QueryParameter(ge=1)] = 50,
        offset: Offset = 0,
        sort_by: FromQuery[
            Literal["created_at", "started_at", "completed_at", "updated_at", "priority", "status"]
        ] = "created_at",
        sort_order: FromQuery[Literal["asc", "desc"]] = "desc",
    ) -> dict[str, Any]:
        query = store.ExecutionFilter(
            status=status,
            workflow_id=workflow_id,
            owner=owner,
            priority=PRIORITIES[priority] if priority else None,
            started_from=utc_filter(started_from, "started_from"),
            started_to=utc_filter(started_to, "started_to"),
            sort_by=sort_by,
            sort_order=sort_order,
            limit=min(limit, settings.limits.max_page_size),
            offset=offset,
        )
        return await _page(database, query)

    @get(
        "/{execution_id:str}",
        summary="One execution (SPEC §5 shape)",
        responses={404: ERRORS[404]},
        opt=permission("read"),
    )
    async def get_execution(
        self, execution_id: PathId, database: NamedDependency[Database]
    ) -> dict[str, Any]:
        return await execution_json(database, execution_id)

    @get(
        "/{execution_id:str}/events",
        opt=permission("read"),
        summary="The execution's event log, oldest first",
        responses={404: ERRORS[404]},
    )
    async def events(
        self,
        execution_id: PathId,
        database: NamedDependency[Database],
        after: Annotated[
            int, QueryParameter(ge=0, le=MAX_OFFSET, description="return events after this id")
        ] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 200,
    ) -> dict[str, Any]:
        async with database.reader() as session:
            if await store.get(session, execution_id) is None:
                raise NotFound(f"no execution with id {execution_id!r}")
            rows, total = await store.events(session, execution_id, after=after, limit=limit)
        return {
            "events": [event_json(r) for r in rows],
            "total": total,
            "after": after,
            "limit": limit,
        }

    cancel = _action("cancel", "Cancel: stop running nodes, abandon waits")
    suspend = _action("suspend", "Suspend: start no new node until resumed")
    resume = _action("resume", "Resume a suspended execution")
    retry = _action("retry", "Retry the failed nodes, keeping completed outputs")
    rerun = _node_action(
        "rerun", "input_patch", "Rerun from a node", "an optional patch of the input"
    )
    skip = _node_action(
        "skip", "output", "Skip a failed or waiting node", "the output to record for it"
    )

    @post(
        "/{execution_id:str}/restart",
        opt=permission("execute", audit="execution.restart"),
        status_code=HTTP_201_CREATED,
        summary="Restart as a new execution",
        description='Body {version}: absent = the pinned version, "latest" = newest active.',
        responses=ERRORS,
    )
    async def restart(
        self,
        execution_id: PathId,
        request: Request[Any, Any, Any],
        executions: NamedDependency[ExecutionService],
        database: NamedDependency[Database],
        actor: NamedDependency[Actor],
    ) -> Response[Any]:
        body = await read_json(request, required=False) or {}
        version = body.get("version") if isinstance(body, dict) else None
        if version is not None and not isinstance(version, str):
            raise InvalidInput(
                "invalid restart request",
                details=[Problem("/version", 'must be a version string or "latest"')],
            )

        async def produce() -> Response[Any]:
            new_id = await executions.restart(
                execution_id, version=version, actor=acting_name(actor)
            )
            return Response(await execution_json(database, new_id), status_code=HTTP_201_CREATED)

        return await idempotent(request, database, produce)


def _node_problems(node_id: object) -> list[Problem]:
    if not isinstance(node_id, str) or not node_id:
        return [Problem("/node_id", "required: the id of a node of this workflow")]
    return []


async def _control(
    request: Request[Any, Any, Any],
    executions: ExecutionService,
    database: Database,
    execution_id: str,
    action: str,
    actor: Actor,
    **options: Any,
) -> Response[Any]:
    async def produce() -> Response[Any]:
        await executions.control(execution_id, action, actor=acting_name(actor), **options)
        return Response(await execution_json(database, execution_id), status_code=HTTP_200_OK)

    return await idempotent(request, database, produce)


async def _page(database: Database, query: store.ExecutionFilter) -> dict[str, Any]:
    async with database.reader() as session:
        rows, total = await store.search(session, query)
    return {
        "executions": [summary_json(r) for r in rows],
        "total": total,
        "limit": query.limit,
        "offset": query.offset,
    }
