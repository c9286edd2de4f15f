"""The execution page's pure helpers: which status each node shows, and the timeline's
bar geometry (``ui.timeline``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ui.timeline import MIN_BAR, bars, latest_runs, node_statuses, runs_of

T0 = datetime(2026, 1, 1, 9, 0, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return datetime.fromtimestamp(T0.timestamp() + seconds, UTC).isoformat().replace("+00:00", "Z")


def run(
    node_id: str, status: str, start: float | None, end: float | None, **fields: Any
) -> dict[str, Any]:
    return {
        "node_id": node_id,
        "status": status,
        "kind": "node",
        "attempt": 1,
        "generation": 0,
        "superseded": False,
        "started_at": at(start) if start is not None else None,
        "completed_at": at(end) if end is not None else None,
        **fields,
    }


# --- statuses -----------------------------------------------------------------------------


def test_the_latest_attempt_of_the_newest_generation_wins() -> None:
    runs = [
        run("a", "failed", 0, 1, attempt=1),
        run("a", "completed", 2, 3, attempt=2),
        run("b", "completed", 3, 4, generation=0, superseded=True),
        run("b", "failed", 5, 6, generation=1, attempt=1),
        run("b", "compensated", 7, 8, kind="compensation", generation=1, attempt=1),
    ]
    latest = latest_runs(runs)
    assert latest["a"]["attempt"] == 2
    assert (latest["b"]["generation"], latest["b"]["status"]) == (1, "failed")


def test_node_statuses_show_skips_and_what_nodes_wait_on() -> None:
    execution = {
        "executed_nodes": [
            run("start", "completed", 0, 1),
            run("approve", "waiting", 1, None),
            run("flaky", "ready", 1, 2, attempt=2),
            {**run("other-branch", "skipped", None, None), "attempt": 0},
        ],
        "waiting_on": [
            {"node_id": "approve", "kind": "human_task"},
            {"node_id": "flaky", "kind": "retry"},
            {"node_id": None, "kind": "delay"},
        ],
    }
    assert node_statuses(execution) == {
        "start": "completed",
        "approve": "waiting",
        "flaky": "retrying",
        "other-branch": "skipped",
    }


def test_runs_of_one_node_newest_first() -> None:
    runs = [
        run("a", "failed", 0, 1, attempt=1),
        run("b", "completed", 1, 2),
        run("a", "completed", 2, 3, attempt=2),
    ]
    assert [r["attempt"] for r in runs_of(runs, "a")] == [2, 1]
    assert runs_of(runs, "missing") == []


# --- bars ---------------------------------------------------------------------------------


def test_bars_are_proportional_to_time_within_the_execution() -> None:
    runs = [run("a", "completed", 0, 25), run("b", "completed", 25, 100)]
    first, second = bars(runs, at(0), at(100))
    assert (first.left, first.width) == (0.0, 25.0)
    assert (second.left, second.width) == (25.0, 75.0)
    assert not first.open
    assert not second.open


def test_the_span_starts_at_the_execution_and_runs_are_ordered_by_start() -> None:
    runs = [run("late", "completed", 60, 80), run("early", "completed", 20, 40)]
    early, late = bars(runs, at(0), at(80))
    assert early.run["node_id"] == "early"
    assert (early.left, early.width) == (25.0, 25.0)
    assert (late.left, late.width) == (75.0, 25.0)


def test_a_running_run_reaches_now() -> None:
    now = T0.replace(second=50)
    done, going = bars(
        [run("a", "completed", 0, 10), run("b", "running", 10, None)], at(0), None, now
    )
    assert (done.left, done.width) == (0.0, 20.0)
    assert (going.left, going.width) == (20.0, 80.0)
    assert going.open


def test_an_instant_run_keeps_a_visible_bar_inside_the_track() -> None:
    runs = [run("a", "completed", 0, 100), run("blip", "completed", 100, 100)]
    _, blip = bars(runs, at(0), at(100))
    assert blip.width == MIN_BAR
    assert blip.left + blip.width == pytest.approx(100.0)


def test_runs_that_never_started_have_no_bar_and_a_zero_span_fills_the_track() -> None:
    skipped = {**run("s", "skipped", None, None), "attempt": 0}
    pending = run("p", "pending", None, None)
    assert bars([skipped, pending], at(0), None) == []
    (only,) = bars([run("a", "completed", 5, 5)], at(5), at(5))
    assert (only.left, only.width) == (0.0, 100.0)


def test_bars_scale_linearly_with_many_runs() -> None:
    runs = [run(f"n{i}", "completed", i, i + 1) for i in range(1000)]
    drawn = bars(runs, at(0), at(1000))
    assert len(drawn) == 1000
    assert [b.left for b in drawn[:3]] == [0.0, 0.1, 0.2]
    # The last run is 0.1 % of the span: drawn MIN_BAR wide, ending where the track ends.
    assert drawn[-1].width == MIN_BAR
    assert drawn[-1].left + drawn[-1].width == pytest.approx(100.0)
