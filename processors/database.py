"""``database``: one parameterised SQL statement on a configured connection."""

from __future__ import annotations

from collections.abc import Mapping
from difflib import get_close_matches
from typing import Any, ClassVar

from processors.base import ConfigCheck, JSONSchema, Processor


def unknown_name_message(what: str, name: str, known: frozenset[str], setting: str) -> str:
    """Message for a name that is not configured, listing the configured ones."""
    names = sorted(known)
    listed = ", ".join(names) if names else "none"
    hint = get_close_matches(name, names, n=1)
    suggestion = f' (did you mean "{hint[0]}"?)' if hint else ""
    return (
        f'{what} "{name}" is not configured; configured: {listed}{suggestion}. '
        f"Add it to the server configuration under [{setting}.{name}]"
    )


class DatabaseProcessor(Processor):
    """Runs one statement with bound parameters; never formats values into SQL."""

    type_name: ClassVar[str] = "database"
    description: ClassVar[str] = (
        "Runs one SQL statement on a named connection with bound parameters."
    )
    config_schema: ClassVar[JSONSchema] = {
        "type": "object",
        "properties": {
            "connection": {
                "type": "string",
                "minLength": 1,
                "description": "name of a connection in the server config ([connections.<name>])",
            },
            "query": {
                "type": "string",
                "minLength": 1,
                "description": "one SQL statement; ? or :name placeholders, never ${…}",
            },
            "params": {
                "type": ["array", "object"],
                "description": "values for ? (list) or :name (object) placeholders; templated",
            },
            "fetch": {
                "enum": ["all", "one", "none"],
                "description": "rows to return from a SELECT (default all)",
            },
            "max_rows": {
                "type": "integer",
                "minimum": 1,
                "description": "row limit for SELECT results (default 1000)",
            },
        },
    }

    def check_config(self, config: Mapping[str, Any], check: ConfigCheck) -> None:
        connection = config.get("connection")
        if connection is None:
            check.error("", "a database node needs 'connection' (a configured connection name)")
        elif isinstance(connection, str):
            known = check.context.connections
            if known is not None and connection not in known:
                check.error(
                    "connection",
                    unknown_name_message("connection", connection, known, "connections"),
                )
        query = config.get("query")
        if query is None:
            check.error("", "a database node needs 'query' (one SQL statement)")
        elif isinstance(query, str) and "${" in query:
            check.error(
                "query",
                "the query contains ${…}: values must not be formatted into SQL; write a "
                "placeholder (? or :name) and put the value in 'params', e.g. "
                '"params": {"id": "${customer_id}"}',
            )
        if "params" in config:
            check.template("params", config["params"])

    def output_names(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        return frozenset({"rows", "row_count", "last_insert_id"})
