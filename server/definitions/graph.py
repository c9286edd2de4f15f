"""Graph facts of one ``{nodes, edges}`` level: start nodes, cycles, reachability."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Cycle:
    """A cycle, as the node ids along it (first == last), and the edge that closes it."""

    nodes: tuple[str, ...]
    closing_edge: int

    def describe(self) -> str:
        return " → ".join(self.nodes)


def start_nodes(node_ids: Sequence[str], edges: Sequence[tuple[int, str, str]]) -> list[str]:
    """Nodes without incoming edges, in document order."""
    targets = {to for _, _, to in edges}
    return [node for node in node_ids if node not in targets]


def find_cycles(node_ids: Sequence[str], edges: Sequence[tuple[int, str, str]]) -> list[Cycle]:
    """One cycle per back edge of an iterative depth-first search (distinct node sets)."""
    successors: dict[str, list[tuple[int, str]]] = {node: [] for node in node_ids}
    for index, source, target in edges:
        successors.setdefault(source, []).append((index, target))
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    cycles: list[Cycle] = []
    seen: set[frozenset[str]] = set()
    for root in node_ids:
        if root in state:
            continue
        path: list[str] = [root]
        iterators = [iter(successors.get(root, []))]
        state[root] = 1
        while iterators:
            step = next(iterators[-1], None)
            if step is None:
                state[path.pop()] = 2
                iterators.pop()
                continue
            index, target = step
            if state.get(target) == 1:
                members = (*path[path.index(target) :], target)
                key = frozenset(members)
                if key not in seen:
                    seen.add(key)
                    cycles.append(Cycle(members, index))
            elif target not in state:
                state[target] = 1
                path.append(target)
                iterators.append(iter(successors.get(target, [])))
    return cycles


def reachable(starts: Sequence[str], successors: Mapping[str, Sequence[str]]) -> set[str]:
    """Every node reachable from ``starts`` (including them)."""
    seen = set(starts)
    frontier = list(starts)
    while frontier:
        node = frontier.pop()
        for target in successors.get(node, ()):
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    return seen
