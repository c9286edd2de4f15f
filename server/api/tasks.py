"""REST routes for the approvals inbox (SPEC §6): list, read, complete, claim, reassign.

``GET /tasks/{id}?exp=&sig=``, where the signed links of e-mail notices lead, is the
dashboard's task page (``ui.pages.approvals``); it never decides anything.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromQuery, Parameter, QueryParameter
from litestar.status_codes import HTTP_200_OK

from server.api.body import read_json, read_json_object
from server.api.idempotency import idempotent
from server.api.openapi import json_body
from server.api.schemas import ErrorResponse, Offset
from server.config import Settings
from server.errors import InvalidInput, Problem
from server.identity import NAME, Actor
from server.security.permissions import permission
from server.store.database import Database
from server.tasks.service import COMMENT_LIMIT, Decision, HumanTasks
from server.tasks.store import TaskFilter

ERRORS = {
    400: ResponseSpec(ErrorResponse, description="Malformed request"),
    401: ResponseSpec(ErrorResponse, description="Authentication required"),
    403: ResponseSpec(ErrorResponse, description="Not permitted to decide this task (reason)"),
    404: ResponseSpec(ErrorResponse, description="No such task"),
    409: ResponseSpec(ErrorResponse, description="Not open any more, or already decided"),
    422: ResponseSpec(ErrorResponse, description="Invalid input: every problem listed"),
}
TaskId = Annotated[str, Parameter(description="Task id", max_length=64)]
Status = Literal["open", "completed", "cancelled", "expired"]
COMPLETE_BODY = {
    "type": "object",
    "required": ["outcome"],
    "properties": {
        "outcome": {"type": "string", "description": "one of the task's outcomes"},
        "data": {"type": "object", "description": "values of the task's form fields"},
        "comment": {"type": "string", "maxLength": COMMENT_LIMIT},
    },
}
REASSIGN_BODY = {
    "type": "object",
    "required": ["assignee"],
    "properties": {"assignee": {"type": "string", "description": "a user, or role:<name>"}},
}


class TaskController(Controller):
    path = "/api/v1/tasks"
    tags = ["tasks"]

    @get("/", summary="List human tasks", responses={400: ERRORS[400]}, opt=permission("read"))
    async def list_tasks(
        self,
        tasks: NamedDependency[HumanTasks],
        settings: NamedDependency[Settings],
        actor: NamedDependency[Actor],
        status: FromQuery[Status | None] = None,
        assignee: Annotated[
            str | None, QueryParameter(description='a user name, or "me"', max_length=200)
        ] = None,
        role: Annotated[
            str | None, QueryParameter(description="tasks offered to this role", max_length=200)
        ] = None,
        mine: Annotated[
            bool,
            QueryParameter(description="assigned to or claimed by me, or offered to my roles"),
        ] = False,
        execution_id: Annotated[str | None, QueryParameter(max_length=64)] = None,
        limit: Annotated[int, QueryParameter(ge=1)] = 50,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        if role is not None and not NAME.fullmatch(role):
            raise InvalidInput(
                "a request parameter is invalid",
                details=[Problem("/query/role", "not a role name (letters, digits, _ . @ + : -)")],
            )
        where = TaskFilter(
            status=status,
            assignee=actor.name if assignee == "me" else assignee,
            role=role,
            mine=(actor.name, actor.roles) if mine else None,
            execution_id=execution_id,
            limit=min(limit, settings.limits.max_page_size),
            offset=offset,
        )
        return await tasks.search(where)

    @get(
        "/{task_id:str}",
        opt=permission("read"),
        summary="One task, with its decisions and history",
        description="`permission` says whether the caller may decide it, and why not.",
        responses={404: ERRORS[404]},
    )
    async def get_task(
        self, task_id: TaskId, tasks: NamedDependency[HumanTasks], actor: NamedDependency[Actor]
    ) -> dict[str, Any]:
        return await tasks.get(task_id, actor)

    @post(
        "/{task_id:str}/complete",
        opt=permission("decide", audit="task.complete"),
        status_code=HTTP_200_OK,
        summary="Decide a task",
        description="200 with the task: `completed` once decided, still `open` while it "
        "waits for more approvals. Honours Idempotency-Key.",
        responses=ERRORS,
        operation_class=json_body("The decision", COMPLETE_BODY),
    )
    async def complete(
        self,
        task_id: TaskId,
        request: Request[Any, Any, Any],
        tasks: NamedDependency[HumanTasks],
        database: NamedDependency[Database],
        actor: NamedDependency[Actor],
    ) -> Response[Any]:
        body = await read_json_object(request)
        decision = parse_decision(body)

        async def produce() -> Response[Any]:
            return Response(await tasks.complete(task_id, decision, actor), status_code=HTTP_200_OK)

        return await idempotent(request, database, produce)

    @post(
        "/{task_id:str}/claim",
        opt=permission("decide", audit="task.claim"),
        status_code=HTTP_200_OK,
        summary="Claim a task: become its assignee",
        responses=ERRORS,
    )
    async def claim(
        self,
        task_id: TaskId,
        request: Request[Any, Any, Any],
        tasks: NamedDependency[HumanTasks],
        database: NamedDependency[Database],
        actor: NamedDependency[Actor],
    ) -> Response[Any]:
        await read_json(request, required=False)  # an optional, ignored body must still be JSON

        async def produce() -> Response[Any]:
            return Response(await tasks.claim(task_id, actor), status_code=HTTP_200_OK)

        return await idempotent(request, database, produce)

    @post(
        "/{task_id:str}/reassign",
        opt=permission("write", audit="task.reassign"),
        status_code=HTTP_200_OK,
        summary="Give a task to another user or role",
        responses=ERRORS,
        operation_class=json_body("The new assignee", REASSIGN_BODY),
    )
    async def reassign(
        self,
        task_id: TaskId,
        request: Request[Any, Any, Any],
        tasks: NamedDependency[HumanTasks],
        database: NamedDependency[Database],
        actor: NamedDependency[Actor],
    ) -> Response[Any]:
        body = await read_json_object(request)
        target = body.get("assignee")
        if not isinstance(target, str) or not target.strip():
            raise InvalidInput(
                "the reassign request is invalid",
                details=[Problem("/assignee", "required: a user name, or role:<name>")],
            )

        async def produce() -> Response[Any]:
            return Response(await tasks.reassign(task_id, target, actor), status_code=HTTP_200_OK)

        return await idempotent(request, database, produce)


def parse_decision(body: dict[str, Any]) -> Decision:
    """The decision of a completion request (the API's JSON body, or the dashboard's
    form): 422 listing every problem of its shape."""
    problems = []
    outcome = body.get("outcome")
    if not isinstance(outcome, str) or not outcome:
        problems.append(Problem("/outcome", "required: one of the task's outcomes"))
    data = body.get("data")
    if data is None:
        data = {}
    elif not isinstance(data, dict):
        problems.append(Problem("/data", "must be an object of form field values"))
    comment = body.get("comment")
    if comment is None:
        comment = ""
    elif not isinstance(comment, str):
        problems.append(Problem("/comment", "must be text"))
    elif len(comment) > COMMENT_LIMIT:
        problems.append(Problem("/comment", f"must be at most {COMMENT_LIMIT:,} characters"))
    if problems:
        raise InvalidInput("the completion request is invalid", details=problems)
    return Decision(str(outcome), data, str(comment))
