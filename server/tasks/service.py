"""The approvals inbox service: open, list, claim, reassign, complete and time out tasks.

Every change runs as one unit on the engine's writer (``engine.journal.run``), so it is
atomic with the engine's own state: a completion checks the task, the actor's right to
decide (:func:`server.identity.may_decide`) and the form data, records the decision,
marks the task completed with a compare-and-set on ``row_version`` and answers the
node's wait (``store.runs.answer_wait``) in one transaction — two people completing at
once get exactly one success and one 409, and the execution moves on exactly once.
After the commit the engine is told (``engine.wait_answered``) and resumes the node.

Decisions where the SPEC is silent are documented in ``docs/nodes/human_task.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from processors.human_task import (
    ROLE_PREFIX,
    TIMEOUT_ACTOR,
    TaskSpec,
    TaskState,
    TimeoutPolicy,
)
from server.config import Settings
from server.engine.engine import Engine
from server.errors import Conflict, FlowyardError, Forbidden, InvalidInput, NotFound, Problem
from server.identity import NAME, Actor, may_decide, require_authenticated
from server.keys import derive, load_master_key
from server.store import runs
from server.store.database import Database
from server.store.models import new_id, utcnow
from server.tasks import store
from server.tasks.forms import check_data
from server.tasks.links import PURPOSE as LINK_PURPOSE
from server.tasks.links import TaskLinks
from server.tasks.store import at_iso, history_entry

log = logging.getLogger("flowyard.tasks")

COMMENT_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class TaskFacts:
    """What the permission rule looks at (``server.identity.DecidableTask``)."""

    assignee: str | None
    candidate_roles: Collection[str]
    claimed_by: str | None
    allow_self_approval: bool
    started_by: Collection[str]


@dataclass(frozen=True, slots=True)
class Decision:
    """A completion request: ``POST /api/v1/tasks/{id}/complete``."""

    outcome: str
    data: Any
    comment: str


def facts(row: Mapping[str, Any]) -> TaskFacts:
    started_by = {row.get("execution_owner"), row.get("execution_triggered_by")} - {None, ""}
    return TaskFacts(
        assignee=row["assignee"],
        candidate_roles=tuple(row["candidate_roles"] or ()),
        claimed_by=row["claimed_by"],
        allow_self_approval=bool(row["allow_self_approval"]),
        started_by=frozenset(str(s) for s in started_by),
    )


def parse_target(target: str) -> tuple[str | None, list[str] | None]:
    """``"alice"`` → (assignee, no role change); ``"role:finance"`` → (no assignee, [role]).

    Raises :class:`InvalidInput` for a name that is not a user or role name.
    """
    name = target.strip()
    if name.startswith(ROLE_PREFIX):
        role = name[len(ROLE_PREFIX) :].strip()
        if not NAME.fullmatch(role):
            raise InvalidInput(
                "invalid role name", details=[Problem("/assignee", f"{role!r} is not a role name")]
            )
        return None, [role]
    if not NAME.fullmatch(name):
        raise InvalidInput(
            "invalid user name",
            details=[
                Problem("/assignee", "a user name (letters, digits, _ . @ + : -) or role:<name>")
            ],
        )
    return name, None


def task_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """A task as the API shows it (lists and the single task)."""
    return {
        "id": row["id"],
        "execution_id": row["execution_id"],
        "workflow_id": row.get("workflow_id"),
        "workflow_version": row.get("workflow_version"),
        "node_id": row["node_id"],
        "title": row["title"],
        "description": row["description"],
        "status": row.get("effective_status", row["status"]),
        "assignee": row["assignee"],
        "candidate_roles": list(row["candidate_roles"] or []),
        "claimed_by": row["claimed_by"],
        "form": list(row["form"] or []),
        "outcomes": list(row["outcomes"] or []),
        "required_approvals": row["required_approvals"],
        "allow_self_approval": bool(row["allow_self_approval"]),
        "outcome": row["outcome"],
        "result": row["result"],
        "completed_by": row["completed_by"],
        "completed_at": at_iso(row["completed_at"]),
        "due_at": at_iso(row["due_at"]),
        "created_at": at_iso(row["created_at"]),
    }


def _state(row: Mapping[str, Any], *, created: bool = False, detail: str = "") -> TaskState:
    return TaskState(
        task_id=row["id"],
        status=row["status"],
        due_at=row["due_at"],
        result=row.get("result"),
        created=created,
        detail=detail,
    )


def _event(
    row: Mapping[str, Any], type_: str, actor: str | None, at: datetime, **data: Any
) -> dict[str, Any]:
    return {
        "execution_id": row["execution_id"],
        "node_id": row["node_id"],
        "type": type_,
        "actor": actor,
        "data": {"task_id": row["id"], **data},
        "at": at,
    }


def _require_open(row: Mapping[str, Any]) -> None:
    status = row["effective_status"]
    if status != "open":
        why = f" (its execution is {row['execution_status']})" if row["status"] == "open" else ""
        raise Conflict(f"task {row['id']} is {status}{why}; it can no longer be changed")


class HumanTasks:
    """The approvals inbox (``services["tasks"]``); see the module docstring."""

    def __init__(self, database: Database, engine: Engine, links: TaskLinks) -> None:
        self.database = database
        self.engine = engine
        self.links = links

    @classmethod
    def from_settings(cls, database: Database, engine: Engine, settings: Settings) -> HumanTasks:
        """The inbox of this server; its link key is read (or made) on first use."""
        data_dir = settings.server.data_dir
        links = TaskLinks(
            lambda: derive(load_master_key(data_dir), LINK_PURPOSE),
            settings.server.resolved_public_url,
        )
        return cls(database, engine, links)

    # --- what a human_task node asks -----------------------------------------------------

    async def open_task(self, spec: TaskSpec) -> TaskState:
        """Open the task of a node run, or find the one it opened before a crash."""
        now = utcnow()

        def work(conn: Connection) -> TaskState:
            found = store.latest_for_key(
                conn, spec.execution_id, spec.node_id, spec.idempotency_key
            )
            if found is not None and found["status"] in ("open", "completed"):
                return _state(found)
            for stale in store.open_for_node(conn, spec.execution_id, spec.node_id):
                # The node runs again under a new key (a rerun): its old task is moot.
                store.compare_and_set(
                    conn,
                    stale["id"],
                    stale["row_version"],
                    {
                        "status": "cancelled",
                        "history": [
                            *stale["history"],
                            history_entry("superseded", None, now, by=spec.idempotency_key),
                        ],
                    },
                )
            values = {
                "id": new_id(),
                "execution_id": spec.execution_id,
                "node_id": spec.node_id,
                "idempotency_key": spec.idempotency_key,
                "title": spec.title,
                "description": spec.description,
                "assignee": spec.assignee,
                "candidate_roles": list(spec.candidate_roles),
                "form": [dict(f) for f in spec.form],
                "outcomes": list(spec.outcomes),
                "required_approvals": spec.required_approvals,
                "allow_self_approval": spec.allow_self_approval,
                "status": "open",
                "due_at": spec.due_at,
                "created_at": now,
                "row_version": 0,
                "history": [history_entry("opened", None, now, assignee=spec.assignee)],
            }
            store.insert_task(conn, values)
            runs.insert_events(
                conn,
                [
                    _event(
                        values,
                        "task.opened",
                        None,
                        now,
                        assignee=spec.assignee,
                        candidate_roles=list(spec.candidate_roles),
                    )
                ],
            )
            return _state(values, created=True)

        return await self.engine.journal.run(work)

    async def find_task(
        self, execution_id: str, node_id: str, idempotency_key: str
    ) -> TaskState | None:
        def work(conn: Connection) -> TaskState | None:
            found = store.latest_for_key(conn, execution_id, node_id, idempotency_key)
            return _state(found) if found else None

        return await self.engine.journal.run(work)

    async def time_out(self, task_id: str, policy: TimeoutPolicy) -> TaskState:
        """The node's wait came due without an answer: apply ``on_timeout``.

        A task decided meanwhile is returned completed (the person won the race); a task
        whose due time has moved later (an escalation recorded before a crash) is
        returned open with that time, to wait again.
        """
        now = utcnow()

        def work(conn: Connection) -> TaskState:
            row = store.load(conn, task_id, lock=True)
            if row is None:
                return TaskState(task_id, "cancelled", detail=f"task {task_id} is gone")
            if row["status"] == "completed" or row["effective_status"] != "open":
                return _state(row, detail=f"task {task_id} is {row['effective_status']}")
            if row["due_at"] is not None and row["due_at"] > now:
                return _state(row)
            escalated = any(h.get("action") == "escalated" for h in row["history"])
            if policy.action == "escalate" and policy.escalate_to and not escalated:
                return self._escalate(conn, row, policy, now)
            if policy.action in row["outcomes"]:
                return self._apply_outcome(conn, row, policy.action, now)
            return self._expire(conn, row, now, after_escalation=escalated)

        return await self.engine.journal.run(work)

    def _escalate(
        self, conn: Connection, row: dict[str, Any], policy: TimeoutPolicy, now: datetime
    ) -> TaskState:
        target = policy.escalate_to or ""
        try:
            assignee, roles = parse_target(target)
        except InvalidInput:
            return self._expire(
                conn, row, now, after_escalation=False, why=f"cannot escalate to {target!r}"
            )
        due_at = now + timedelta(seconds=policy.due_seconds) if policy.due_seconds else None
        values = {
            "assignee": assignee,
            "candidate_roles": roles if roles is not None else [],
            "claimed_by": None,
            "due_at": due_at,
            "history": [*row["history"], history_entry("escalated", None, now, to=target)],
        }
        if not store.compare_and_set(conn, row["id"], row["row_version"], values):
            raise Conflict(f"task {row['id']} changed while it was being escalated")
        # Close the wait that came due, so that a decision cannot land on it in the moment
        # before the node's new wait is recorded (it would be answered to nobody).
        wait = runs.open_wait(conn, execution_id=row["execution_id"], node_id=row["node_id"])
        if wait is not None and (wait["data"] or {}).get("task_id") == row["id"]:
            runs.resolve_waits(conn, [wait["id"]], now)
        runs.insert_events(conn, [_event(row, "task.escalated", None, now, to=target)])
        detail = f"task {row['id']} was not decided in time: escalated to {target}"
        return TaskState(row["id"], "open", due_at, detail=detail)

    def _apply_outcome(
        self, conn: Connection, row: dict[str, Any], outcome: str, now: datetime
    ) -> TaskState:
        decisions = store.decisions_of(conn, row["id"])
        comment = f"applied automatically: no decision by {at_iso(row['due_at'])}"
        data = {f["name"]: None for f in row["form"] or [] if isinstance(f, dict) and "name" in f}
        resolution = _resolution(row, outcome, data, comment, TIMEOUT_ACTOR, now, decisions)
        store.insert_decision(
            conn, _decision_row(row["id"], TIMEOUT_ACTOR, outcome, comment, {}, now)
        )
        if not store.compare_and_set(
            conn, row["id"], row["row_version"], _completion(resolution, now)
        ):
            raise Conflict(f"task {row['id']} changed while its timeout was applied")
        runs.insert_events(
            conn, [_event(row, "task.completed", TIMEOUT_ACTOR, now, outcome=outcome)]
        )
        return TaskState(row["id"], "completed", row["due_at"], result=resolution)

    def _expire(
        self,
        conn: Connection,
        row: dict[str, Any],
        now: datetime,
        *,
        after_escalation: bool,
        why: str = "",
    ) -> TaskState:
        values = {
            "status": "expired",
            "history": [*row["history"], history_entry("expired", None, now)],
        }
        if not store.compare_and_set(conn, row["id"], row["row_version"], values):
            raise Conflict(f"task {row['id']} changed while it was expiring")
        runs.insert_events(conn, [_event(row, "task.expired", None, now)])
        since = " (even after escalation)" if after_escalation else ""
        reason = f"; {why}" if why else ""
        detail = f"task {row['id']} was not decided by {at_iso(row['due_at'])}{since}{reason}"
        return TaskState(row["id"], "expired", row["due_at"], detail=detail)

    async def notify(
        self, task_id: str, *, to: Sequence[str], account: str | None, mail: Any
    ) -> str:
        """E-mail the task's notice; returns the line for the node's logs (never raises)."""
        async with self.database.reader() as session:
            loaded = await store.get(session, task_id)
            if loaded is None:
                return f"task notice not sent: task {task_id} is gone"
            row = loaded[0]
            recipients = [a for a in to if _is_address(a)]
            if not to and row["assignee"]:
                address = row["assignee"]
                if not _is_address(address):
                    address = await store.user_email(session, address) or ""
                recipients = [address] if _is_address(address) else []
        if not recipients:
            return (
                "task notice not sent: no e-mail address (the assignee is not an address and "
                "has no user e-mail; set notify.to)"
            )
        notices = sum(1 for h in row["history"] if h.get("action") == "notified")
        message = self._notice(row, recipients, notices)
        try:
            accepted = await mail.send(message, account=account)
        except Exception as error:  # a notice never fails the node: it is logged instead
            shown = error.message if isinstance(error, FlowyardError) else type(error).__name__
            log.warning(
                "task notice not sent",
                extra={"action": "tasks.notice_failed", "task_id": task_id, "error": shown},
            )
            return f"task notice not sent: {shown}"
        now = utcnow()
        sent_to = list(accepted) if accepted else recipients

        def record(conn: Connection) -> None:
            current = store.load(conn, task_id)
            if current is not None:
                entry = history_entry("notified", None, now, to=sent_to)
                store.compare_and_set(
                    conn, task_id, current["row_version"], {"history": [*current["history"], entry]}
                )

        await self.engine.journal.run(record)
        return f"task notice sent to {', '.join(sent_to)}"

    def _notice(self, row: Mapping[str, Any], recipients: list[str], number: int) -> EmailMessage:
        now = utcnow()
        expires = self.links.expiry(row["due_at"], now)
        title = " ".join(str(row["title"]).split())
        lines = [title, ""]
        if row["description"]:
            lines += [str(row["description"]), ""]
        if row["due_at"] is not None:
            lines.append(f"Due: {at_iso(row['due_at'])}")
        lines += [
            f"Workflow: {row.get('workflow_id')} (execution {row['execution_id']})",
            "",
            f"Open the task: {self.links.url(row['id'], expires)}",
        ]
        lines += [
            f"{outcome}: {self.links.url(row['id'], expires, outcome=outcome)}"
            for outcome in row["outcomes"] or []
        ]
        lines += [
            "",
            "The links open the task page; nothing is decided until you confirm there.",
        ]
        message = EmailMessage()
        message["To"] = ", ".join(recipients)
        message["Subject"] = f"Task: {title}"[:300]
        message["Message-ID"] = f"<task-{row['id']}-{number}@flowyard>"
        message["Date"] = format_datetime(now)
        message.set_content("\n".join(lines))
        return message

    # --- what the API asks ---------------------------------------------------------------

    async def search(self, where: store.TaskFilter) -> dict[str, Any]:
        async with self.database.reader() as session:
            rows, total = await store.search(session, where)
        return {
            "tasks": [task_json(r) for r in rows],
            "total": total,
            "limit": where.limit,
            "offset": where.offset,
        }

    async def get(self, task_id: str, actor: Actor | None = None) -> dict[str, Any]:
        """The task with its decisions and history (and, for ``actor``, whether they
        may decide it and why not)."""
        async with self.database.reader() as session:
            loaded = await store.get(session, task_id)
        if loaded is None:
            raise NotFound(f"no task with id {task_id!r}")
        row, decisions = loaded
        document = task_json(row)
        document["decisions"] = store.decision_rows(decisions)
        document["approvals"] = sum(
            1 for d in decisions if row["outcomes"] and d["outcome"] == row["outcomes"][0]
        )
        document["history"] = list(row["history"] or [])
        if actor is not None:
            reason = may_decide(facts(row), actor)
            if reason is None and document["status"] != "open":
                reason = f"the task is {document['status']}"
            if reason is None and any(d["decided_by"] == actor.name for d in decisions):
                reason = "you have already decided this task"
            document["permission"] = {
                "actor": actor.name,
                "may_decide": reason is None,
                "reason": reason,
            }
        return document

    async def complete(self, task_id: str, decision: Decision, actor: Actor) -> dict[str, Any]:
        """Record ``actor``'s decision; complete the task once it is decided."""
        require_authenticated(actor)
        now = utcnow()

        def work(conn: Connection) -> tuple[str, str, dict[str, Any]] | str | None:
            row = store.load(conn, task_id, lock=True)
            if row is None:
                raise NotFound(f"no task with id {task_id!r}")
            _require_open(row)
            reason = may_decide(facts(row), actor)
            if reason is not None:
                raise Forbidden(reason)
            outcomes = list(row["outcomes"])
            if decision.outcome not in outcomes:
                raise InvalidInput(
                    "the outcome is not one of this task's outcomes",
                    details=[Problem("/outcome", f"must be one of: {', '.join(outcomes)}")],
                )
            data, problems = check_data(row["form"] or [], decision.data)
            if problems:
                raise InvalidInput("the form data is invalid", details=problems)
            previous = store.decisions_of(conn, task_id)
            mine = next((d for d in previous if d["decided_by"] == actor.name), None)
            if mine is not None:
                raise Conflict(
                    f"{actor.name!r} has already decided this task ({mine['outcome']} at "
                    f"{at_iso(mine['at'])}); it needs a different person"
                )
            wait = runs.open_wait(conn, execution_id=row["execution_id"], node_id=row["node_id"])
            if wait is None or (wait["data"] or {}).get("task_id") != task_id:
                return _not_awaited(conn, row, now)
            this = _decision_row(task_id, actor.name, decision.outcome, decision.comment, data, now)
            store.insert_decision(conn, this)
            decided = decision.outcome != outcomes[0] or (
                sum(1 for d in [*previous, this] if d["outcome"] == outcomes[0])
                >= row["required_approvals"]
            )
            event = _event(row, "task.decided", actor.name, now, outcome=decision.outcome)
            if not decided:
                if not store.compare_and_set(conn, task_id, row["row_version"], {}):
                    raise Conflict(f"task {task_id} changed meanwhile; load it and try again")
                runs.insert_events(conn, [event])
                return None
            resolution = _resolution(
                row, decision.outcome, data, decision.comment, actor.name, now, [*previous, this]
            )
            if not store.compare_and_set(
                conn, task_id, row["row_version"], _completion(resolution, now)
            ):
                raise Conflict(f"task {task_id} was completed by someone else meanwhile")
            if not runs.answer_wait(conn, wait["id"], resolution, now):
                raise Conflict(f"task {task_id} is no longer awaited; it was decided meanwhile")
            runs.insert_events(
                conn,
                [event, _event(row, "task.completed", actor.name, now, outcome=decision.outcome)],
            )
            return row["execution_id"], wait["id"], resolution

        try:
            answered = await self.engine.journal.run(work)
        except IntegrityError:
            raise Conflict(f"{actor.name!r} has already decided this task") from None
        if isinstance(answered, str):
            raise Conflict(answered)
        if answered is not None:
            self.engine.wait_answered(*answered)
        return await self.get(task_id, actor)

    async def claim(self, task_id: str, actor: Actor) -> dict[str, Any]:
        """``actor`` takes the task: it becomes its assignee, and theirs alone to decide
        (managers and admins excepted)."""
        require_authenticated(actor)
        now = utcnow()

        def work(conn: Connection) -> None:
            row = store.load(conn, task_id, lock=True)
            if row is None:
                raise NotFound(f"no task with id {task_id!r}")
            _require_open(row)
            if row["claimed_by"] == actor.name:
                return
            if row["claimed_by"]:
                raise Conflict(f"task {task_id} is already claimed by {row['claimed_by']!r}")
            if row["required_approvals"] > 1:
                raise Conflict(
                    f"task {task_id} needs {row['required_approvals']} people to approve it, "
                    "so no one person can claim it"
                )
            reason = may_decide(facts(row), actor)
            if reason is not None:
                raise Forbidden(reason)
            values = {
                "claimed_by": actor.name,
                "assignee": actor.name,
                "history": [*row["history"], history_entry("claimed", actor.name, now)],
            }
            if not store.compare_and_set(conn, task_id, row["row_version"], values):
                raise Conflict(f"task {task_id} changed meanwhile; load it and try again")
            runs.insert_events(conn, [_event(row, "task.claimed", actor.name, now)])

        await self.engine.journal.run(work)
        return await self.get(task_id, actor)

    async def reassign(self, task_id: str, target: str, actor: Actor) -> dict[str, Any]:
        """Give the task to another user, or (``role:<name>``) offer it to a role."""
        require_authenticated(actor)
        assignee, roles = parse_target(target)
        now = utcnow()

        def work(conn: Connection) -> None:
            row = store.load(conn, task_id, lock=True)
            if row is None:
                raise NotFound(f"no task with id {task_id!r}")
            _require_open(row)
            values: dict[str, Any] = {
                "assignee": assignee,
                "claimed_by": None,
                "history": [
                    *row["history"],
                    history_entry("reassigned", actor.name, now, to=target.strip()),
                ],
            }
            if roles is not None:
                values["candidate_roles"] = roles
            if not store.compare_and_set(conn, task_id, row["row_version"], values):
                raise Conflict(f"task {task_id} changed meanwhile; load it and try again")
            runs.insert_events(
                conn, [_event(row, "task.reassigned", actor.name, now, to=target.strip())]
            )

        await self.engine.journal.run(work)
        return await self.get(task_id, actor)

    async def open_link(
        self, task_id: str, expires: int, signature: str, outcome: str | None
    ) -> dict[str, Any]:
        """What a signed link shows: the task (read only — a link never decides)."""
        self.links.verify(task_id, expires, signature, utcnow())
        document = await self.get(task_id)
        document["link"] = {
            "expires_at": at_iso(datetime.fromtimestamp(expires, tz=utcnow().tzinfo)),
            "suggested_outcome": outcome if outcome in document["outcomes"] else None,
            "decide_with": f"POST /api/v1/tasks/{task_id}/complete",
        }
        return document


def _not_awaited(conn: Connection, row: Mapping[str, Any], now: datetime) -> str:
    """Why nobody awaits the task's decision (the message of a 409).

    While its node is being recorded or recovered that is a moment's matter; when the
    node has moved on without it (skipped, or rerun under another task), the task is
    closed as ``cancelled`` so that the inbox stops offering it.
    """
    status = store.node_status(conn, row["execution_id"], row["node_id"])
    if status in ("ready", "running", "waiting"):
        return (
            f"task {row['id']} is not awaiting a decision at this moment (its node is being "
            "recorded or recovered); try again in a moment"
        )
    entry = history_entry("abandoned", None, now, node_status=status)
    store.compare_and_set(
        conn,
        row["id"],
        row["row_version"],
        {"status": "cancelled", "history": [*row["history"], entry]},
    )
    return f"task {row['id']} is cancelled: its node no longer waits for it (it is {status})"


def _decision_row(
    task_id: str, by: str, outcome: str, comment: str, data: Mapping[str, Any], at: datetime
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "task_id": task_id,
        "decided_by": by,
        "outcome": outcome,
        "comment": comment,
        "data": dict(data),
        "at": at,
    }


def _resolution(
    row: Mapping[str, Any],
    outcome: str,
    data: Mapping[str, Any],
    comment: str,
    by: str,
    at: datetime,
    decisions: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The decision as the node's wait is answered with (and the task's ``result``)."""
    first = (row["outcomes"] or [None])[0]
    return {
        "task_id": row["id"],
        "outcome": outcome,
        "data": dict(data),
        "comment": comment,
        "completed_by": by,
        "completed_at": at_iso(at),
        "approvals": [
            {"by": d["decided_by"], "comment": d["comment"], "at": at_iso(d["at"])}
            for d in decisions
            if d["outcome"] == first
        ],
    }


def _completion(resolution: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    return {
        "status": "completed",
        "outcome": resolution["outcome"],
        "result": dict(resolution),
        "completed_by": resolution["completed_by"],
        "completed_at": at,
    }


def _is_address(text: str) -> bool:
    """Plausibly one e-mail address (and nothing that could break a header)."""
    return (
        0 < len(text) <= 320
        and text.count("@") == 1
        and not any(c in text for c in "\r\n,;<>\"' ")
        and not text.startswith("@")
        and not text.endswith("@")
    )
