"""server.engine.routing: which nodes become ready or are skipped (SPEC §5), in isolation."""

from __future__ import annotations

import itertools

import pytest

from server.definitions.model import Edge, Graph, Join, Node
from server.engine.routing import Routing


def graph(edges: str, joins: dict[str, Join] | None = None) -> Graph:
    """``"a>b a>c b>d"``: nodes are every name mentioned; edge ids are ``a>b`` (``#2``…
    for repeats)."""
    joins = joins or {}
    pairs = [tuple(text.split(">")) for text in edges.split()]
    names = list(dict.fromkeys(name for pair in pairs for name in pair))
    seen: dict[str, int] = {}
    built = []
    for source, target in pairs:
        key = f"{source}>{target}"
        seen[key] = seen.get(key, 0) + 1
        edge_id = key if seen[key] == 1 else f"{key}#{seen[key]}"
        built.append(Edge(edge_id, source, target))
    nodes = tuple(Node(name, name, "transform", {}, join=joins.get(name, "all")) for name in names)
    return Graph(nodes, tuple(built))


def routing(edges: str, **joins: Join) -> Routing:
    state = Routing(graph(edges, joins))
    state.start()
    return state


def test_start_activates_every_node_without_incoming_edges() -> None:
    state = Routing(graph("a>c b>c c>d e>d"))
    advance = state.start()
    assert advance.ready == ["a", "b", "e"]
    assert state.activated == {"a", "b", "e"}


def test_a_taken_edge_makes_a_single_successor_ready() -> None:
    state = routing("a>b b>c")
    advance = state.resolve("a", ["a>b"])
    assert (advance.ready, advance.skipped) == (["b"], [])
    assert state.edges == {"a>b": "taken"}


def test_untaken_edges_are_skipped_and_skip_whole_chains() -> None:
    state = routing("a>b b>c c>d a>x")
    advance = state.resolve("a", ["a>x"])
    assert advance.ready == ["x"]
    assert advance.skipped == ["b", "c", "d"]
    assert state.skipped == {"b", "c", "d"}
    assert state.edges["b>c"] == state.edges["c>d"] == "skipped"


def test_join_all_waits_for_every_edge_and_needs_one_taken() -> None:
    state = routing("a>j b>j c>j")
    assert state.resolve("a", ["a>j"]).ready == []
    assert state.resolve("b", []).ready == []
    assert state.resolve("c", ["c>j"]).ready == ["j"]


def test_join_all_runs_when_the_other_branch_was_eliminated() -> None:
    # the approval shape: one edge taken, the other skipped by dead-path elimination
    state = routing("d>x d>j x>j")
    advance = state.resolve("d", ["d>j"])
    assert advance.skipped == ["x"]
    assert advance.ready == ["j"]


def test_join_all_with_every_edge_skipped_is_skipped_with_its_downstream() -> None:
    state = routing("a>j b>j j>k k>l")
    state.resolve("a", [])
    advance = state.resolve("b", [])
    assert advance.skipped == ["j", "k", "l"]
    assert advance.ready == []


def test_join_any_runs_at_the_first_taken_edge_and_only_once() -> None:
    state = routing("a>j b>j c>j", j="any")
    assert state.resolve("a", []).ready == []
    assert state.resolve("b", ["b>j"]).ready == ["j"]
    assert state.resolve("c", ["c>j"]).ready == []  # ignores later edges
    assert state.activated >= {"j"}


def test_join_any_with_every_edge_skipped_is_skipped() -> None:
    state = routing("a>j b>j", j="any")
    state.resolve("a", [])
    assert state.resolve("b", []).skipped == ["j"]


def test_join_n_runs_once_n_edges_were_taken() -> None:
    state = routing("a>j b>j c>j", j=2)
    assert state.resolve("a", ["a>j"]).ready == []
    assert state.resolve("b", ["b>j"]).ready == ["j"]  # c is still unresolved
    assert state.resolve("c", ["c>j"]).ready == []


def test_join_n_is_skipped_as_soon_as_it_cannot_be_satisfied() -> None:
    state = routing("a>j b>j c>j j>k", j=2)
    assert state.resolve("a", []).skipped == []
    advance = state.resolve("b", [])  # c alone can no longer make 2
    assert advance.skipped == ["j", "k"]
    assert state.resolve("c", ["c>j"]).ready == []  # a decided node stays decided


def test_parallel_edges_between_two_nodes_each_count_for_the_join() -> None:
    state = routing("a>j a>j b>j", j=2)
    assert state.resolve("a", ["a>j", "a>j#2"]).ready == ["j"]


@pytest.mark.parametrize("join", ["all", "any", 1, 2])
def test_the_outcome_does_not_depend_on_the_order_results_arrive_in(join: Join) -> None:
    results = {"a": ["a>j"], "b": [], "c": ["c>j"]}
    outcomes = set()
    for order in itertools.permutations(results):
        state = routing("a>j b>j c>j j>k", j=join)
        for node_id in order:
            state.resolve(node_id, results[node_id])
        outcomes.add((frozenset(state.activated), frozenset(state.skipped)))
    assert len(outcomes) == 1


def test_downstream_is_the_node_and_everything_reachable_breadth_first() -> None:
    state = routing("a>b a>c b>d c>d d>e x>e")
    assert state.downstream("b") == ["b", "d", "e"]
    assert state.downstream("a") == ["a", "b", "c", "d", "e"]
    assert state.downstream("e") == ["e"]


def test_reset_forgets_nodes_and_their_outgoing_edges_for_a_replay() -> None:
    state = routing("a>b b>c")
    state.resolve("a", ["a>b"])
    state.resolve("b", [])
    assert state.skipped == {"c"}
    state.reset(state.downstream("b"))
    assert "b" not in state.activated
    assert state.skipped == set()
    assert "b>c" not in state.edges
    assert state.edges["a>b"] == "taken"  # upstream routing is kept
    advance = state.resolve("b", ["b>c"])
    assert advance.ready == ["c"]


def test_skip_node_skips_its_outgoing_edges() -> None:
    state = routing("a>b b>c b>d")
    advance = state.skip_node("b")
    assert advance.skipped == ["b", "c", "d"]
    assert state.edges == {"b>c": "skipped", "b>d": "skipped"}
