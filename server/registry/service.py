"""The versioned registry of workflow definitions.

Versions are immutable: their content (everything but ``status``) never changes after
publishing, so an execution pinned to a version always runs what was approved.
``status`` follows a small lifecycle (draft → active ⇄ inactive → deprecated).
Every change is validated first (nothing invalid is stored), committed in one
transaction together with its audit row, and answered with the stored document.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.definitions.model import normalize_document
from server.definitions.validation import ValidationContext, ValidationReport, validate_definition
from server.errors import (
    Conflict,
    InvalidDefinition,
    InvalidInput,
    InvalidTransition,
    NotFound,
    Problem,
)
from server.registry.diff import diff_definitions
from server.registry.versions import SemVer
from server.store import definitions as store
from server.store.database import Database
from server.store.models import WorkflowRow, WorkflowVersionRow, utcnow

log = logging.getLogger("flowyard.registry")

STATUSES = ("draft", "active", "inactive", "deprecated")
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "draft": frozenset({"active", "inactive", "deprecated"}),
    "active": frozenset({"inactive", "deprecated"}),
    "inactive": frozenset({"active", "deprecated"}),
    "deprecated": frozenset(),
}


@dataclass(frozen=True, slots=True)
class Published:
    """The stored document, and whether this call created it (False: identical repeat)."""

    document: dict[str, Any]
    created: bool


@dataclass(frozen=True, slots=True)
class VersionInfo:
    version: str
    status: str
    created_at: datetime
    created_by: str | None


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int
    #: When each listed workflow last changed (by id): for the dashboard's list, which
    #: shows it; not part of the documents.
    updated_at: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PinnedVersion:
    """What an execution needs to start: the exact stored version it will run."""

    version_pk: str
    workflow_id: str
    version: str
    document: dict[str, Any]


def content_hash(document: Mapping[str, Any]) -> str:
    """Hash of everything but ``status``, so a status change is not a new version."""
    body = {k: v for k, v in document.items() if k != "status"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


#: Told the workflow id after a change committed (create, new version, status, delete),
#: so what follows the registry (trigger schedules) can follow at once.
Listener = Callable[[str], Awaitable[None]]
#: Asked, inside the publishing transaction, about a document that is becoming active;
#: raises a FlowyardError to refuse it (e.g. a webhook path another workflow uses).
Guard = Callable[[AsyncSession, Mapping[str, Any]], Awaitable[None]]


class WorkflowRegistry:
    """Publish, read, list, diff and retire workflow definitions."""

    def __init__(
        self, database: Database, validation_context: Callable[[], ValidationContext]
    ) -> None:
        self._database = database
        self._validation_context = validation_context
        self.listeners: list[Listener] = []
        self.guards: list[Guard] = []

    async def _changed(self, workflow_id: str) -> None:
        """Tell the listeners; the change is committed, so a failing listener is logged."""
        for listener in self.listeners:
            try:
                await listener(workflow_id)
            except Exception:
                log.exception(
                    "registry listener failed",
                    extra={"action": "registry.listener_failed", "workflow_id": workflow_id},
                )

    async def _guard(self, session: AsyncSession, document: Mapping[str, Any]) -> None:
        if document.get("status") == "active":
            for guard in self.guards:
                await guard(session, document)

    async def validate(self, document: object) -> ValidationReport:
        """Validate off the event loop: a 1,000-node definition takes a while."""
        return await asyncio.to_thread(validate_definition, document, self._validation_context())

    async def create(self, document: object, *, actor: str | None = None) -> Published:
        """``POST``: a new workflow or a new version of one; identical repeats are no-ops."""
        prepared = await self._prepared(document)
        for attempt in range(2):
            try:
                async with self._database.session() as session, session.begin():
                    published = await self._create_txn(session, prepared, actor)
                if published.created:
                    await self._changed(prepared["id"])
                return published
            except IntegrityError:
                # A concurrent request published the same id/version first; the second
                # pass sees its row and answers as for a repeat (or a conflict).
                if attempt:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _create_txn(
        self, session: AsyncSession, document: dict[str, Any], actor: str | None
    ) -> Published:
        digest = content_hash(document)
        workflow = await store.find_workflow(session, document["id"])
        if workflow is None:
            workflow = store.add_workflow(session, document, actor)
            await session.flush()
        else:
            existing = await store.find_version(session, workflow, document["version"])
            if existing is not None:
                return self._repeat_or_conflict(existing, document, digest)
        await self._guard(session, document)
        self._add_version(session, workflow, document, digest, actor)
        await store.refresh_summary(session, workflow)
        store.audit(
            session,
            actor=actor,
            action="workflow.published",
            target_id=workflow.workflow_id,
            data={"version": document["version"], "status": document["status"]},
        )
        return Published(document, created=True)

    @staticmethod
    def _repeat_or_conflict(
        existing: WorkflowVersionRow, document: dict[str, Any], digest: str
    ) -> Published:
        if existing.content_hash != digest:
            raise Conflict(
                f"workflow {existing.workflow_id!r} version {existing.version} already exists "
                "with different content; versions are immutable — publish it under a new "
                'version (PUT /api/v1/workflows/{id} with a higher "version")'
            )
        if existing.status != document["status"]:
            raise Conflict(
                f"workflow {existing.workflow_id!r} version {existing.version} exists with "
                f"status {existing.status!r}; to change the status send "
                f'PATCH /api/v1/workflows/{existing.workflow_id} {{"status": '
                f'"{document["status"]}", "version": "{existing.version}"}}'
            )
        return Published(existing.document, created=False)

    def _add_version(
        self,
        session: AsyncSession,
        workflow: WorkflowRow,
        document: dict[str, Any],
        digest: str,
        actor: str | None,
    ) -> None:
        key = SemVer.parse(document["version"]).sort_key()
        store.add_version(
            session, workflow, document, version_key=key, content_hash=digest, actor=actor
        )

    async def add_version(
        self, workflow_id: str, document: object, *, actor: str | None = None
    ) -> dict[str, Any]:
        """``PUT``: publish a new version of an existing workflow.

        The body's ``id`` must match the path (or be absent); without a ``version`` the
        newest version's patch number is raised by one.
        """
        if isinstance(document, dict):
            if "id" in document and document["id"] != workflow_id:
                raise InvalidInput(
                    "the body's id differs from the workflow in the path",
                    details=[Problem("/id", f"must be {workflow_id!r} (or leave it out)")],
                )
            document = {**document, "id": workflow_id}
            if "version" not in document:
                async with self._database.session() as session:
                    newest = await self._newest(session, workflow_id)
                document["version"] = str(SemVer.parse(newest.version).next_patch())
        prepared = await self._prepared(document)
        async with self._database.session() as session, session.begin():
            workflow = await self._workflow(session, workflow_id)
            existing = await store.find_version(session, workflow, prepared["version"])
            if existing is not None:
                raise Conflict(
                    f"workflow {workflow_id!r} already has version {prepared['version']}; "
                    f"versions are immutable — use a version newer than "
                    f"{workflow.latest_version}"
                )
            await self._guard(session, prepared)
            self._add_version(session, workflow, prepared, content_hash(prepared), actor)
            await store.refresh_summary(session, workflow)
            store.audit(
                session,
                actor=actor,
                action="workflow.version_added",
                target_id=workflow_id,
                data={"version": prepared["version"]},
            )
        await self._changed(workflow_id)
        return prepared

    async def _prepared(self, document: object) -> dict[str, Any]:
        report = await self.validate(document)
        if not report.valid:
            raise InvalidDefinition(report.errors)
        assert isinstance(document, dict)  # a valid definition is an object
        return normalize_document(document)

    async def get(self, workflow_id: str, version: str | None = None) -> dict[str, Any]:
        """The document of ``version``, or of the newest version."""
        async with self._database.session() as session:
            return (await self._version(session, workflow_id, version)).document | {}

    async def pinned(self, workflow_id: str, version: str | None = None) -> PinnedVersion:
        """The version an execution should run: the one asked for, else the newest active."""
        async with self._database.session() as session:
            if version is not None:
                row = await self._version(session, workflow_id, version)
            else:
                workflow = await self._workflow(session, workflow_id)
                found = await store.newest_version(session, workflow, status="active")
                if found is None:
                    raise Conflict(
                        f"workflow {workflow_id!r} has no active version to run; activate one "
                        f'(PATCH /api/v1/workflows/{workflow_id} {{"status": "active"}}) '
                        'or pass "version"'
                    )
                row = found
        return PinnedVersion(row.pk, row.workflow_id, row.version, row.document)

    async def versions(self, workflow_id: str) -> list[VersionInfo]:
        async with self._database.session() as session:
            workflow = await self._workflow(session, workflow_id)
            rows = await store.list_versions(session, workflow)
        return [VersionInfo(r.version, r.status, r.created_at, r.created_by) for r in rows]

    async def list(self, query: store.WorkflowFilter) -> Page:
        """A page of newest versions; ``total`` counts every match, not the page."""
        async with self._database.session() as session:
            rows, total = await store.search_workflows(session, query)
            newest = await store.versions_for(session, rows)
        items = [
            newest[row.pk].document | {"status": row.status} for row in rows if row.pk in newest
        ]
        updated = {row.workflow_id: row.updated_at for row in rows}
        return Page(items, total, query.limit, query.offset, updated)

    async def diff(self, workflow_id: str, old: str, new: str) -> dict[str, Any]:
        async with self._database.session() as session:
            before = await self._version(session, workflow_id, old)
            after = await self._version(session, workflow_id, new)
        return {"workflow_id": workflow_id, "from": old, "to": new} | diff_definitions(
            before.document, after.document
        )

    async def set_status(
        self, workflow_id: str, status: str, *, version: str | None = None, actor: str | None = None
    ) -> dict[str, Any]:
        """Move one version through the lifecycle; answers the updated document."""
        if status not in STATUSES:
            raise InvalidInput(
                f"unknown status {status!r}",
                details=[Problem("/status", f"use one of: {', '.join(STATUSES)}")],
            )
        async with self._database.session() as session, session.begin():
            row = await self._version(session, workflow_id, version)
            changed = status != row.status
            if changed:
                if status not in TRANSITIONS[row.status]:
                    allowed = ", ".join(sorted(TRANSITIONS[row.status])) or "none (it is final)"
                    raise InvalidTransition(
                        f"version {row.version} of {workflow_id!r} is {row.status!r} and cannot "
                        f"become {status!r}; allowed from {row.status!r}: {allowed}"
                    )
                await self._guard(session, row.document | {"status": status})
                previous = row.status
                row.status = status
                row.document = row.document | {"status": status}
                workflow = await self._workflow(session, workflow_id)
                await store.refresh_summary(session, workflow)
                store.audit(
                    session,
                    actor=actor,
                    action="workflow.status_changed",
                    target_id=workflow_id,
                    data={"version": row.version, "from": previous, "to": status},
                )
            document = row.document | {}
        if changed:
            await self._changed(workflow_id)
        return document

    async def delete(
        self, workflow_id: str, *, force: bool = False, actor: str | None = None
    ) -> None:
        """Retire a workflow and free its id.

        Its versions stay stored, so executions already running on them (allowed with
        ``force``) finish on exactly what they started with.
        """
        async with self._database.session() as session, session.begin():
            workflow = await self._workflow(session, workflow_id)
            active = await store.count_active_executions(session, workflow_id)
            if active and not force:
                raise Conflict(
                    f"workflow {workflow_id!r} has {active} execution(s) pending, running or "
                    "suspended; wait for them, cancel them, or delete with ?force=true (they "
                    "then finish on their pinned version)"
                )
            store.mark_deleted(workflow, utcnow())
            store.audit(
                session,
                actor=actor,
                action="workflow.deleted",
                target_id=workflow_id,
                data={"force": force, "active_executions": active},
            )
        await self._changed(workflow_id)

    async def _workflow(self, session: AsyncSession, workflow_id: str) -> WorkflowRow:
        workflow = await store.find_workflow(session, workflow_id)
        if workflow is None:
            raise NotFound(f"no workflow with id {workflow_id!r}")
        return workflow

    async def _newest(self, session: AsyncSession, workflow_id: str) -> WorkflowVersionRow:
        workflow = await self._workflow(session, workflow_id)
        row = await store.newest_version(session, workflow)
        if row is None:  # pragma: no cover - a workflow always has a version
            raise NotFound(f"workflow {workflow_id!r} has no versions")
        return row

    async def _version(
        self, session: AsyncSession, workflow_id: str, version: str | None
    ) -> WorkflowVersionRow:
        if version is None:
            return await self._newest(session, workflow_id)
        workflow = await self._workflow(session, workflow_id)
        row = await store.find_version(session, workflow, version)
        if row is None:
            known = ", ".join(r.version for r in await store.list_versions(session, workflow))
            raise NotFound(f"workflow {workflow_id!r} has no version {version!r}; known: {known}")
        return row
