"""Random workflows against a reference model of SPEC §5 routing (SQLite only).

Each example is a random DAG (edges only from lower to higher index, so it is acyclic)
of plain script nodes, decisions with rules over the input ``x``, and nodes that fail
for some values of ``x``; edges may carry conditions, labels or ``on_error``; joins are
``all``, ``any`` or ``n``; error handling is ``stop`` or ``continue`` (maybe with
``max_errors``). Decisions and failures depend on ``x`` alone, so which nodes run, fail
or are skipped is known in advance: :func:`predict` works it out independently of the
engine, and the run must agree with it.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.engine.conftest import (
    TERMINAL,
    Client,
    engine_client,
    event_types,
    node_runs,
    run,
    statuses,
)

RULES = {  # condition template → how the model evaluates it
    "x > {t}": lambda x, t: x > t,
    "x < {t}": lambda x, t: x < t,
    "x % 2 == {r}": lambda x, r: x % 2 == r,
}
_ids = itertools.count()


@dataclass
class Case:
    kinds: list[str]
    #: per node: decision rules [(template, parameter, label)] or failure (modulus, rest)
    params: list[Any]
    #: (source, target, condition, on_error)
    edges: list[tuple[int, int, str | None, bool]]
    joins: dict[int, str | int]
    on_failure: str
    max_errors: int | None
    x: int
    workflow_id: str = field(default_factory=lambda: f"prop-{next(_ids)}")

    def document(self) -> dict[str, Any]:
        nodes = []
        for index, kind in enumerate(self.kinds):
            node: dict[str, Any] = {"id": f"n{index}", "name": f"n{index}"}
            if kind == "decision":
                rules = [
                    {"condition": template.format(t=p, r=p), "output": label}
                    for template, p, label in self.params[index]
                ]
                node.update(type="decision", config={"rules": rules}, output_key=f"d{index}")
            elif kind == "failing":
                modulus, rest = self.params[index]
                line = f"f{index} = 1 / 0 if x % {modulus} == {rest} else {index}"
                node.update(type="task", config={"script": [line]})
            else:
                node.update(type="task", config={"script": [f"v{index} = {index}"]})
            if index in self.joins:
                node["join"] = self.joins[index]
            nodes.append(node)
        edges = []
        for source, target, condition, on_error in self.edges:
            edge: dict[str, Any] = {"from_node": f"n{source}", "to_node": f"n{target}"}
            if condition is not None:
                edge["condition"] = condition
            if on_error:
                edge["on_error"] = True
            edges.append(edge)
        handling: dict[str, Any] = {"on_failure": self.on_failure}
        if self.max_errors is not None:
            handling["max_errors"] = self.max_errors
        return {
            "id": self.workflow_id,
            "name": "random",
            "variables": {"x": {"name": "x", "type": "integer", "required": True}},
            "nodes": nodes,
            "edges": edges,
            "config": {"error_handling": handling},
        }


@st.composite
def cases(draw: st.DrawFn) -> Case:
    count = draw(st.integers(5, 15))
    kinds = draw(
        st.lists(
            st.sampled_from(["plain", "plain", "decision", "failing"]),
            min_size=count,
            max_size=count,
        )
    )
    params: list[Any] = []
    for kind in kinds:
        if kind == "decision":
            templates = draw(st.lists(st.sampled_from(sorted(RULES)), min_size=1, max_size=3))
            params.append(
                [
                    (template, draw(st.integers(0, 9) if "%" not in template else st.just(i % 2)),
                     f"r{i}")
                    for i, template in enumerate(templates)
                ]
            )  # fmt: skip
        elif kind == "failing":
            modulus = draw(st.integers(2, 4))
            params.append((modulus, draw(st.integers(0, modulus - 1))))
        else:
            params.append(None)
    edges = []
    for target in range(1, count):
        sources = draw(st.sets(st.integers(0, target - 1), max_size=3))
        for source in sorted(sources):
            if kinds[source] == "decision":
                labels = [label for _, _, label in params[source]]
                condition = draw(st.sampled_from([*labels, None]))
                edges.append((source, target, condition, False))
            elif draw(st.integers(0, 3)) == 0:
                edges.append((source, target, None, True))
            else:
                condition = draw(st.sampled_from([None, None, "x > 4", "x <= 6", "x == 3"]))
                edges.append((source, target, condition, False))
    incoming = {t: sum(1 for _, target, _, _ in edges if target == t) for t in range(count)}
    joins: dict[int, str | int] = {}
    for target, number in incoming.items():
        if number >= 2:
            joins[target] = draw(st.sampled_from(["all", "any", *range(1, number + 1)]))
    return Case(
        kinds=kinds,
        params=params,
        edges=edges,
        joins=joins,
        on_failure=draw(st.sampled_from(["stop", "continue"])),
        max_errors=draw(st.none() | st.integers(1, 3)),
        x=draw(st.integers(0, 9)),
    )


@dataclass
class Prediction:
    """What SPEC §5 says happens: each node's fate and the execution's outcome."""

    fate: dict[int, str]  # "completed" | "failed" | "skipped"
    unrouted: list[int]  # failures not routed by an on_error edge
    output: dict[str, Any]


def predict(case: Case) -> Prediction:
    x = case.x
    taken: set[int] = set()  # indices into case.edges
    fate: dict[int, str] = {}
    unrouted = []
    output: dict[str, Any] = {"x": x}
    for node, kind in enumerate(case.kinds):
        incoming = [i for i, e in enumerate(case.edges) if e[1] == node]
        if incoming:
            join = case.joins.get(node, "all")
            needed = join if isinstance(join, int) else 1
            if sum(1 for i in incoming if i in taken) < needed:
                fate[node] = "skipped"
                continue
        outgoing = [i for i, e in enumerate(case.edges) if e[0] == node]
        normal = [i for i in outgoing if not case.edges[i][3]]
        handlers = [i for i in outgoing if case.edges[i][3]]
        failed = False
        if kind == "decision":
            label, matched = None, None
            for index, (template, parameter, rule_label) in enumerate(case.params[node]):
                if RULES[template](x, parameter):
                    label, matched = rule_label, index
                    break
            unconditional = [i for i in normal if case.edges[i][2] is None]
            if label is None and not unconditional:
                failed = True
            else:
                chosen = [i for i in normal if label is not None and case.edges[i][2] == label]
                taken.update(chosen or unconditional)
                output[f"d{node}"] = {"decision": label, "matched_rule": matched}
        else:
            if kind == "failing":
                modulus, rest = case.params[node]
                failed = x % modulus == rest
            if not failed:
                taken.update(i for i in normal if _condition(case.edges[i][2], x))
                output[f"f{node}" if kind == "failing" else f"v{node}"] = node
        if failed:
            fate[node] = "failed"
            taken.update(handlers)
            if not handlers:
                unrouted.append(node)
        else:
            fate[node] = "completed"
    return Prediction(fate, unrouted, output)


def _condition(condition: str | None, x: int) -> bool:
    conditions = {None: True, "x > 4": x > 4, "x <= 6": x <= 6, "x == 3": x == 3}
    return conditions[condition]


@pytest.fixture
async def sqlite_client(sqlite_url: str) -> AsyncIterator[Client]:
    async with engine_client(sqlite_url) as client:
        yield client


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=cases())
async def test_random_workflows_follow_the_routing_rules(sqlite_client: Client, case: Case) -> None:
    client = sqlite_client
    execution = await run(client, case.document(), input={"x": case.x})
    # terminal: nothing is left running or waiting
    assert execution["status"] in TERMINAL
    assert execution["waiting_on"] == []
    runs = node_runs(execution)
    assert all(r["status"] in ("completed", "failed", "cancelled") for r in runs)
    # no node runs twice in one attempt (and nothing is retried here: once at most)
    keys = [(r["node_id"], r["generation"], r["attempt"]) for r in runs]
    assert len(keys) == len(set(keys))
    assert len({r["node_id"] for r in runs}) == len(runs)
    kinds = await event_types(client, execution["id"])
    started = [node_id for kind, node_id in kinds if kind == "node.started"]
    assert len(started) == len(set(started))  # handed to a processor once
    # nodes skipped by dead-path elimination never ran
    skipped = {node_id for kind, node_id in kinds if kind == "node.skipped"}
    assert skipped.isdisjoint(r["node_id"] for r in runs)

    prediction = predict(case)
    expected = {f"n{i}": fate for i, fate in prediction.fate.items()}
    predicted_skips = {n for n, fate in expected.items() if fate == "skipped"}
    unrouted = {f"n{i}" for i in prediction.unrouted}
    stops = bool(unrouted) and case.on_failure == "stop"
    too_many = case.max_errors is not None and len(unrouted) >= case.max_errors
    if not stops and not (case.on_failure == "continue" and too_many):
        # every node is decided exactly as the rules say (no join deadlocked)
        assert execution["status"] == "completed", execution["error"]
        assert statuses(execution) == {n: f for n, f in expected.items() if f != "skipped"}
        assert skipped == predicted_skips
        assert {e["node_id"] for e in execution["errors"]} == (
            unrouted if case.on_failure == "continue" else set()
        )
        assert execution["output"] == prediction.output
    else:
        assert execution["status"] == "failed"
        if stops:
            assert execution["error"]["node_id"] in unrouted
        else:
            assert execution["error"]["reason"] == "max_errors"
        for node_id, status in statuses(execution).items():
            assert status == "cancelled" or status == expected[node_id], node_id
        assert skipped <= predicted_skips
