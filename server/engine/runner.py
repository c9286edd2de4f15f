"""Drives one leased execution: runs its ready nodes, records each result, routes on it.

The database is the source of truth; a runner is a cache of one execution while this
process holds its lease. It is built by replaying the stored results (``_rebuild``), so a
runner made after a crash, a retry or a rerun is the same as one that never stopped.

Every result is recorded before anything is routed on it: the node's run, the events,
the runs it made ready and the execution's new state are one transaction (``Ops``),
committed through the journal while the runner's lock is held, so an execution's
transitions happen one at a time and in order. When only waits remain (a timer, a
person, a callback, a retry back-off), the runner hands the lease back with the time it
must be woken, and the execution costs a row, not a task.

Secrets (SPEC §3): ``${secrets.NAME}`` in a node's config is resolved only when the node
runs, from the vault (``services["secrets"]``), and only in the config the engine renders
— never in expressions or conditions (``ctx.scope`` has an empty ``secrets``). The values
an execution has used are kept with its runner, and everything it stores after that —
node inputs, outputs, errors, logs, events, execution errors — has them replaced by
``***``. A node whose config names no secret costs no query and no scan.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
from collections.abc import Coroutine, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from processors.base import Processor
from processors.runtime import (
    Completed,
    EdgeView,
    Failed,
    NodeContext,
    Outcome,
    Waiting,
    WaitResolution,
)
from server.config import LimitsSettings
from server.definitions.model import Definition, Node
from server.durations import format_duration
from server.engine.journal import Chain
from server.engine.ops import Ops
from server.engine.records import RUN_FINISHED, TERMINAL, Run, Wait
from server.engine.retry import delay_after, policy_for
from server.engine.routing import Advance, Routing
from server.engine.rules import ALLOWED, SKIPPABLE_NODES
from server.engine.scope import Scope, check_input
from server.errors import ExpressionError, FlowyardError, InvalidInput, InvalidTransition, Problem
from server.expressions import find_references, render
from server.secrets.redaction import Redactor
from server.secrets.vault import NAME as SECRET_NAME
from server.secrets.vault import NAME_RULE as SECRET_NAME_RULE
from server.secrets.vault import SecretsVault
from server.store import runs as store
from server.store.models import new_id, utcnow

if TYPE_CHECKING:
    from server.engine.engine import Engine

log = logging.getLogger("flowyard.engine")

#: A node still running after this many seconds has its start written on its own.
STARTED_MARK_AFTER = 0.05
#: An execution whose next timer or retry is at most this far away stays in memory.
LINGER = timedelta(seconds=2)
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
ACTIVE_RUN = frozenset({"ready", "running", "waiting"})


class Runner:
    def __init__(
        self,
        engine: Engine,
        row: Mapping[str, Any],
        runs: Sequence[Mapping[str, Any]],
        waits: Sequence[Mapping[str, Any]],
        definition: Definition,
        generations: Mapping[str, int],
    ) -> None:
        self.engine = engine
        self.id: str = row["id"]
        self.definition = definition
        self.nodes = {node.id: node for node in definition.nodes}
        self.status: str = row["status"]
        self.priority: int = row["priority"]
        self.row = dict(row)
        self.errors: list[dict[str, Any]] = list(row["errors"] or [])
        self.lock = asyncio.Lock()
        self.tasks: dict[str, asyncio.Future[Outcome]] = {}
        #: nodes handed to a worker and not yet recorded (queued, running or recording)
        self.queued: set[str] = set()
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.deadline_timer: asyncio.TimerHandle | None = None
        self.generations = dict(generations)
        self.finished = asyncio.Event()
        self.released = False
        self.poked = False
        #: this execution's units of work, in order; what is committed is a prefix
        self.chain = Chain()
        #: units submitted without waiting (``pipeline``), and how many of them are
        #: known committed (``flush``, ``commit``)
        self.posted = self.flushed = 0
        #: the status as last committed (to notice the commit that ends the execution)
        self._committed_status = self.status
        #: nodes whose child executions ended since the node last looked at them
        self.child_pokes: set[str] = set()
        self._rebuild(runs, waits)
        #: secret values this execution has used: what it stores is redacted of them
        self.secret_values: set[str] = set()
        self.redactor = Redactor(())
        #: per node (or compensation): the secrets its config names, or why it may not
        self._secret_refs: dict[str, frozenset[str] | str] = {}
        #: the unredacted config of a waiting node that used secrets, for its resume
        self._live_configs: dict[str, dict[str, Any]] = {}
        #: whether the secrets used before this runner existed are known (see
        #: :meth:`_restore_secrets`); nothing has run yet in a new execution
        self._secrets_restored = all(r.started_at is None for r in self.runs.values())

    # --- state ----------------------------------------------------------------------

    def _rebuild(
        self, run_rows: Sequence[Mapping[str, Any]], wait_rows: Sequence[Mapping[str, Any]]
    ) -> None:
        self.routing = Routing(self.definition.graph)
        self.scope = Scope(
            self.definition,
            self.row["input"] or {},
            self.row["overrides"] or {},
            {
                "id": self.id,
                "workflow_id": self.row["workflow_id"],
                "workflow_version": self.row["workflow_version"],
                "started_at": _iso(self.row["started_at"]),
                "owner": self.row["owner"],
            },
        )
        self.runs: dict[str, Run] = {}
        for raw in run_rows:
            run = Run.from_row(raw)
            if run.kind != "node":
                continue
            current = self.runs.get(run.node_id)
            if current is None or (run.generation, run.attempt) >= (
                current.generation,
                current.attempt,
            ):
                self.runs[run.node_id] = run
        self.routing.start()
        finished = sorted(
            (r for r in self.runs.values() if r.seq is not None), key=lambda r: r.seq or 0
        )
        for run in finished:
            if run.status in ("completed", "skipped"):
                self.scope.merge(
                    run.node_id,
                    run.output or {},
                    status=run.status,
                    started_at=run.started_at,
                    completed_at=run.completed_at,
                    attempts=run.attempt,
                )
            self.routing.resolve(run.node_id, run.taken_edges or [])
        self.seq = max((r.seq or 0 for r in self.runs.values()), default=0)
        self.waits = {w["node_id"]: Wait.from_row(w) for w in wait_rows}

    def _missing_runs(self, ops: Ops) -> None:
        """Create ready runs for activated nodes that have no live run (after a rerun)."""
        for node_id in self.routing.activated:
            if node_id not in self.runs and node_id not in self.routing.skipped:
                self._new_run(node_id, ops)

    def _new_run(self, node_id: str, ops: Ops, *, ready_at: datetime | None = None) -> Run:
        previous = self.generations.get(node_id)
        generation = 0 if previous is None else previous + 1
        self.generations[node_id] = generation
        run = Run(new_id(), node_id, generation, 1, "ready", ready_at=ready_at or utcnow())
        self.runs[node_id] = run
        ops.run_insert(run.row(self.id))
        return run

    def idempotency_key(self, run: Run) -> str:
        base = f"{self.id}:{run.node_id}"
        return f"{base}:r{run.generation}" if run.generation else base

    # --- committing -----------------------------------------------------------------

    async def commit(self, ops: Ops) -> None:
        """Commit ``ops`` (after everything submitted before) and wait for it.

        The commit that ends a child execution also wakes its parent node, in the same
        transaction (so a finished child is never missed, even across a crash).
        """
        ending = self.status in TERMINAL and self._committed_status not in TERMINAL
        parent = self.row.get("parent_execution_id")
        if ending and parent:
            ops.poke_parent(parent, self.row["parent_node_id"])
        target = self.posted
        await self.engine.journal.run(ops.apply, chain=self.chain)
        self.flushed = max(self.flushed, target)  # committed after all submitted before it
        self._committed_status = self.status
        if ending:
            self.engine.execution_ended(self)

    def child_poked(self, node_id: str) -> None:
        """A child execution of ``node_id`` has ended: let the node look again."""
        self.child_pokes.add(node_id)
        wait = self.waits.get(node_id)
        if wait is not None and wait.kind == "children":
            wait.resolution = {"children": True}
            self.dispatch()

    def pipeline(self, ops: Ops) -> None:
        """Submit a pure node's result without waiting for its commit.

        The node's successors may run meanwhile: nothing outside the execution has seen
        the result, and whatever does — an outside effect, a reply, a release of the
        lease — waits for :meth:`flush` first. If the commit fails, the later units are
        refused (``Chain``) and the runner is dropped and rebuilt from what was stored.
        """
        self.engine.journal.post(ops.apply, chain=self.chain, on_error=self._pipeline_failed)
        self.posted += 1

    def _pipeline_failed(self, error: BaseException) -> None:
        if not self.released:
            self.engine.spawn(self.engine.evict(self))

    async def flush(self) -> None:
        """Wait until everything submitted so far is committed (raise if it was not)."""
        if self.posted > self.flushed:
            target = self.posted
            await self.engine.journal.run(_nothing, chain=self.chain)
            self.flushed = max(self.flushed, target)

    # --- dispatching ----------------------------------------------------------------

    def start(self) -> None:
        deadline = self.row.get("deadline_at")
        if deadline is not None and self.status not in TERMINAL:
            delay = max((deadline - utcnow()).total_seconds(), 0)
            self.deadline_timer = asyncio.get_running_loop().call_later(
                delay, lambda: self.engine.spawn(self._on_deadline())
            )
        self.dispatch()

    def dispatch(self) -> None:
        """Hand ready nodes (and due waits) to the worker pool; release when idle."""
        if self.released:
            return
        if self.status == "running":
            now = utcnow()
            limit = self.definition.config.concurrency or len(self.nodes) or 1
            for node_id, run in self.runs.items():
                if node_id in self.tasks or node_id in self.queued:
                    continue
                due = self._due(run, now)
                if due is None:
                    continue
                if due > now:
                    self._remind(node_id, due)
                    continue
                if len(self.queued) >= limit:
                    break
                self.queued.add(node_id)
                self.engine.enqueue(self, node_id)
        if not self.tasks and not self.queued:
            self.engine.spawn(self._settle())

    def _due(self, run: Run, now: datetime) -> datetime | None:
        """When ``run`` can next make progress (``None``: not by itself)."""
        if run.status == "ready":
            return run.ready_at or now
        if run.status == "running":
            return now  # left running by a crash or a lost lease: run it again
        if run.status == "waiting":
            wait = self.waits.get(run.node_id)
            if wait is None or wait.resolution is not None:
                return now
            return wait.due_at
        return None

    def _remind(self, node_id: str, when: datetime) -> None:
        if node_id in self.timers or when - utcnow() > LINGER:
            return
        delay = max((when - utcnow()).total_seconds(), 0)

        def fire() -> None:
            self.timers.pop(node_id, None)
            self.dispatch()

        self.timers[node_id] = asyncio.get_running_loop().call_later(delay, fire)

    async def _settle(self) -> None:
        """Nothing is running: finish the execution, or release it while it waits."""
        async with self.lock:
            if self.released or self.tasks or self.queued:
                return
            await self.flush()
            if self.status == "running" and not any(
                r.status in ACTIVE_RUN for r in self.runs.values()
            ):
                ops = Ops(self.id)
                await self._complete_execution(ops)
                await self.commit(ops)
            if self._past_deadline():
                # Adopted after its deadline (woken for it): time out now, rather than
                # release with the deadline as the next wake-up and be claimed again.
                await self._time_out()
            if self.status == "running" and self._has_due_work():
                self.engine.spawn(self._redispatch())
                return
            await self.engine.release(self, self._next_wake())

    async def _redispatch(self) -> None:
        self.dispatch()

    def _has_due_work(self) -> bool:
        now = utcnow()
        for run in self.runs.values():
            due = self._due(run, now)
            if due is not None and due - now <= LINGER:
                return True
        return False

    def _next_wake(self) -> datetime | None:
        if self.status in TERMINAL:
            return None
        times = []
        if self.status == "running":
            now = utcnow()
            times = [due for run in self.runs.values() if (due := self._due(run, now)) is not None]
        if self.status == "pending" and self.row.get("not_before") is not None:
            times.append(self.row["not_before"])  # a delayed start, adopted early
        if self.row.get("deadline_at") is not None:
            times.append(self.row["deadline_at"])
        return min(times) if times else None

    # --- running a node --------------------------------------------------------------

    async def execute(self, node_id: str) -> None:
        """Called by a worker: run (or resume) one node and record its outcome.

        The node stays in ``queued`` until its outcome is recorded: between the end of
        the processor and the commit of its result the run is still ``running``, and
        ``dispatch`` must not hand it out a second time."""
        run = self.runs.get(node_id)
        if node_id not in self.queued:
            return  # not handed out by this runner's dispatch (a stale queue entry)
        try:
            if self.status != "running" or run is None or self.released:
                return
            if run.status == "waiting":
                await self._resume(self.nodes[node_id], run)
            elif run.status in ("ready", "running"):
                await self._run(self.nodes[node_id], run)
        finally:
            self.queued.discard(node_id)
            self.dispatch()

    async def _run(self, node: Node, run: Run) -> None:
        processor = self.engine.processors.get(node.type)
        if not self._secrets_restored:
            await self._restore_secrets()
        run.status, run.started_at, run.start_recorded = "running", utcnow(), False
        # A quick node's start is written with its result (one commit, not two); a slower
        # one's is written as soon as it has run this long, so it shows as running.
        self.engine.starting(self, run)
        try:
            config, used_secrets = await self._render(
                node.id, node.config, processor, self.scope.view()
            )
            pure = isinstance(config, Failed) or processor.is_pure(config)
            if isinstance(config, Failed):
                outcome: Outcome | None = config
            else:
                if not pure:
                    await self.flush()  # an outside effect never builds on uncommitted state
                run.input = self.redactor.value(config) if used_secrets else config
                if used_secrets:
                    self._live_configs[run.id] = config
                ctx = self._context(node, run)
                outcome = await self._invoke(node.id, processor.run(config, ctx), node.timeout)
        finally:
            self.engine.started(run)
        if not isinstance(outcome, Waiting):
            self._live_configs.pop(run.id, None)
        await self._record(node, run, self._redacted(run, outcome), pure=pure)

    def mark_started(self, run: Run) -> None:
        if not run.start_recorded and run.status == "running" and not self.released:
            run.start_recorded = True
            self.engine.journal.post(_started_work(self.id, run), chain=self.chain)

    async def _resume(self, node: Node, run: Run) -> None:
        self.child_pokes.discard(node.id)  # the node looks at all its children now
        processor = self.engine.processors.get(node.type)
        wait = self.waits.get(node.id)
        now = utcnow()
        resolution = WaitResolution(
            kind=wait.kind if wait else "timer",  # type: ignore[arg-type]
            created_at=wait.created_at if wait else (run.started_at or now),
            due_at=wait.due_at if wait else None,
            resolved_at=now,
            data=dict(wait.resolution or {}) if wait else {},
            wait_data=dict(wait.data) if wait else {},
        )
        if not self._secrets_restored:
            await self._restore_secrets()
        config = await self._resume_config(node, run, processor)
        ctx = self._context(node, run)
        await self.flush()
        outcome = await self._invoke(node.id, processor.resume(config, ctx, resolution), None)
        if not isinstance(outcome, Waiting):
            self._live_configs.pop(run.id, None)
        await self._record(node, run, self._redacted(run, outcome), pure=False)

    async def _resume_config(self, node: Node, run: Run, processor: Processor) -> dict[str, Any]:
        """The config a waiting node resumes with: as it ran (its stored input is redacted,
        so a node that used secrets gets its live config, or — when this runner was
        rebuilt meanwhile — its config rendered again)."""
        live = self._live_configs.get(run.id)
        if live is not None:
            return live
        stored: dict[str, Any] = run.input or {}
        names = self._secret_names(node.id, node.config, processor.unrendered_keys)
        if not names or isinstance(names, str):
            return stored
        config, _ = await self._render(node.id, node.config, processor, self.scope.view())
        return stored if isinstance(config, Failed) else config

    # --- secrets ------------------------------------------------------------------------

    async def _render(
        self,
        key: str,
        config: Mapping[str, Any],
        processor: Processor,
        view: dict[str, Any],
    ) -> tuple[dict[str, Any] | Failed, bool]:
        """``config`` with its templates rendered (``unrendered_keys`` left as they are),
        and whether it used secrets. ``key`` names the config (a node id) for caching."""
        keep = processor.unrendered_keys
        names = self._secret_names(key, config, keep)
        if isinstance(names, str):
            return Failed(f"config template: {names}", retryable=False), False
        if names and not processor.accepts_secrets:
            return Failed(
                f"a {processor.type_name} node cannot use ${{secrets.…}}: its config is shown "
                "to people as it is (put the secret in a node that uses it, e.g. an api call)",
                retryable=False,
            ), False
        if names:
            found = await self._secrets(names)
            if isinstance(found, Failed):
                return found, False
            view["secrets"] = found
        try:
            rendered = {k: v if k in keep else render(v, view) for k, v in config.items()}
        except ExpressionError as error:
            return Failed(f"config template: {error.message}", retryable=False), bool(names)
        return rendered, bool(names)

    def _secret_names(
        self, key: str, config: Mapping[str, Any], keep: frozenset[str]
    ) -> frozenset[str] | str:
        found = self._secret_refs.get(key)
        if found is None:
            found = self._secret_refs[key] = referenced_secrets(config, keep)
        return found

    async def _secrets(self, names: frozenset[str]) -> dict[str, str] | Failed:
        """The values of ``names`` from the vault (learned for redaction), or why not."""
        vault = self.engine.services.get("secrets")
        if not isinstance(vault, SecretsVault):
            return Failed("this server has no secrets store for ${secrets.…}", retryable=False)
        try:
            found = await vault.values(names)
        except FlowyardError as error:
            return Failed(error.message, retryable=False)
        except Exception as error:  # the database did not answer: try again later
            return Failed(f"the secrets could not be read ({type(error).__name__})")
        missing = sorted(names - found.keys())
        if missing:
            return Failed(
                "; ".join(
                    f"no secret named {name}; set it with PUT /api/v1/secrets/{name}"
                    for name in missing
                ),
                retryable=False,
            )
        self._learn(found.values())
        return found

    def _learn(self, values: Iterable[str]) -> None:
        new = set(values) - self.secret_values
        if new:
            self.secret_values |= new
            self.redactor = Redactor(self.secret_values)

    async def _restore_secrets(self) -> None:
        """Learn the secrets of the nodes that ran before this runner was built (after a
        restart or in another process), so later outputs echoing one are still redacted."""
        names: set[str] = set()
        for node_id, run in self.runs.items():
            node = self.nodes.get(node_id)
            if node is None or (run.started_at is None and run.status == "ready"):
                continue
            keep = self.engine.processors.get(node.type).unrendered_keys
            found = self._secret_names(node_id, node.config, keep)
            if isinstance(found, frozenset):
                names |= found
        vault = self.engine.services.get("secrets")
        if names and isinstance(vault, SecretsVault):
            try:
                self._learn((await vault.values(names)).values())
            except Exception:  # unreadable now (the database?): the next node tries again
                return
        self._secrets_restored = True

    def _redacted(self, run: Run, outcome: Outcome | None) -> Outcome | None:
        """``outcome`` (and the run's logs) without the secret values this execution used."""
        redactor = self.redactor
        if not redactor or outcome is None:
            return outcome
        run.logs[:] = [redactor.text(line) for line in run.logs]
        if isinstance(outcome, Completed):
            return Completed(
                redactor.value(dict(outcome.output)), outcome.branch, outcome.next_node
            )
        if isinstance(outcome, Failed):
            return Failed(
                redactor.text(outcome.error),
                outcome.retryable,
                redactor.value(dict(outcome.details)),
            )
        return outcome  # a wait's data is stored, never shown (a callback checks its secrets)

    def _context(self, node: Node, run: Run) -> NodeContext:
        outgoing = [
            EdgeView(e.id, e.to_node, e.condition, e.on_error)
            for e in self.routing.outgoing[node.id]
        ]
        scope = self.scope.view()
        return NodeContext(
            execution_id=self.id,
            workflow_id=self.definition.id,
            node_id=node.id,
            node_name=node.name,
            attempt=run.attempt,
            idempotency_key=self.idempotency_key(run),
            scope=scope,
            outgoing_edges=outgoing,
            evaluate=self.engine.evaluator(scope),
            log=run.logs.append,
            now=utcnow,
            services=self.engine.services,
        )

    async def _invoke(
        self, node_id: str, work: Coroutine[Any, Any, Outcome], limit: float | None
    ) -> Outcome | None:
        """Run a processor hook; ``None`` when the node was cancelled by a control action.

        The timeout does not wait for the processor to honour its cancellation (as
        ``asyncio.wait_for`` would, returning the result of a processor that swallowed
        it): once the time is up, the node has failed, whatever the processor does next.
        """
        future: asyncio.Future[Outcome] = asyncio.ensure_future(work)
        self.tasks[node_id] = future
        try:
            if limit:
                done, _ = await asyncio.wait({future}, timeout=limit)
                if not done:
                    future.cancel()
                    return Failed(
                        f"the node timed out after {format_duration(limit)}", retryable=True
                    )
            return await future
        except asyncio.CancelledError:
            if future.cancelled() and not _current_task_cancelling():
                return None
            future.cancel()  # this worker is being stopped: stop the processor too
            raise
        except FlowyardError as error:
            return Failed(error.message, retryable=False)
        except Exception as error:
            log.warning(
                "processor raised",
                extra={
                    "action": "node.raised",
                    "execution_id": self.id,
                    "node_id": node_id,
                    "error_type": type(error).__name__,
                },
            )
            return Failed(f"{type(error).__name__}: {error}", retryable=True)
        finally:
            self.tasks.pop(node_id, None)

    # --- recording outcomes -------------------------------------------------------------

    async def _record(self, node: Node, run: Run, outcome: Outcome | None, *, pure: bool) -> None:
        """Record a node's outcome and route on it (see :meth:`pipeline` for ``pure``)."""
        async with self.lock:
            if outcome is None or self.released or self.runs.get(node.id) is not run:
                return  # cancelled, or superseded by a control action meanwhile
            if self.status not in ("running", "suspended"):
                return
            ops = Ops(self.id)
            if not run.start_recorded and run.started_at is not None:
                run.start_recorded = True
                ops.event("node.started", node.id, {"attempt": run.attempt}, at=run.started_at)
            if isinstance(outcome, Completed):
                await self._completed(node, run, outcome, ops)
            elif isinstance(outcome, Waiting):
                self._waiting(node, run, outcome, ops)
            else:
                await self._failed(node, run, outcome, ops)
            ops.execution(current_node=node.id)
            if self.status == "running" and self._only_active(node.id):
                await self._complete_execution(ops)  # the last node: finish in the same commit
            if self.status in TERMINAL:
                ops.execution(lease_owner=None, lease_until=None, next_wake_at=None)
                await self.commit(ops)
                await self.engine.release(self, None, written=True)
            elif pure:
                self.pipeline(ops)
            else:
                await self.commit(ops)

    def _only_active(self, node_id: str) -> bool:
        """Nothing but ``node_id`` (being recorded now) is queued, running or waiting."""
        if self.tasks or self.queued - {node_id}:
            return False
        return not any(r.status in ACTIVE_RUN for r in self.runs.values())

    #: (the scope measured, JSON size of each node's output in it, size of the input),
    #: measured once per scope object: a rebuilt scope (retry, rerun) is measured anew
    _scope_sizes: tuple[Scope, dict[str, int], int] | None = None

    def _scope_too_large(self, node_id: str, size: int) -> str | None:
        """Why merging ``output`` would grow the scope past ``limits.max_scope_bytes`` (the
        JSON size of the input plus each node's latest output), or ``None``."""
        limit = (self.engine.services.get("limits") or LimitsSettings()).max_scope_bytes
        measured = self._scope_sizes
        if measured is None or measured[0] is not self.scope:
            sizes = {n: _json_size(entry["output"]) for n, entry in self.scope.nodes.items()}
            measured = self._scope_sizes = (self.scope, sizes, _json_size(self.scope.input))
        _, sizes, base = measured
        total = base + size + sum(s for n, s in sizes.items() if n != node_id)
        if total > limit:
            return (
                f"the node's output ({size:,} bytes as JSON) would grow the execution's scope "
                f"to {total:,} bytes, over the limit of {limit:,} (setting "
                "limits.max_scope_bytes); keep large data out of the scope or ask the "
                "operator to raise the limit"
            )
        sizes[node_id] = size
        return None

    async def _completed(
        self, node: Node, run: Run, outcome: Completed, ops: Ops, *, status: str = "completed"
    ) -> None:
        output = dict(outcome.output)
        unstorable = _unstorable(output)
        if isinstance(unstorable, str):
            await self._failed(node, run, Failed(unstorable, retryable=False), ops)
            return
        taken = await self._choose_edges(node, outcome, output)
        if isinstance(taken, Failed):
            await self._failed(node, run, taken, ops)
            return
        too_large = self._scope_too_large(node.id, unstorable)
        if too_large is not None:
            await self._failed(node, run, Failed(too_large, retryable=False), ops)
            return
        now = utcnow()
        self.seq += 1
        run.status, run.output, run.branch = status, output, outcome.branch
        run.taken_edges, run.seq, run.completed_at = taken, self.seq, now
        self._resolve_wait(node.id, ops, now)
        ops.run_update(run.row(self.id))
        ops.event(
            f"node.{status}",
            node.id,
            {"attempt": run.attempt, "branch": outcome.branch, "duration_ms": _duration_ms(run)},
        )
        self.scope.merge(
            node.id,
            output,
            status=status,
            started_at=run.started_at,
            completed_at=now,
            attempts=run.attempt,
        )
        self._advance(self.routing.resolve(node.id, taken), ops)

    async def _choose_edges(
        self, node: Node, outcome: Completed, output: dict[str, Any]
    ) -> list[str] | Failed:
        normal = [e for e in self.routing.outgoing[node.id] if not e.on_error]
        processor = self.engine.processors.get(node.type)
        if processor.routes_by_label:
            taken = [
                e.id
                for e in normal
                if (e.condition is not None and e.condition == outcome.branch)
                or (outcome.next_node is not None and e.to_node == outcome.next_node)
            ]
            return taken or [e.id for e in normal if e.condition is None]
        view = self.scope.view()
        if node.output_key:
            view[node.output_key] = output
        else:
            view.update(output)
        view["nodes"] = {**view["nodes"], node.id: {"output": output, "status": "completed"}}
        taken = []
        for edge in normal:
            condition = edge.condition
            if condition is None or (outcome.branch is not None and condition == outcome.branch):
                taken.append(edge.id)
                continue
            if (
                outcome.branch is not None
                and IDENTIFIER.fullmatch(condition)
                and condition not in view
            ):
                continue  # another branch label of this node
            try:
                if await self.engine.evaluate(condition, view):
                    taken.append(edge.id)
            except ExpressionError as error:
                return Failed(f"condition of edge {edge.id!r}: {error.message}", retryable=False)
        return taken

    def _waiting(self, node: Node, run: Run, outcome: Waiting, ops: Ops) -> None:
        now = utcnow()
        run.status = "waiting"
        self._resolve_wait(node.id, ops, now)  # a resumed node may wait again (escalation…)
        wait = Wait(new_id(), node.id, run.id, outcome.kind, outcome.until, now, dict(outcome.data))
        if outcome.kind == "children" and node.id in self.child_pokes:
            wait.resolution = {"children": True}  # a child ended while the node was looking
        self.waits[node.id] = wait
        ops.run_update(run.row(self.id))
        ops.wait_insert(
            {
                "id": wait.id,
                "execution_id": self.id,
                "node_id": node.id,
                "node_run_id": run.id,
                "kind": wait.kind,
                "due_at": wait.due_at,
                "data": wait.data,
                "token": outcome.token,
                "created_at": now,
                # (absent, not None: None would be stored as JSON null on PostgreSQL)
                **({"resolution": wait.resolution} if wait.resolution is not None else {}),
            }
        )
        ops.event("node.waiting", node.id, {"kind": wait.kind, "until": _iso(wait.due_at)})

    async def _failed(self, node: Node, run: Run, outcome: Failed, ops: Ops) -> None:
        now = utcnow()
        run.status, run.completed_at = "failed", now
        run.error = {"message": outcome.error, **dict(outcome.details)}
        self._resolve_wait(node.id, ops, now)
        policy = policy_for(node, self.definition.config)
        # on_failure "retry" retries every failure, even one a processor calls final.
        retry_all = self.definition.config.error_handling.on_failure == "retry"
        retryable = outcome.retryable or retry_all
        if retryable and run.attempt < policy.max_attempts and self.status == "running":
            ops.run_update(run.row(self.id))
            delay = delay_after(policy, run.attempt, self.engine.random)
            retry = Run(
                new_id(),
                node.id,
                run.generation,
                run.attempt + 1,
                "ready",
                ready_at=now + timedelta(seconds=delay),
            )
            self.runs[node.id] = retry
            ops.run_insert(retry.row(self.id))
            ops.event(
                "node.retry_scheduled",
                node.id,
                {"attempt": run.attempt, "error": outcome.error, "delay_seconds": round(delay, 3)},
            )
            return
        self.seq += 1
        run.seq = self.seq
        handlers = [e for e in self.routing.outgoing[node.id] if e.on_error]
        view = self.scope.view({"error": outcome.error})
        taken = []
        for edge in handlers:
            try:
                if edge.condition is None or await self.engine.evaluate(edge.condition, view):
                    taken.append(edge.id)
            except ExpressionError:
                continue
        run.taken_edges = taken
        ops.run_update(run.row(self.id))
        ops.event(
            "node.failed",
            node.id,
            {"attempt": run.attempt, "error": outcome.error, "routed": bool(taken)},
        )
        if taken:
            self._advance(self.routing.resolve(node.id, taken), ops)
            return
        handling = self.definition.config.error_handling
        if handling.on_failure == "continue":
            self.errors.append({"node_id": node.id, "error": outcome.error, "at": now.isoformat()})
            ops.execution(errors=list(self.errors))
            self._advance(self.routing.resolve(node.id, []), ops)
            if handling.max_errors is not None and len(self.errors) >= handling.max_errors:
                message = (
                    f"{len(self.errors)} node failures reached max_errors ({handling.max_errors})"
                )
                await self._fail_execution(ops, message, node.id, reason="max_errors")
            return
        await self._fail_execution(ops, outcome.error, node.id, reason="node_failed")

    def _advance(self, advance: Advance, ops: Ops) -> None:
        for node_id in advance.skipped:
            ops.event("node.skipped", node_id, {"reason": "not on a taken path"})
        for node_id in advance.ready:
            self._new_run(node_id, ops)

    def _resolve_wait(self, node_id: str, ops: Ops, at: datetime) -> None:
        wait = self.waits.pop(node_id, None)
        if wait is not None:
            ops.waits_resolved([wait.id], at)

    # --- ending -------------------------------------------------------------------------

    async def _complete_execution(self, ops: Ops) -> None:
        try:
            output = (
                render(dict(self.definition.output), self.scope.view())
                if self.definition.output
                else self._own_variables()
            )
        except ExpressionError as error:
            await self._fail_execution(
                ops, f"output mapping: {error.message}", None, reason="output"
            )
            return
        self.status = "completed"
        now = utcnow()
        ops.execution(status="completed", output=output, completed_at=now, errors=list(self.errors))
        ops.event("execution.completed", None, {"errors": len(self.errors)})

    def _own_variables(self) -> dict[str, Any]:
        """The default output: the final variables, less those an inline body's child
        inherited from its parent and left as they were."""
        variables = self.scope.public_variables()
        inherited = (self.row.get("context_metadata") or {}).get("inherited") or ()
        given = self.row["input"] or {}
        for name in inherited:
            if name in variables and variables[name] == given.get(name):
                del variables[name]
        return variables

    async def _fail_execution(
        self, ops: Ops, message: str, node_id: str | None, *, reason: str
    ) -> None:
        self.status = "failed"
        now = utcnow()
        self._stop_work(ops, now)
        if self.definition.config.error_handling.rollback:
            await self._compensate(ops)
        error = {"message": message, "node_id": node_id, "reason": reason}
        ops.execution(status="failed", error=error, errors=list(self.errors), completed_at=now)
        ops.event("execution.failed", node_id, error)

    def _stop_work(self, ops: Ops, now: datetime, *, actor: str | None = None) -> None:
        """Cancel running nodes, abandon waits, mark unfinished runs cancelled."""
        current = asyncio.current_task()
        for node_id, future in list(self.tasks.items()):
            if future is not current:
                future.cancel()
            self.tasks.pop(node_id, None)
        for run in self.runs.values():
            if run.status in ACTIVE_RUN:
                run.status, run.completed_at = "cancelled", now
                ops.run_update(run.row(self.id))
                ops.event("node.cancelled", run.node_id, {}, actor=actor)
        if self.waits:
            ops.waits_resolved([w.id for w in self.waits.values()], now)
            self.waits.clear()
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()
        self._live_configs.clear()

    async def _compensate(self, ops: Ops) -> None:
        """Saga rollback: each completed node's ``compensate``, newest completion first."""
        await self.flush()  # compensations act outside: on committed results only
        done = sorted(
            (r for r in self.runs.values() if r.status == "completed" and r.seq),
            key=lambda r: r.seq or 0,
            reverse=True,
        )
        for run in done:
            step = self.nodes[run.node_id].compensate
            if step is None:
                continue
            processor = self.engine.processors.get(step.type)
            view = self.scope.view({"output": run.output or {}})
            record = Run(
                new_id(),
                run.node_id,
                run.generation,
                1,
                "running",
                kind="compensation",
                started_at=utcnow(),
            )
            config, used_secrets = await self._render(
                f"{run.node_id}#compensate", step.config, processor, view
            )
            if isinstance(config, Failed):
                outcome: Outcome | None = config
            else:
                record.input = self.redactor.value(config) if used_secrets else config
                ctx = self._context(self.nodes[run.node_id], record)
                outcome = await self._invoke(
                    f"{run.node_id}#compensate", processor.run(config, ctx), step.timeout
                )
                outcome = self._redacted(record, outcome)
            record.completed_at = utcnow()
            if isinstance(outcome, Completed):
                record.status, record.output = "completed", dict(outcome.output)
                ops.event("node.compensated", run.node_id, {})
            else:
                message = (
                    outcome.error
                    if isinstance(outcome, Failed)
                    else "a compensation step cannot wait"
                )
                record.status, record.error = "failed", {"message": message}
                self.errors.append(
                    {
                        "node_id": run.node_id,
                        "error": f"compensation failed: {message}",
                        "at": record.completed_at.isoformat(),
                    }
                )
                ops.event("node.compensation_failed", run.node_id, {"error": message})
            ops.run_insert(record.row(self.id))

    async def _on_deadline(self) -> None:
        async with self.lock:
            if self.released or self.status not in ("running", "suspended"):
                return
            await self._time_out()
        self.dispatch()

    def _past_deadline(self) -> bool:
        deadline = self.row.get("deadline_at")
        return (
            deadline is not None
            and deadline <= utcnow()
            and self.status in ("running", "suspended")
        )

    async def _time_out(self) -> None:
        """Fail the execution for its deadline (the runner's lock is held)."""
        ops = Ops(self.id)
        limit = format_duration(
            (
                self.row["deadline_at"] - (self.row["started_at"] or self.row["created_at"])
            ).total_seconds()
        )
        await self._fail_execution(
            ops, f"the execution timed out after {limit}", None, reason="timeout"
        )
        await self.commit(ops)

    # --- control actions (SPEC §5) ---------------------------------------------------------

    async def control(self, action: str, actor: str | None, **options: Any) -> None:
        async with self.lock:
            ops = Ops(self.id)
            result = getattr(self, f"_control_{action}")(ops, actor, **options)
            if inspect.isawaitable(result):
                await result
            await self.commit(ops)
        self.dispatch()

    def _require(self, action: str, allowed: frozenset[str]) -> None:
        if self.status not in allowed:
            raise InvalidTransition(
                f"cannot {action} execution {self.id}: it is {self.status}; "
                f"{action} needs {' or '.join(sorted(allowed))}"
            )

    def _control_cancel(self, ops: Ops, actor: str | None) -> None:
        self._require("cancel", ALLOWED["cancel"])
        now = utcnow()
        self.status = "cancelled"
        self._stop_work(ops, now, actor=actor)
        ops.execution(status="cancelled", completed_at=now, next_wake_at=None)
        ops.event("execution.cancelled", None, {}, actor=actor)

    def _control_suspend(self, ops: Ops, actor: str | None) -> None:
        self._require("suspend", ALLOWED["suspend"])
        self.status = "suspended"
        ops.execution(status="suspended")
        ops.event("execution.suspended", None, {}, actor=actor)

    def _control_resume(self, ops: Ops, actor: str | None) -> None:
        self._require("resume", ALLOWED["resume"])
        # A delayed start suspended before it began goes back to waiting for its time
        # (the engine begins it then, as any delayed start).
        self.status = "running" if self.row.get("started_at") is not None else "pending"
        ops.execution(status=self.status)
        ops.event("execution.resumed", None, {}, actor=actor)

    def _control_retry(self, ops: Ops, actor: str | None) -> None:
        self._require("retry", ALLOWED["retry"])
        retried = self._revive(ops, {"failed", "cancelled"})
        self.status = "running"
        ops.execution(status="running", error=None, completed_at=None)
        ops.event("execution.retried", None, {"nodes": retried}, actor=actor)

    def _revive(self, ops: Ops, statuses: set[str]) -> list[str]:
        """Give every run in ``statuses`` a fresh attempt (same idempotency key); completed
        outputs stay. A revived node runs once more; automatic retries continue only while
        its retry policy has attempts left."""
        revived = []
        for node_id, run in list(self.runs.items()):
            if run.status in statuses:
                revived.append(node_id)
                ops.supersede([run.id])
                fresh = Run(
                    new_id(), node_id, run.generation, run.attempt + 1, "ready", ready_at=utcnow()
                )
                self.runs[node_id] = fresh
                ops.run_insert(fresh.row(self.id))
        self._replay_from_runs()
        return revived

    def _control_rerun(
        self,
        ops: Ops,
        actor: str | None,
        node_id: str,
        input_patch: Mapping[str, Any] | None = None,
    ) -> None:
        self._require("rerun", ALLOWED["rerun"])
        if node_id not in self.nodes:
            raise InvalidInput(
                f"no node {node_id!r} in this workflow",
                details=[Problem("/node_id", f"known: {', '.join(self.nodes)}")],
            )
        if input_patch:
            patched = {**(self.row["input"] or {}), **(self.row["overrides"] or {}), **input_patch}
            problems = [
                Problem(p.path.replace("/input/", "/input_patch/", 1), p.message)
                for p in check_input(self.definition, patched)
            ]
            if problems:
                raise InvalidInput(
                    "the input patch does not match the declared variables", details=problems
                )
        reset = self.routing.downstream(node_id)
        ops.supersede([self.runs[n].id for n in reset if n in self.runs])
        for node in reset:
            self.runs.pop(node, None)
        if input_patch:
            self.row["overrides"] = {**(self.row["overrides"] or {}), **input_patch}
            ops.execution(overrides=self.row["overrides"])
        self._replay_from_runs()
        self.status = "running"
        self._missing_runs(ops)
        ops.execution(status="running", error=None, completed_at=None, output=None)
        ops.event(
            "execution.rerun",
            node_id,
            {"reset": reset, "input_patch": dict(input_patch or {})},
            actor=actor,
        )

    async def _control_skip(
        self, ops: Ops, actor: str | None, node_id: str, output: Mapping[str, Any]
    ) -> None:
        run = self.runs.get(node_id)
        if run is None or run.status not in SKIPPABLE_NODES:
            state = run.status if run else "not reached"
            raise InvalidTransition(
                f"cannot skip node {node_id!r}: it is {state}; "
                "only a failed or waiting node can be skipped"
            )
        if self.status == "failed" and run.status == "failed":
            # Undo the failure this node caused: carry on from it, and give the nodes that
            # were cancelled when the execution failed another attempt.
            self.status = "running"
            self._revive(ops, {"cancelled"})
            ops.execution(status="running", error=None, completed_at=None)
        self._require("skip", ALLOWED["skip"])
        if run.seq is not None:
            self._unresolve(node_id)
        output = self.redactor.value(dict(output)) if self.redactor else output
        ops.event("node.skipped_by_user", node_id, {"output": dict(output)}, actor=actor)
        branch = output.get("decision") if isinstance(output.get("decision"), str) else None
        await self._completed(
            self.nodes[node_id], run, Completed(output, branch=branch), ops, status="skipped"
        )

    def _unresolve(self, node_id: str) -> None:
        """Take back a final failure's routing (its edges become unresolved again)."""
        run = self.runs[node_id]
        run.seq, run.taken_edges = None, None
        self._replay_from_runs()

    def _replay_from_runs(self) -> None:
        rows = [r.row(self.id) for r in self.runs.values()]
        self._rebuild(rows, [self._wait_row(w) for w in self.waits.values()])

    def _wait_row(self, wait: Wait) -> dict[str, Any]:
        return {
            "id": wait.id,
            "node_id": wait.node_id,
            "node_run_id": wait.node_run_id,
            "kind": wait.kind,
            "due_at": wait.due_at,
            "created_at": wait.created_at,
            "data": wait.data,
            "resolution": wait.resolution,
        }


def _nothing(connection: Any) -> None:
    """A unit that only marks its place in the journal's order (see ``Runner.flush``)."""
    del connection


def referenced_secrets(config: Mapping[str, Any], keep: frozenset[str]) -> frozenset[str] | str:
    """The secret names the rendered keys of ``config`` refer to, or why a reference to
    ``secrets`` is refused (anything but ``${secrets.NAME}`` would reveal or list them).

    Only strings that contain ``secrets`` are parsed; a malformed template is left for
    rendering to report."""
    names: set[str] = set()
    for key, value in config.items():
        if key in keep:
            continue
        for text in _strings(value):
            if "secrets" not in text:
                continue
            try:
                references = find_references(text)
            except ExpressionError:
                continue
            for ref in references:
                if ref.root != "secrets":
                    continue
                name = ref.path[1] if len(ref.path) == 2 else None
                if not isinstance(name, str) or not SECRET_NAME.fullmatch(name):
                    return (
                        f"${{{ref.raw}}}: use a secret as ${{secrets.NAME}} "
                        f"(NAME: {SECRET_NAME_RULE})"
                    )
                names.add(name)
    return frozenset(names)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _started_work(execution_id: str, run: Run) -> Any:
    values = {"status": "running", "started_at": run.started_at}
    event = {
        "execution_id": execution_id,
        "node_id": run.node_id,
        "type": "node.started",
        "actor": None,
        "data": {"attempt": run.attempt},
        "at": run.started_at,
    }

    def work(connection: Any) -> None:
        store.update_run(connection, run.id, values)
        store.insert_events(connection, [event])

    return work


def _json_size(value: Any) -> int:
    """Characters of ``value`` as compact JSON (ASCII: one byte each)."""
    return len(json.dumps(value, separators=(",", ":"), default=str))


def _unstorable(output: Mapping[str, Any]) -> str | int:
    """Why an output cannot be stored (it would fail the commit, again on every re-run),
    or else its size as compact JSON. JSON cannot hold NaN or infinities, and
    PostgreSQL's JSONB no NUL."""
    try:
        text = json.dumps(output, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        return f"the node's output cannot be stored as JSON: {error}"
    if "\\u0000" in text and _has_nul(output):
        return (
            "the node's output contains a NUL character (\\u0000), which cannot be "
            "stored; remove it from the text"
        )
    return len(text)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(item) for item in value)
    return False


def _current_task_cancelling() -> bool:
    task = asyncio.current_task()
    return bool(task and task.cancelling())


def _duration_ms(run: Run) -> int | None:
    if run.started_at and run.completed_at:
        return int((run.completed_at - run.started_at).total_seconds() * 1000)
    return None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


__all__ = ["RUN_FINISHED", "Runner"]
