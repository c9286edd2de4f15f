"""The contract every node type implements.

A node type is a :class:`Processor` subclass registered under a stable type name
(``processors.registry``). For now a processor only describes the definition-time side
of its node type — the JSON Schema of its ``config``, the seed aliases of its config keys,
the semantic checks that the schema cannot express, which scope names its output can
introduce — and its run-time side: ``run`` (and ``resume`` for types that wait), with
the outcomes and context of ``processors.runtime``. Everything about one node type lives
in one module.

Processors never import the definition validator (or the store, the API…): validation
hands them a :class:`ConfigCheck`, a narrow protocol through which they report problems
and ask for the shared checks (expressions, templates, JSONPath, cron, durations, nested
sub-graphs). Pointers given to it are *relative to the node's config* and use canonical
key names; the checker maps them to where the key really sits in the document (an alias
such as ``config/rules`` or the seed's ``config/custom/…``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Protocol

from processors.commands import CommandPolicy
from processors.runtime import Completed, Failed, NodeContext, Outcome, WaitResolution
from server.expressions import ExpressionInfo

JSONSchema = dict[str, Any]

#: Reference to the shared node / edge / sub-graph schemas of the definition format.
#: Config schemas that nest nodes (``loop`` bodies, ``parallel`` branches) use these;
#: ``server.definitions.schema`` provides the targets under ``$defs``.
GRAPH_REF: JSONSchema = {"$ref": "#/$defs/graph"}
NODES_REF: JSONSchema = {"$ref": "#/$defs/nodes"}
EDGES_REF: JSONSchema = {"$ref": "#/$defs/edges"}
DURATION_SCHEMA: JSONSchema = {
    "type": ["number", "string"],
    "description": 'seconds, or a duration such as "30s", "5m", "1h30m", "3 days", "PT30S"',
}
TEMPLATE_STRING: JSONSchema = {"type": "string", "description": "text; may contain ${path}"}


def escape_pointer_segment(segment: str | int) -> str:
    """One JSON-pointer segment, escaped per RFC 6901 (``~`` → ``~0``, ``/`` → ``~1``)."""
    return str(segment).replace("~", "~0").replace("/", "~1")


def rel(*segments: str | int) -> str:
    """A relative pointer (``"decision_rules/0/condition"``) from raw key segments."""
    return "/".join(escape_pointer_segment(s) for s in segments)


class CheckContext(Protocol):
    """What the server knows about its environment while validating a definition.

    ``None`` means "not known here" (e.g. ``flowyard validate`` without a config file):
    the corresponding check is skipped rather than guessed.
    """

    @property
    def connections(self) -> frozenset[str] | None: ...

    @property
    def smtp_accounts(self) -> frozenset[str] | None: ...

    @property
    def commands(self) -> CommandPolicy | None:
        """Which programs ``task`` commands may start here (``None``: not known)."""
        ...


class ConfigCheck(Protocol):
    """The validator's services offered to :meth:`Processor.check_config`.

    Every ``rel_pointer`` is relative to the node's config and uses canonical key names;
    every method records problems instead of raising, so a processor can check all its
    keys in one pass.
    """

    @property
    def node(self) -> Mapping[str, Any]:
        """The raw node dict as written (for ``compensate`` steps: the step dict)."""
        ...

    @property
    def outgoing_edges(self) -> Sequence[Mapping[str, Any]]:
        """The raw edges leaving this node (empty for ``compensate`` steps)."""
        ...

    @property
    def graph_node_ids(self) -> frozenset[str]:
        """Ids of the nodes in the graph this node belongs to."""
        ...

    @property
    def context(self) -> CheckContext: ...

    def error(self, rel_pointer: str, message: str) -> None:
        """Record an error at ``rel_pointer`` (``""`` = the config itself)."""
        ...

    def warning(self, rel_pointer: str, message: str) -> None:
        """Record a warning at ``rel_pointer``."""
        ...

    def expression(
        self, rel_pointer: str, text: object, *, local_names: Iterable[str] = ()
    ) -> ExpressionInfo | None:
        """Check an expression (syntax, functions, length, ``${…}`` references).

        ``local_names`` are names that exist only for this expression (earlier script
        assignments, ``item``/``index``). Returns ``None`` when the expression is invalid.
        """
        ...

    def template(self, rel_pointer: str, value: object) -> None:
        """Check every ``${…}`` in every string nested in ``value``."""
        ...

    def jsonpath(self, rel_pointer: str, text: object) -> None:
        """Check a JSONPath (jsonpath-ng ``ext`` syntax, length limit)."""
        ...

    def cron(self, rel_pointer: str, text: object) -> None:
        """Check a cron string: 5 fields, or 6 with seconds first."""
        ...

    def timezone(self, rel_pointer: str, text: object) -> None:
        """Check an IANA time-zone name (``"Europe/Berlin"``, ``"UTC"``)."""
        ...

    def duration(self, rel_pointer: str, value: object) -> float | None:
        """Check a duration; return it in seconds, or ``None`` when it is invalid."""
        ...

    def subgraph(self, rel_pointer: str, body: object, *, loop_body: bool = False) -> None:
        """Validate a nested ``{nodes, edges}`` graph with the definition's own rules.

        ``loop_body`` puts ``item`` and ``index`` in scope for the nested nodes.
        """
        ...


class Processor:
    """Base class of node types: subclass it, fill the class variables, override hooks.

    ``config_schema`` documents every config key (canonical names only; the schema
    builder adds the alias keys and ``custom``). Keep it permissive where the format is:
    no ``required`` (a key may sit under ``custom``), additional keys allowed —
    :meth:`check_config` reports missing keys on the merged config instead.
    """

    type_name: ClassVar[str]
    description: ClassVar[str]
    config_schema: ClassVar[JSONSchema] = {"type": "object", "properties": {}}
    #: seed alias → canonical key, e.g. ``{"rules": "decision_rules"}``.
    config_aliases: ClassVar[Mapping[str, str]] = {}
    #: config keys holding expressions the processor evaluates itself; the engine leaves
    #: their ``${…}`` unrendered (rendering would paste values into expression text).
    unrendered_keys: ClassVar[frozenset[str]] = frozenset()
    #: outgoing edges are chosen by the branch label of :class:`Completed` (their
    #: ``condition`` is a label) instead of by evaluating each edge's condition.
    routes_by_label: ClassVar[bool] = False
    #: the node only computes from its config and scope: no effect outside its execution
    #: (no network, files, mail or other executions). The engine may start its successors
    #: before its result is committed (group commit); anything with an outside effect
    #: waits for every earlier result of the execution to be committed first.
    pure: ClassVar[bool] = False
    #: ``${secrets.NAME}`` may be used in its config. False for types whose config is
    #: shown to people as it is (a human task's title and form), where no redaction
    #: can reach it.
    accepts_secrets: ClassVar[bool] = True

    def known_config_keys(self) -> frozenset[str]:
        """Canonical config keys this type understands (from ``config_schema``)."""
        properties = self.config_schema.get("properties", {})
        return frozenset(properties) if isinstance(properties, dict) else frozenset()

    def check_config(self, config: Mapping[str, Any], check: ConfigCheck) -> None:
        """Report semantic problems of ``config`` (already merged, canonical keys).

        Called only after the structural (schema) checks, but a processor must still
        tolerate wrong types: it must never raise on any input.
        """
        del config, check

    def is_pure(self, config: Mapping[str, Any]) -> bool:
        """Whether this node, with this config, is :attr:`pure`."""
        del config
        return self.pure

    def output_names(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        """Top-level scope names this node's output can introduce; ``None`` = unknown."""
        del config
        return None

    async def run(self, config: Mapping[str, Any], ctx: NodeContext) -> Outcome:
        """Do the node's work; ``config`` has its templates rendered (but
        :attr:`unrendered_keys`). Expected failures are returned as ``Failed``; an
        exception is treated as a retryable failure with its message."""
        del config, ctx
        return Failed(
            f"node type {self.type_name!r} cannot run yet: its run-time arrives with the "
            "processors issue",
            retryable=False,
        )

    async def resume(
        self, config: Mapping[str, Any], ctx: NodeContext, wait: WaitResolution
    ) -> Outcome:
        """Finish a node that answered ``Waiting``, once its wait is due or resolved."""
        del config, ctx
        return Completed(dict(wait.data))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {getattr(self, 'type_name', '?')!r}>"


def require_one_of(
    config: Mapping[str, Any], keys: Sequence[str], check: ConfigCheck, *, what: str
) -> str | None:
    """Report unless exactly one of ``keys`` is set; return the one that is set."""
    present = [key for key in keys if config.get(key) is not None]
    listed = ", ".join(f"'{key}'" for key in keys)
    if not present:
        check.error("", f"{what} needs one of {listed}; none is set")
        return None
    if len(present) > 1:
        both = " and ".join(f"'{key}'" for key in present)
        check.error(rel(present[1]), f"{what} takes only one of {listed}, but {both} are set")
        return None
    return present[0]


def is_str(value: object) -> bool:
    """Whether ``value`` is a string (a small helper that reads well in checks)."""
    return isinstance(value, str)
