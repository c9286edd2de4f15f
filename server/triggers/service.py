"""The triggers of this process, put together: schedules, hooks, and their sync.

``create_app`` builds one :class:`Triggers`; its lifespan calls :meth:`Triggers.start`
after the engine has started and :meth:`Triggers.stop` before the engine stops (a fire
under way still needs the engine's writer). :meth:`Triggers.describe` answers
``GET /api/v1/workflows/{id}/triggers``.
"""

from __future__ import annotations

import time
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.config import Settings
from server.definitions.model import Trigger
from server.durations import parse_duration
from server.engine.service import ExecutionService
from server.errors import Conflict
from server.ratelimit import RateLimiter
from server.registry.service import WorkflowRegistry
from server.store.database import Database
from server.store.models import ExecutionRow, utcnow
from server.triggers import fires
from server.triggers.cron import CronSchedule
from server.triggers.hooks import Hooks, SecretLookup, unique_hook_paths
from server.triggers.live import parse_triggers
from server.triggers.schedules import Schedules
from server.triggers.sync import TriggerSync

executions_table = cast(Table, ExecutionRow.__table__)
HOOKS_PATH = "/api/v1/hooks/"
#: The health check fails when the registry was last read longer ago than this.
STALE_SECONDS = 10.0


class Triggers:
    def __init__(
        self,
        database: Database,
        registry: WorkflowRegistry,
        executions: ExecutionService,
        settings: Settings,
        *,
        secrets: SecretLookup | None = None,
    ) -> None:
        config = settings.triggers
        self.database = database
        self.registry = registry
        self.public_url = settings.server.resolved_public_url
        self.schedules = Schedules(database, executions, grace=parse_duration(config.misfire_grace))
        self.hooks = Hooks(
            executions,
            RateLimiter(config.hook_rate_per_minute, config.hook_rate_burst),
            secrets=secrets,
        )
        self.sync = TriggerSync(
            database, self.schedules, self.hooks, interval=parse_duration(config.sync_interval)
        )
        registry.listeners.append(self.sync.changed)
        registry.guards.append(unique_hook_paths)

    async def start(self) -> None:
        self.schedules.start()
        await self.sync.start()

    async def stop(self) -> None:
        await self.sync.stop()
        await self.schedules.stop()

    def problem(self) -> str | None:
        """Why triggers may not fire right now (for the health check); ``None``: fine."""
        if not self.schedules.running:
            return "the trigger scheduler is not running"
        checked = self.sync.checked_at
        stale_after = max(STALE_SECONDS, 5 * self.sync.interval)
        if checked is None or time.monotonic() - checked > stale_after:
            return "the trigger schedules could not be checked against the registry lately"
        return None

    async def describe(
        self, workflow_id: str, *, last: int = 5, upcoming: int = 5
    ) -> dict[str, Any]:
        """The triggers of a workflow's live version (its newest active one) with their
        next fire times and last fires; without an active version, those of its newest
        version, none of them live."""
        try:
            pinned = await self.registry.pinned(workflow_id)
            live, version, document = True, pinned.version, pinned.document
        except Conflict:  # no active version
            document = await self.registry.get(workflow_id)
            live, version = False, str(document.get("version"))
        triggers = []
        async with self.database.reader() as session:
            for trigger in parse_triggers(document.get("triggers")):
                entry = self._entry(trigger, live=live and trigger.enabled, upcoming=upcoming)
                if trigger.type == "cron":
                    entry["last_fires"] = [
                        _fire_json(row)
                        for row in await _recent_fires(session, workflow_id, trigger.id, last)
                    ]
                else:
                    entry["last_fires"] = await _recent_hook_starts(
                        session, workflow_id, trigger.id, last
                    )
                triggers.append(entry)
        return {"workflow_id": workflow_id, "version": version, "live": live, "triggers": triggers}

    def _entry(self, trigger: Trigger, *, live: bool, upcoming: int) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": trigger.id,
            "type": trigger.type,
            "enabled": trigger.enabled,
            "live": live,
        }
        if trigger.type == "cron":
            schedule = CronSchedule(trigger.schedule or "", trigger.timezone)
            next_fires = schedule.next_times(utcnow(), upcoming) if live else []
            entry.update(
                schedule=trigger.schedule,
                timezone=trigger.timezone,
                misfire=trigger.misfire,
                max_catch_up=trigger.max_catch_up,
                input=dict(trigger.input),
                next_fires=[_iso(moment) for moment in next_fires],
            )
        else:
            path = trigger.path or ""
            entry.update(
                path=path,
                url=f"{self.public_url}{HOOKS_PATH}{path}",
                signed=bool(trigger.secret),
                input_mapping=dict(trigger.input_mapping)
                if trigger.input_mapping is not None
                else None,
                input=dict(trigger.input),
            )
        return entry


async def _recent_fires(
    session: AsyncSession, workflow_id: str, trigger_id: str, limit: int
) -> list[dict[str, Any]]:
    rows = await fires.recent(session, workflow_id, trigger_id, limit)
    ids = [row["execution_id"] for row in rows if row["execution_id"]]
    statuses: dict[str, str] = {}
    if ids:
        query = select(executions_table.c.id, executions_table.c.status).where(
            executions_table.c.id.in_(ids)
        )
        statuses = {row[0]: row[1] for row in await session.execute(query)}
    return [row | {"status": statuses.get(row["execution_id"] or "")} for row in rows]


async def _recent_hook_starts(
    session: AsyncSession, workflow_id: str, trigger_id: str, limit: int
) -> list[dict[str, Any]]:
    """The newest executions a webhook trigger started."""
    query = (
        select(executions_table.c.id, executions_table.c.status, executions_table.c.created_at)
        .where(
            executions_table.c.workflow_id == workflow_id,
            executions_table.c.triggered_by == f"webhook:{trigger_id}",
        )
        .order_by(executions_table.c.created_at.desc())
        .limit(limit)
    )
    return [
        {"execution_id": row[0], "status": row[1], "received_at": _iso(row[2])}
        for row in await session.execute(query)
    ]


def _fire_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "scheduled_for": _iso(row["scheduled_for"]),
        "fired_at": _iso(row["fired_at"]),
        "kind": row["kind"],
        "execution_id": row["execution_id"],
        "status": row["status"],
        "error": row["error"],
    }


def _iso(moment: Any) -> str:
    text: str = moment.isoformat().replace("+00:00", "Z")
    return text
