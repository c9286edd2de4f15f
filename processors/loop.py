"""``loop``: run a body once per item, a number of times, or while a condition holds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from processors.base import GRAPH_REF, ConfigCheck, JSONSchema, Processor, require_one_of

LOOP_NAMES = ("item", "index")


def is_single_reference(text: str) -> bool:
    """Whether ``text`` is exactly one ``${…}`` (a template keeping its JSON type)."""
    return text.startswith("${") and text.endswith("}") and text.count("${") == 1


class LoopProcessor(Processor):
    """Runs its body as one child execution per iteration, with ``item`` and ``index``."""

    type_name: ClassVar[str] = "loop"
    description: ClassVar[str] = (
        "Runs a body (inline nodes or another workflow) per item, n times, or while true."
    )
    config_schema: ClassVar[JSONSchema] = {
        "type": "object",
        "properties": {
            "items": {
                "type": ["string", "array"],
                "description": "list to iterate: ${path}, an expression, or a literal list",
            },
            "iterations": {
                "type": ["integer", "string"],
                "minimum": 0,
                "description": "run the body this many times (number or ${path})",
            },
            "while": {"type": "string", "description": "expression; loop while it is true"},
            "max_iterations": {
                "type": "integer",
                "minimum": 1,
                "description": "upper bound on iterations (default 1000)",
            },
            "body": {**GRAPH_REF, "description": "inline {nodes, edges} run per iteration"},
            "workflow_id": {"type": "string", "description": "workflow run per iteration"},
            "version": {"type": "string", "description": "version of workflow_id (default newest)"},
            "concurrency": {
                "type": "integer",
                "minimum": 1,
                "description": "iterations run at once (default 1)",
            },
            "collect": {
                "type": "string",
                "description": "path in each iteration's scope to gather into results",
            },
            "fail_fast": {
                "type": "boolean",
                "description": "stop at the first failed iteration (default true)",
            },
        },
    }

    def check_config(self, config: Mapping[str, Any], check: ConfigCheck) -> None:
        kind = require_one_of(config, ("items", "iterations", "while"), check, what="a loop")
        if kind == "items" and isinstance(config["items"], str):
            items = config["items"]
            if is_single_reference(items):
                check.template("items", items)
            else:
                check.expression("items", items)
        elif kind == "iterations" and isinstance(config["iterations"], str):
            check.template("iterations", config["iterations"])
        elif kind == "while":
            check.expression("while", config["while"], local_names=LOOP_NAMES)
        body_kind = require_one_of(config, ("body", "workflow_id"), check, what="a loop")
        if body_kind == "body":
            check.subgraph("body", config["body"], loop_body=True)

    def output_names(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        return frozenset({"results", "iterations", "failed"})
