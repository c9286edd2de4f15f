"""The JSON Schema (draft 2020-12) of the definition format.

Built from the shared structure below plus each registered node type's
``config_schema`` (plugged in with ``if type == … then config: …``). The committed copy
``definitions/schema.json`` is this module's output::

    python -m server.definitions.schema > definitions/schema.json

Validation uses the very same schema for its structural checks, so the two agree by
construction; everything the schema cannot say is checked by hand in ``validation``.
"""

from __future__ import annotations

import copy
import json
import sys
from typing import Any

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from processors.base import DURATION_SCHEMA, JSONSchema, Processor
from processors.registry import ProcessorRegistry, default_registry
from server.definitions.context import RESERVED_WORKFLOW_IDS

SCHEMA_ID = "urn:flowyard:workflow-definition"
WORKFLOW_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,127}$"
NODE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,127}$"
WEBHOOK_PATH_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
SEMVER_PATTERN = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
VARIABLE_TYPES = ("string", "integer", "number", "boolean", "object", "array", "any")
STATUSES = ("draft", "active", "inactive", "deprecated")
PRIORITIES = ("low", "medium", "high", "critical")
ON_FAILURE = ("stop", "continue", "retry")
BACKOFFS = ("fixed", "linear", "exponential")
TRIGGER_TYPES = ("cron", "webhook")
MISFIRE_POLICIES = ("run_once", "skip", "run_all")
MAX_CATCH_UP_LIMIT = 1000

_DURATION_OR_NULL: JSONSchema = {**DURATION_SCHEMA, "type": ["number", "string", "null"]}


def _nullable(schema: JSONSchema) -> JSONSchema:
    """A copy of ``schema`` that also accepts ``null`` (optional fields may be null)."""
    result = copy.deepcopy(schema)
    kind = result.get("type")
    if isinstance(kind, str):
        result["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        result["type"] = [*kind, "null"]
    if "enum" in result and None not in result["enum"]:
        result["enum"] = [*result["enum"], None]
    if "oneOf" in result:
        result["oneOf"] = [*result["oneOf"], {"type": "null"}]
    return result


def raw_config_schema(processor: Processor) -> JSONSchema:
    """The schema of a node's ``config`` as written: canonical keys, aliases and ``custom``."""
    base = processor.config_schema
    properties: dict[str, Any] = {
        key: _nullable(value) for key, value in base.get("properties", {}).items()
    }
    for alias, canonical in processor.config_aliases.items():
        if canonical in properties:
            properties[alias] = {**properties[canonical], "description": f"alias of {canonical}"}
    custom: JSONSchema = {
        "type": ["object", "null"],
        "description": "node-type settings may also sit here (seed format); config keys win",
        "properties": copy.deepcopy(properties),
    }
    return {"type": ["object", "null"], "properties": {**properties, "custom": custom}}


def config_def_name(type_name: str) -> str:
    """The ``$defs`` key of a node type's config schema."""
    return f"config-{type_name}"


def _typed_config_rules(registry: ProcessorRegistry) -> list[JSONSchema]:
    aliases_of: dict[str, list[str]] = {}
    for alias, canonical in registry.aliases().items():
        aliases_of.setdefault(canonical, []).append(alias)
    rules = []
    for processor in registry:
        names = [processor.type_name, *sorted(aliases_of.get(processor.type_name, []))]
        config_ref = {"$ref": f"#/$defs/{config_def_name(processor.type_name)}"}
        rules.append(
            {
                "if": {"properties": {"type": {"enum": names}}, "required": ["type"]},
                "then": {"properties": {"config": config_ref}},
            }
        )
    return rules


def _node_type_schema(registry: ProcessorRegistry) -> JSONSchema:
    return {"enum": list(registry.names()), "description": "node type (see GET /api/v1/node-types)"}


def _defs(registry: ProcessorRegistry) -> dict[str, JSONSchema]:
    typed = _typed_config_rules(registry)
    retry_policy: JSONSchema = {
        "type": ["object", "null"],
        "description": "retries of a failed node; max_attempts counts the first try",
        "properties": {
            "max_attempts": {"type": "integer", "minimum": 1},
            "delay": _DURATION_OR_NULL,
            "backoff": {"enum": [*BACKOFFS, None]},
            "max_delay": _DURATION_OR_NULL,
            "jitter": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        },
    }
    join: JSONSchema = {
        "description": '"all" (default), "any", or the number of incoming edges to wait for',
        "oneOf": [{"enum": ["all", "any"]}, {"type": "integer", "minimum": 1}, {"type": "null"}],
    }
    node: JSONSchema = {
        "type": "object",
        "required": ["id", "type"],
        "properties": {
            "id": {
                "type": "string",
                "pattern": NODE_ID_PATTERN,
                "description": "node id: letters, digits, '_' and '-', at most 128 characters, "
                "unique in the workflow",
            },
            "name": {"type": ["string", "null"]},
            "type": _node_type_schema(registry),
            "description": {"type": ["string", "null"]},
            "config": {"type": ["object", "null"], "description": "settings of the node type"},
            "position": {
                "type": ["object", "null"],
                "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
            },
            "timeout": _DURATION_OR_NULL,
            "retry_policy": retry_policy,
            "metadata": {"type": ["object", "null"]},
            "output_key": {
                "type": ["string", "null"],
                "pattern": NAME_PATTERN,
                "description": "store the output under this scope name: a letter or '_', then "
                "letters, digits, '_' or '-'",
            },
            "compensate": {"$ref": "#/$defs/step"},
            "join": join,
        },
        "allOf": typed,
    }
    step: JSONSchema = {
        "type": ["object", "null"],
        "description": "compensation step: a node without id or edges, {type, config}",
        "required": ["type"],
        "properties": {
            "type": _node_type_schema(registry),
            "name": {"type": ["string", "null"]},
            "description": {"type": ["string", "null"]},
            "config": {"type": ["object", "null"]},
            "timeout": _DURATION_OR_NULL,
            "retry_policy": retry_policy,
        },
        "allOf": typed,
    }
    edge: JSONSchema = {
        "type": "object",
        "required": ["from_node", "to_node"],
        "properties": {
            "id": {"type": ["string", "null"]},
            "from_node": {"type": "string"},
            "to_node": {"type": "string"},
            "condition": {
                "type": ["string", "null"],
                "description": "expression; after a decision, the branch label",
            },
            "priority": {"type": ["integer", "null"]},
            "label": {"type": ["string", "null"]},
            "on_error": {"type": ["boolean", "null"]},
        },
    }
    variable: JSONSchema = {
        "type": "object",
        "properties": {
            "name": {"type": ["string", "null"]},
            "type": {"enum": list(VARIABLE_TYPES)},
            "required": {"type": ["boolean", "null"]},
            "default_value": {},
            "description": {"type": ["string", "null"]},
        },
    }
    trigger: JSONSchema = {
        "type": "object",
        "required": ["id", "type"],
        "properties": {
            "id": {"type": "string", "pattern": NODE_ID_PATTERN, "description": "trigger id"},
            "type": {"enum": list(TRIGGER_TYPES)},
            "schedule": {"type": "string", "description": "cron: 5 fields, or 6 (seconds first)"},
            "timezone": {"type": ["string", "null"], "description": "IANA zone (default UTC)"},
            "input": {"type": ["object", "null"], "description": "execution input"},
            "path": {
                "type": "string",
                "pattern": WEBHOOK_PATH_PATTERN,
                "description": "hook path (POST /api/v1/hooks/<path>): letters, digits, '_', "
                "'.', '-', starting with a letter or digit",
            },
            "secret": {"type": ["string", "array", "null"], "items": {"type": "string"}},
            "input_mapping": {
                "type": ["object", "null"],
                "additionalProperties": {"type": "string"},
                "description": "webhook: input name → body.<path>, headers.<name> or "
                "query.<name> (default: a JSON object body is the input)",
            },
            "misfire": {
                "enum": [*MISFIRE_POLICIES, None],
                "description": "cron: fires missed while no server ran — run_once (default), "
                "skip or run_all",
            },
            "max_catch_up": {
                "type": ["integer", "null"],
                "minimum": 1,
                "maximum": MAX_CATCH_UP_LIMIT,
                "description": "cron with misfire run_all: the most missed fires started",
            },
            "enabled": {"type": ["boolean", "null"]},
            "description": {"type": ["string", "null"]},
        },
        "allOf": [
            {
                "if": {"properties": {"type": {"const": "cron"}}, "required": ["type"]},
                "then": {"required": ["schedule"]},
            },
            {
                "if": {"properties": {"type": {"const": "webhook"}}, "required": ["type"]},
                "then": {"required": ["path"]},
            },
        ],
    }
    workflow_config: JSONSchema = {
        "type": ["object", "null"],
        "properties": {
            "timeout": _DURATION_OR_NULL,
            "max_retries": {"type": ["integer", "null"], "minimum": 0},
            "priority": {"enum": [*PRIORITIES, None]},
            "concurrency": {"type": ["integer", "null"], "minimum": 1},
            "enable_audit": {"type": ["boolean", "null"]},
            "enable_metrics": {"type": ["boolean", "null"]},
            "notifications": {"type": ["array", "null"]},
            "error_handling": {
                "type": ["object", "null"],
                "properties": {
                    "on_failure": {"enum": [*ON_FAILURE, None]},
                    "max_errors": {"type": ["integer", "null"], "minimum": 1},
                    "rollback": {"type": ["boolean", "null"]},
                },
            },
        },
    }
    configs = {config_def_name(p.type_name): raw_config_schema(p) for p in registry}
    return {
        **configs,
        "node": node,
        "step": step,
        "edge": edge,
        "nodes": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/node"}},
        "edges": {"type": ["array", "null"], "items": {"$ref": "#/$defs/edge"}},
        "graph": {
            "type": "object",
            "required": ["nodes"],
            "properties": {"nodes": {"$ref": "#/$defs/nodes"}, "edges": {"$ref": "#/$defs/edges"}},
        },
        "variable": variable,
        "trigger": trigger,
        "workflow_config": workflow_config,
    }


def build_schema(registry: ProcessorRegistry | None = None) -> JSONSchema:
    """The whole definition schema for the node types in ``registry`` (default: built-ins)."""
    registry = registry if registry is not None else default_registry()
    optional_text: JSONSchema = {"type": ["string", "null"]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Flowyard workflow definition",
        "description": "See docs/definitions.md. Optional fields may be null (= absent).",
        "type": "object",
        "required": ["name", "nodes"],
        "properties": {
            "id": {
                "type": "string",
                "pattern": WORKFLOW_ID_PATTERN,
                "not": {"enum": sorted(RESERVED_WORKFLOW_IDS)},
                "description": "workflow id: lowercase letters, digits, '_', '.', '-', starting "
                "with a letter or digit, at most 128 characters; generated when absent",
            },
            "name": {"type": "string", "minLength": 1},
            "description": optional_text,
            "version": {
                "type": "string",
                "pattern": SEMVER_PATTERN,
                "description": 'semantic version such as "1.0.0" (default "1.0.0")',
            },
            "status": {"enum": [*STATUSES, None]},
            "tags": {"type": ["array", "null"], "items": {"type": "string"}},
            "category": optional_text,
            "owner": optional_text,
            "variables": {
                "type": ["object", "null"],
                "propertyNames": {
                    "pattern": NAME_PATTERN,
                    "description": "variable name: a letter or '_', then letters, digits, "
                    "'_' or '-'",
                },
                "additionalProperties": {"$ref": "#/$defs/variable"},
            },
            "nodes": {"$ref": "#/$defs/nodes"},
            "edges": {"$ref": "#/$defs/edges"},
            "config": {"$ref": "#/$defs/workflow_config"},
            "triggers": {"type": ["array", "null"], "items": {"$ref": "#/$defs/trigger"}},
            "output": {"type": ["object", "null"], "description": "name → template"},
            "metadata": {"type": ["object", "null"]},
        },
        "$defs": _defs(registry),
    }


_VALIDATORS: dict[object, Draft202012Validator] = {}


def schema_validator(registry: ProcessorRegistry) -> Draft202012Validator:
    """A (cached) validator for ``registry``'s schema; rebuilt when the node types change."""
    key = (
        tuple((p.type_name, type(p)) for p in registry),
        tuple(sorted(registry.aliases().items())),
    )
    validator = _VALIDATORS.get(key)
    if validator is None:
        validator = Draft202012Validator(build_schema(registry))
        _VALIDATORS[key] = validator
    return validator


def render_schema(registry: ProcessorRegistry | None = None) -> str:
    """The schema as committed: indented JSON with a final newline."""
    return json.dumps(build_schema(registry), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    """Print the schema (``python -m server.definitions.schema > definitions/schema.json``)."""
    sys.stdout.write(render_schema())


if __name__ == "__main__":
    main()
