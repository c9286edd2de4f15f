"""A side-by-side diff of two definition versions, as rows for a two-column table.

Both documents are pretty-printed as JSON (2-space indent, their own key order) and
compared line by line with :mod:`difflib`. Each row has the old line and the new line
(either may be missing); runs of unchanged lines longer than twice the context are
collapsed into one "n unchanged lines" row, so a one-line change in a 1,000-node
definition is a short page.

Comparing is quadratic at worst, so :func:`compare` bounds it: documents longer than
:data:`MAX_TEXT` characters are not compared line by line at all (the page shows the
registry's structured summary and links to the API's diff), and at most
:data:`MAX_ROWS` rows are rendered. Callers run it in a worker thread, off the event loop.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any, Literal

#: Unchanged lines kept around each change.
CONTEXT = 3
#: The longest pretty-printed document (characters, either side) compared line by line.
MAX_TEXT = 200_000
#: The most rows a diff page renders; the rest is counted and left to the API's diff.
MAX_ROWS = 2_000

Kind = Literal["equal", "changed", "removed", "added", "skipped"]


@dataclass(frozen=True, slots=True)
class DiffRow:
    """One row: line numbers (1-based) and texts of each side; ``skipped`` counts the
    unchanged lines a ``skipped`` row stands for."""

    kind: Kind
    old_number: int | None = None
    old: str | None = None
    new_number: int | None = None
    new: str | None = None
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class Comparison:
    """What the diff page shows: the rows (at most ``MAX_ROWS``), how many rows were
    left out, whether the documents were too big to compare, and whether they are equal."""

    rows: list[DiffRow]
    identical: bool
    too_big: bool = False
    rows_left_out: int = 0


def compare(
    before: Any, after: Any, *, max_text: int = MAX_TEXT, max_rows: int = MAX_ROWS
) -> Comparison:
    """The bounded side-by-side comparison of two documents (CPU work: run it in a thread)."""
    old_text, new_text = pretty(before), pretty(after)
    if old_text == new_text:
        return Comparison([], identical=True)
    if max(len(old_text), len(new_text)) > max_text:
        return Comparison([], identical=False, too_big=True)
    rows = side_by_side(old_text, new_text)
    return Comparison(
        rows[:max_rows],
        identical=all(row.kind in ("equal", "skipped") for row in rows),
        rows_left_out=max(0, len(rows) - max_rows),
    )


def pretty(document: Any) -> str:
    """The text both sides of the diff show."""
    return json.dumps(document, indent=2, ensure_ascii=False, default=str)


def side_by_side(old_text: str, new_text: str, context: int = CONTEXT) -> list[DiffRow]:
    """The rows of the side-by-side diff of two texts (see the module docstring)."""
    old_lines, new_lines = old_text.splitlines(), new_text.splitlines()
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    opcodes = matcher.get_opcodes()
    rows: list[DiffRow] = []
    for number, (tag, i1, i2, j1, j2) in enumerate(opcodes):
        if tag == "equal":
            rows.extend(
                _equal(
                    old_lines,
                    new_lines,
                    i1,
                    i2,
                    j1,
                    keep_head=0 if number == 0 else context,
                    keep_tail=0 if number == len(opcodes) - 1 else context,
                )
            )
            continue
        old_part, new_part = old_lines[i1:i2], new_lines[j1:j2]
        for k in range(max(len(old_part), len(new_part))):
            has_old, has_new = k < len(old_part), k < len(new_part)
            kind: Kind = "changed" if has_old and has_new else "removed" if has_old else "added"
            rows.append(
                DiffRow(
                    kind,
                    i1 + k + 1 if has_old else None,
                    old_part[k] if has_old else None,
                    j1 + k + 1 if has_new else None,
                    new_part[k] if has_new else None,
                )
            )
    return rows


def _equal(
    old_lines: list[str],
    new_lines: list[str],
    i1: int,
    i2: int,
    j1: int,
    *,
    keep_head: int,
    keep_tail: int,
) -> list[DiffRow]:
    """An unchanged run: ``keep_head`` lines after the change before it, ``keep_tail``
    lines before the next change, and the middle collapsed when there is one."""
    count = i2 - i1

    def row(offset: int) -> DiffRow:
        return DiffRow(
            "equal",
            i1 + offset + 1,
            old_lines[i1 + offset],
            j1 + offset + 1,
            new_lines[j1 + offset],
        )

    if count <= keep_head + keep_tail + 1:
        return [row(offset) for offset in range(count)]
    rows = [row(offset) for offset in range(keep_head)]
    rows.append(DiffRow("skipped", skipped=count - keep_head - keep_tail))
    rows.extend(row(offset) for offset in range(count - keep_tail, count))
    return rows
