"""One transaction's worth of changes to an execution, gathered before it is committed.

The runner decides everything in memory (which node finished, which edges it took,
which joins became ready), gathers the matching writes here, and hands them to the
journal as one unit: a node's result, the events that describe it, the runs it made
ready and the execution's new state are committed together, or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from server.store import runs as store
from server.store.models import utcnow


class Ops:
    def __init__(self, execution_id: str) -> None:
        self.execution_id = execution_id
        self._work: list[Callable[[Connection], Any]] = []
        self._events: list[dict[str, Any]] = []
        self._execution: dict[str, Any] = {}

    def __bool__(self) -> bool:
        return bool(self._work or self._events or self._execution)

    def run_update(self, row: Mapping[str, Any]) -> None:
        values = {k: v for k, v in row.items() if k not in {"id", "execution_id"}}
        run_id = row["id"]
        self._work.append(lambda c: store.update_run(c, run_id, values))

    def run_insert(self, row: Mapping[str, Any]) -> None:
        values = dict(row)
        self._work.append(lambda c: store.insert_runs(c, [values]))

    def supersede(self, run_ids: list[str]) -> None:
        ids = list(run_ids)
        self._work.append(lambda c: store.supersede_runs(c, ids))

    def wait_insert(self, values: Mapping[str, Any]) -> None:
        row = dict(values)
        self._work.append(lambda c: store.insert_wait(c, row))

    def waits_resolved(self, wait_ids: list[str], at: datetime) -> None:
        ids = list(wait_ids)
        self._work.append(lambda c: store.resolve_waits(c, ids, at))

    def poke_parent(self, parent_id: str, node_id: str) -> None:
        self._work.append(lambda c: store.poke_parent(c, parent_id, node_id, utcnow()))

    def event(
        self,
        type_: str,
        node_id: str | None = None,
        data: Mapping[str, Any] | None = None,
        actor: str | None = None,
        at: datetime | None = None,
    ) -> None:
        self._events.append(
            {
                "execution_id": self.execution_id,
                "node_id": node_id,
                "type": type_,
                "actor": actor,
                "data": dict(data or {}),
                "at": at or utcnow(),
            }
        )

    def execution(self, **values: Any) -> None:
        """Columns of the execution row to set (later calls win)."""
        self._execution.update(values)

    def apply(self, connection: Connection) -> None:
        for work in self._work:
            work(connection)
        store.insert_events(connection, self._events)
        if self._execution:
            store.update_execution(
                connection, self.execution_id, {"updated_at": utcnow(), **self._execution}
            )
