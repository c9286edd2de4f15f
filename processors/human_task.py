"""``human_task``: wait for a person to decide, via the approvals inbox.

``run`` asks the inbox service (``ctx.services["tasks"]``, :class:`TaskInbox`) to open a
task with the rendered ``title``, ``description``, ``assignee``, ``candidate_roles``,
``form``, ``outcomes``, ``required_approvals`` and ``allow_self_approval``, due
``due_date`` from now, and answers ``Waiting("human_task", until=due, data={task_id})``.
Opening is idempotent per node run: the task is keyed by the run's idempotency key, so a
node that runs again after a crash finds the task it opened (and, if someone decided it
meanwhile, completes at once) instead of opening a second one.

A permitted person completes the task through the API (``server.tasks.service``), which
answers the node's wait in the same transaction; ``resume`` then returns
``Completed({status: outcome, comment, completed_by, completed_at, …form fields},
branch=outcome)``. The branch label routes edges whose ``condition`` is an outcome name
(``"condition": "approved"``); edges without a condition are always taken and other
conditions are expressions over the scope (the engine's rule for non-decision nodes), so
``routes_by_label`` stays false.

When the due time passes without a decision, ``resume`` gets no answer and applies
``on_timeout``: ``fail`` (the default) expires the task and fails the node (not
retryable); an outcome name completes the task with it (``completed_by:
"system:timeout"``); ``escalate`` hands the task to ``escalate_to`` (a user, or
``role:<name>``) with a new due time of the same length and waits again — once: if the
escalated task is not decided in time either, it expires and the node fails.

``notify`` (``true`` or ``{to, account}``) e-mails a notice with signed links that open
the task page, through ``ctx.services["mail"]``; a notice that cannot be sent is a line
in the node's logs, never a node failure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Protocol

from processors.base import (
    DURATION_SCHEMA,
    TEMPLATE_STRING,
    ConfigCheck,
    JSONSchema,
    Processor,
    rel,
)
from processors.database import unknown_name_message
from processors.runtime import Completed, Failed, NodeContext, Outcome, Waiting, WaitResolution
from server.durations import DurationError, parse_duration

DEFAULT_OUTCOMES = ("approved", "rejected")
FIELD_TYPES = ("text", "textarea", "number", "boolean", "select", "date")
FIXED_OUTPUT = frozenset({"status", "comment", "completed_by", "completed_at"})
TIMEOUT_ACTIONS = ("fail", "escalate")
#: ``completed_by`` of a task completed by ``on_timeout: <outcome>``.
TIMEOUT_ACTOR = "system:timeout"
#: ``escalate_to`` / reassignment targets written ``role:<name>`` name a role.
ROLE_PREFIX = "role:"


# --- what the node asks of the inbox -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A task to open, rendered from the node's config."""

    execution_id: str
    node_id: str
    idempotency_key: str
    title: str
    description: str
    assignee: str | None
    candidate_roles: tuple[str, ...]
    form: tuple[Mapping[str, Any], ...]
    outcomes: tuple[str, ...]
    required_approvals: int
    allow_self_approval: bool
    due_at: datetime | None


@dataclass(frozen=True, slots=True)
class TaskState:
    """What the inbox says about a node's task.

    ``status`` is ``open`` (wait until ``due_at``), ``completed`` (``result`` is the
    decision: ``{outcome, data, comment, completed_by, completed_at, approvals}``),
    ``expired`` or ``cancelled``; ``detail`` says what just happened, for messages.
    """

    task_id: str
    status: str
    due_at: datetime | None = None
    result: Mapping[str, Any] | None = None
    created: bool = False
    detail: str = ""


@dataclass(frozen=True, slots=True)
class TimeoutPolicy:
    """``on_timeout`` of a node, with what escalation needs."""

    action: str = "fail"
    escalate_to: str | None = None
    due_seconds: float | None = None


class TaskInbox(Protocol):
    """The approvals inbox as a ``human_task`` node uses it (``ctx.services["tasks"]``)."""

    async def open_task(self, spec: TaskSpec) -> TaskState: ...

    async def find_task(
        self, execution_id: str, node_id: str, idempotency_key: str
    ) -> TaskState | None: ...

    async def time_out(self, task_id: str, policy: TimeoutPolicy) -> TaskState: ...

    async def notify(
        self, task_id: str, *, to: Sequence[str], account: str | None, mail: Any
    ) -> str: ...


FORM_FIELD_SCHEMA: JSONSchema = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "description": "key in the task's output"},
        "label": {"type": "string"},
        "type": {"enum": list(FIELD_TYPES), "description": "input kind (default text)"},
        "options": {
            "type": "array",
            "description": "choices of a select field: values, or {value, label} objects",
        },
        "required": {"type": "boolean"},
    },
}
NOTIFY_SCHEMA: JSONSchema = {
    "type": ["boolean", "object"],
    "description": (
        "e-mail a notice with signed links that open the task page: true (to the "
        "assignee's address) or {to, account}"
    ),
    "properties": {
        "to": {
            "type": ["string", "array"],
            "items": {"type": "string"},
            "description": "address(es) to notify instead of the assignee's; templated",
        },
        "account": {"type": "string", "description": "SMTP account (default: default)"},
    },
}


class HumanTaskProcessor(Processor):
    """Creates an approval task and waits durably until a permitted person completes it."""

    type_name: ClassVar[str] = "human_task"
    #: its title, description and form are shown in the inbox as they are
    accepts_secrets: ClassVar[bool] = False
    description: ClassVar[str] = "Waits for a person to complete a task in the approvals inbox."
    config_schema: ClassVar[JSONSchema] = {
        "type": "object",
        "properties": {
            "assignee": {"type": "string", "description": "user who should decide; templated"},
            "candidate_roles": {
                "type": "array",
                "items": {"type": "string"},
                "description": "roles whose members may decide",
            },
            "title": {**TEMPLATE_STRING, "description": "task title; templated"},
            "description": {**TEMPLATE_STRING, "description": "task description; templated"},
            "form": {"type": "array", "items": FORM_FIELD_SCHEMA, "description": "form fields"},
            "outcomes": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "minItems": 1,
                "uniqueItems": True,
                "description": 'possible decisions (default ["approved", "rejected"])',
            },
            "required_approvals": {
                "type": "integer",
                "minimum": 1,
                "description": "distinct people who must choose the first outcome",
            },
            "allow_self_approval": {
                "type": "boolean",
                "description": "false: whoever started the execution cannot decide (four eyes)",
            },
            "due_date": {**DURATION_SCHEMA, "description": "how long the task may stay open"},
            "on_timeout": {
                "type": "string",
                "description": "when due: fail (default), escalate (to escalate_to) or an "
                "outcome to apply",
            },
            "escalate_to": {"type": "string", "description": "user or role:<name> to escalate to"},
            "notify": NOTIFY_SCHEMA,
        },
    }

    def check_config(self, config: Mapping[str, Any], check: ConfigCheck) -> None:
        if config.get("assignee") is None and not config.get("candidate_roles"):
            check.warning(
                "",
                "no 'assignee' or 'candidate_roles': only managers and admins can complete "
                "this task",
            )
        if "due_date" in config:
            check.duration("due_date", config["due_date"])
        outcomes = config.get("outcomes")
        outcome_list = outcomes if isinstance(outcomes, list) else list(DEFAULT_OUTCOMES)
        self._check_timeout_policy(config, outcome_list, check)
        form = config.get("form")
        if isinstance(form, list):
            self._check_form(form, check)
        notify = config.get("notify")
        if isinstance(notify, dict):
            self._check_notify(notify, check)
        elif notify is True and check.context.smtp_accounts == frozenset():
            check.warning("notify", "no SMTP account is configured: the notice cannot be sent")
        for key in ("title", "description", "assignee", "candidate_roles", "escalate_to"):
            if key in config:
                check.template(key, config[key])

    def _check_timeout_policy(
        self, config: Mapping[str, Any], outcomes: list[Any], check: ConfigCheck
    ) -> None:
        policy = config.get("on_timeout")
        if not isinstance(policy, str):
            return
        allowed = [*TIMEOUT_ACTIONS, *(o for o in outcomes if isinstance(o, str))]
        if policy not in allowed:
            check.error("on_timeout", f"{policy!r} is not one of: {', '.join(allowed)}")
        if policy == "escalate" and not config.get("escalate_to"):
            check.error("on_timeout", "on_timeout 'escalate' needs 'escalate_to' (who takes over)")
        if config.get("due_date") is None:
            check.warning("on_timeout", "on_timeout has no effect without 'due_date'")

    def _check_form(self, form: list[Any], check: ConfigCheck) -> None:
        seen: set[str] = set()
        for index, field_ in enumerate(form):
            if not isinstance(field_, dict):
                continue
            name = field_.get("name")
            if isinstance(name, str):
                if name in seen:
                    check.error(rel("form", index, "name"), f"form field {name!r} appears twice")
                if name in FIXED_OUTPUT:
                    check.error(
                        rel("form", index, "name"),
                        f"form field {name!r} would be overwritten by the task's own output "
                        f"({', '.join(sorted(FIXED_OUTPUT))}); rename it",
                    )
                seen.add(name)
            if field_.get("type") == "select" and not field_.get("options"):
                check.error(rel("form", index), "a select field needs a non-empty 'options' list")

    def _check_notify(self, notify: Mapping[str, Any], check: ConfigCheck) -> None:
        account = notify.get("account")
        known = check.context.smtp_accounts
        if isinstance(account, str) and known is not None and account not in known:
            check.error(
                rel("notify", "account"),
                unknown_name_message("SMTP account", account, known, "smtp"),
            )
        if "to" in notify:
            check.template(rel("notify", "to"), notify["to"])

    def output_names(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        form = config.get("form")
        if not isinstance(form, list):
            return None  # completion data may carry any keys when no form declares them
        names = {f["name"] for f in form if isinstance(f, dict) and isinstance(f.get("name"), str)}
        return FIXED_OUTPUT | names

    # --- run time ------------------------------------------------------------------------

    async def run(self, config: Mapping[str, Any], ctx: NodeContext) -> Outcome:
        inbox = ctx.services.get("tasks")
        if inbox is None:
            return Failed("the approvals inbox is not available on this server", retryable=False)
        spec = task_spec(config, ctx)
        if isinstance(spec, Failed):
            return spec
        state = await inbox.open_task(spec)
        if state.status == "completed" and state.result is not None:
            return completed_output(state.result)  # decided before a crash let us record it
        if state.created:
            await send_notice(inbox, config, ctx, state.task_id)
        return Waiting("human_task", until=state.due_at, data={"task_id": state.task_id})

    async def resume(
        self, config: Mapping[str, Any], ctx: NodeContext, wait: WaitResolution
    ) -> Outcome:
        if wait.data.get("outcome") is not None:
            return completed_output(wait.data)
        inbox = ctx.services.get("tasks")
        if inbox is None:
            return Failed("the approvals inbox is not available on this server", retryable=False)
        task_id = wait.wait_data.get("task_id")
        if not isinstance(task_id, str):
            found = await inbox.find_task(ctx.execution_id, ctx.node_id, ctx.idempotency_key)
            if found is None:
                return Failed("the node's task is gone from the inbox", retryable=False)
            task_id = found.task_id
        state = await inbox.time_out(task_id, timeout_policy(config))
        if state.status == "completed" and state.result is not None:
            return completed_output(state.result)
        if state.status == "open":
            if state.detail:
                ctx.log(state.detail)
                await send_notice(inbox, config, ctx, task_id)
            return Waiting("human_task", until=state.due_at, data={"task_id": task_id})
        return Failed(state.detail or f"task {task_id} is {state.status}", retryable=False)


# --- helpers -------------------------------------------------------------------------------


def _text(value: object, default: str = "") -> str:
    if value is None:
        return default
    return value if isinstance(value, str) else str(value)


def task_spec(config: Mapping[str, Any], ctx: NodeContext) -> TaskSpec | Failed:
    """The task to open, from the rendered config; ``Failed`` for a config it cannot use."""
    outcomes = config.get("outcomes", list(DEFAULT_OUTCOMES))
    if (
        not isinstance(outcomes, list)
        or not outcomes
        or not all(isinstance(o, str) and o for o in outcomes)
    ):
        return Failed("human task 'outcomes' must be a non-empty list of names", retryable=False)
    roles = config.get("candidate_roles") or []
    if isinstance(roles, str):
        roles = [roles]
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        return Failed("human task 'candidate_roles' must be a list of role names", retryable=False)
    required = config.get("required_approvals", 1)
    if isinstance(required, bool) or not isinstance(required, int) or required < 1:
        return Failed("human task 'required_approvals' must be a whole number ≥ 1", retryable=False)
    form = config.get("form") or []
    if not isinstance(form, list):
        return Failed("human task 'form' must be a list of fields", retryable=False)
    due_at = None
    if config.get("due_date") is not None:
        try:
            due_at = ctx.now() + timedelta(seconds=parse_duration(config["due_date"]))
        except (DurationError, OverflowError) as exc:
            return Failed(f"human task 'due_date': {exc}", retryable=False)
    assignee = config.get("assignee")
    return TaskSpec(
        execution_id=ctx.execution_id,
        node_id=ctx.node_id,
        idempotency_key=ctx.idempotency_key,
        title=_text(config.get("title"), ctx.node_name)[:500] or ctx.node_id,
        description=_text(config.get("description")),
        assignee=_text(assignee) or None,
        candidate_roles=tuple(dict.fromkeys(r.strip() for r in roles if r.strip())),
        form=tuple(f for f in form if isinstance(f, dict)),
        outcomes=tuple(outcomes),
        required_approvals=required,
        allow_self_approval=config.get("allow_self_approval") is not False,
        due_at=_aware(due_at),
    )


def timeout_policy(config: Mapping[str, Any]) -> TimeoutPolicy:
    action = config.get("on_timeout")
    due_seconds = None
    if config.get("due_date") is not None:
        try:
            due_seconds = parse_duration(config["due_date"])
        except DurationError:
            due_seconds = None
    escalate_to = config.get("escalate_to")
    return TimeoutPolicy(
        action=action if isinstance(action, str) and action else "fail",
        escalate_to=escalate_to if isinstance(escalate_to, str) and escalate_to else None,
        due_seconds=due_seconds,
    )


def completed_output(result: Mapping[str, Any]) -> Completed:
    """The node's output from a decision: the form fields, then the fixed keys."""
    data = result.get("data")
    outcome = str(result.get("outcome"))
    output = {
        **(data if isinstance(data, dict) else {}),
        "status": outcome,
        "comment": result.get("comment") or "",
        "completed_by": result.get("completed_by"),
        "completed_at": result.get("completed_at"),
    }
    return Completed(output, branch=outcome)


def notice_target(config: Mapping[str, Any]) -> tuple[list[str], str | None] | None:
    """(addresses, account) of the notice; ``None`` when no notice is asked for.

    An empty address list means "the assignee's address" (the inbox looks it up).
    """
    notify = config.get("notify")
    if notify is True:
        return [], None
    if not isinstance(notify, dict):
        return None
    to = notify.get("to") or []
    if isinstance(to, str):
        to = [to]
    addresses = (
        [a.strip() for a in to if isinstance(a, str) and a.strip()] if isinstance(to, list) else []
    )
    account = notify.get("account")
    return addresses, account if isinstance(account, str) and account else None


async def send_notice(
    inbox: TaskInbox, config: Mapping[str, Any], ctx: NodeContext, task_id: str
) -> None:
    """E-mail the task's notice if the node asks for one; problems become log lines."""
    target = notice_target(config)
    if target is None:
        return
    mail = ctx.services.get("mail")
    if mail is None:
        ctx.log("task notice not sent: e-mail is not available on this server")
        return
    to, account = target
    ctx.log(await inbox.notify(task_id, to=to, account=account, mail=mail))


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
