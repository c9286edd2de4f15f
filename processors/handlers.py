"""Python handlers that ``task`` nodes call by name (``{"handler": "name", "args": {…}}``).

A handler is a sync or async callable ``(args: dict, context: HandlerContext) -> dict``.
It becomes callable in two ways, both chosen by the operator:

* decorated with ``@handler("name")`` in a module listed in ``[tasks] handler_modules``;
* published by an installed package under the ``flowyard.handlers`` entry-point group
  (the entry point's name is the handler's name).

Names are stable identifiers, never import paths, so moving a function does not orphan
stored definitions. Sync handlers run in a worker thread; raise :class:`HandlerFailed`
to fail the node with a message (and say whether a retry could help).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, cast

from server.errors import ConfigurationError

ENTRY_POINT_GROUP = "flowyard.handlers"
HandlerFunction = Callable[..., Any]

_DECLARED: dict[str, dict[str, HandlerFunction]] = {}  # module name -> handler name -> fn


def handler(name: str) -> Callable[[HandlerFunction], HandlerFunction]:
    """Register the decorated callable as the task handler ``name``."""

    def register(function: HandlerFunction) -> HandlerFunction:
        _DECLARED.setdefault(function.__module__, {})[name] = function
        return function

    return register


class HandlerFailed(Exception):
    """Raised by a handler to fail its node with ``message``."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class HandlerContext:
    """What a handler may know about the node it runs for."""

    execution_id: str
    workflow_id: str
    node_id: str
    attempt: int
    idempotency_key: str
    log: Callable[[str], None]


class Handlers:
    """The handlers this server lets task nodes call, by name."""

    def __init__(self, handlers: Mapping[str, HandlerFunction]) -> None:
        self._handlers = dict(handlers)

    @classmethod
    def load(
        cls, modules: Sequence[str], *, entry_point_group: str = ENTRY_POINT_GROUP
    ) -> Handlers:
        found: dict[str, HandlerFunction] = {}
        for entry in entry_points(group=entry_point_group):
            found[entry.name] = _load_entry_point(entry)
        for module in modules:
            try:
                importlib.import_module(module)
            except Exception as error:
                raise ConfigurationError(
                    "tasks.handler_modules",
                    f"cannot import {module!r}: {type(error).__name__}: {error}",
                ) from error
            found.update(_DECLARED.get(module, {}))
        return cls(found)

    def get(self, name: str) -> HandlerFunction | None:
        return self._handlers.get(name)

    def names(self) -> list[str]:
        return sorted(self._handlers)


def _load_entry_point(entry: EntryPoint) -> HandlerFunction:
    """An installed package's handler; a broken one stops the start with a message."""
    package = f"{entry.dist.name} {entry.dist.version}" if entry.dist else "an installed package"
    where = f"entry point {entry.name!r} = {entry.value!r} of {package} ({entry.group})"
    try:
        function = entry.load()
    except Exception as error:
        raise ConfigurationError(
            "tasks",
            f"cannot load the {where}: {type(error).__name__}: {error}; fix or uninstall "
            "that package",
        ) from error
    if not callable(function):
        raise ConfigurationError(
            "tasks", f"the {where} is not callable; fix or uninstall that package"
        )
    return cast(HandlerFunction, function)
