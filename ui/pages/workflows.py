"""The Workflows pages (SPEC §7): the list with upload and activate/deactivate, one
workflow (graph, nodes, variables, triggers, versions, run form) and a version diff.

Handlers are thin: they call the same services as the REST API (``server/api/workflows.py``,
``executions.py``, ``triggers.py``); what the forms send is converted in ``ui/forms.py``,
the graph laid out by ``ui/graph.py`` and the diff computed by ``ui/diffview.py``.
Form mistakes (bad JSON, an invalid definition, a value that is not a number) re-render
the page with the message next to what caused it and status 422; everything else a
service raises becomes the dashboard's error page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote
from uuid import uuid4

import anyio.to_thread
from litestar import Request, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import Parameter
from litestar.response import Redirect, Template

from server.engine.service import PRIORITIES, ExecutionService, check_start_body
from server.errors import Conflict, FlowyardError, InvalidInput, NotFound, Problem
from server.identity import Actor, acting_name
from server.registry.service import STATUSES, WorkflowRegistry
from server.security.permissions import allows, permission
from server.store.definitions import SORTABLE, WorkflowFilter
from server.triggers.service import Triggers
from ui import forms
from ui.diffview import MAX_TEXT, compare
from ui.graph import layout
from ui.paging import PAGE_SIZE, query_without, read_offset
from ui.templating import after_post, page

WorkflowId = Annotated[str, Parameter(description="Workflow id", max_length=128)]
#: The list's sort choices: (query value, label).
SORTS = (
    ("updated_at:desc", "Recently updated"),
    ("name:asc", "Name A–Z"),
    ("name:desc", "Name Z–A"),
    ("id:asc", "Id"),
    ("created_at:desc", "Newest"),
    ("status:asc", "Status"),
    ("category:asc", "Category"),
)
#: Next fire times shown per cron trigger.
NEXT_FIRES = 3


# -- the list and the upload ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Upload:
    """What the upload form shows again after a mistake."""

    text: str = ""
    parse_error: str | None = None
    groups: tuple[forms.ProblemGroup, ...] = ()
    warnings: tuple[forms.ProblemGroup, ...] = ()
    error: str | None = None

    @property
    def failed(self) -> bool:
        return bool(self.parse_error or self.groups or self.error)


@get("/workflows", opt=permission("read"), include_in_schema=False)
async def workflow_list(
    request: Request[Any, Any, Any],
    registry: NamedDependency[WorkflowRegistry],
    actor: NamedDependency[Actor],
) -> Template:
    return await _list_page(request, registry, actor, Upload())


@post("/workflows", opt=permission("write"), include_in_schema=False)
async def upload_workflow(
    request: Request[Any, Any, Any],
    registry: NamedDependency[WorkflowRegistry],
    actor: NamedDependency[Actor],
) -> Template | Redirect:
    form = await request.form()
    text = form.get("definition") or ""
    file = form.get("file")
    if isinstance(file, UploadFile) and file.filename:
        raw = await file.read()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            upload = Upload(parse_error=f"{file.filename} is not UTF-8 text (JSON is)")
            return await _list_page(request, registry, actor, upload, status=422)
    text = text if isinstance(text, str) else ""
    try:
        document = forms.parse_definition_text(text)
    except ValueError as problem:
        return await _list_page(
            request, registry, actor, Upload(text, parse_error=str(problem)), status=422
        )
    report = await registry.validate(document)
    if not report.valid:
        upload = Upload(
            text,
            groups=tuple(forms.group_problems(document, report.errors)),
            warnings=tuple(forms.group_problems(document, report.warnings)),
        )
        return await _list_page(request, registry, actor, upload, status=422)
    try:
        workflow_id = await _publish(registry, document, actor)
    except InvalidInput as problem:  # e.g. an id the registry refuses
        upload = Upload(
            text,
            error=problem.message,
            groups=tuple(forms.group_problems(document, problem.details)),
        )
        return await _list_page(request, registry, actor, upload, status=422)
    except Conflict as problem:
        upload = Upload(text, error=problem.message)
        return await _list_page(request, registry, actor, upload, status=409)
    return after_post(f"/workflows/{_quote(workflow_id)}", "uploaded")


async def _publish(registry: WorkflowRegistry, document: Any, actor: Actor) -> str:
    """Store the definition as the API would: ``POST`` (new workflow, new or identical
    version), or — for a known id without a ``version`` — ``PUT``, which numbers it."""
    if isinstance(document, dict) and isinstance(document.get("id"), str):
        workflow_id = document["id"]
        if "version" not in document:
            try:
                await registry.versions(workflow_id)
            except NotFound:
                pass
            else:
                stored = await registry.add_version(workflow_id, document, actor=actor.name)
                return str(stored["id"])
    published = await registry.create(document, actor=actor.name)
    return str(published.document["id"])


async def _list_page(
    request: Request[Any, Any, Any],
    registry: WorkflowRegistry,
    actor: Actor,
    upload: Upload,
    *,
    status: int = 200,
) -> Template:
    params = request.query_params
    chosen = {
        name: (params.get(name) or "").strip()
        for name in ("status", "category", "owner", "tag", "search", "sort")
    }
    problems = []
    if chosen["status"] and chosen["status"] not in STATUSES:
        problems.append(f"unknown status {chosen['status']!r}")
        chosen["status"] = ""
    sort = chosen["sort"] or SORTS[0][0]
    sort_by, _, sort_order = sort.partition(":")
    if sort_by not in SORTABLE or sort_order not in ("asc", "desc"):
        problems.append("unknown sort order")
        sort, sort_by, sort_order = SORTS[0][0], "updated_at", "desc"
    offset = read_offset(params.get("offset"))
    query = WorkflowFilter(
        status=chosen["status"] or None,
        category=chosen["category"][:200] or None,
        owner=chosen["owner"][:200] or None,
        tag=chosen["tag"][:200] or None,
        search=chosen["search"][:200] or None,
        sort_by=sort_by,
        sort_order="asc" if sort_order == "asc" else "desc",
        limit=PAGE_SIZE,
        offset=offset,
    )
    found = await registry.list(query)
    filters = {**chosen, "sort": "" if sort == SORTS[0][0] else sort}
    return page(
        request,
        "pages/workflows.html",
        status=status,
        workflows=found.items,
        updated_at=found.updated_at,
        total=found.total,
        limit=found.limit,
        offset=found.offset,
        filters=chosen | {"sort": sort},
        filtered=any(v for k, v in chosen.items() if k != "sort"),
        base_query=query_without(filters, "offset"),
        here=_here(request),
        statuses=STATUSES,
        sorts=SORTS,
        problems=problems,
        upload=upload,
        may_write=allows(actor, "write"),
    )


@post("/workflows/{workflow_id:str}/status", opt=permission("write"), include_in_schema=False)
async def change_status(
    workflow_id: WorkflowId,
    request: Request[Any, Any, Any],
    registry: NamedDependency[WorkflowRegistry],
    actor: NamedDependency[Actor],
) -> Redirect:
    form = await request.form()
    status = form.get("status")
    if status not in ("active", "inactive"):
        raise InvalidInput(
            "the status change is invalid",
            details=[Problem("/status", "choose active or inactive")],
        )
    version = form.get("version") or None
    await registry.set_status(
        workflow_id,
        str(status),
        version=str(version) if version else None,
        actor=actor.name,
    )
    back = form.get("next")
    url = back if isinstance(back, str) and _ours(back) else f"/workflows/{_quote(workflow_id)}"
    return after_post(url, "activated" if status == "active" else "deactivated")


# -- one workflow ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunState:
    """The run form after a refused POST: what was typed and what was wrong."""

    submitted: dict[str, str]
    errors: dict[str, str]
    alerts: tuple[str, ...] = ()


@get("/workflows/{workflow_id:str}", opt=permission("read"), include_in_schema=False)
async def workflow_page(
    workflow_id: WorkflowId,
    request: Request[Any, Any, Any],
    registry: NamedDependency[WorkflowRegistry],
    triggers: NamedDependency[Triggers],
    actor: NamedDependency[Actor],
) -> Template:
    version = request.query_params.get("version") or None
    return await _workflow_page(request, registry, triggers, actor, workflow_id, version)


@post(
    "/workflows/{workflow_id:str}/run",
    opt=permission("execute", audit="execution.start"),
    include_in_schema=False,
)
async def run_workflow(
    workflow_id: WorkflowId,
    request: Request[Any, Any, Any],
    registry: NamedDependency[WorkflowRegistry],
    executions: NamedDependency[ExecutionService],
    triggers: NamedDependency[Triggers],
    actor: NamedDependency[Actor],
) -> Template | Redirect:
    form = await request.form()
    submitted = {key: value for key, value in form.items() if isinstance(value, str)}
    version = submitted.get("version") or None

    async def refused(state: RunState, status: int) -> Template:
        return await _workflow_page(
            request, registry, triggers, actor, workflow_id, version, run=state, status=status
        )

    # The variables of the version that will run: the one asked for, else the newest active.
    try:
        pinned = await registry.pinned(workflow_id, version)
    except Conflict as problem:
        return await refused(RunState(submitted, {}, (problem.message,)), 409)
    parsed = forms.parse_run_form(pinned.document.get("variables"), submitted)
    if parsed.errors:
        return await refused(RunState(submitted, parsed.errors), 422)
    body: dict[str, Any] = {"input": parsed.input}
    if submitted.get("idempotency_key"):
        # The form's one-time key: a double submit lands on the execution the first started.
        body["idempotency_key"] = submitted["idempotency_key"]
    if submitted.get("priority"):
        body["priority"] = submitted["priority"]
    if version:
        body["version"] = version
    try:
        options = check_start_body(body)
        if acting_name(actor):
            # Who really started it, exactly as the API records it (four-eyes rule).
            options = type(options)(**{**options.__dict__, "triggered_by": actor.name})
        execution_id, _ = await executions.start(workflow_id, options, actor=acting_name(actor))
    except InvalidInput as problem:
        by_name, other = forms.input_errors(problem.details)
        alerts = tuple(other) or ((problem.message,) if not by_name else ())
        return await refused(RunState(submitted, by_name, alerts), 422)
    except Conflict as problem:
        return await refused(RunState(submitted, {}, (problem.message,)), 409)
    return after_post(f"/executions/{_quote(execution_id)}", "started")


async def _workflow_page(
    request: Request[Any, Any, Any],
    registry: WorkflowRegistry,
    triggers: Triggers,
    actor: Actor,
    workflow_id: str,
    version: str | None,
    *,
    run: RunState | None = None,
    status: int = 200,
) -> Template:
    document = await registry.get(workflow_id, version)
    versions = await registry.versions(workflow_id)
    try:
        described: dict[str, Any] | None = await triggers.describe(
            workflow_id, last=3, upcoming=NEXT_FIRES
        )
    except FlowyardError:  # the triggers are advice on this page, never its failure
        described = None
    variables = document.get("variables") if isinstance(document.get("variables"), dict) else {}
    nodes = [n for n in document.get("nodes") or [] if isinstance(n, dict)]
    selected_id = request.query_params.get("node") or None
    selected = next((n for n in nodes if n.get("id") == selected_id), None)
    version_query = f"version={_quote(version)}&" if version else ""
    newest = versions[-1].version if versions else document.get("version")
    older = [v.version for v in versions]
    return page(
        request,
        "pages/workflow.html",
        status=status,
        workflow=document,
        workflow_id=workflow_id,
        asked_version=version,
        newest_version=newest,
        versions=list(reversed(versions)),
        version_names=older,
        default_from=older[-2] if len(older) >= 2 else (older[0] if older else ""),
        default_to=older[-1] if older else "",
        graph_layout=layout(document),
        node_href=f"?{version_query}node=",
        page_href=f"?{version_query}".rstrip("&"),
        nodes=nodes,
        selected=selected,
        selected_id=selected["id"] if selected else None,
        variables=variables,
        run_fields=forms.run_fields(
            variables, run.submitted if run else None, run.errors if run else None
        ),
        run=run,
        run_priority=(run.submitted.get("priority") if run else None) or "",
        priorities=list(PRIORITIES),
        triggers=described,
        may_write=allows(actor, "write"),
        may_execute=allows(actor, "execute"),
        run_key=run_key(),
    )


def run_key() -> str:
    """A fresh idempotency key for one rendering of the run form (``ui-`` keeps it clear
    of the server's reserved ``cron:``/``hook:`` keys)."""
    return f"ui-{uuid4().hex}"


# -- the version diff -------------------------------------------------------------------------


@get("/workflows/{workflow_id:str}/diff", opt=permission("read"), include_in_schema=False)
async def workflow_diff(
    workflow_id: WorkflowId,
    request: Request[Any, Any, Any],
    registry: NamedDependency[WorkflowRegistry],
) -> Template:
    versions = [v.version for v in await registry.versions(workflow_id)]
    old = request.query_params.get("from") or (versions[-2] if len(versions) >= 2 else versions[0])
    new = request.query_params.get("to") or versions[-1]
    summary = await registry.diff(workflow_id, old, new)  # NotFound for an unknown version
    before = await registry.get(workflow_id, old)
    after = await registry.get(workflow_id, new)
    # Line diffs are CPU work: off the event loop, and bounded (ui.diffview.compare).
    compared = await anyio.to_thread.run_sync(compare, before, after)
    return page(
        request,
        "pages/workflow_diff.html",
        workflow=after,
        workflow_id=workflow_id,
        old=old,
        new=new,
        version_names=versions,
        summary=summary,
        rows=compared.rows,
        identical=compared.identical,
        too_big=compared.too_big,
        rows_left_out=compared.rows_left_out,
        max_text=MAX_TEXT,
    )


# -- helpers ----------------------------------------------------------------------------------


def _quote(value: str) -> str:
    return quote(value, safe="")


def _here(request: Request[Any, Any, Any]) -> str:
    """This page's URL without its notice: where an action on it comes back to."""
    query = query_without(dict(request.query_params), "notice")
    return request.url.path + (f"?{query}" if query else "")


def _ours(url: str) -> bool:
    """Whether ``url`` is a path of the workflow pages (a safe place to go back to)."""
    return url.startswith("/workflows") and "//" not in url and "\\" not in url


HANDLERS = [
    workflow_list,
    upload_workflow,
    change_status,
    workflow_page,
    run_workflow,
    workflow_diff,
]
