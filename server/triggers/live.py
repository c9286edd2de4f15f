"""Which triggers are live: those of each workflow's newest active version.

Read from the database (so every process agrees, whichever process changed the
registry): the newest ``active`` version of every live (not deleted) workflow, with only
its ``triggers`` and ``variables`` taken out of the stored document. A cheap fingerprint
of the ``workflows`` table (row count, newest ``updated_at`` — every create, new version,
status change and delete moves it) tells whether a full read is needed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.definitions.model import Trigger, parse_trigger
from server.errors import InvalidInput
from server.store.models import WorkflowRow, WorkflowVersionRow
from server.triggers.cron import CronSchedule

log = logging.getLogger("flowyard.triggers")

workflows = cast(Table, WorkflowRow.__table__)
versions = cast(Table, WorkflowVersionRow.__table__)

CronKey = tuple[str, str]  # (workflow id, trigger id)
Fingerprint = tuple[int, datetime | None]


@dataclass(frozen=True)
class LiveVersion:
    """A workflow's newest active version, as far as triggers care."""

    workflow_id: str
    version: str
    #: when the workflow last changed (registry writes): a trigger is live since then
    since: datetime
    triggers: tuple[Trigger, ...]
    #: declared variable name → type (``string``, ``integer``, …)
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LiveCron:
    workflow_id: str
    version: str
    trigger: Trigger
    schedule: CronSchedule
    since: datetime

    @property
    def key(self) -> CronKey:
        return (self.workflow_id, self.trigger.id)


@dataclass(frozen=True)
class LiveHook:
    workflow_id: str
    version: str
    trigger: Trigger
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LiveSet:
    crons: dict[CronKey, LiveCron] = field(default_factory=dict)
    hooks: dict[str, LiveHook] = field(default_factory=dict)


def live_set(found: Iterable[LiveVersion]) -> LiveSet:
    """The live cron triggers (by workflow and trigger) and hooks (by path).

    Disabled triggers are not live. Two workflows claiming one hook path (the registry
    refuses it, but two processes may publish at the same moment) resolve to the first
    workflow id in sort order, in every process alike.
    """
    crons: dict[CronKey, LiveCron] = {}
    hooks: dict[str, LiveHook] = {}
    for version in sorted(found, key=lambda v: v.workflow_id):
        for trigger in version.triggers:
            if not trigger.enabled or not trigger.id:
                continue
            if trigger.type == "cron" and trigger.schedule:
                try:
                    schedule = CronSchedule(trigger.schedule, trigger.timezone)
                except InvalidInput:  # validated at publish time; never fatal here
                    continue
                live = LiveCron(
                    version.workflow_id, version.version, trigger, schedule, version.since
                )
                crons[live.key] = live
            elif trigger.type == "webhook" and trigger.path:
                if trigger.path in hooks:
                    log.warning(
                        "webhook path used by two workflows",
                        extra={
                            "action": "triggers.path_clash",
                            "path": trigger.path,
                            "workflow_id": version.workflow_id,
                            "kept": hooks[trigger.path].workflow_id,
                        },
                    )
                    continue
                hooks[trigger.path] = LiveHook(
                    version.workflow_id, version.version, trigger, version.variables
                )
    return LiveSet(crons, hooks)


async def fingerprint(session: AsyncSession) -> Fingerprint:
    """Changes whenever the registry changes (see the module docstring)."""
    row = (await session.execute(select(func.count(), func.max(workflows.c.updated_at)))).one()
    return int(row[0]), row[1]


async def read_live(session: AsyncSession, workflow_id: str | None = None) -> list[LiveVersion]:
    """The newest active version of every live workflow (or of one)."""
    active = versions.c.status == "active"
    newest = (
        select(versions.c.workflow_pk, func.max(versions.c.version_key).label("version_key"))
        .where(active)
        .group_by(versions.c.workflow_pk)
        .subquery()
    )
    query = (
        select(
            workflows.c.workflow_id,
            workflows.c.updated_at,
            versions.c.version,
            versions.c.document["triggers"].label("triggers"),
            versions.c.document["variables"].label("variables"),
        )
        .join(workflows, workflows.c.pk == versions.c.workflow_pk)
        .join(
            newest,
            and_(
                newest.c.workflow_pk == versions.c.workflow_pk,
                newest.c.version_key == versions.c.version_key,
            ),
        )
        .where(workflows.c.deleted_at.is_(None), active)
        .order_by(workflows.c.workflow_id, versions.c.version)
    )
    if workflow_id is not None:
        query = query.where(workflows.c.workflow_id == workflow_id)
    found: dict[str, LiveVersion] = {}
    for row in (await session.execute(query)).mappings():
        if row["workflow_id"] in found:  # two versions with one sort key: keep one
            continue
        found[row["workflow_id"]] = LiveVersion(
            workflow_id=row["workflow_id"],
            version=row["version"],
            since=row["updated_at"],
            triggers=parse_triggers(row["triggers"]),
            variables=_variable_types(row["variables"]),
        )
    return list(found.values())


def parse_triggers(raw: Any) -> tuple[Trigger, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(parse_trigger(item) for item in raw if isinstance(item, dict))


def _variable_types(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        return {}
    return {
        str(name): str(spec.get("type") or "any") if isinstance(spec, dict) else "any"
        for name, spec in raw.items()
    }
