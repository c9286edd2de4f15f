"""The engine of one process: leases executions, runs their nodes, wakes them on time.

* **Workers.** ``max_workers`` tasks take ready nodes from one priority queue, so ready
  nodes of higher-priority executions are dispatched first, and node runs in this process
  are bounded whatever the number of executions.
* **Leases.** An execution is driven by the process that holds its lease (see
  ``Runner``); the lease is renewed while it is held, handed back with a wake-up time
  when only waits remain, and taken over by another process if this one dies.
* **Wake-ups.** One loop claims executions whose ``next_wake_at`` has come (a due
  timer, a retry back-off, a delayed start, a resolved wait, recovery), sleeping until
  the earliest one or until something new is started.
* **Recovery.** At start, leases of the dead process are freed and node runs that were
  running are made ready again (at-least-once, with the same idempotency key).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import random
import socket
import time
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from processors.registry import ProcessorRegistry
from server.definitions.cache import ParsedDefinitions
from server.definitions.model import Definition
from server.engine.journal import Journal
from server.engine.ops import Ops
from server.engine.runner import STARTED_MARK_AFTER, Runner
from server.expressions import ExpressionLimits, evaluate_async
from server.store import runs as store
from server.store.models import new_id, utcnow

if TYPE_CHECKING:
    from server.engine.service import ExecutionService

log = logging.getLogger("flowyard.engine")

LEASE = timedelta(seconds=30)
POLL_SECONDS = 1.0
CLAIM_BATCH = 64


class Engine:
    def __init__(
        self,
        journal: Journal,
        processors: ProcessorRegistry,
        *,
        max_workers: int = 32,
        expression_limits: ExpressionLimits | None = None,
        services: Mapping[str, Any] | None = None,
        single_process: bool | None = None,
    ) -> None:
        self.journal = journal
        self.processors = processors
        self.max_workers = max_workers
        self.limits = expression_limits or ExpressionLimits()
        self.services = dict(services or {})
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{new_id()[:8]}"
        self.single_process = (
            journal.backend == "sqlite" if single_process is None else single_process
        )
        self.random = random.Random()  # noqa: S311  # nosec B311  # retry jitter, not secrets
        self.runners: dict[str, Runner] = {}
        self._queue: asyncio.PriorityQueue[tuple[int, int, str, str, Runner]] = (
            asyncio.PriorityQueue()
        )
        self._order = itertools.count()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._workers: list[asyncio.Task[None]] = []
        self._loops: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self.nodes_run = 0
        #: node runs whose start is not written yet: run id → (runner, run, started)
        self._starting: dict[str, tuple[Runner, Any, float]] = {}
        self._mark_timer: asyncio.TimerHandle | None = None
        self._definitions = ParsedDefinitions()
        #: set by the ExecutionService built on this engine (it cancels children)
        self.executions: ExecutionService | None = None

    # --- life cycle --------------------------------------------------------------------

    async def start(self) -> None:
        self.journal.start()
        now = utcnow()
        recovered = await self.journal.run(
            lambda c: store.recover(c, now, all_leases=self.single_process)
        )
        if recovered:
            log.info(
                "recovering executions", extra={"action": "engine.recovered", "count": recovered}
            )
        self._workers = [asyncio.create_task(self._work()) for _ in range(self.max_workers)]
        self._loops = [
            asyncio.create_task(self._claim_loop()),
            asyncio.create_task(self._heartbeat()),
        ]

    async def stop(self, grace: float = 30.0) -> None:
        """Stop taking work, let running nodes finish for ``grace`` seconds, hand back leases."""
        self._stopping = True
        self._wake.set()
        if self._mark_timer is not None:
            self._mark_timer.cancel()
            self._mark_timer = None
        for task in self._loops:
            task.cancel()
        running = [f for runner in self.runners.values() for f in runner.tasks.values()]
        if running:
            await asyncio.wait(running, timeout=grace)
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, *self._loops, return_exceptions=True)
        for runner in list(self.runners.values()):
            runner.released = True
            for future in runner.tasks.values():
                future.cancel()
        held = list(self.runners)
        if held:
            now = utcnow()
            await self.journal.run(lambda c: _release_all(c, held, self.worker_id, now))
        self.runners.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.journal.stop()

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished_task)

    def _finished_task(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "engine task failed",
                exc_info=task.exception(),
                extra={"action": "engine.task_failed"},
            )

    # --- expressions ---------------------------------------------------------------------

    async def evaluate(self, text: str, scope: Mapping[str, Any]) -> Any:
        return await evaluate_async(text, scope, limits=self.limits)

    def evaluator(self, scope: Mapping[str, Any]) -> Callable[..., Coroutine[Any, Any, Any]]:
        async def evaluate(
            text: str,
            extra_names: Mapping[str, Any] | None = None,
            extra_functions: Mapping[str, Callable[..., Any]] | None = None,
        ) -> Any:
            names = {**scope, **extra_names} if extra_names else scope
            return await evaluate_async(
                text, names, limits=self.limits, extra_functions=extra_functions
            )

        return evaluate

    # --- executions --------------------------------------------------------------------

    async def adopt(self, execution_id: str) -> Runner | None:
        """Load an execution this process has just leased and start driving it."""
        if execution_id in self.runners:
            return self.runners[execution_id]
        loaded = await self.journal.run(
            lambda c: (store.load(c, execution_id), store.generations(c, execution_id))
        )
        found, generations = loaded
        if found is None:
            return None
        row, runs, waits, document = found
        runner = Runner(
            self,
            row,
            runs,
            waits,
            self.definition_for(row["definition_pk"], document, row["context_metadata"]),
            generations,
        )
        self.runners[execution_id] = runner
        not_before = row["not_before"]
        if runner.status == "pending" and (not_before is None or not_before <= utcnow()):
            await self._begin(runner)
        runner.start()
        return runner

    async def _begin(self, runner: Runner) -> None:
        """A delayed start has come due: the execution starts running now."""
        now = utcnow()
        runner.status = "running"
        runner.row["started_at"] = now
        ops = Ops(runner.id)
        ops.execution(status="running", started_at=now)
        ops.event("execution.started", None, {})
        await runner.commit(ops)

    def adopt_created(
        self, row: Mapping[str, Any], runs: list[dict[str, Any]], definition: Definition
    ) -> Runner:
        """Start driving an execution this process has just inserted (and leased),
        from the rows it wrote — no need to read them back."""
        runner = Runner(self, row, runs, [], definition, {})
        self.runners[runner.id] = runner
        runner.start()
        return runner

    def has_definition(self, version_pk: str) -> bool:
        return version_pk in self._definitions

    def definition(self, version_pk: str, document: Mapping[str, Any]) -> Definition:
        """The parsed definition of a stored version (its content never changes)."""
        return self._definitions.get(version_pk, document)

    def parsed_definition(self, version_pk: str) -> Definition | None:
        """The parsed definition of a version, if this process has parsed it already
        (safe on the journal's thread)."""
        return self._definitions.peek(version_pk)

    def definition_for(
        self, version_pk: str, document: Mapping[str, Any], metadata: Mapping[str, Any] | None
    ) -> Definition:
        """What an execution runs (a version, or an inline body of one)."""
        return self._definitions.for_execution(version_pk, document, metadata)

    def starting(self, runner: Runner, run: Any) -> None:
        """A node run starts: its start is written with its result if it ends within
        ``STARTED_MARK_AFTER`` (one commit, not two), else on its own so it shows as
        running. One timer serves all running nodes (a timer per node costs more)."""
        self._starting[run.id] = (runner, run, time.monotonic())
        if self._mark_timer is None:
            self._mark_timer = asyncio.get_running_loop().call_later(
                STARTED_MARK_AFTER, self._mark_started
            )

    def started(self, run: Any) -> None:
        """The run's processor returned (or was cancelled)."""
        self._starting.pop(run.id, None)

    def _mark_started(self) -> None:
        self._mark_timer = None
        due = time.monotonic() - STARTED_MARK_AFTER
        for run_id, (runner, run, at) in list(self._starting.items()):
            if at <= due:
                del self._starting[run_id]
                runner.mark_started(run)
        if self._starting:
            oldest = min(at for _, _, at in self._starting.values())
            delay = max(oldest + STARTED_MARK_AFTER - time.monotonic(), 0.001)
            self._mark_timer = asyncio.get_running_loop().call_later(delay, self._mark_started)

    def enqueue(self, runner: Runner, node_id: str) -> None:
        # The runner itself rides along (never compared: the order number is unique), so a
        # node queued by a runner that was since evicted is not run by its successor,
        # which dispatches it itself.
        self._queue.put_nowait((-runner.priority, next(self._order), runner.id, node_id, runner))

    async def _work(self) -> None:
        while True:
            _, _, execution_id, node_id, queued_by = await self._queue.get()
            runner = self.runners.get(execution_id)
            if runner is None or runner is not queued_by:
                continue
            try:
                await runner.execute(node_id)
                self.nodes_run += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "node execution failed",
                    extra={
                        "action": "engine.node_crashed",
                        "execution_id": execution_id,
                        "node_id": node_id,
                    },
                )
                await self.evict(runner)

    async def release(
        self, runner: Runner, next_wake_at: datetime | None, *, written: bool = False
    ) -> None:
        """Hand the lease back (the runner's lock is held by the caller).

        ``written``: the release was already committed with the runner's last change.
        """
        runner.released = True
        self.runners.pop(runner.id, None)
        if runner.deadline_timer is not None:
            runner.deadline_timer.cancel()
        for handle in runner.timers.values():
            handle.cancel()
        poked = runner.poked
        if poked and runner.status not in ("completed", "failed", "cancelled"):
            next_wake_at = utcnow()
        if not written or poked:
            await self.journal.run(
                partial(
                    store.release,
                    execution_id=runner.id,
                    worker=self.worker_id,
                    next_wake_at=next_wake_at,
                )
            )
        if runner.status in ("completed", "failed", "cancelled"):
            self._notify_finished(runner.id)
        if next_wake_at is not None:
            self._wake.set()

    async def evict(self, runner: Runner) -> None:
        """Drop a runner that hit an unexpected error; it is reloaded from the database."""
        if runner.released:
            return
        runner.released = True
        if self.runners.get(runner.id) is runner:
            del self.runners[runner.id]
        for future in runner.tasks.values():
            future.cancel()
        now = utcnow()
        await self.journal.run(lambda c: store.release(c, runner.id, self.worker_id, now))
        self._wake.set()

    def wait_answered(self, execution_id: str, wait_id: str, resolution: Mapping[str, Any]) -> None:
        """An outside answer to a wait was committed (``store.answer_wait``): resume the
        node now if this process drives the execution, else wake the claim loop."""
        runner = self.runners.get(execution_id)
        if runner is not None:
            for wait in runner.waits.values():
                if wait.id == wait_id:
                    wait.resolution = dict(resolution)
                    runner.dispatch()
                    return
        self.notify(execution_id)

    def execution_ended(self, runner: Runner) -> None:
        """``runner``'s execution has just committed its end: wake its parent node (if
        it is a child) and cancel its own children that are still going."""
        parent = runner.row.get("parent_execution_id")
        if parent:
            owner = self.runners.get(parent)
            if owner is not None:
                owner.child_poked(runner.row["parent_node_id"])
            else:
                self._wake.set()
        if runner.status in ("failed", "cancelled"):
            self.spawn(self._cancel_children(runner.id))

    async def _cancel_children(self, execution_id: str) -> None:
        if self.executions is None:
            return
        ids = await self.journal.run(lambda c: store.unfinished_children(c, execution_id))
        for child in ids:
            await self.executions.cancel_quietly(child, actor=f"system:parent-ended:{execution_id}")

    def notify(self, execution_id: str) -> None:
        """Something outside changed this execution (a wait resolved): look at it again."""
        runner = self.runners.get(execution_id)
        if runner is not None:
            runner.poked = True
            runner.dispatch()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def wait_finished(self, execution_id: str, seconds: float) -> bool:
        """Wait until the execution ends in this process (True) or ``seconds`` pass."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(execution_id, []).append(future)
        try:
            await asyncio.wait_for(future, seconds)
            return True
        except TimeoutError:
            return False
        finally:
            waiters = self._waiters.get(execution_id, [])
            if future in waiters:
                waiters.remove(future)

    def _notify_finished(self, execution_id: str) -> None:
        for future in self._waiters.pop(execution_id, []):
            if not future.done():
                future.set_result(None)

    # --- background loops -------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            now = utcnow()
            try:
                claim = partial(
                    store.claim,
                    worker=self.worker_id,
                    now=now,
                    lease_until=now + LEASE,
                    limit=CLAIM_BATCH,
                )
                ids = await self.journal.run(claim)
                for execution_id in ids:
                    await self.adopt(execution_id)
                if len(ids) == CLAIM_BATCH:
                    continue
                upcoming = await self.journal.run(store.next_wake)
            except Exception:
                log.exception("claiming failed", extra={"action": "engine.claim_failed"})
                upcoming = None
            timeout = POLL_SECONDS
            if upcoming is not None:
                timeout = min(max((upcoming - utcnow()).total_seconds(), 0.0), POLL_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _heartbeat(self) -> None:
        while not self._stopping:
            await asyncio.sleep(LEASE.total_seconds() / 3)
            held = list(self.runners)
            if held:
                until = utcnow() + LEASE
                await self.journal.run(
                    partial(store.renew, worker=self.worker_id, ids=held, until=until)
                )


def _release_all(connection: Any, ids: list[str], worker: str, now: datetime) -> None:
    for execution_id in ids:
        store.release(connection, execution_id, worker, now)
