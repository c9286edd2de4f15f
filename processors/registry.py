"""The node-type registry: stable type names → processors.

Definitions store type names, so names are the registry's keys (never import paths):
renaming a type means registering the new name and keeping the old one as an alias.
The built-in set is one explicit table, :data:`DEFAULT_PROCESSORS`; adding a node type
means one module in ``processors/`` and one line there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType

from processors.api import ApiProcessor
from processors.base import Processor
from processors.database import DatabaseProcessor
from processors.decision import DecisionProcessor
from processors.email import EmailProcessor
from processors.human_task import HumanTaskProcessor
from processors.loop import LoopProcessor
from processors.parallel import ParallelProcessor
from processors.sub_workflow import SubWorkflowProcessor
from processors.task import TaskProcessor
from processors.timer import TimerProcessor
from processors.transform import TransformProcessor
from processors.webhook import WebhookProcessor
from server.errors import DuplicateNodeType, UnknownNodeType

#: The built-in node types, by type name.
DEFAULT_PROCESSORS: Mapping[str, type[Processor]] = MappingProxyType(
    {
        "task": TaskProcessor,
        "api": ApiProcessor,
        "transform": TransformProcessor,
        "decision": DecisionProcessor,
        "human_task": HumanTaskProcessor,
        "timer": TimerProcessor,
        "loop": LoopProcessor,
        "parallel": ParallelProcessor,
        "database": DatabaseProcessor,
        "email": EmailProcessor,
        "webhook": WebhookProcessor,
        "sub_workflow": SubWorkflowProcessor,
    }
)

_TYPE_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


class ProcessorRegistry:
    """Processors by type name (and alias); registration is all-or-nothing."""

    def __init__(self) -> None:
        self._processors: dict[str, Processor] = {}
        self._aliases: dict[str, str] = {}
        #: Bumped on every registration, so caches derived from the registry can notice.
        self.version = 0

    def register(self, processor: Processor, *, aliases: Iterable[str] = ()) -> None:
        """Register ``processor`` under its ``type_name`` and ``aliases``.

        Raises :class:`DuplicateNodeType` (registering nothing) if any name is taken, and
        ``ValueError`` for a name that is not a lowercase identifier.
        """
        names = [processor.type_name, *aliases]
        for name in names:
            if not isinstance(name, str) or not _TYPE_NAME.fullmatch(name):
                raise ValueError(f"node type name {name!r} must match {_TYPE_NAME.pattern}")
            if name in self:
                raise DuplicateNodeType(name, self.canonical(name))
        if len(set(names)) != len(names):
            duplicate = next(name for name in names if names.count(name) > 1)
            raise DuplicateNodeType(duplicate, processor.type_name)
        self._processors[processor.type_name] = processor
        for alias in aliases:
            self._aliases[alias] = processor.type_name
        self.version += 1

    def canonical(self, type_name: str) -> str:
        """The registered type name for a name or alias; :class:`UnknownNodeType` if neither."""
        if type_name in self._processors:
            return type_name
        if type_name in self._aliases:
            return self._aliases[type_name]
        raise UnknownNodeType(type_name, self._processors)

    def get(self, type_name: str) -> Processor:
        """The processor for a type name or alias; :class:`UnknownNodeType` if unknown."""
        return self._processors[self.canonical(type_name)]

    def types(self) -> tuple[str, ...]:
        """Registered type names (without aliases), sorted."""
        return tuple(sorted(self._processors))

    def aliases(self) -> Mapping[str, str]:
        """Alias → type name."""
        return MappingProxyType(self._aliases)

    def names(self) -> tuple[str, ...]:
        """Every accepted name: type names then aliases, each sorted."""
        return (*self.types(), *sorted(self._aliases))

    def __contains__(self, type_name: object) -> bool:
        return isinstance(type_name, str) and (
            type_name in self._processors or type_name in self._aliases
        )

    def __iter__(self) -> Iterator[Processor]:
        return iter([self._processors[name] for name in self.types()])

    def __len__(self) -> int:
        return len(self._processors)


def default_registry() -> ProcessorRegistry:
    """A new registry holding the built-in node types (callers may add their own)."""
    registry = ProcessorRegistry()
    for processor_class in DEFAULT_PROCESSORS.values():
        registry.register(processor_class())
    return registry
