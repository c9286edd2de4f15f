"""Starting and controlling executions: what the API and the CLI call.

Every change to an execution goes through the process that holds its lease: a control
action on an execution this process is not driving first takes its lease (loading it
into a runner), so control actions and node results of one execution never interleave.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from server.config import Settings
from server.definitions.model import Definition
from server.durations import parse_duration
from server.engine.engine import LEASE, Engine
from server.engine.ops import Ops
from server.engine.records import Run
from server.engine.routing import Routing
from server.engine.runner import Runner
from server.engine.scope import check_input
from server.errors import Conflict, InvalidInput, InvalidTransition, NotFound, Problem
from server.registry.service import WorkflowRegistry
from server.store import runs as store
from server.store.models import new_id, utcnow

PRIORITIES = {"low": 0, "medium": 1, "high": 2, "critical": 3}
PRIORITY_NAMES = {value: name for name, value in PRIORITIES.items()}
#: The furthest a start can be delayed (``delay`` or ``start_at``).
MAX_START_DELAY = timedelta(days=366)
CONTROL_ACTIONS = ("cancel", "suspend", "resume", "retry", "rerun", "skip")


@dataclass(frozen=True)
class StartOptions:
    input: dict[str, Any] = field(default_factory=dict)
    version: str | None = None
    priority: str | None = None
    owner: str | None = None
    triggered_by: str | None = None
    parent_execution: str | None = None
    parent_node: str | None = None
    delay: float = 0.0
    start_at: datetime | None = None
    idempotency_key: str | None = None
    restarted_from: str | None = None


@dataclass(frozen=True)
class _Prepared:
    """A new execution's rows, ready to insert in one transaction."""

    row: dict[str, Any]
    runs: list[dict[str, Any]]
    ops: Ops
    definition: Definition
    delayed: bool

    def insert(self, connection: Any) -> None:
        store.insert_execution(connection, self.row)
        store.insert_runs(connection, self.runs)
        self.ops.apply(connection)


class ExecutionService:
    def __init__(self, registry: WorkflowRegistry, engine: Engine, settings: Settings) -> None:
        self.registry = registry
        self.engine = engine
        self.default_timeout = parse_duration(settings.server.execution_timeout)
        #: how deep child executions may nest (a workflow calling itself must end)
        self.max_child_depth = settings.limits.max_depth
        engine.executions = self  # the engine ends an ended execution's children through it

    async def start(
        self, workflow_id: str, options: StartOptions, *, actor: str | None = None
    ) -> tuple[str, bool]:
        """Start (or, with a known idempotency key, find) an execution; (id, created).

        One transaction finds the pinned version, checks the input and inserts the
        execution — when the version is parsed already, as it is after its first start;
        otherwise its document is read first and parsed here.
        """
        engine = self.engine
        key = options.idempotency_key

        def begin(connection: Any) -> tuple[str, Any]:
            if key:
                existing = store.find_by_idempotency_key(connection, key)
                if existing:
                    return "found", existing
            pinned = store.pinned_version(connection, workflow_id, options.version)
            if pinned is None:
                return "missing", None
            definition = engine.parsed_definition(pinned["pk"])
            if definition is None:
                return "unparsed", (pinned, store.version_document(connection, pinned["pk"]))
            problems = check_input(definition, options.input)
            if problems:  # answered, not raised: a raise would roll back a whole group
                return "invalid", problems
            prepared = self._prepare(pinned, definition, options, actor=actor, checked=True)
            prepared.insert(connection)
            return "created", prepared

        try:
            outcome, found = await engine.journal.run(begin)
        except IntegrityError:
            return await self._already_started(key)
        if outcome == "found":
            return found, False
        if outcome == "missing":
            # Let the registry say precisely what is missing (workflow, version, active one).
            await self.registry.pinned(workflow_id, options.version)
            raise NotFound(f"no runnable version of workflow {workflow_id!r}")  # pragma: no cover
        if outcome == "invalid":
            raise InvalidInput(
                "the input does not match the workflow's declared variables", details=found
            )
        if outcome == "unparsed":
            pinned, document = found
            return await self._create(
                pinned, engine.definition(pinned["pk"], document), options, actor=actor
            )
        return self._started(found), True

    async def _already_started(self, key: str | None) -> tuple[str, bool]:
        """An insert hit the unique idempotency key: the execution a concurrent start
        with the same key created (or the error, if that was not it)."""
        if key:
            existing = await self.engine.journal.run(
                lambda c: store.find_by_idempotency_key(c, key)
            )
            if existing:
                return existing, False
        raise Conflict("the execution could not be created; try again")

    async def _create(
        self,
        pinned: Mapping[str, Any],
        definition: Definition,
        options: StartOptions,
        *,
        actor: str | None,
        metadata: Mapping[str, Any] | None = None,
    ) -> tuple[str, bool]:
        """Insert a new execution (with its start nodes ready) and start driving it."""
        prepared = self._prepare(pinned, definition, options, actor=actor, metadata=metadata)
        try:
            await self.engine.journal.run(prepared.insert)
        except IntegrityError:
            return await self._already_started(options.idempotency_key)
        return self._started(prepared), True

    def _started(self, prepared: _Prepared) -> str:
        if prepared.delayed:
            self.engine.wake()
        else:
            self.engine.adopt_created(prepared.row, prepared.runs, prepared.definition)
        return str(prepared.row["id"])

    def _prepare(
        self,
        pinned: Mapping[str, Any],
        definition: Definition,
        options: StartOptions,
        *,
        actor: str | None,
        metadata: Mapping[str, Any] | None = None,
        checked: bool = False,
    ) -> _Prepared:
        """The rows of a new execution (raises InvalidInput for input that does not
        match the declared variables, unless ``checked``). Runs on the event loop or the
        writer thread."""
        if not checked and (metadata is None or "body" not in metadata):
            problems = check_input(definition, options.input)
            if problems:
                raise InvalidInput(
                    "the input does not match the workflow's declared variables",
                    details=problems,
                )
        priority = PRIORITIES[options.priority or definition.config.priority]
        now = utcnow()
        begins = max(now + timedelta(seconds=options.delay), options.start_at or now)
        delayed = begins > now
        execution_id = new_id()
        timeout = definition.config.timeout or self.default_timeout
        runs = [
            Run(new_id(), node_id, 0, 1, "ready", ready_at=begins).row(execution_id)
            for node_id in Routing(definition.graph).start_nodes()
        ]
        row = {
            "id": execution_id,
            "workflow_id": pinned["workflow_id"],
            "workflow_version": pinned["version"],
            "definition_pk": pinned["pk"],
            "status": "pending" if delayed else "running",
            "priority": priority,
            "input": options.input,
            "overrides": {},
            "errors": [],
            "context_metadata": dict(metadata or {}),
            "owner": options.owner or actor,
            "triggered_by": options.triggered_by or actor,
            "parent_execution_id": options.parent_execution,
            "parent_node_id": options.parent_node,
            "restarted_from": options.restarted_from,
            "idempotency_key": options.idempotency_key,
            "created_at": now,
            "updated_at": now,
            "not_before": begins if delayed else None,
            "started_at": None if delayed else now,
            "deadline_at": begins + timedelta(seconds=timeout),
            "next_wake_at": begins if delayed else None,
            "lease_owner": None if delayed else self.engine.worker_id,
            "lease_until": None if delayed else now + LEASE,
        }
        ops = Ops(execution_id)
        ops.event(
            "execution.created",
            None,
            {
                "workflow_version": pinned["version"],
                "delay_until": begins.isoformat() if delayed else None,
                "triggered_by": row["triggered_by"],
                "restarted_from": options.restarted_from,
            },
            actor=actor,
        )
        if not delayed:
            ops.event("execution.started", None, {})
        return _Prepared(row, runs, ops, definition, delayed)

    async def start_child(
        self,
        *,
        parent_execution_id: str,
        parent_node_id: str,
        key: str,
        index: int,
        label: str | None,
        input: Mapping[str, Any],
        workflow_id: str | None,
        version: str | None,
        body: Mapping[str, Any] | None,
        body_key: str | None,
    ) -> str:
        """Start (or find, by ``key``) a child execution of a node (see
        ``server.engine.children``); its id."""
        journal = self.engine.journal
        existing = await journal.run(lambda c: store.find_by_idempotency_key(c, key))
        if existing:
            return existing
        parent = self.engine.runners.get(parent_execution_id)
        if parent is None:
            raise Conflict(f"execution {parent_execution_id} is not driven by this process")
        depth = int((parent.row.get("context_metadata") or {}).get("depth") or 0) + 1
        if depth > self.max_child_depth:
            raise InvalidInput(
                f"child executions would nest {depth} deep; the limit is "
                f"{self.max_child_depth} (setting limits.max_depth) — does a workflow start "
                "itself through sub_workflow, loop or parallel?"
            )
        metadata: dict[str, Any] = {"index": index, "label": label, "depth": depth}
        if body is not None:
            pinned: Mapping[str, Any] = {
                "workflow_id": parent.row["workflow_id"],
                "version": parent.row["workflow_version"],
                "pk": parent.row["definition_pk"],
            }
            inherited = parent.scope.public_variables()
            metadata.update(
                body_key=body_key,
                body=dict(body),
                inherited=sorted(name for name in inherited if name not in input),
            )
            definition = self.engine.definition_for(pinned["pk"], {}, metadata)
            child_input = {**inherited, **input}
        else:
            if workflow_id is None:
                raise InvalidInput("a child needs a workflow_id or an inline body")
            pinned, definition = await self._pinned(workflow_id, version)
            problems = check_input(definition, input)
            if problems:
                raise InvalidInput(
                    f"the input for workflow {workflow_id!r} does not match its declared "
                    "variables: " + "; ".join(f"{p.path}: {p.message}" for p in problems),
                    details=problems,
                )
            child_input = dict(input)
        options = StartOptions(
            input=child_input,
            priority=PRIORITY_NAMES.get(parent.priority),
            owner=parent.row["owner"],
            # whoever started the parent started its children too (four eyes: SPEC §4);
            # the link to the parent is parent_execution_id
            triggered_by=parent.row["triggered_by"],
            parent_execution=parent_execution_id,
            parent_node=parent_node_id,
            idempotency_key=key,
        )
        execution_id, _ = await self._create(
            pinned, definition, options, actor=None, metadata=metadata
        )
        return execution_id

    async def cancel_quietly(self, execution_id: str, *, actor: str) -> None:
        """Cancel an execution unless it has ended meanwhile (children of an ended node)."""
        with contextlib.suppress(InvalidTransition, NotFound, Conflict):
            await self.control(execution_id, "cancel", actor=actor)

    async def _pinned(
        self, workflow_id: str, version: str | None
    ) -> tuple[Mapping[str, Any], Definition]:
        """The version to run and its parsed definition (read once per version)."""
        engine = self.engine

        def find(connection: Any) -> tuple[Mapping[str, Any] | None, dict[str, Any] | None]:
            row = store.pinned_version(connection, workflow_id, version)
            if row is None or engine.has_definition(row["pk"]):
                return row, None
            return row, store.version_document(connection, row["pk"])

        row, document = await engine.journal.run(find)
        if row is None:
            # Let the registry say precisely what is missing (workflow, version, active one).
            await self.registry.pinned(workflow_id, version)
            raise NotFound(f"no runnable version of workflow {workflow_id!r}")  # pragma: no cover
        return row, engine.definition(row["pk"], document or {})

    async def control(
        self, execution_id: str, action: str, *, actor: str | None = None, **options: Any
    ) -> None:
        """Apply a control action (SPEC §5) through the lease holder."""
        if action not in CONTROL_ACTIONS:
            raise InvalidInput(f"unknown action {action!r}; known: {', '.join(CONTROL_ACTIONS)}")
        for _ in range(5):
            runner = await self._lease(execution_id)
            if runner.released:
                continue  # it finished and let go between our lease and the action
            await runner.control(action, actor, **options)
            return
        raise Conflict(f"execution {execution_id} is changing too fast; try again")

    async def _lease(self, execution_id: str) -> Runner:
        runner = self.engine.runners.get(execution_id)
        if runner is not None:
            return runner
        now = utcnow()
        worker = self.engine.worker_id
        leased = await self.engine.journal.run(
            lambda c: store.try_lease(c, execution_id, worker, now, now + LEASE)
        )
        if not leased:
            exists = await self.engine.journal.run(
                lambda c: store.load(c, execution_id) is not None
            )
            if not exists:
                raise NotFound(f"no execution with id {execution_id!r}")
            raise Conflict(
                f"execution {execution_id} is being driven by another server process; "
                "try again shortly"
            )
        runner = await self.engine.adopt(execution_id)
        if runner is None:  # pragma: no cover - the lease proved it exists
            raise NotFound(f"no execution with id {execution_id!r}")
        return runner

    async def restart(
        self, execution_id: str, *, version: str | None, actor: str | None = None
    ) -> str:
        """A new execution with the same input, linked to the old one.

        ``version``: absent → the old execution's pinned version; ``"latest"`` → the
        newest active version; anything else → that version.
        """
        found = await self.engine.journal.run(lambda c: store.load(c, execution_id))
        if found is None:
            raise NotFound(f"no execution with id {execution_id!r}")
        row = found[0]
        if version == "latest":
            chosen: str | None = None
        elif version is None:
            chosen = row["workflow_version"]
        else:
            chosen = version
        new_execution, _ = await self.start(
            row["workflow_id"],
            StartOptions(
                input=dict(row["input"] or {}),
                version=chosen,
                priority=PRIORITY_NAMES.get(row["priority"]),
                owner=row["owner"],
                # who restarted it started it (four eyes); the link is restarted_from
                triggered_by=actor or row["triggered_by"],
                restarted_from=execution_id,
            ),
            actor=actor,
        )
        ops = Ops(execution_id)
        ops.event("execution.restarted", None, {"new_execution_id": new_execution}, actor=actor)
        await self.engine.journal.run(ops.apply)
        return new_execution


#: Keys the server makes for starts of its own (cron fires, hooks, child executions).
RESERVED_KEY_MESSAGE = (
    "keys starting with 'cron:' or 'hook:', or containing '~', are the server's own "
    "(scheduled fires, webhook deliveries, child executions); choose another key"
)


def reserved_key(key: str) -> bool:
    """Whether a caller's idempotency key could collide with one the server makes."""
    return key.startswith(("cron:", "hook:")) or "~" in key


def check_start_body(body: dict[str, Any]) -> StartOptions:
    """Parse the body of ``POST …/execute`` into options; every problem at once (422)."""
    problems = []
    allowed = {
        "input",
        "version",
        "priority",
        "owner",
        "triggered_by",
        "parent_execution",
        "delay",
        "start_at",
        "idempotency_key",
    }
    for name in sorted(set(body) - allowed):
        problems.append(Problem(f"/{name}", f"unknown field; known: {', '.join(sorted(allowed))}"))
    data = body.get("input", {})
    if not isinstance(data, dict):
        problems.append(Problem("/input", "must be a JSON object of variable values"))
    priority = body.get("priority")
    if priority is not None and priority not in PRIORITIES:
        problems.append(Problem("/priority", f"one of: {', '.join(PRIORITIES)}"))
    delay = body.get("delay", 0)
    if (
        isinstance(delay, bool)
        or not isinstance(delay, int | float)
        or not 0 <= delay <= 366 * 86400
    ):
        problems.append(Problem("/delay", "a number of seconds between 0 and one year"))
        delay = 0
    start_at = None
    if body.get("start_at") is not None:
        try:
            start_at = datetime.fromisoformat(str(body["start_at"]))
            if start_at.tzinfo is None or start_at - utcnow() > MAX_START_DELAY:
                raise ValueError
        except ValueError:
            problems.append(
                Problem(
                    "/start_at",
                    "an ISO-8601 timestamp with a timezone, within a year (2027-01-01T09:00:00Z)",
                )
            )
    texts = {}
    for name in ("version", "owner", "triggered_by", "parent_execution", "idempotency_key"):
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            problems.append(Problem(f"/{name}", "must be text of at most 255 characters"))
        else:
            texts[name] = value
    key = texts.get("idempotency_key")
    if key and reserved_key(key):
        problems.append(Problem("/idempotency_key", RESERVED_KEY_MESSAGE))
    if problems:
        raise InvalidInput("the start request is invalid", details=problems)
    return StartOptions(
        input=data, priority=priority, delay=float(delay), start_at=start_at, **texts
    )
