"""In-memory copies of an execution's rows, as the runner works with them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

TERMINAL = frozenset({"completed", "failed", "cancelled"})
RUN_FINISHED = frozenset({"completed", "failed", "skipped", "cancelled"})


@dataclass
class Run:
    """One attempt of one node (a ``node_runs`` row)."""

    id: str
    node_id: str
    generation: int
    attempt: int
    status: str
    kind: str = "node"
    input: Any = None
    output: Any = None
    error: Any = None
    logs: list[str] = field(default_factory=list)
    branch: str | None = None
    taken_edges: list[str] | None = None
    seq: int | None = None
    ready_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    #: whether the start of the current attempt is written (not a column)
    start_recorded: bool = True

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Run:
        return cls(
            id=row["id"],
            node_id=row["node_id"],
            generation=row["generation"],
            attempt=row["attempt"],
            status=row["status"],
            kind=row["kind"],
            input=row["input"],
            output=row["output"],
            error=row["error"],
            logs=list(row["logs"] or []),
            branch=row["branch"],
            taken_edges=row["taken_edges"],
            seq=row["seq"],
            ready_at=row["ready_at"],
            started_at=row["started_at"],
            completed_at=row["completed_at"],
        )

    def row(self, execution_id: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "execution_id": execution_id,
            "node_id": self.node_id,
            "generation": self.generation,
            "attempt": self.attempt,
            "status": self.status,
            "kind": self.kind,
            "input": self.input,
            "output": self.output,
            "error": self.error,
            "logs": self.logs,
            "branch": self.branch,
            "taken_edges": self.taken_edges,
            "seq": self.seq,
            "ready_at": self.ready_at,
            "started_at": self.started_at,
            "completed_at": self.completed_at,
            "superseded": False,
        }


@dataclass
class Wait:
    """An open wait of a node (a ``waits`` row)."""

    id: str
    node_id: str
    node_run_id: str
    kind: str
    due_at: datetime | None
    created_at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)
    resolution: Mapping[str, Any] | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Wait:
        return cls(
            id=row["id"],
            node_id=row["node_id"],
            node_run_id=row["node_run_id"],
            kind=row["kind"],
            due_at=row["due_at"],
            created_at=row["created_at"],
            data=row["data"] or {},
            resolution=row["resolution"],
        )
