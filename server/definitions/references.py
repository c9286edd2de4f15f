"""Which ``${…}`` references and expression names can ever exist (the reference rule).

Errors — the name can never exist at run time:
  * ``nodes.<id>`` where no node has that id (in this graph or an enclosing one);
  * ``nodes.<id>.<field>`` where field is not output/status/started_at/completed_at/attempts;
  * ``execution.<field>`` where field is not id/workflow_id/workflow_version/started_at/owner;
  * ``item`` / ``index`` outside a loop body.
Warnings — the name may exist only if the execution input provides it:
  * any other top-level name that is not reserved, not a declared variable, not an
    ``output_key`` and not produced by a node whose output names are known.
  Nothing is said when some node's output is open (a handler, a sub-workflow without
  ``output_mapping``, …): such a node may produce any name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from server.definitions.pointers import listing, suggest

NODE_FIELDS = ("output", "status", "started_at", "completed_at", "attempts")
EXECUTION_FIELDS = ("id", "workflow_id", "workflow_version", "started_at", "owner")
LOOP_NAMES = frozenset({"item", "index"})
RESERVED_NAMES = frozenset({"input", "nodes", "execution", "secrets"}) | LOOP_NAMES
CONSTANT_NAMES = frozenset({"True", "False", "None", "true", "false", "null"})


@dataclass(frozen=True)
class Scope:
    """The names a graph's templates and expressions may read."""

    names: frozenset[str] = frozenset()
    """Declared variables, output keys and known output names."""
    node_ids: frozenset[str] = frozenset()
    open: bool = False
    """Some node may produce any name, so unknown names are not reported."""
    in_loop: bool = False

    def nested(
        self, names: Iterable[str], node_ids: Iterable[str], *, open_: bool, loop: bool
    ) -> Scope:
        """The scope of a nested graph: this one plus the graph's own names and ids."""
        return replace(
            self,
            names=self.names | frozenset(names),
            node_ids=self.node_ids | frozenset(node_ids),
            open=self.open or open_,
            in_loop=self.in_loop or loop,
        )


@dataclass(frozen=True)
class Finding:
    """A problem with one reference: an error, or a warning (``is_error`` False)."""

    message: str
    is_error: bool = True


@dataclass
class ReferenceChecker:
    """Applies the reference rule to paths, with the scope of one place in the document."""

    scope: Scope
    local_names: frozenset[str] = field(default_factory=frozenset)

    def check_path(self, path: Sequence[str | int], shown: str) -> Finding | None:
        """Check one reference path; ``shown`` is how it is written (for the message)."""
        if not path or not isinstance(path[0], str):
            return None
        root = path[0]
        if root in self.local_names:
            return None
        if root == "nodes":
            return self._node_path(path, shown)
        if root == "execution" and len(path) > 1 and path[1] not in EXECUTION_FIELDS:
            return Finding(
                f"{shown}: an execution has no field {path[1]!r}; "
                f"use one of {', '.join(EXECUTION_FIELDS)}"
            )
        if root in LOOP_NAMES and not self.scope.in_loop:
            # A workflow run as a loop's ``workflow_id`` body gets them as its input.
            return Finding(
                f"{shown}: {root!r} exists only inside a loop body (the current item and "
                "its 0-based index), or when this workflow runs as a loop's workflow_id "
                "body; elsewhere it is missing",
                is_error=False,
            )
        if root in RESERVED_NAMES or root in CONSTANT_NAMES or root in self.scope.names:
            return None
        if self.scope.open:
            return None
        known = sorted(self.scope.names)
        return Finding(
            f"{shown}: {root!r} is not a declared variable, an output_key or an output of "
            "any node, so it exists only if the execution input provides it — declare it "
            f"under /variables (known names: {listing(known)}){suggest(root, known)}",
            is_error=False,
        )

    def _node_path(self, path: Sequence[str | int], shown: str) -> Finding | None:
        if len(path) < 2:
            return None
        node_id = path[1]
        known = sorted(self.scope.node_ids)
        if not isinstance(node_id, str) or node_id not in self.scope.node_ids:
            return Finding(
                f'{shown} names unknown node "{node_id}"; known nodes: '
                f"{listing(known)}{suggest(str(node_id), known)}"
            )
        if len(path) > 2 and path[2] not in NODE_FIELDS:
            return Finding(
                f"{shown}: a node's entry has no field {str(path[2])!r}; use one of "
                f"{', '.join(NODE_FIELDS)} (e.g. nodes.{node_id}.output.<name>)"
                f"{suggest(str(path[2]), NODE_FIELDS)}"
            )
        return None
