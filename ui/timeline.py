"""What the execution page draws from the execution JSON (SPEC §5): each node's status
for the graph, the timeline's bars, and the runs of one node.

Pure functions over the JSON the API returns (``server.engine.views.execution_json``):
the page shows the engine's facts, it never recomputes them. Everything here is linear
in the number of node runs, so an execution with thousands of runs renders quickly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: Execution statuses after which nothing changes any more (the page stops polling).
TERMINAL = frozenset({"completed", "failed", "cancelled"})
#: What a waiting node waits on, as the status the graph shows for it.
WAIT_STATUS = {"retry": "retrying", "delay": "pending"}
#: The narrowest bar (percent of the execution's span): a 2 ms run stays visible.
MIN_BAR = 0.4

Run = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Bar:
    """One node run on the timeline; ``left`` and ``width`` are percentages of the span."""

    run: Run
    left: float
    width: float
    #: the run has not ended: its bar reaches "now".
    open: bool


def is_run(run: Run) -> bool:
    """A real attempt (entries for nodes skipped by dead-path elimination never ran)."""
    return int(run.get("attempt") or 0) > 0


def latest_runs(executed_nodes: Iterable[Run]) -> dict[str, Run]:
    """Each node's current run: not superseded, a node run (not a compensation), the
    highest generation then attempt. Nodes the engine reported skipped without a run
    keep their ``skipped`` entry."""
    found: dict[str, Run] = {}
    for run in executed_nodes:
        if run.get("kind", "node") != "node" or run.get("superseded"):
            continue
        node_id = str(run["node_id"])
        current = found.get(node_id)
        if current is None or _rank(run) >= _rank(current):
            found[node_id] = run
    return found


def node_statuses(execution: Mapping[str, Any]) -> dict[str, str]:
    """node id → the status the graph colours it with: its current run's status, or
    what it waits on (``waiting``; ``retrying`` while a retry is due)."""
    statuses = {
        node_id: str(run["status"])
        for node_id, run in latest_runs(execution.get("executed_nodes") or ()).items()
    }
    for wait in execution.get("waiting_on") or ():
        node_id = wait.get("node_id")
        if node_id:
            statuses[str(node_id)] = WAIT_STATUS.get(str(wait.get("kind")), "waiting")
    return statuses


def runs_of(executed_nodes: Iterable[Run], node_id: str) -> list[Run]:
    """Every entry of one node (attempts, reruns, compensations), newest first."""
    runs = [run for run in executed_nodes if run.get("node_id") == node_id]
    return sorted(runs, key=_rank, reverse=True)


def bars(
    executed_nodes: Sequence[Run],
    started_at: str | None,
    completed_at: str | None,
    now: datetime | None = None,
) -> list[Bar]:
    """The timeline: every run that started, in start order, with its bar's place.

    The span runs from the execution's start (or the first run's, if earlier) to its end
    (or the last run's, or ``now`` while anything is still open). A run still going
    reaches ``now``; a bar is never narrower than :data:`MIN_BAR` nor past the end.
    """
    moment = now or datetime.now(UTC)
    timed = [
        (run, start, _moment(run.get("completed_at")))
        for run in executed_nodes
        if is_run(run) and (start := _moment(run.get("started_at"))) is not None
    ]
    timed.sort(key=lambda item: item[1])
    if not timed:
        return []
    first = min([t[1] for t in timed] + [m for m in [_moment(started_at)] if m])
    ends = [end or moment for _, _, end in timed]
    last = _moment(completed_at) or max([*ends, moment])
    last = max([last, *ends])
    span = (last - first).total_seconds()
    result = []
    for run, start, end in timed:
        stop = end or moment
        if span <= 0:
            left, width = 0.0, 100.0
        else:
            left = (start - first).total_seconds() / span * 100
            width = (stop - start).total_seconds() / span * 100
        left = min(max(left, 0.0), 100.0 - MIN_BAR)
        width = min(max(width, MIN_BAR), 100.0 - left)
        result.append(Bar(run, round(left, 2), round(width, 2), end is None))
    return result


def _rank(run: Run) -> tuple[int, int, int]:
    return (
        int(run.get("kind", "node") == "node"),
        int(run.get("generation") or 0),
        int(run.get("attempt") or 0),
    )


def _moment(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
