"""``/approvals`` and ``/tasks/{id}``: the approvals inbox and one task's page (SPEC §7).

Thin handlers over :class:`~server.tasks.service.HumanTasks`, the service the REST API
calls, with the same permissions and audit actions as the API's routes
(``server.api.tasks``): reading needs ``read``; completing and claiming ``decide``
(whether *this* person may decide *this* task is the service's rule); reassigning
``write``.

* ``GET /approvals`` — three lists, paged in the database: ``mine`` (open tasks assigned
  to or claimed by me, or offered to one of my roles), ``all`` (every open task; a tab
  for managers and admins, who may decide any of them) and ``decided`` (completed tasks,
  most recently decided first, with who decided what).
* ``GET /tasks/{id}`` — the task, its rendered form, a comment box and one button per
  outcome; its decisions and history. The signed links of e-mail notices lead here
  (``?exp=&sig=[&outcome=]``): a link that is not this server's, or has expired, is
  refused (403); a good one still needs a signed-in reader, and only highlights the
  outcome it names. A GET never decides anything.
* ``POST /tasks/{id}/complete`` — 303 back to the task with a notice; a form the service
  refuses (422: a required field, a wrong type) is shown again with the messages next to
  the fields and what was typed kept; "not yours" (403) and "already decided" (409) are
  shown on the task page with that status.
* ``POST /tasks/{id}/claim`` and ``POST /tasks/{id}/reassign`` — 303 back to the task.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Request, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.di import NamedDependency
from litestar.params import PathParameter, QueryParameter

from server.api.tasks import parse_decision
from server.errors import Conflict, Forbidden, InvalidInput, Problem
from server.identity import DECIDE_ANY, Actor
from server.security.permissions import allows, permission
from server.tasks.service import HumanTasks
from server.tasks.store import TaskFilter
from ui import taskform
from ui.forms import form_text
from ui.paging import PAGE_SIZE, Offset, query_without
from ui.templating import after_post, page

View = Literal["mine", "all", "decided"]
TaskId = Annotated[str, PathParameter(max_length=64)]
VIEWS: tuple[View, ...] = ("mine", "all", "decided")
VIEW_TITLES = {"mine": "Waiting for me", "all": "All open tasks", "decided": "Decided"}
#: Longest text kept from a form input (the service checks the real limits).
INPUT_LIMIT = 200_000


def _filter(view: View, actor: Actor, *, limit: int, offset: int) -> TaskFilter:
    if view == "mine":
        return TaskFilter(status="open", mine=(actor.name, actor.roles), limit=limit, offset=offset)
    if view == "all":
        return TaskFilter(status="open", limit=limit, offset=offset)
    return TaskFilter(status="completed", newest="completed", limit=limit, offset=offset)


@get("/approvals", opt=permission("read"), include_in_schema=False)
async def approvals(
    request: Request[Any, Any, Any],
    tasks: NamedDependency[HumanTasks],
    actor: NamedDependency[Actor],
    view: Annotated[View, QueryParameter()] = "mine",
    offset: Offset = 0,
) -> Response[Any]:
    """The inbox: one of the three lists, with the size of each in its tab."""
    listing = await tasks.search(_filter(view, actor, limit=PAGE_SIZE, offset=offset))
    totals = {}
    for name in VIEWS:
        totals[name] = (
            listing["total"]
            if name == view
            else (await tasks.search(_filter(name, actor, limit=1, offset=0)))["total"]
        )
    params = {"view": view if view != "mine" else None}
    return page(
        request,
        "pages/approvals.html",
        view=view,
        views=VIEW_TITLES,
        show_all=actor.role in DECIDE_ANY or view == "all",
        totals=totals,
        tasks=listing["tasks"],
        total=listing["total"],
        limit=PAGE_SIZE,
        offset=offset,
        base_query=query_without(params),
    )


@get("/tasks/{task_id:str}", opt=permission("read"), include_in_schema=False)
async def task_page(
    request: Request[Any, Any, Any],
    task_id: TaskId,
    tasks: NamedDependency[HumanTasks],
    actor: NamedDependency[Actor],
    exp: Annotated[int | None, QueryParameter(ge=0)] = None,
    sig: Annotated[str | None, QueryParameter(max_length=200)] = None,
    outcome: Annotated[str | None, QueryParameter(max_length=200)] = None,
) -> Response[Any]:
    """One task: what to decide, the form, the outcome buttons, the history."""
    if exp is not None or sig is not None:
        if exp is None or sig is None:
            raise Forbidden("this task link is incomplete; open the task from the inbox")
        await tasks.open_link(task_id, exp, sig, outcome)  # 403 unless ours and unexpired
    task = await tasks.get(task_id, actor)
    return _task_page(request, task, actor, suggested=outcome)


@post(
    "/tasks/{task_id:str}/complete",
    opt=permission("decide", audit="task.complete"),
    status_code=303,
    include_in_schema=False,
)
async def complete_task(
    request: Request[Any, Any, Any],
    task_id: TaskId,
    tasks: NamedDependency[HumanTasks],
    actor: NamedDependency[Actor],
) -> Response[Any]:
    """Decide the task with the outcome of the button that was pressed."""
    form = await request.form()
    task = await tasks.get(task_id, actor)
    inputs = taskform.fields(task["form"])
    data, typed = taskform.parse(inputs, _texts(form))
    comment = form_text(form, "comment", INPUT_LIMIT)
    outcome = form_text(form, "outcome", INPUT_LIMIT)
    try:
        decision = parse_decision({"outcome": outcome, "data": data, "comment": comment})
        await tasks.complete(task_id, decision, actor)
    except InvalidInput as error:
        return _task_page(
            request,
            task,
            actor,
            status=422,
            problems=error.details,
            typed=typed,
            comment=comment,
            suggested=outcome,
        )
    except (Forbidden, Conflict) as error:
        task = await tasks.get(task_id, actor)  # as it is now (decided by someone else?)
        return _task_page(
            request,
            task,
            actor,
            status=error.status_code,
            message=error.message,
            typed=typed,
            comment=comment,
            suggested=outcome,
        )
    return after_post(f"/tasks/{task_id}", "decided")


@post(
    "/tasks/{task_id:str}/claim",
    opt=permission("decide", audit="task.claim"),
    status_code=303,
    include_in_schema=False,
)
async def claim_task(
    request: Request[Any, Any, Any],
    task_id: TaskId,
    tasks: NamedDependency[HumanTasks],
    actor: NamedDependency[Actor],
) -> Response[Any]:
    """Take a task offered to one of my roles: it becomes mine alone."""
    try:
        await tasks.claim(task_id, actor)
    except (Forbidden, Conflict) as error:
        task = await tasks.get(task_id, actor)
        return _task_page(request, task, actor, status=error.status_code, message=error.message)
    return after_post(f"/tasks/{task_id}", "claimed")


@post(
    "/tasks/{task_id:str}/reassign",
    opt=permission("write", audit="task.reassign"),
    status_code=303,
    include_in_schema=False,
)
async def reassign_task(
    request: Request[Any, Any, Any],
    task_id: TaskId,
    tasks: NamedDependency[HumanTasks],
    actor: NamedDependency[Actor],
) -> Response[Any]:
    """Give the task to another user, or offer it to a role (``role:<name>``)."""
    form = await request.form()
    target = form_text(form, "assignee", INPUT_LIMIT).strip()
    try:
        if not target:
            raise InvalidInput(
                "the reassign request is invalid",
                details=[Problem("/assignee", "required: a user name, or role:<name>")],
            )
        await tasks.reassign(task_id, target, actor)
    except InvalidInput as error:
        task = await tasks.get(task_id, actor)
        messages = [p.message for p in error.details] or [error.message]
        return _task_page(
            request, task, actor, status=422, reassign_errors=messages, reassign_to=target
        )
    except (Forbidden, Conflict) as error:
        task = await tasks.get(task_id, actor)
        return _task_page(request, task, actor, status=error.status_code, message=error.message)
    return after_post(f"/tasks/{task_id}", "reassigned")


def _task_page(
    request: Request[Any, Any, Any],
    task: dict[str, Any],
    actor: Actor,
    *,
    status: int = 200,
    typed: dict[str, str] | None = None,
    comment: str = "",
    suggested: str | None = None,
    problems: tuple[Problem, ...] = (),
    message: str | None = None,
    reassign_errors: list[str] | None = None,
    reassign_to: str = "",
) -> Response[Any]:
    inputs = taskform.fields(task["form"])
    field_errors, other_problems = taskform.problems_by_field(problems, inputs)
    values = typed if typed is not None else {f.name: f.default for f in inputs}
    is_open = task["status"] == "open"
    permission_ = task.get("permission") or {}
    may_decide = bool(permission_.get("may_decide"))
    may_claim = (
        is_open
        and may_decide
        and bool(task["candidate_roles"])
        and not task["claimed_by"]
        and task["required_approvals"] == 1
        and task["assignee"] != actor.name
    )
    return page(
        request,
        "pages/task.html",
        status=status,
        task=task,
        inputs=inputs,
        values=values,
        field_errors=field_errors,
        problems=other_problems,
        problem_count=len(problems),
        comment=comment,
        suggested=suggested if suggested in task["outcomes"] else None,
        message=message,
        is_open=is_open,
        may_decide=may_decide,
        reason=permission_.get("reason"),
        may_claim=may_claim,
        may_reassign=is_open and allows(actor, "write"),
        reassign_errors=reassign_errors or [],
        reassign_to=reassign_to,
    )


def _texts(form: FormMultiDict) -> dict[str, str]:
    return {key: form_text(form, key, INPUT_LIMIT) for key in form}


HANDLERS = [approvals, task_page, complete_task, claim_task, reassign_task]
