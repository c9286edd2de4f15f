"""The executions pages (SPEC §7): the list, one execution (live while it runs), and
its control actions as form POSTs.

Reads go through the same store queries and execution JSON as the REST API
(``server.engine.views``); actions call the same service method with the same
permission and audit action names as ``server.api.executions``, so the audit log
records what was done from the dashboard like what was done through the API.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from litestar import MediaType, Request, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_200_OK

from server.api.body import parse_json_text
from server.api.timefilters import parse_time
from server.engine.rules import ALLOWED, may_skip
from server.engine.service import PRIORITIES, ExecutionService
from server.engine.views import execution_view, summary_json
from server.errors import InvalidInput, NotFound
from server.identity import Actor, acting_name
from server.metrics import EXECUTION_STATUSES
from server.security.permissions import Permission, allows, permission
from server.store import executions as store
from server.store.database import Database
from ui import timeline
from ui.graph import layout
from ui.paging import PAGE_SIZE, query_without, read_offset
from ui.templating import after_post, page

#: Page-wide control actions: (action, permission, the statuses where it makes sense —
#: the engine's own rules, ``server.engine.rules``).
ACTIONS: dict[str, tuple[Permission, frozenset[str]]] = {
    "cancel": ("execute", ALLOWED["cancel"]),
    "suspend": ("execute", ALLOWED["suspend"]),
    "resume": ("execute", ALLOWED["resume"]),
    "retry": ("execute", ALLOWED["retry"]),
    "restart": ("execute", timeline.TERMINAL),
}
#: The notice shown after each action (``ui.templating.NOTICES``).
DONE = {
    "cancel": "cancelled",
    "suspend": "suspended",
    "resume": "resumed",
    "retry": "retried",
    "rerun": "rerun",
    "skip": "skipped",
    "restart": "restarted",
}
#: Child executions listed on the page (the rest are counted, not loaded).
CHILDREN_SHOWN = 50
#: Seconds between polls of the live part while the execution runs, and while it is
#: pending or suspended (nothing moves then until a timer or a person acts).
POLL_RUNNING, POLL_IDLE = 1, 5


@dataclass
class ListQuery:
    """The list page's filters as typed (``values``), what they mean for the store
    (``query``), and the problems with what was typed (field → message)."""

    values: dict[str, str]
    query: store.ExecutionFilter
    errors: dict[str, str] = field(default_factory=dict)


def parse_list_query(params: Mapping[str, str]) -> ListQuery:
    """Read the list's GET form; an invalid filter is reported and not applied."""
    names = ("status", "workflow_id", "owner", "priority", "started_from", "started_to")
    values = {name: (params.get(name) or "").strip() for name in names}
    errors: dict[str, str] = {}
    if values["status"] and values["status"] not in EXECUTION_STATUSES:
        errors["status"] = f"choose one of: {', '.join(EXECUTION_STATUSES)}"
    if values["priority"] and values["priority"] not in PRIORITIES:
        errors["priority"] = f"choose one of: {', '.join(PRIORITIES)}"
    moments: dict[str, datetime | None] = {}
    for name in ("started_from", "started_to"):
        moments[name] = _moment(values[name])
        if values[name] and moments[name] is None:
            errors[name] = "a date and time like 2026-01-31T09:30 (UTC)"
    offset = read_offset(params.get("offset"))
    query = store.ExecutionFilter(
        status=values["status"] if "status" not in errors else None,
        workflow_id=values["workflow_id"] or None,
        owner=values["owner"] or None,
        priority=PRIORITIES.get(values["priority"]) if "priority" not in errors else None,
        started_from=moments["started_from"],
        started_to=moments["started_to"],
        limit=PAGE_SIZE,
        offset=offset,
    )
    return ListQuery(values, query, errors)


@get("/executions", opt=permission("read"), include_in_schema=False)
async def executions_list(
    request: Request[Any, Any, Any], database: NamedDependency[Database]
) -> Template:
    parsed = parse_list_query(request.query_params)
    async with database.reader() as session:
        rows, total = await store.search_summaries(session, parsed.query)
    return page(
        request,
        "pages/executions.html",
        status=422 if parsed.errors else 200,
        executions=[summary_json(row) for row in rows],
        total=total,
        limit=parsed.query.limit,
        offset=parsed.query.offset,
        values=parsed.values,
        errors=parsed.errors,
        statuses=EXECUTION_STATUSES,
        priorities=list(PRIORITIES),
        base_query=query_without(request.query_params, "offset", "notice"),
        filtered=any(parsed.values.values()),
    )


@get("/executions/{execution_id:str}", opt=permission("read"), include_in_schema=False)
async def execution_page(
    request: Request[Any, Any, Any],
    execution_id: FromPath[str],
    database: NamedDependency[Database],
    actor: NamedDependency[Actor],
) -> Template:
    context = await _execution_context(request, database, execution_id, actor)
    return page(request, "pages/execution.html", **context)


@get("/executions/{execution_id:str}/live", opt=permission("read"), include_in_schema=False)
async def execution_live(
    request: Request[Any, Any, Any],
    execution_id: FromPath[str],
    database: NamedDependency[Database],
    actor: NamedDependency[Actor],
) -> Template:
    """The polled part of the execution page (status, graph, timeline).

    ``seen`` is the status the browser shows: when it changed, the response also
    carries the actions and the details (out of band), which otherwise stay as they are
    so an open confirmation or a scrolled panel is not reset every second. A browser
    opening this URL itself gets the whole page.
    """
    context = await _execution_context(request, database, execution_id, actor)
    if not request.headers.get("HX-Request"):
        return page(request, "pages/execution.html", **context)
    seen = request.query_params.get("seen")
    return Template(
        "partials/execution_live.html",
        context={**context, "out_of_band": seen != context["execution"]["status"]},
        media_type=MediaType.HTML,
    )


@get(
    "/executions/{execution_id:str}/nodes/{node_id:str}/raw",
    opt=permission("read"),
    include_in_schema=False,
)
async def node_raw(
    execution_id: FromPath[str], node_id: FromPath[str], database: NamedDependency[Database]
) -> Response[dict[str, Any]]:
    """Every run of one node as JSON (the whole of what the page shows cut short)."""
    execution = (await execution_view(database, execution_id, children_limit=0)).execution
    runs = timeline.runs_of(execution["executed_nodes"], node_id)
    if not runs:
        raise NotFound(f"execution {execution_id} has no run of node {node_id!r}")
    body = {"execution_id": execution_id, "node_id": node_id, "runs": runs}
    return Response(body, media_type=MediaType.JSON)


def _action(action: str) -> Any:
    needed, _ = ACTIONS[action]

    @post(
        f"/executions/{{execution_id:str}}/{action}",
        opt=permission(needed, audit=f"execution.{action}"),
        status_code=HTTP_200_OK,
        include_in_schema=False,
        name=f"execution-{action}",
    )
    async def handler(
        execution_id: FromPath[str],
        executions: NamedDependency[ExecutionService],
        actor: NamedDependency[Actor],
    ) -> Redirect:
        if action == "restart":
            new_id = await executions.restart(execution_id, version=None, actor=acting_name(actor))
            return after_post(f"/executions/{new_id}", DONE[action])
        await executions.control(execution_id, action, actor=acting_name(actor))
        return after_post(f"/executions/{execution_id}", DONE[action])

    return handler


def _node_action(action: str, field_name: str) -> Any:
    """Rerun from a node (optional input patch) or skip a node (given output): both
    change what the execution computes, so they need ``write``, as in the API."""

    @post(
        f"/executions/{{execution_id:str}}/{action}",
        opt=permission("write", audit=f"execution.{action}"),
        status_code=HTTP_200_OK,
        include_in_schema=False,
        name=f"execution-{action}",
    )
    async def handler(
        request: Request[Any, Any, Any],
        execution_id: FromPath[str],
        executions: NamedDependency[ExecutionService],
        database: NamedDependency[Database],
        actor: NamedDependency[Actor],
    ) -> Redirect | Template:
        form: FormMultiDict = await request.form()
        node_id = str(form.get("node_id") or "")
        text = str(form.get(field_name) or "").strip()
        value, problem = parse_json_object(text)
        if not node_id:
            problem = "choose a node"
        if problem is None:
            try:
                await executions.control(
                    execution_id,
                    action,
                    actor=acting_name(actor),
                    node_id=node_id,
                    **{field_name: value},
                )
            except InvalidInput as error:
                details = "; ".join(f"{d.path}: {d.message}" for d in error.details)
                problem = f"{error.message}{': ' + details if details else ''}"
            else:
                target = f"/executions/{execution_id}?node={node_id}"
                return after_post(target, DONE[action])
        # Show the page again with the problem next to the field and what was typed.
        context = await _execution_context(request, database, execution_id, actor, node_id)
        context["form_error"] = {"action": action, "message": problem, "text": text}
        return page(request, "pages/execution.html", status=422, **context)

    return handler


def parse_json_object(text: str) -> tuple[dict[str, Any], str | None]:
    """A textarea's JSON object (empty → ``{}``), or the problem with it."""
    if not text:
        return {}, None
    try:
        value = parse_json_text(text)  # the API's parser: NaN, deep nesting → a message
    except ValueError as error:
        return {}, str(error)
    if not isinstance(value, dict):
        return {}, 'must be a JSON object, like {"name": "value"}'
    return value, None


async def _execution_context(
    request: Request[Any, Any, Any],
    database: Database,
    execution_id: str,
    actor: Actor,
    selected: str | None = None,
) -> dict[str, Any]:
    """Everything the execution page and its live part show."""
    view = await execution_view(database, execution_id, children_limit=CHILDREN_SHOWN)
    execution, document = view.execution, view.document
    executed = execution["executed_nodes"]
    status = execution["status"]
    node = selected or request.query_params.get("node") or None
    runs = timeline.runs_of(executed, node) if node else []
    current = timeline.latest_runs(executed)
    may_write = allows(actor, "write")
    return {
        "execution": execution,
        "document": document,
        "graph_layout": layout(document),
        "statuses": timeline.node_statuses(execution),
        "bars": timeline.bars(executed, execution["started_at"], execution["completed_at"]),
        "run_count": sum(1 for run in executed if timeline.is_run(run)),
        "terminal": status in timeline.TERMINAL,
        "selected": node,
        "node_runs": runs,
        "node_current": current.get(node) if node else None,
        "node_known": bool(node) and (bool(runs) or node in _node_ids(document)),
        "allowed_actions": [
            name
            for name, (needed, allowed) in ACTIONS.items()
            if status in allowed and allows(actor, needed)
        ],
        "may_rerun": may_write and status in ALLOWED["rerun"],
        "may_skip": may_write
        and node is not None
        and node in current
        and may_skip(status, current[node]["status"]),
        "children_total": view.children_total,
        "poll_seconds": POLL_RUNNING if status == "running" else POLL_IDLE,
        "raw_url": f"/api/v1/workflows/executions/{execution_id}",
        "now": datetime.now(UTC),
        "form_error": None,
    }


def _node_ids(document: Mapping[str, Any]) -> set[str]:
    return {str(n.get("id")) for n in document.get("nodes") or () if isinstance(n, Mapping)}


def _moment(text: str) -> datetime | None:
    """A typed filter time as UTC (``server.api.timefilters``, as the API reads it);
    ``None`` when empty or unusable (the caller reports it)."""
    try:
        return parse_time(text)
    except ValueError:
        return None


HANDLERS = [
    executions_list,
    execution_page,
    execution_live,
    node_raw,
    *(_action(name) for name in ACTIONS),
    _node_action("rerun", "input_patch"),
    _node_action("skip", "output"),
]
