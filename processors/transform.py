"""``transform``: reshape data with JSONPath, an expression, a mapping or a template."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from processors.base import TEMPLATE_STRING, ConfigCheck, JSONSchema, Processor, rel

TRANSFORM_TYPES = ("json_path", "expression", "mapping", "template")


def is_jsonpath(text: str) -> bool:
    """Whether a mapping value is JSONPath (``$``, ``$.…``) rather than an expression."""
    return text == "$" or text.startswith(("$.", "$["))


class TransformProcessor(Processor):
    """Computes a value from the scope; never calls out."""

    type_name: ClassVar[str] = "transform"
    description: ClassVar[str] = (
        "Reshapes data: JSONPath, an expression, a mapping of names, or a string template."
    )
    config_schema: ClassVar[JSONSchema] = {
        "type": "object",
        "properties": {
            "transform_type": {
                "enum": list(TRANSFORM_TYPES),
                "description": "which kind of transformation `expression`/`mapping`/`template` is",
            },
            "expression": {
                "type": "string",
                "description": "JSONPath (json_path, e.g. $.data.items) or an expression",
            },
            "source": {
                **TEMPLATE_STRING,
                "description": "value the JSONPath applies to, e.g. ${nodes.fetch.output.data}; "
                "default the whole scope",
            },
            "mapping": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "output name → JSONPath ($.…) or expression",
            },
            "template": {**TEMPLATE_STRING, "description": "string template with ${path}"},
            "first": {
                "type": "boolean",
                "description": "json_path: return the first match instead of the list",
            },
        },
    }

    def check_config(self, config: Mapping[str, Any], check: ConfigCheck) -> None:
        kind = config.get("transform_type")
        if kind is None:
            check.error(
                "", f"a transform needs 'transform_type', one of {', '.join(TRANSFORM_TYPES)}"
            )
            return
        if not isinstance(kind, str):
            return  # the schema reports the wrong type
        needed = "expression" if kind in ("json_path", "expression") else kind
        if kind in TRANSFORM_TYPES and config.get(needed) is None:
            check.error("", f"a {kind} transform needs '{needed}'")
        if kind == "json_path" and "expression" in config:
            check.jsonpath("expression", config["expression"])
        elif kind == "expression" and "expression" in config:
            check.expression("expression", config["expression"])
        elif kind == "template" and "template" in config:
            check.template("template", config["template"])
        elif kind == "mapping" and isinstance(config.get("mapping"), dict):
            for name, value in config["mapping"].items():
                if isinstance(value, str) and is_jsonpath(value):
                    check.jsonpath(rel("mapping", name), value)
                elif isinstance(value, str):
                    check.expression(rel("mapping", name), value)
        if "source" in config:
            check.template("source", config["source"])

    def output_names(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        mapping = config.get("mapping")
        if config.get("transform_type") == "mapping" and isinstance(mapping, dict):
            return frozenset(mapping)
        return frozenset({"result"})
