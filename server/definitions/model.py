"""The typed model of a *valid* definition, and the stored document's defaults.

``parse_definition`` assumes ``validate_definition`` found no errors; it still never
trusts types blindly (it falls back to defaults), but it does not report anything.
Node configs in the model are *effective* configs: seed aliases mapped to canonical
keys and ``config.custom`` folded in (``config``'s own keys win).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from processors.registry import ProcessorRegistry, default_registry
from server.definitions.config_merge import merge_config
from server.durations import parse_duration

Join = Literal["all", "any"] | int
Backoff = Literal["fixed", "linear", "exponential"]

DEFAULT_VERSION = "1.0.0"
DEFAULT_STATUS = "active"
#: How many missed fires a ``run_all`` cron trigger starts after downtime, at most.
DEFAULT_MAX_CATCH_UP = 10


@dataclass(frozen=True)
class Variable:
    """A declared input of the workflow."""

    name: str
    type: str = "any"
    required: bool = False
    default_value: Any = None
    description: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """How a failed node is retried; ``max_attempts`` counts the first try."""

    max_attempts: int = 1
    delay: float = 1.0
    backoff: Backoff = "exponential"
    max_delay: float | None = None
    jitter: float = 0.0


@dataclass(frozen=True)
class Step:
    """A compensation step: a node without id or edges."""

    type: str
    config: Mapping[str, Any]
    timeout: float | None = None
    retry_policy: RetryPolicy | None = None


@dataclass(frozen=True)
class Node:
    """One node; ``config`` is the effective config (aliases and ``custom`` merged)."""

    id: str
    name: str
    type: str
    config: Mapping[str, Any]
    description: str | None = None
    timeout: float | None = None
    retry_policy: RetryPolicy | None = None
    output_key: str | None = None
    compensate: Step | None = None
    join: Join = "all"
    position: tuple[float, float] | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Edge:
    """A connection; ``id`` is generated (``"<from>-><to>"``) when the document has none."""

    id: str
    from_node: str
    to_node: str
    condition: str | None = None
    priority: int = 0
    label: str | None = None
    on_error: bool = False


@dataclass(frozen=True)
class Graph:
    """Nodes and edges of one level (the definition, a loop body, a parallel branch)."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]

    def node(self, node_id: str) -> Node:
        """The node with ``node_id`` (KeyError if there is none)."""
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)


@dataclass(frozen=True)
class ErrorHandling:
    on_failure: Literal["stop", "continue", "retry"] = "stop"
    max_errors: int | None = None
    rollback: bool = False


@dataclass(frozen=True)
class WorkflowConfig:
    """Workflow-wide settings; ``timeout`` in seconds (``None`` = server default)."""

    timeout: float | None = None
    max_retries: int = 0
    priority: Literal["low", "medium", "high", "critical"] = "medium"
    concurrency: int | None = None
    enable_audit: bool = True
    enable_metrics: bool = True
    notifications: tuple[Any, ...] = ()
    error_handling: ErrorHandling = field(default_factory=ErrorHandling)


@dataclass(frozen=True)
class Trigger:
    """A cron or webhook trigger (see docs/triggers.md).

    ``misfire`` and ``max_catch_up`` say what a cron trigger does about fires that came
    due while no server ran it; ``input_mapping`` says where a webhook trigger's input
    comes from (input name → ``body.…``, ``headers.…`` or ``query.…``).
    """

    id: str
    type: Literal["cron", "webhook"]
    schedule: str | None = None
    timezone: str = "UTC"
    path: str | None = None
    secret: str | tuple[str, ...] | None = None
    input: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool = True
    misfire: Literal["run_once", "skip", "run_all"] = "run_once"
    max_catch_up: int = DEFAULT_MAX_CATCH_UP
    input_mapping: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Definition:
    """A valid workflow definition; ``raw`` is the document it was parsed from."""

    id: str
    name: str
    version: str
    status: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    description: str | None = None
    tags: tuple[str, ...] = ()
    category: str | None = None
    owner: str | None = None
    variables: Mapping[str, Variable] = field(default_factory=dict)
    config: WorkflowConfig = field(default_factory=WorkflowConfig)
    triggers: tuple[Trigger, ...] = ()
    output: Mapping[str, Any] | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def graph(self) -> Graph:
        return Graph(self.nodes, self.edges)


def normalize_document(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``doc`` with the stored defaults filled (id, version, status).

    Unknown fields are kept; nothing else changes (edge ids stay absent — the model
    generates them).
    """
    result = copy.deepcopy(dict(doc))
    if not result.get("id"):
        result["id"] = str(uuid.uuid4())
    if not result.get("version"):
        result["version"] = DEFAULT_VERSION
    if not result.get("status"):
        result["status"] = DEFAULT_STATUS
    return result


def parse_definition(
    doc: Mapping[str, Any], registry: ProcessorRegistry | None = None
) -> Definition:
    """The model of a valid definition document (see :func:`normalize_document`)."""
    registry = registry if registry is not None else default_registry()
    graph = parse_graph(doc, registry)
    return Definition(
        id=_str(doc.get("id")) or str(uuid.uuid4()),
        name=_str(doc.get("name")) or "",
        version=_str(doc.get("version")) or DEFAULT_VERSION,
        status=_str(doc.get("status")) or DEFAULT_STATUS,
        nodes=graph.nodes,
        edges=graph.edges,
        description=_str(doc.get("description")),
        tags=tuple(t for t in _list(doc.get("tags")) if isinstance(t, str)),
        category=_str(doc.get("category")),
        owner=_str(doc.get("owner")),
        variables=_variables(doc.get("variables")),
        config=_workflow_config(doc.get("config")),
        triggers=tuple(parse_trigger(t) for t in _list(doc.get("triggers")) if isinstance(t, dict)),
        output=doc["output"] if isinstance(doc.get("output"), dict) else None,
        metadata=_dict(doc.get("metadata")),
        raw=doc,
    )


def parse_graph(body: Mapping[str, Any], registry: ProcessorRegistry | None = None) -> Graph:
    """Nodes and edges of a ``{nodes, edges}`` object (the definition or a nested body)."""
    registry = registry if registry is not None else default_registry()
    nodes = tuple(_node(n, registry) for n in _list(body.get("nodes")) if isinstance(n, dict))
    return Graph(nodes, _edges(_list(body.get("edges"))))


def _node(raw: Mapping[str, Any], registry: ProcessorRegistry) -> Node:
    type_name = _str(raw.get("type")) or ""
    canonical = registry.canonical(type_name) if type_name in registry else type_name
    node_id = _str(raw.get("id")) or ""
    position = raw.get("position")
    return Node(
        id=node_id,
        name=_str(raw.get("name")) or node_id,
        type=canonical,
        config=_effective_config(raw.get("config"), canonical, registry),
        description=_str(raw.get("description")),
        timeout=_seconds(raw.get("timeout")),
        retry_policy=_retry_policy(raw.get("retry_policy")),
        output_key=_str(raw.get("output_key")),
        compensate=_step(raw.get("compensate"), registry),
        join=_join(raw.get("join")),
        position=(
            (float(position.get("x", 0)), float(position.get("y", 0)))
            if isinstance(position, dict)
            else None
        ),
        metadata=_dict(raw.get("metadata")),
    )


def _effective_config(raw: object, type_name: str, registry: ProcessorRegistry) -> dict[str, Any]:
    processor = registry.get(type_name) if type_name in registry else None
    return merge_config(raw, processor).config


def _step(raw: object, registry: ProcessorRegistry) -> Step | None:
    if not isinstance(raw, dict):
        return None
    type_name = _str(raw.get("type")) or ""
    canonical = registry.canonical(type_name) if type_name in registry else type_name
    return Step(
        type=canonical,
        config=_effective_config(raw.get("config"), canonical, registry),
        timeout=_seconds(raw.get("timeout")),
        retry_policy=_retry_policy(raw.get("retry_policy")),
    )


def _edges(raw_edges: list[Any]) -> tuple[Edge, ...]:
    edges: list[Edge] = []
    used = {e["id"] for e in raw_edges if isinstance(e, dict) and isinstance(e.get("id"), str)}
    for raw in raw_edges:
        if not isinstance(raw, dict):
            continue
        source, target = _str(raw.get("from_node")) or "", _str(raw.get("to_node")) or ""
        edge_id = _str(raw.get("id"))
        if edge_id is None:
            edge_id = base = f"{source}->{target}"
            suffix = 2
            while edge_id in used:
                edge_id, suffix = f"{base}#{suffix}", suffix + 1
            used.add(edge_id)
        priority = raw.get("priority")
        edges.append(
            Edge(
                id=edge_id,
                from_node=source,
                to_node=target,
                condition=_str(raw.get("condition")),
                priority=priority
                if isinstance(priority, int) and not isinstance(priority, bool)
                else 0,
                label=_str(raw.get("label")),
                on_error=raw.get("on_error") is True,
            )
        )
    return tuple(edges)


def _variables(raw: object) -> dict[str, Variable]:
    result = {}
    for name, spec in _dict(raw).items():
        spec = spec if isinstance(spec, dict) else {}
        result[name] = Variable(
            name=name,
            type=_str(spec.get("type")) or "any",
            required=spec.get("required") is True,
            default_value=spec.get("default_value"),
            description=_str(spec.get("description")),
        )
    return result


def _workflow_config(raw: object) -> WorkflowConfig:
    config = _dict(raw)
    handling = _dict(config.get("error_handling"))
    return WorkflowConfig(
        timeout=_seconds(config.get("timeout")),
        max_retries=_int(config.get("max_retries")) or 0,
        priority=config.get("priority") or "medium",
        concurrency=_int(config.get("concurrency")),
        enable_audit=config.get("enable_audit") is not False,
        enable_metrics=config.get("enable_metrics") is not False,
        notifications=tuple(_list(config.get("notifications"))),
        error_handling=ErrorHandling(
            on_failure=handling.get("on_failure") or "stop",
            max_errors=_int(handling.get("max_errors")),
            rollback=handling.get("rollback") is True,
        ),
    )


def parse_trigger(raw: Mapping[str, Any]) -> Trigger:
    """The model of one (valid) entry of a definition's ``triggers``."""
    secret = raw.get("secret")
    misfire = raw.get("misfire")
    mapping = raw.get("input_mapping")
    return Trigger(
        id=_str(raw.get("id")) or "",
        type="webhook" if raw.get("type") == "webhook" else "cron",
        schedule=_str(raw.get("schedule")),
        timezone=_str(raw.get("timezone")) or "UTC",
        path=_str(raw.get("path")),
        secret=tuple(secret) if isinstance(secret, list) else _str(secret),
        input=_dict(raw.get("input")),
        enabled=raw.get("enabled") is not False,
        misfire=misfire if misfire in ("skip", "run_all") else "run_once",
        max_catch_up=_int(raw.get("max_catch_up")) or DEFAULT_MAX_CATCH_UP,
        input_mapping=(
            {str(k): str(v) for k, v in mapping.items() if isinstance(v, str)}
            if isinstance(mapping, dict)
            else None
        ),
    )


def _retry_policy(raw: object) -> RetryPolicy | None:
    if not isinstance(raw, dict):
        return None
    backoff = raw.get("backoff")
    jitter = raw.get("jitter")
    return RetryPolicy(
        max_attempts=_int(raw.get("max_attempts")) or 1,
        delay=_seconds(raw.get("delay")) if raw.get("delay") is not None else 1.0,  # type: ignore[arg-type]
        backoff=backoff if backoff in ("fixed", "linear", "exponential") else "exponential",
        max_delay=_seconds(raw.get("max_delay")),
        jitter=float(jitter)
        if isinstance(jitter, int | float) and not isinstance(jitter, bool)
        else 0.0,
    )


def _join(raw: object) -> Join:
    if raw == "any":
        return "any"
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    return "all"


def _seconds(value: object) -> float | None:
    return None if value is None else parse_duration(value)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
