"""Which nodes may run next: the DAG semantics of SPEC §5, as a pure state machine.

Each finished node resolves its outgoing edges (taken or skipped); a node with several
incoming edges is a join whose ``join`` policy decides when it becomes ready; a join that
can no longer be satisfied is skipped and skips its own outgoing edges (dead-path
elimination), so branches that were not chosen never block a join.

Nothing here evaluates expressions or touches the database: the engine decides which
edges a node took (and stores that with the node's result), then feeds the decision in.
Because of that, the whole state can be rebuilt by replaying stored results in
completion order — after a crash, a retry or a rerun — and always comes out the same.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from server.definitions.model import Edge, Graph, Node

EdgeState = str  # "taken" | "skipped"


@dataclass
class Advance:
    """What one resolution changed: nodes that became ready, and nodes skipped by DPE."""

    ready: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def extend(self, other: Advance) -> None:
        self.ready.extend(other.ready)
        self.skipped.extend(other.skipped)


class Routing:
    """Edge and activation state of one graph in one execution."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.nodes: dict[str, Node] = {node.id: node for node in graph.nodes}
        self.incoming: dict[str, list[Edge]] = defaultdict(list)
        self.outgoing: dict[str, list[Edge]] = defaultdict(list)
        for edge in graph.edges:
            self.incoming[edge.to_node].append(edge)
            self.outgoing[edge.from_node].append(edge)
        self.edges: dict[str, EdgeState] = {}
        #: nodes that were activated (made ready) or skipped; absent = not reached yet.
        self.activated: set[str] = set()
        self.skipped: set[str] = set()

    def start_nodes(self) -> list[str]:
        return [node.id for node in self.graph.nodes if not self.incoming[node.id]]

    def start(self) -> Advance:
        """Activate the start nodes (those without incoming edges)."""
        advance = Advance()
        for node_id in self.start_nodes():
            self.activated.add(node_id)
            advance.ready.append(node_id)
        return advance

    def resolve(self, node_id: str, taken: Iterable[str]) -> Advance:
        """``node_id`` finished and took the edges ``taken``; every other outgoing edge
        is skipped. Returns the joins this made ready and the nodes it skipped."""
        taken_ids = set(taken)
        advance = Advance()
        for edge in self.outgoing[node_id]:
            self.edges[edge.id] = "taken" if edge.id in taken_ids else "skipped"
        for target in self._targets(node_id):
            advance.extend(self._evaluate_join(target))
        return advance

    def skip_node(self, node_id: str) -> Advance:
        """Skip a node that was not reached (dead-path elimination)."""
        self.skipped.add(node_id)
        advance = Advance(skipped=[node_id])
        advance.extend(self.resolve(node_id, ()))
        return advance

    def _targets(self, node_id: str) -> list[str]:
        seen: dict[str, None] = {}
        for edge in self.outgoing[node_id]:
            seen.setdefault(edge.to_node)
        return list(seen)

    def _evaluate_join(self, node_id: str) -> Advance:
        if node_id in self.activated or node_id in self.skipped:
            return Advance()  # "any" ignores later edges; a decided node stays decided
        states = [self.edges.get(edge.id) for edge in self.incoming[node_id]]
        taken = states.count("taken")
        unresolved = states.count(None)
        policy = self.nodes[node_id].join
        if policy == "all":
            ready, dead = unresolved == 0 and taken > 0, unresolved == 0 and taken == 0
        elif policy == "any":
            ready, dead = taken > 0, unresolved == 0 and taken == 0
        else:
            ready, dead = taken >= policy, taken + unresolved < policy
        if ready:
            self.activated.add(node_id)
            return Advance(ready=[node_id])
        if dead:
            return self.skip_node(node_id)
        return Advance()

    def reset(self, node_ids: Iterable[str]) -> None:
        """Forget what is known about ``node_ids`` and the edges leaving them."""
        for node_id in node_ids:
            self.activated.discard(node_id)
            self.skipped.discard(node_id)
            for edge in self.outgoing[node_id]:
                self.edges.pop(edge.id, None)

    def downstream(self, node_id: str) -> list[str]:
        """``node_id`` and every node reachable from it, in breadth-first order."""
        order, queue, seen = [], [node_id], {node_id}
        while queue:
            current = queue.pop(0)
            order.append(current)
            for target in self._targets(current):
                if target not in seen:
                    seen.add(target)
                    queue.append(target)
        return order
