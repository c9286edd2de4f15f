"""``GET /api/v1/node-types``: the node types this server runs, with their config schemas.

Each ``config_schema`` is the very object the validator checks a node's ``config``
against — :func:`server.definitions.schema.raw_config_schema`, the same one published as
``$defs/config-<type>`` in ``definitions/schema.json`` — so a client (an editor, a form
builder) sees exactly what a definition may say. Schemas of types that nest graphs
(``loop``, ``parallel``) refer to ``#/$defs/graph`` etc. of that definition schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Controller, get
from litestar.di import NamedDependency

from processors.registry import ProcessorRegistry
from server.definitions.schema import raw_config_schema
from server.engine.engine import Engine
from server.security.permissions import permission


@dataclass
class NodeType:
    type: str
    description: str
    config_schema: dict[str, Any]
    #: other type names that select this type (renamed types keep their old name)
    aliases: list[str]
    #: seed config keys accepted for canonical ones: alias → canonical key
    config_aliases: dict[str, str]


@dataclass
class NodeTypeList:
    node_types: list[NodeType]
    total: int


def describe_node_types(registry: ProcessorRegistry) -> NodeTypeList:
    """Every registered type (sorted by name) with its description and config schema."""
    aliases_of: dict[str, list[str]] = {}
    for alias, canonical in registry.aliases().items():
        aliases_of.setdefault(canonical, []).append(alias)
    items = [
        NodeType(
            type=processor.type_name,
            description=processor.description,
            config_schema=raw_config_schema(processor),
            aliases=sorted(aliases_of.get(processor.type_name, [])),
            config_aliases=dict(processor.config_aliases),
        )
        for processor in registry
    ]
    return NodeTypeList(node_types=items, total=len(items))


class NodeTypeController(Controller):
    path = "/api/v1/node-types"
    tags = ["node types"]

    @get(
        "/",
        opt=permission("read"),
        summary="List the node types this server runs",
        description="Each type with a one-line description and the JSON Schema its node "
        "`config` is validated against (the same as in definitions/schema.json).",
    )
    async def list_node_types(self, engine: NamedDependency[Engine]) -> NodeTypeList:
        return describe_node_types(engine.processors)
