"""REST routes for workflow definitions (SPEC §6): thin — parse, call the registry, answer."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromQuery, Parameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from server.api.body import read_json, read_json_object
from server.api.openapi import DEFINITION, documents, json_body
from server.api.schemas import (
    ErrorResponse,
    Offset,
    StatusChange,
    ValidationResult,
    VersionEntry,
    VersionList,
    WorkflowList,
)
from server.config import Settings
from server.errors import InvalidInput, Problem
from server.identity import Actor
from server.registry.service import STATUSES, WorkflowRegistry
from server.security.permissions import permission
from server.store.definitions import SORTABLE, WorkflowFilter

ERRORS = {
    400: ResponseSpec(ErrorResponse, description="Malformed JSON or a bad parameter"),
    404: ResponseSpec(ErrorResponse, description="No such workflow or version"),
    409: ResponseSpec(ErrorResponse, description="Conflicts with what is stored"),
    413: ResponseSpec(ErrorResponse, description="Body too large"),
    415: ResponseSpec(ErrorResponse, description="Body is not JSON"),
    422: ResponseSpec(ErrorResponse, description="Invalid definition: every problem listed"),
}
PathId = Annotated[str, Parameter(description="Workflow id", max_length=128)]


class WorkflowController(Controller):
    path = "/api/v1/workflows"
    tags = ["workflows"]

    @post(
        "/",
        opt=permission("write"),
        status_code=HTTP_201_CREATED,
        summary="Create a workflow (or a new version of one)",
        description="201 when stored; 200 with the stored document when an identical "
        "definition is posted again; 409 when that id and version exist with other content.",
        responses=ERRORS,
        operation_class=documents(request=True, response=201),
    )
    async def create(
        self,
        request: Request[Any, Any, Any],
        registry: NamedDependency[WorkflowRegistry],
        actor: NamedDependency[Actor],
    ) -> Response[Any]:
        published = await registry.create(await read_json(request), actor=actor.name)
        return Response(
            published.document, status_code=HTTP_201_CREATED if published.created else HTTP_200_OK
        )

    @post(
        "/validate",
        opt=permission("read"),
        status_code=HTTP_200_OK,
        summary="Validate a definition without storing it",
        description="Always 200 with the verdict: every error and warning with its JSON pointer.",
        responses={k: v for k, v in ERRORS.items() if k in (400, 413, 415)},
        operation_class=documents(request=True),
    )
    async def validate(
        self, request: Request[Any, Any, Any], registry: NamedDependency[WorkflowRegistry]
    ) -> ValidationResult:
        report = await registry.validate(await read_json(request))
        data = report.as_dict()
        return ValidationResult(
            valid=data["valid"], errors=data["errors"], warnings=data["warnings"]
        )

    @get(
        "/",
        summary="List workflows (newest version of each)",
        responses={400: ERRORS[400]},
        opt=permission("read"),
    )
    async def list_workflows(
        self,
        registry: NamedDependency[WorkflowRegistry],
        settings: NamedDependency[Settings],
        status: FromQuery[Literal["draft", "active", "inactive", "deprecated"] | None] = None,
        category: FromQuery[str | None] = None,
        owner: FromQuery[str | None] = None,
        tag: FromQuery[str | None] = None,
        search: Annotated[str | None, QueryParameter(max_length=200)] = None,
        limit: Annotated[int, QueryParameter(ge=1, description="page size (capped)")] = 50,
        offset: Offset = 0,
        sort_by: FromQuery[
            Literal["name", "id", "status", "category", "owner", "created_at", "updated_at"]
        ] = "updated_at",
        sort_order: FromQuery[Literal["asc", "desc"]] = "desc",
    ) -> WorkflowList:
        assert sort_by in SORTABLE
        query = WorkflowFilter(
            status=status,
            category=category,
            owner=owner,
            tag=tag,
            search=search,
            limit=min(limit, settings.limits.max_page_size),
            offset=offset,
            sort_by=sort_by,
            sort_order=sort_order,
        )
        page = await registry.list(query)
        return WorkflowList(
            workflows=page.items, total=page.total, limit=page.limit, offset=page.offset
        )

    @get(
        "/{workflow_id:str}",
        opt=permission("read"),
        summary="Get a workflow: the newest version, or ?version=",
        responses={404: ERRORS[404]},
        operation_class=documents(response=200),
    )
    async def get_workflow(
        self,
        workflow_id: PathId,
        registry: NamedDependency[WorkflowRegistry],
        version: FromQuery[str | None] = None,
    ) -> dict[str, Any]:
        return await registry.get(workflow_id, version)

    @put(
        "/{workflow_id:str}",
        opt=permission("write"),
        status_code=HTTP_201_CREATED,
        summary="Publish a new version",
        description="The body's version must be new (409 otherwise); without one, the newest "
        "version's patch number is raised by one.",
        responses=ERRORS,
        operation_class=documents(request=True, response=201),
    )
    async def put_version(
        self,
        workflow_id: PathId,
        request: Request[Any, Any, Any],
        registry: NamedDependency[WorkflowRegistry],
        actor: NamedDependency[Actor],
    ) -> Response[Any]:
        document = await registry.add_version(
            workflow_id, await read_json(request), actor=actor.name
        )
        return Response(document, status_code=HTTP_201_CREATED)

    @patch(
        "/{workflow_id:str}",
        opt=permission("write"),
        status_code=HTTP_200_OK,
        summary="Change the status of a version (activate, deactivate, deprecate)",
        description=f"Body: {{status, version?}}; statuses: {', '.join(STATUSES)}. "
        "Without version, the newest version changes.",
        responses={k: v for k, v in ERRORS.items() if k != 413},
        operation_class=json_body(
            "New status of one version",
            {
                "type": "object",
                "required": ["status"],
                "properties": {
                    "status": {"type": "string", "enum": list(STATUSES)},
                    "version": {"type": "string"},
                },
            },
        ),
    )
    async def change_status(
        self,
        workflow_id: PathId,
        request: Request[Any, Any, Any],
        registry: NamedDependency[WorkflowRegistry],
        actor: NamedDependency[Actor],
    ) -> dict[str, Any]:
        body = await read_json_object(request)
        change = _status_change(body)
        return await registry.set_status(
            workflow_id, change.status, version=change.version, actor=actor.name
        )

    @delete(
        "/{workflow_id:str}",
        opt=permission("delete"),
        status_code=HTTP_204_NO_CONTENT,
        summary="Delete a workflow",
        description="409 while executions are pending, running or suspended, unless "
        "?force=true (they then finish on their pinned version).",
        responses={404: ERRORS[404], 409: ERRORS[409]},
    )
    async def delete_workflow(
        self,
        workflow_id: PathId,
        registry: NamedDependency[WorkflowRegistry],
        actor: NamedDependency[Actor],
        force: FromQuery[bool] = False,
    ) -> None:
        await registry.delete(workflow_id, force=force, actor=actor.name)

    @get(
        "/{workflow_id:str}/versions",
        opt=permission("read"),
        summary="List the versions of a workflow",
        responses={404: ERRORS[404]},
    )
    async def versions(
        self, workflow_id: PathId, registry: NamedDependency[WorkflowRegistry]
    ) -> VersionList:
        rows = await registry.versions(workflow_id)
        return VersionList(workflow_id, [VersionEntry(**asdict(row)) for row in rows])

    @get(
        "/{workflow_id:str}/diff",
        opt=permission("read"),
        summary="Structured difference between two versions",
        description="Nodes and edges added, removed and changed (with each changed field).",
        responses={404: ERRORS[404]},
    )
    async def diff(
        self,
        workflow_id: PathId,
        registry: NamedDependency[WorkflowRegistry],
        from_version: Annotated[str, QueryParameter(name="from", description="older version")],
        to_version: Annotated[str, QueryParameter(name="to", description="newer version")],
    ) -> dict[str, Any]:
        return await registry.diff(workflow_id, from_version, to_version)


def _status_change(body: dict[str, Any]) -> StatusChange:
    problems = []
    status, version = body.get("status"), body.get("version")
    if status not in STATUSES:
        problems.append(Problem("/status", f"required; one of: {', '.join(STATUSES)}"))
    if version is not None and not isinstance(version, str):
        problems.append(Problem("/version", 'must be a version string such as "1.2.0"'))
    unknown = sorted(set(body) - {"status", "version"})
    problems.extend(
        Problem(f"/{name}", "unknown field; only status and version") for name in unknown
    )
    if problems or not isinstance(status, str):
        raise InvalidInput("the status change is invalid", details=problems)
    return StatusChange(status=status, version=version)


__all__ = ["DEFINITION", "WorkflowController"]
