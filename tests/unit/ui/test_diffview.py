"""The side-by-side diff rows of two definition versions (``ui.diffview``)."""

from __future__ import annotations

from ui.diffview import pretty, side_by_side


def test_changed_added_and_removed_lines_pair_up_side_by_side() -> None:
    old = "a\nb\nc\n"
    new = "a\nB\nc\nd\n"
    rows = side_by_side(old, new)
    assert [(r.kind, r.old_number, r.old, r.new_number, r.new) for r in rows] == [
        ("equal", 1, "a", 1, "a"),
        ("changed", 2, "b", 2, "B"),
        ("equal", 3, "c", 3, "c"),
        ("added", None, None, 4, "d"),
    ]
    removed = side_by_side("x\ny\n", "x\n")
    assert removed[-1].kind == "removed"
    assert removed[-1].old == "y"
    assert removed[-1].new is None


def test_long_unchanged_runs_are_collapsed_around_the_changes() -> None:
    old = [f"line {i}" for i in range(100)]
    new = list(old)
    new[50] = "changed"
    rows = side_by_side("\n".join(old), "\n".join(new), context=3)
    kinds = [r.kind for r in rows]
    assert kinds == [
        "skipped",
        "equal",
        "equal",
        "equal",
        "changed",
        "equal",
        "equal",
        "equal",
        "skipped",
    ]
    assert rows[0].skipped == 47
    assert rows[-1].skipped == 46
    assert rows[4].old_number == 51
    assert rows[1].old_number == 48


def test_identical_documents_have_no_changes() -> None:
    text = pretty({"id": "x", "nodes": [{"id": "a"}]})
    assert {r.kind for r in side_by_side(text, text)} <= {"equal", "skipped"}
