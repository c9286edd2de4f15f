"""The validator's implementation of :class:`processors.base.ConfigCheck` for one node."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from processors.base import CheckContext
from server.definitions.checks import ValueChecks
from server.definitions.pointers import pointer, split
from server.definitions.references import ReferenceChecker, Scope
from server.definitions.report import Reporter
from server.expressions import ExpressionInfo

#: validates a nested graph: (absolute pointer, body, loop_body)
SubgraphValidator = Callable[[str, object, bool], None]


class NodeChecker:
    """Maps a processor's relative, canonical pointers to where keys really are."""

    def __init__(
        self,
        *,
        node: Mapping[str, Any],
        outgoing_edges: Sequence[Mapping[str, Any]],
        graph_node_ids: frozenset[str],
        context: CheckContext,
        config_pointer: str,
        sources: Mapping[str, tuple[str, ...]],
        scope: Scope,
        reporter: Reporter,
        values: ValueChecks,
        subgraph: SubgraphValidator,
        extra_names: frozenset[str] = frozenset(),
    ) -> None:
        self._node = node
        self._outgoing = outgoing_edges
        self._graph_node_ids = graph_node_ids
        self._context = context
        self._config_pointer = config_pointer
        self._sources = sources
        self._scope = scope
        self._reporter = reporter
        self._values = values
        self._subgraph = subgraph
        self._extra_names = extra_names

    @property
    def node(self) -> Mapping[str, Any]:
        return self._node

    @property
    def outgoing_edges(self) -> Sequence[Mapping[str, Any]]:
        return self._outgoing

    @property
    def graph_node_ids(self) -> frozenset[str]:
        return self._graph_node_ids

    @property
    def context(self) -> CheckContext:
        return self._context

    def absolute(self, rel_pointer: str) -> str:
        """The document pointer of a config-relative, canonical pointer."""
        parts = split(rel_pointer)
        if not parts:
            return self._config_pointer
        head, rest = parts[0], parts[1:]
        source = self._sources.get(head, (head,))
        return self._config_pointer + pointer(*source, *rest)

    def error(self, rel_pointer: str, message: str) -> None:
        self._reporter.error(self.absolute(rel_pointer), message)

    def warning(self, rel_pointer: str, message: str) -> None:
        self._reporter.warning(self.absolute(rel_pointer), message)

    def _references(self, local_names: Iterable[str] = ()) -> ReferenceChecker:
        return ReferenceChecker(self._scope, self._extra_names | frozenset(local_names))

    def expression(
        self, rel_pointer: str, text: object, *, local_names: Iterable[str] = ()
    ) -> ExpressionInfo | None:
        return self._values.expression(
            self.absolute(rel_pointer), text, self._references(local_names)
        )

    def template(self, rel_pointer: str, value: object) -> None:
        self._values.template(self.absolute(rel_pointer), value, self._references())

    def jsonpath(self, rel_pointer: str, text: object) -> None:
        self._values.jsonpath(self.absolute(rel_pointer), text)

    def cron(self, rel_pointer: str, text: object) -> None:
        self._values.cron(self.absolute(rel_pointer), text)

    def timezone(self, rel_pointer: str, text: object) -> None:
        self._values.timezone(self.absolute(rel_pointer), text)

    def duration(self, rel_pointer: str, value: object) -> float | None:
        return self._values.duration(self.absolute(rel_pointer), value)

    def subgraph(self, rel_pointer: str, body: object, *, loop_body: bool = False) -> None:
        self._subgraph(self.absolute(rel_pointer), body, loop_body)
