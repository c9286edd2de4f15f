"""Which control action the engine allows in which state (SPEC §5), in one table.

The runner enforces these rules; the dashboard reads the same table to offer only the
buttons the engine would accept, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Control action → the execution statuses it needs.
ALLOWED: Mapping[str, frozenset[str]] = {
    "cancel": frozenset({"pending", "running", "suspended"}),
    "suspend": frozenset({"pending", "running"}),
    "resume": frozenset({"suspended"}),
    "retry": frozenset({"failed", "cancelled"}),
    "rerun": frozenset({"completed", "failed", "cancelled", "suspended"}),
    "skip": frozenset({"running", "suspended"}),
}
#: The statuses of a node's current run that may be skipped.
SKIPPABLE_NODES = frozenset({"failed", "waiting"})


def may_skip(execution_status: str, node_status: str | None) -> bool:
    """Whether skipping a node in ``node_status`` is accepted now: the execution must
    run or be suspended, or have failed because of this very (failed) node."""
    if node_status not in SKIPPABLE_NODES:
        return False
    if execution_status == "failed" and node_status == "failed":
        return True
    return execution_status in ALLOWED["skip"]
