"""Cron triggers: APScheduler wakes the process, each fire starts exactly one execution.

Every server process runs its own APScheduler ``AsyncIOScheduler`` with the in-memory
job store — one job per live cron trigger. A shared job store is not an option: two
processes on one store ran every fire twice (STACK.md). Instead each process tries
every fire, and the database decides:

1. the fire is *claimed* by inserting its ``trigger_fires`` row, whose unique key is
   (workflow, trigger, scheduled time): exactly one process's insert succeeds
   (``server.triggers.fires.claim``), the others stop there;
2. the winner starts the execution with the idempotency key
   ``cron:<workflow>:<trigger>:<scheduled time>`` (``executions.idempotency_key`` is
   unique), and records the execution id on the fire;
3. a process that died between 1 and 2 leaves a claimed fire without an execution; a
   repair pass (``repair``) starts it later — with the same key, so even a slow original
   and the repair together start one execution.

Which fires are due is computed from the schedule, never from when a wake-up ran: a
process keeps, per trigger, the time up to which it has handled fires (its cursor);
a wake-up handles every fire after the cursor up to now. Fires that came due while no
process ran the trigger (downtime, or a stall longer than the grace period) are *missed*
and follow the trigger's misfire policy (``server.triggers.misfire``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from server.engine.service import ExecutionService, StartOptions
from server.errors import FlowyardError
from server.store.database import Database
from server.store.models import utcnow
from server.triggers import fires
from server.triggers.cron import CronWake
from server.triggers.live import CronKey, LiveCron
from server.triggers.misfire import catch_up

log = logging.getLogger("flowyard.triggers")

#: A wake-up this close before a fire waits for it (timers and clocks drift slightly).
EARLY_WAKE = timedelta(seconds=2)
GONE = "the trigger was no longer live when the stranded fire was started again"
#: After a failed fire (the database away), try again this soon.
RETRY_SECONDS = 5.0


class Schedules:
    """The cron triggers live in this process, and their fires."""

    def __init__(self, database: Database, executions: ExecutionService, *, grace: float) -> None:
        self.database = database
        self.executions = executions
        self.journal = executions.engine.journal
        self.grace = timedelta(seconds=grace)
        self.live: dict[CronKey, LiveCron] = {}
        self._cursor: dict[CronKey, datetime] = {}
        self._locks: dict[CronKey, asyncio.Lock] = {}
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._retrying: set[CronKey] = set()
        #: awaited before each wake-up's fires (the sync: has the registry changed?)
        self.before_fire: Callable[[], Awaitable[Any]] | None = None

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running) and not self._stopping

    def start(self) -> None:
        self._scheduler.start()

    async def stop(self, grace: float = 5.0) -> None:
        """Stop waking; give fires under way ``grace`` seconds, then cancel them (a fire
        cut short between claim and start is started by a later repair pass)."""
        self._stopping = True
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- following the registry ---------------------------------------------------------

    def update(self, crons: Mapping[CronKey, LiveCron]) -> None:
        """Make ``crons`` the live cron triggers: add, change and remove jobs."""
        if self._stopping:
            return
        now = utcnow()
        for key in [key for key in self.live if key not in crons]:
            del self.live[key]
            self._cursor.pop(key, None)
            if self._scheduler.get_job(job_id(key)) is not None:
                self._scheduler.remove_job(job_id(key))
            log.info("cron trigger removed", extra=_extra(key, "triggers.cron_removed"))
        for key, cron in crons.items():
            old = self.live.get(key)
            self.live[key] = cron
            if old is not None and old.schedule == cron.schedule:
                continue  # same times: only version or input changed; fires carry on
            self._cursor[key] = now
            self._scheduler.add_job(
                self._wake,
                trigger=CronWake(cron.schedule),
                args=[key],
                id=job_id(key),
                name=job_id(key),
                misfire_grace_time=None,  # never let APScheduler drop a late wake-up
                coalesce=True,  # one wake-up handles every fire due (see _due)
                max_instances=1,
                replace_existing=True,
            )
            if old is None:
                self._spawn(self._go_live(key, now))
            log.info(
                "cron trigger scheduled",
                extra={
                    **_extra(key, "triggers.cron_scheduled"),
                    "schedule": cron.schedule.expression,
                    "timezone": cron.schedule.timezone,
                    "version": cron.version,
                },
            )

    # --- firing ------------------------------------------------------------------------

    async def _wake(self, key: CronKey) -> None:
        """APScheduler's job: hand the work to a task of ours and return at once."""
        self._spawn(self._due(key))

    async def _go_live(self, key: CronKey, now: datetime) -> None:
        """A trigger this process has just begun to run: apply the misfire policy to the
        fires that came due while nobody ran it (since its last recorded fire, or since
        the workflow last changed). Tried again shortly if the database is away."""
        try:
            await self._catch_up(key, now)
        except Exception:
            log.exception("cron catch-up failed", extra=_extra(key, "triggers.cron_error"))
            await asyncio.sleep(RETRY_SECONDS)
            if key in self.live:
                self._spawn(self._go_live(key, now))

    async def _catch_up(self, key: CronKey, now: datetime) -> None:
        async with self._lock(key):
            cron = self.live.get(key)
            if cron is None:
                return
            async with self.database.reader() as session:
                last = await fires.last_scheduled(session, *key)
            since = max(cron.since, last) if last is not None else cron.since
            trigger = cron.trigger
            missed = catch_up(cron.schedule, since, now, trigger.misfire, trigger.max_catch_up)
            if missed:
                log.info(
                    "cron trigger live",
                    extra={
                        **_extra(key, "triggers.cron_live"),
                        "misfire": trigger.misfire,
                        "catch_up": len(missed),
                    },
                )
            for scheduled in missed:
                await self._fire(cron, scheduled, "catch_up")

    async def _due(self, key: CronKey) -> None:
        """Handle every fire of ``key`` after its cursor up to now; on a failure (the
        database away), try again shortly rather than at the next scheduled time."""
        if self.before_fire is not None:
            try:
                await self.before_fire()  # another process may have changed the registry
            except Exception:
                log.exception("registry check failed", extra=_extra(key, "triggers.check_failed"))
        try:
            await self._due_fires(key)
        except Exception:
            log.exception("cron fire failed", extra=_extra(key, "triggers.cron_error"))
            if key not in self._retrying:  # one retry under way per trigger is enough
                self._retrying.add(key)
                self._spawn(self._again(key))

    async def _again(self, key: CronKey) -> None:
        await asyncio.sleep(RETRY_SECONDS)
        self._retrying.discard(key)
        await self._due(key)

    async def _due_fires(self, key: CronKey) -> None:
        async with self._lock(key):
            cron = self.live.get(key)
            cursor = self._cursor.get(key)
            if cron is None or cursor is None:
                return
            now = utcnow()
            upcoming = cron.schedule.after(cursor)
            if upcoming is not None and now < upcoming <= now + EARLY_WAKE:
                await asyncio.sleep((upcoming - now).total_seconds())  # woken a hair early
                now = utcnow()
            stalled_until = now - self.grace
            if cursor < stalled_until:
                trigger = cron.trigger
                for scheduled in catch_up(
                    cron.schedule, cursor, stalled_until, trigger.misfire, trigger.max_catch_up
                ):
                    await self._fire(cron, scheduled, "catch_up")
                cursor = self._cursor[key] = stalled_until
            for scheduled in cron.schedule.between(cursor, now):
                if key not in self.live or self._stopping:
                    return
                await self._fire(cron, scheduled, "scheduled")
                self._cursor[key] = scheduled
            self._cursor[key] = now

    async def _fire(self, cron: LiveCron, scheduled: datetime, kind: str) -> None:
        """Claim one fire; start its execution when this process won the claim.

        A fire claimed while its trigger was live starts its execution even if the
        trigger is changed or removed meanwhile: it came due before the change.
        """
        workflow_id, trigger_id = cron.key
        now = utcnow()
        fire_id = await self.journal.run(
            lambda c: fires.claim(
                c,
                workflow_id=workflow_id,
                trigger_id=trigger_id,
                scheduled_for=scheduled,
                kind=kind,
                now=now,
            )
        )
        if fire_id is not None:
            await self._start(cron, fire_id, scheduled)

    async def _start(self, cron: LiveCron, fire_id: str, scheduled: datetime) -> None:
        key = cron.key
        workflow_id, trigger_id = key
        options = StartOptions(
            input=dict(cron.trigger.input),
            version=cron.version,
            triggered_by=f"cron:{trigger_id}",
            idempotency_key=fires.start_key("cron", workflow_id, trigger_id, scheduled.isoformat()),
        )
        try:
            execution_id, _ = await self.executions.start(workflow_id, options)
        except FlowyardError as error:
            message = error.message
            await self.journal.run(lambda c: fires.record_error(c, fire_id, message))
            log.warning(
                "cron fire started nothing",
                extra={**_extra(key, "triggers.cron_failed"), "error": message[:300]},
            )
            return
        await self.journal.run(lambda c: fires.record_start(c, fire_id, execution_id))
        log.info(
            "cron trigger fired",
            extra={
                **_extra(key, "triggers.cron_fired"),
                "scheduled_for": scheduled.isoformat(),
                "execution_id": execution_id,
            },
        )

    async def repair(self, claimed_before: datetime) -> int:
        """Start the fires claimed before ``claimed_before`` that never started (their
        process died in between); how many were handled."""
        stranded = await self.journal.run(lambda c: fires.unstarted(c, claimed_before))
        for row in stranded:
            key = (row["workflow_id"], row["trigger_id"])
            fire_id = row["id"]
            cron = self.live.get(key)
            if cron is None:
                await self.journal.run(partial(fires.record_error, fire_id=fire_id, message=GONE))
                continue
            async with self._lock(key):
                await self._start(cron, fire_id, row["scheduled_for"])
        if stranded:
            log.info(
                "stranded cron fires started",
                extra={"action": "triggers.cron_repaired", "count": len(stranded)},
            )
        return len(stranded)

    # --- helpers -----------------------------------------------------------------------

    def _lock(self, key: CronKey) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        if self._stopping:
            work.close()
            return
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "cron trigger task failed",
                exc_info=task.exception(),
                extra={"action": "triggers.task_failed"},
            )


def job_id(key: CronKey) -> str:
    return f"cron:{key[0]}:{key[1]}"


def _extra(key: CronKey, action: str) -> dict[str, Any]:
    return {"action": action, "workflow_id": key[0], "trigger_id": key[1]}
