"""The database schema, as SQLAlchemy 2 mapped classes.

Designed for the whole product, not only for what runs today: the registry uses the
``workflows``/``workflow_versions`` tables; executions, node runs, events, waits, human
tasks, identities, secrets, audit, idempotency records and trigger fires are laid out so
that the engine can claim work across processes (leases, ``SKIP LOCKED`` on PostgreSQL)
and every list filter of SPEC §6 has an index to use. Columns are portable between
SQLite and PostgreSQL; JSON is JSONB on PostgreSQL.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: ``None`` is SQL NULL (not JSON null), so "IS NULL" means "not set" on both backends.
JSONType = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
# SQLite has no 64-bit autoincrement type other than INTEGER PRIMARY KEY.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def new_id() -> str:
    """Random, never sequential (object ids must not be guessable)."""
    return str(uuid.uuid4())


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType, Any: JSONType}


# --- definitions -----------------------------------------------------------------------


class WorkflowRow(Base):
    """One workflow id; its columns mirror the newest version so lists filter in SQL."""

    __tablename__ = "workflows"

    pk: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workflow_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(200))
    owner: Mapped[str | None] = mapped_column(String(200))
    tags: Mapped[Any] = mapped_column(default=list)
    latest_version: Mapped[str] = mapped_column(String(64))
    version_count: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200))
    deleted_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        # A deleted workflow keeps its versions (executions pin them) and frees its id.
        Index(
            "uq_workflows_live_id",
            "workflow_id",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("ix_workflows_status", "status"),
        Index("ix_workflows_category", "category"),
        Index("ix_workflows_owner", "owner"),
        Index("ix_workflows_updated_at", "updated_at"),
        Index("ix_workflows_name", "name"),
    )


class WorkflowTagRow(Base):
    """Tags of a workflow's newest version, one row each, for the ``tag`` filter."""

    __tablename__ = "workflow_tags"

    workflow_pk: Mapped[str] = mapped_column(
        ForeignKey("workflows.pk", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(200), primary_key=True)

    __table_args__ = (Index("ix_workflow_tags_tag", "tag"),)


class WorkflowVersionRow(Base):
    """One immutable version of a definition (only ``status`` changes over its life)."""

    __tablename__ = "workflow_versions"

    pk: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workflow_pk: Mapped[str] = mapped_column(ForeignKey("workflows.pk", ondelete="CASCADE"))
    workflow_id: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    version_key: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    document: Mapped[dict[str, Any]] = mapped_column()
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        UniqueConstraint("workflow_pk", "version"),
        Index("ix_workflow_versions_workflow_id_status", "workflow_id", "status"),
        Index("ix_workflow_versions_workflow_pk_version_key", "workflow_pk", "version_key"),
    )


# --- executions ------------------------------------------------------------------------


class ExecutionRow(Base):
    """One run of one pinned definition version; the source of truth for its state."""

    __tablename__ = "executions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workflow_id: Mapped[str] = mapped_column(String(128))
    workflow_version: Mapped[str] = mapped_column(String(64))
    definition_pk: Mapped[str] = mapped_column(ForeignKey("workflow_versions.pk"))
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, default=1)
    input: Mapped[Any] = mapped_column(default=dict)
    #: input patches given with "rerun from a node", applied over ``input`` in order.
    overrides: Mapped[Any] = mapped_column(default=dict)
    output: Mapped[Any | None] = mapped_column()
    error: Mapped[Any | None] = mapped_column()
    errors: Mapped[Any] = mapped_column(default=list)
    current_node: Mapped[str | None] = mapped_column(String(128))
    context_metadata: Mapped[Any] = mapped_column(default=dict)
    owner: Mapped[str | None] = mapped_column(String(200))
    triggered_by: Mapped[str | None] = mapped_column(String(200))
    parent_execution_id: Mapped[str | None] = mapped_column(
        ForeignKey("executions.id", ondelete="SET NULL")
    )
    parent_node_id: Mapped[str | None] = mapped_column(String(128))
    restarted_from: Mapped[str | None] = mapped_column(String(36))
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    not_before: Mapped[datetime | None] = mapped_column()
    deadline_at: Mapped[datetime | None] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column()
    completed_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: when a process should next pick this execution up (ready work, a due timer, a
    #: deadline); NULL while it is driven in memory or waits only on the outside world.
    next_wake_at: Mapped[datetime | None] = mapped_column()
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        Index("ix_executions_status_priority_created_at", "status", "priority", "created_at"),
        Index("ix_executions_next_wake_at", "next_wake_at"),
        Index("ix_executions_workflow_id_created_at", "workflow_id", "created_at"),
        Index("ix_executions_owner", "owner"),
        Index("ix_executions_started_at", "started_at"),
        Index("ix_executions_parent_execution_id", "parent_execution_id"),
        Index("ix_executions_not_before", "not_before"),
        # the dashboard's list: newest first, optionally of one status (migration 0004)
        Index("ix_executions_created_at", "created_at"),
        Index("ix_executions_status_created_at", "status", "created_at"),
    )


class NodeRunRow(Base):
    """One attempt of one node in one execution (rerun bumps ``generation``)."""

    __tablename__ = "node_runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    execution_id: Mapped[str] = mapped_column(ForeignKey("executions.id", ondelete="CASCADE"))
    node_id: Mapped[str] = mapped_column(String(128))
    generation: Mapped[int] = mapped_column(Integer, default=0)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16))
    input: Mapped[Any | None] = mapped_column()
    output: Mapped[Any | None] = mapped_column()
    error: Mapped[Any | None] = mapped_column()
    logs: Mapped[Any] = mapped_column(default=list)
    branch: Mapped[str | None] = mapped_column(String(200))
    #: edge ids this run took, recorded with its result so routing replays exactly.
    taken_edges: Mapped[Any | None] = mapped_column()
    #: completion order within the execution (the scope is rebuilt in this order).
    seq: Mapped[int | None] = mapped_column(Integer)
    #: "node" or "compensation" (a saga step run for this node at rollback).
    kind: Mapped[str] = mapped_column(String(16), default="node")
    #: replaced by a retry of the execution or a rerun; kept for the history.
    superseded: Mapped[bool] = mapped_column(Boolean, default=False)
    ready_at: Mapped[datetime | None] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column()
    completed_at: Mapped[datetime | None] = mapped_column()
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        UniqueConstraint("execution_id", "node_id", "kind", "generation", "attempt"),
        Index("ix_node_runs_execution_id_status", "execution_id", "status"),
    )


class ExecutionEventRow(Base):
    """Append-only trace of an execution (the dashboard's timeline)."""

    __tablename__ = "execution_events"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    execution_id: Mapped[str] = mapped_column(ForeignKey("executions.id", ondelete="CASCADE"))
    node_id: Mapped[str | None] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[Any] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_execution_events_execution_id_id", "execution_id", "id"),)


class WaitRow(Base):
    """Something an execution waits for, stored as data (never a sleeping coroutine)."""

    __tablename__ = "waits"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    execution_id: Mapped[str] = mapped_column(ForeignKey("executions.id", ondelete="CASCADE"))
    node_id: Mapped[str | None] = mapped_column(String(128))
    node_run_id: Mapped[str | None] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(16))  # timer|human_task|callback|retry|delay
    due_at: Mapped[datetime | None] = mapped_column()
    token: Mapped[str | None] = mapped_column(String(100), unique=True)
    task_id: Mapped[str | None] = mapped_column(String(36))
    data: Mapped[Any] = mapped_column(default=dict)
    #: what the outside world answered (callback body, human decision…).
    resolution: Mapped[Any | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column()

    __table_args__ = (
        Index("ix_waits_resolved_at_due_at", "resolved_at", "due_at"),
        Index("ix_waits_execution_id", "execution_id"),
    )


class HumanTaskRow(Base):
    """An item in the approvals inbox."""

    __tablename__ = "human_tasks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    execution_id: Mapped[str] = mapped_column(ForeignKey("executions.id", ondelete="CASCADE"))
    node_id: Mapped[str] = mapped_column(String(128))
    node_run_id: Mapped[str | None] = mapped_column(String(36))
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    assignee: Mapped[str | None] = mapped_column(String(200))
    candidate_roles: Mapped[Any] = mapped_column(default=list)
    form: Mapped[Any] = mapped_column(default=list)
    outcomes: Mapped[Any] = mapped_column(default=list)
    required_approvals: Mapped[int] = mapped_column(Integer, default=1)
    allow_self_approval: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16))  # open|completed|cancelled|expired
    outcome: Mapped[str | None] = mapped_column(String(200))
    result: Mapped[Any | None] = mapped_column()
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    completed_by: Mapped[str | None] = mapped_column(String(200))
    completed_at: Mapped[datetime | None] = mapped_column()
    due_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    row_version: Mapped[int] = mapped_column(Integer, default=0)
    #: the node run's idempotency key: a re-run after a crash finds its task again.
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    #: what happened to the task besides decisions: claims, reassignments, escalation…
    history: Mapped[Any] = mapped_column(default=list, server_default=text("'[]'"))

    __table_args__ = (
        Index("ix_human_tasks_status_assignee", "status", "assignee"),
        Index("ix_human_tasks_status_due_at", "status", "due_at"),
        Index("ix_human_tasks_execution_id", "execution_id"),
    )


class TaskDecisionRow(Base):
    """One person's decision on a human task (N-of-M approvals keep several)."""

    __tablename__ = "task_decisions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    task_id: Mapped[str] = mapped_column(ForeignKey("human_tasks.id", ondelete="CASCADE"))
    decided_by: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[Any] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("task_id", "decided_by"),)


# --- identities and secrets ------------------------------------------------------------


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column()


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200))
    last_used_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class SessionRow(Base):
    """A dashboard sign-in; the cookie carries a token whose hash is the key."""

    __tablename__ = "sessions"

    token_hash: Mapped[str] = mapped_column(String(128), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


class SecretRow(Base):
    __tablename__ = "secrets"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(200))


class AuditRow(Base):
    """Global audit log: definition changes, logins, key and user management."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(60))
    target_type: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[Any] = mapped_column(default=dict)
    remote_addr: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_actor", "actor"),
        Index("ix_audit_log_action", "action"),
    )


# --- exactly-once bookkeeping ----------------------------------------------------------


class IdempotencyRow(Base):
    """The first result of a mutating request, replayed for a repeat with the same key."""

    __tablename__ = "idempotency_keys"

    scope: Mapped[str] = mapped_column(String(300), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[Any | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TriggerFireRow(Base):
    """One cron fire; the unique key makes a second start for the same fire impossible."""

    __tablename__ = "trigger_fires"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workflow_id: Mapped[str] = mapped_column(String(128))
    trigger_id: Mapped[str] = mapped_column(String(128))
    scheduled_for: Mapped[datetime] = mapped_column()
    execution_id: Mapped[str | None] = mapped_column(String(36))
    fired_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: "scheduled" (fired on time) or "catch_up" (missed while no server ran the trigger,
    #: started by its misfire policy).
    kind: Mapped[str] = mapped_column(
        String(16), default="scheduled", server_default=text("'scheduled'")
    )
    #: why the fire started nothing (input refused, workflow gone, …); NULL otherwise.
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("workflow_id", "trigger_id", "scheduled_for"),
        # Claimed fires whose start is not recorded yet (a process died in between).
        Index(
            "ix_trigger_fires_unstarted",
            "fired_at",
            sqlite_where=text("execution_id IS NULL AND error IS NULL"),
            postgresql_where=text("execution_id IS NULL AND error IS NULL"),
        ),
    )


class WebhookReceiptRow(Base):
    """A received ``webhook-id``, so a redelivery is acknowledged without a second effect."""

    __tablename__ = "webhook_receipts"

    scope: Mapped[str] = mapped_column(String(300), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    result: Mapped[Any | None] = mapped_column()
