"""Keeping this process's schedules and hooks in step with the registry.

* **This process's changes** arrive at once: the registry calls :meth:`TriggerSync.changed`
  after every create, new version, status change and delete has committed, so the
  answer to that request already reflects the new schedules and hook paths.
* **Other processes' changes** are picked up by a periodic check (``triggers.sync_interval``,
  default 2 s): a cheap fingerprint of the ``workflows`` table, and a full read of the
  live triggers when it moved — and in any case every ``FULL_SYNC_SECONDS``, so a change
  whose fingerprint happened to look unchanged (clock skew between machines) is still
  seen. A hook request for an unknown path also re-checks first.
* **Stranded fires** (claimed by a process that died before starting the execution)
  are started by a repair pass every ``REPAIR_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta

from server.store.database import Database
from server.store.models import utcnow
from server.triggers.hooks import Hooks
from server.triggers.live import Fingerprint, fingerprint, live_set, read_live
from server.triggers.schedules import Schedules

log = logging.getLogger("flowyard.triggers")

FULL_SYNC_SECONDS = 30.0
#: Cron wake-ups within this long of a registry check share it.
RECHECK_SECONDS = 0.25
REPAIR_SECONDS = 30.0
#: A claimed fire is taken as stranded once it is this old without an execution.
STRANDED_AFTER_SECONDS = 30.0


class TriggerSync:
    def __init__(
        self, database: Database, schedules: Schedules, hooks: Hooks, *, interval: float
    ) -> None:
        self.database = database
        self.schedules = schedules
        self.hooks = hooks
        self.interval = interval
        self.synced_at: float | None = None  # time.monotonic() of the last full read
        #: time.monotonic() of the last successful look at the registry (health check)
        self.checked_at: float | None = None
        self._fingerprint: Fingerprint | None = None
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._checked_at = 0.0
        self._check_lock = asyncio.Lock()
        hooks.refresh = self.refresh
        schedules.before_fire = self.refresh_soon

    async def start(self) -> None:
        began = utcnow()
        await self.sync()
        # Fires claimed before this process started and never started: their process
        # died. (One a live process claimed a moment ago is harmless to start too — the
        # fire's idempotency key makes both starts one execution.)
        await self.schedules.repair(began)
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def changed(self, workflow_id: str) -> None:
        """The registry listener: a workflow changed in this process."""
        await self.sync()

    async def sync(self) -> None:
        """Read the live triggers and make them this process's schedules and hooks."""
        async with self._lock:
            async with self.database.reader() as session:
                mark = await fingerprint(session)
                found = await read_live(session)
            live = live_set(found)
            self.schedules.update(live.crons)
            self.hooks.update(live.hooks)
            self._fingerprint = mark
            self.synced_at = self.checked_at = time.monotonic()

    async def refresh(self) -> bool:
        """Sync when the registry changed since the last read; whether it did."""
        async with self.database.reader() as session:
            mark = await fingerprint(session)
        if mark == self._fingerprint:
            self.checked_at = time.monotonic()
            return False
        await self.sync()
        return True

    async def refresh_soon(self) -> None:
        """:meth:`refresh`, at most once per ``RECHECK_SECONDS`` however many cron
        triggers wake up at once — so a change made through another process stops or
        changes a schedule before its next fire."""
        async with self._check_lock:
            if time.monotonic() - self._checked_at < RECHECK_SECONDS:
                return
            await self.refresh()
            self._checked_at = time.monotonic()

    async def _loop(self) -> None:
        last_full = last_repair = time.monotonic()
        while True:
            await asyncio.sleep(self.interval)
            try:
                now = time.monotonic()
                if now - last_full >= FULL_SYNC_SECONDS:
                    await self.sync()
                    last_full = now
                else:
                    await self.refresh()
                if now - last_repair >= REPAIR_SECONDS:
                    last_repair = now
                    stranded = utcnow() - timedelta(seconds=STRANDED_AFTER_SECONDS)
                    await self.schedules.repair(stranded)
            except Exception:  # the database may be away for a moment; try again later
                log.exception("trigger sync failed", extra={"action": "triggers.sync_failed"})
