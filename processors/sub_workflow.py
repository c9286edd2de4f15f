"""``sub_workflow``: run another workflow as a child execution and wait for it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from processors.base import ConfigCheck, JSONSchema, Processor, rel


class SubWorkflowProcessor(Processor):
    """Starts a child execution with mapped input; maps its output back."""

    type_name: ClassVar[str] = "sub_workflow"
    description: ClassVar[str] = "Runs another workflow as a child execution and waits for it."
    config_schema: ClassVar[JSONSchema] = {
        "type": "object",
        "properties": {
            "workflow_id": {"type": "string", "minLength": 1, "description": "child workflow"},
            "version": {"type": "string", "description": "child version (default newest active)"},
            "input_mapping": {
                "type": "object",
                "description": "child input name → template or path in the parent scope",
            },
            "output_mapping": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "parent name → path in the child's output",
            },
        },
    }

    def check_config(self, config: Mapping[str, Any], check: ConfigCheck) -> None:
        if config.get("workflow_id") is None:
            check.error("", "a sub_workflow node needs 'workflow_id' (the child workflow)")
        mapping = config.get("input_mapping")
        if isinstance(mapping, dict):
            for name, value in mapping.items():
                check.template(rel("input_mapping", name), value)

    def output_names(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        mapping = config.get("output_mapping")
        return frozenset(mapping) if isinstance(mapping, dict) else None
