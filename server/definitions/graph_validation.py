"""Validation of one ``{nodes, edges}`` graph: nodes, edges, structure, node configs.

The top-level graph and every nested body (loop, parallel branch) go through the same
:class:`GraphValidator`; nested bodies are reached through the processors'
``check.subgraph`` calls, one level deeper each time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from processors.base import Processor
from processors.decision import branch_labels
from server.definitions.checks import ValueChecks
from server.definitions.config_merge import MergedConfig, merge_config
from server.definitions.context import ValidationContext
from server.definitions.graph import find_cycles, reachable, start_nodes
from server.definitions.node_check import NodeChecker
from server.definitions.pointers import describe, listing, pointer, suggest
from server.definitions.references import RESERVED_NAMES, ReferenceChecker, Scope
from server.definitions.report import Reporter

NODE_FIELDS = (
    "id", "name", "type", "description", "config", "position", "timeout", "retry_policy",
    "metadata", "output_key", "compensate", "join",
)  # fmt: skip
STEP_FIELDS = ("type", "name", "description", "config", "timeout", "retry_policy")
EDGE_FIELDS = ("id", "from_node", "to_node", "condition", "priority", "label", "on_error")
RETRY_FIELDS = ("max_attempts", "delay", "backoff", "max_delay", "jitter")


@dataclass
class Run:
    """State shared by every graph of one validation run."""

    context: ValidationContext
    reporter: Reporter
    values: ValueChecks
    node_count: int = 0


@dataclass
class _Node:
    index: int
    raw: dict[str, Any]
    node_id: str | None
    processor: Processor | None
    merged: MergedConfig
    outgoing: list[dict[str, Any]] = field(default_factory=list)
    incoming: int = 0


class GraphValidator:
    """Checks one graph level; ``base`` is its pointer (``""`` for the definition)."""

    def __init__(self, run: Run, base: str, parent_scope: Scope, *, depth: int, loop: bool) -> None:
        self.run = run
        self.base = base
        self.parent_scope = parent_scope
        self.depth = depth
        self.loop = loop
        self.scope = parent_scope
        self._nodes: list[_Node] = []
        self._by_id: dict[str, _Node] = {}
        self._edges: list[tuple[int, str, str]] = []

    # -- entry -------------------------------------------------------------------------

    def validate(self, nodes: object, edges: object) -> None:
        """Validate ``nodes`` and ``edges`` (each already checked to be lists, or not)."""
        self._collect_nodes(nodes if isinstance(nodes, list) else [])
        raw_edges = edges if isinstance(edges, list) else []
        self._collect_edges(raw_edges)
        self.scope = self._own_scope()
        for node in self._nodes:
            self._check_node(node)
        self._check_conditions(raw_edges)
        self._check_structure()

    # -- nodes and edges ---------------------------------------------------------------

    def _at(self, *segments: str | int) -> str:
        return self.base + pointer(*segments)

    def _collect_nodes(self, nodes: list[Any]) -> None:
        registry = self.run.context.registry
        first_use: dict[str, int] = {}
        for index, raw in enumerate(nodes):
            if not isinstance(raw, dict):
                continue
            self.run.node_count += 1
            node_id = raw.get("id") if isinstance(raw.get("id"), str) else None
            type_name = raw.get("type")
            processor = (
                registry.get(type_name)
                if isinstance(type_name, str) and type_name in registry
                else None
            )
            node = _Node(index, raw, node_id, processor, merge_config(raw.get("config"), processor))
            self._nodes.append(node)
            if node_id is None:
                continue
            if node_id in first_use:
                self.run.reporter.error(
                    self._at("nodes", index, "id"),
                    f'node id "{node_id}" is already used by '
                    f"{self._at('nodes', first_use[node_id])}; node ids must be unique, rename one",
                )
                continue
            first_use[node_id] = index
            self._by_id[node_id] = node

    def _collect_edges(self, edges: list[Any]) -> None:
        reporter = self.run.reporter
        known = sorted(self._by_id)
        first_use: dict[str, int] = {}
        for index, edge in enumerate(edges):
            if not isinstance(edge, dict):
                continue
            self._warn_unknown_fields(edge, EDGE_FIELDS, self._at("edges", index), "edge")
            label = _edge_label(edge)
            edge_id = edge.get("id")
            if isinstance(edge_id, str):
                if edge_id in first_use:
                    reporter.error(
                        self._at("edges", index, "id"),
                        f'edge id "{edge_id}" is already used by '
                        f"{self._at('edges', first_use[edge_id])}; edge ids must be unique",
                    )
                first_use.setdefault(edge_id, index)
            ends = []
            for end in ("from_node", "to_node"):
                name = edge.get(end)
                if isinstance(name, str) and name not in self._by_id:
                    reporter.error(
                        self._at("edges", index, end),
                        f'edge "{label}" names unknown node "{name}"; known nodes: '
                        f"{listing(known)}{suggest(name, known)}",
                    )
                ends.append(name if isinstance(name, str) and name in self._by_id else None)
            source, target = ends
            if source is not None and target is not None:
                self._edges.append((index, source, target))
                self._by_id[source].outgoing.append(edge)
                self._by_id[target].incoming += 1

    def _own_scope(self) -> Scope:
        names: set[str] = set()
        open_ = False
        for node in self._nodes:
            output_key = node.raw.get("output_key")
            if isinstance(output_key, str):
                names.add(output_key)
            elif node.processor is not None:
                produced = node.processor.output_names(node.merged.config)
                if produced is None:
                    open_ = True
                else:
                    names.update(produced)
        return self.parent_scope.nested(names, self._by_id, open_=open_, loop=self.loop)

    def _check_node(self, node: _Node) -> None:
        at = self._at("nodes", node.index)
        raw = node.raw
        reporter = self.run.reporter
        label = node.node_id or f"#{node.index}"
        self._warn_unknown_fields(raw, NODE_FIELDS, at, "node")
        if node.node_id is not None and not raw.get("name"):
            reporter.warning(
                at, f'node "{label}" has no name; its id is shown instead — add "name"'
            )
        self._check_timing(raw, at)
        output_key = raw.get("output_key")
        if isinstance(output_key, str) and output_key in RESERVED_NAMES:
            reporter.error(
                at + "/output_key",
                f"output_key {output_key!r} is a reserved scope name "
                f"({', '.join(sorted(RESERVED_NAMES))}); choose another name",
            )
        join = raw.get("join")
        if isinstance(join, int) and not isinstance(join, bool) and join > node.incoming:
            reporter.error(
                at + "/join",
                f'join {join} can never be satisfied: node "{label}" has {node.incoming} '
                f'incoming edge(s); use "all", "any" or a number ≤ {max(node.incoming, 1)}',
            )
        if node.processor is not None:
            self._check_config(node.processor, raw, node.merged, at, node.outgoing, frozenset())
        self._check_compensate(raw.get("compensate"), at + "/compensate")

    def _check_compensate(self, step: object, at: str) -> None:
        if not isinstance(step, dict):
            return
        self._warn_unknown_fields(step, STEP_FIELDS, at, "compensation step")
        if "id" in step:
            self.run.reporter.warning(at + "/id", "a compensation step has no id; it is ignored")
        self._check_timing(step, at)
        registry = self.run.context.registry
        type_name = step.get("type")
        if isinstance(type_name, str) and type_name in registry:
            processor = registry.get(type_name)
            merged = merge_config(step.get("config"), processor)
            self._check_config(processor, step, merged, at, [], frozenset({"output"}))

    def _check_timing(self, raw: Mapping[str, Any], at: str) -> None:
        values = self.run.values
        if raw.get("timeout") is not None:
            values.duration(at + "/timeout", raw["timeout"])
        policy = raw.get("retry_policy")
        if isinstance(policy, dict):
            self._warn_unknown_fields(policy, RETRY_FIELDS, at + "/retry_policy", "retry_policy")
            for key in ("delay", "max_delay"):
                if policy.get(key) is not None:
                    values.duration(f"{at}/retry_policy/{key}", policy[key])

    def _check_config(
        self,
        processor: Processor,
        raw: Mapping[str, Any],
        merged: MergedConfig,
        at: str,
        outgoing: list[dict[str, Any]],
        extra_names: frozenset[str],
    ) -> None:
        reporter = self.run.reporter
        config_at = at + "/config"
        for problem in merged.problems:
            where = config_at + pointer(*problem.path)
            (reporter.error if problem.is_error else reporter.warning)(where, problem.message)
        known = sorted(processor.known_config_keys() | set(processor.config_aliases))
        for key in merged.unknown_keys:
            reporter.warning(
                config_at + pointer(key),
                f"unknown config key {key!r} for a {processor.type_name} node (kept, but "
                f"ignored){suggest(key, known)}; known keys: {listing(known)}",
            )
        checker = NodeChecker(
            node=raw,
            outgoing_edges=outgoing,
            graph_node_ids=frozenset(self._by_id),
            context=self.run.context,
            config_pointer=config_at,
            sources=merged.sources,
            scope=self.scope,
            reporter=reporter,
            values=self.run.values,
            subgraph=self._subgraph,
            extra_names=extra_names,
        )
        processor.check_config(merged.config, checker)

    def _subgraph(self, at: str, body: object, loop_body: bool) -> None:
        limits = self.run.context.limits
        if self.depth + 1 > limits.max_depth:
            self.run.reporter.error(
                at,
                f"bodies are nested more than {limits.max_depth} levels deep; the limit is "
                f"{limits.max_depth} (setting {limits.setting('max_depth')}) — move the inner "
                "steps into their own workflow and call it (sub_workflow, or loop workflow_id)",
            )
            return
        if not isinstance(body, dict):
            return
        nested = GraphValidator(self.run, at, self.scope, depth=self.depth + 1, loop=loop_body)
        nested.validate(body.get("nodes"), body.get("edges"))

    # -- edges and structure -----------------------------------------------------------

    def _check_conditions(self, edges: list[Any]) -> None:
        for index, edge in enumerate(edges):
            if not isinstance(edge, dict) or edge.get("condition") is None:
                continue
            at = self._at("edges", index, "condition")
            from_node = edge.get("from_node")
            source = self._by_id.get(from_node) if isinstance(from_node, str) else None
            if source is not None and _is_decision(source.processor):
                self._check_branch_label(edge, source, at)
            else:
                self.run.values.expression(at, edge["condition"], ReferenceChecker(self.scope))

    def _check_branch_label(self, edge: Mapping[str, Any], source: _Node, at: str) -> None:
        condition = edge["condition"]
        if not isinstance(condition, str):
            return
        labels = branch_labels(source.merged.config)
        rules = source.merged.config.get("decision_rules")
        rule_list = rules if isinstance(rules, list) else []
        targets = [rule.get("next_node") for rule in rule_list if isinstance(rule, dict)]
        if condition in labels or edge.get("to_node") in targets:
            return
        self.run.reporter.warning(
            at,
            f'after decision "{source.node_id}", a condition is a branch label, but '
            f"{describe(condition)} is none of its labels ({listing(labels)}); this edge is "
            f"never taken — use a rule's output{suggest(condition, sorted(labels))}",
        )

    def _check_structure(self) -> None:
        reporter = self.run.reporter
        ids = [node.node_id for node in self._nodes if node.node_id in self._by_id]
        unique_ids = list(dict.fromkeys(i for i in ids if i is not None))
        if not unique_ids:
            return
        starts = start_nodes(unique_ids, self._edges)
        if not starts:
            reporter.error(
                self._at("nodes"),
                "there is no start node: every node has an incoming edge, so nothing can "
                "run first — remove the edge into the node that should start (start nodes "
                "are the nodes without incoming edges)",
            )
        for cycle in find_cycles(unique_ids, self._edges):
            reporter.error(
                self._at("edges", cycle.closing_edge),
                f"cycle {cycle.describe()}: workflows must be acyclic — remove or redirect this "
                "edge (use a loop node to repeat steps)",
            )
        if not starts:
            return
        successors: dict[str, list[str]] = {}
        for _, source, target in self._edges:
            successors.setdefault(source, []).append(target)
        reached = reachable(starts, successors)
        for node in self._nodes:
            if node.node_id in self._by_id and node.node_id not in reached:
                if self._by_id[node.node_id] is not node:
                    continue
                reporter.error(
                    self._at("nodes", node.index),
                    f'node "{node.node_id}" can never run: no path leads to it from a start node '
                    f"(start nodes: {listing(starts)}); it is reachable only through a cycle",
                )

    def _warn_unknown_fields(
        self, raw: Mapping[str, Any], known: tuple[str, ...], at: str, what: str
    ) -> None:
        for key in raw:
            if key not in known:
                self.run.reporter.warning(
                    at + pointer(key),
                    f"unknown {what} field {key!r} (kept, but ignored){suggest(key, known)}; "
                    f"known fields: {', '.join(known)}",
                )


def _edge_label(edge: Mapping[str, Any]) -> str:
    if isinstance(edge.get("id"), str):
        return str(edge["id"])
    ends = [edge.get(end) for end in ("from_node", "to_node")]
    return "->".join(end if isinstance(end, str) else "?" for end in ends)


def _is_decision(processor: Processor | None) -> bool:
    return processor is not None and processor.type_name == "decision"
