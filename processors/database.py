"""``database``: one parameterised SQL statement on a configured connection.

The statement runs through ``services["databases"]``
(:class:`server.integrations.databases.Databases`) in one transaction. Values come from
``params`` — a list for ``?`` placeholders, an object for ``:name`` — and are always
bound, never written into the SQL; ``query`` itself may not contain ``${…}``.

Output: a statement that returns rows (``SELECT``, ``… RETURNING``) gives
``{rows, row_count, truncated}`` — at most ``max_rows`` rows (default 1000),
``truncated`` saying whether more rows matched — and with ``fetch: "one"`` also ``row``
(the first row or ``null``). Any other statement (or ``fetch: "none"``) gives
``{row_count, last_insert_id}``: the affected rows (``null`` when the database does not
say) and, for an ``INSERT`` on a backend that reports it (SQLite), the new row id.
Connection trouble, lock timeouts and serialization failures are retryable failures;
bad SQL, bad parameters and writes on a read-only connection are not.
"""

from __future__ import annotations

from collections.abc import Mapping
from difflib import get_close_matches
from typing import Any, ClassVar

from processors.base import ConfigCheck, JSONSchema, Processor
from processors.runtime import Completed, Failed, NodeContext, Outcome
from server.integrations.databases import (
    DEFAULT_MAX_ROWS,
    DatabaseError,
    Databases,
    StatementResult,
    parse_query,
)

FETCH_MODES = ("all", "one", "none")


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
                "type": ["array", "object", "string"],
                "description": (
                    "values for ? (list) or :name (object) placeholders, or one ${…} giving "
                    "such a list or object; templated"
                ),
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
        elif isinstance(query, str):
            _check_placeholders(query, config.get("params"), check)
        params = config.get("params")
        if isinstance(params, str) and not _is_one_template(params):
            check.error(
                "params",
                "'params' is a list (for ? placeholders), an object (for :name placeholders) "
                'or one ${…} that gives one, e.g. "${nodes.prepare.output.values}"',
            )
        if "params" in config:
            check.template("params", params)

    def output_names(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        names = {"rows", "row_count", "truncated", "last_insert_id"}
        if config.get("fetch") == "one":
            names.add("row")
        return frozenset(names)

    async def run(self, config: Mapping[str, Any], ctx: NodeContext) -> Outcome:
        databases = ctx.services.get("databases")
        if not isinstance(databases, Databases):
            return Failed("this server has no database connections service", retryable=False)
        connection, query = config.get("connection"), config.get("query")
        if not isinstance(connection, str) or not isinstance(query, str):
            return Failed("a database node needs 'connection' and 'query' (text)", retryable=False)
        fetch = config.get("fetch", "all")
        if fetch not in FETCH_MODES:
            return Failed(f"'fetch' must be one of all, one, none, not {fetch!r}", retryable=False)
        max_rows = config.get("max_rows", DEFAULT_MAX_ROWS)
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            return Failed(
                f"'max_rows' must be a whole number ≥ 1, not {max_rows!r}", retryable=False
            )
        try:
            result = await databases.execute(
                connection, query, config.get("params"), max_rows=max_rows, fetch=fetch
            )
        except DatabaseError as error:
            details = {"connection": connection}
            if error.sqlstate:
                details["sqlstate"] = error.sqlstate
            return Failed(error.message, retryable=error.retryable, details=details)
        if result.truncated:
            ctx.log(f"kept the first {max_rows} rows; more rows matched (raise 'max_rows')")
        return Completed(output(result, fetch))


def output(result: StatementResult, fetch: str) -> dict[str, Any]:
    """The node's output for one statement's result (see the module docstring)."""
    if not result.returns_rows:
        return {"row_count": result.row_count, "last_insert_id": result.last_insert_id}
    found: dict[str, Any] = {
        "rows": result.rows,
        "row_count": result.row_count,
        "truncated": result.truncated,
    }
    if fetch == "one":
        found["row"] = result.rows[0] if result.rows else None
    return found


def _is_one_template(text: str) -> bool:
    stripped = text.strip()
    return stripped.startswith("${") and stripped.endswith("}") and stripped.count("${") == 1


def _check_placeholders(query: str, params: object, check: ConfigCheck) -> None:
    """Definition-time: one statement, and placeholders that fit the literal ``params``."""
    parsed = parse_query(query, positional=not isinstance(params, dict))
    if parsed.statements > 1:
        check.error(
            "query",
            f"the query holds {parsed.statements} statements; a database node runs exactly "
            "one (use one node per statement)",
        )
    elif parsed.statements == 0:
        check.error("query", "the query is empty (only whitespace or comments)")
    if isinstance(params, dict):
        missing = [name for name in parsed.names if name not in params]
        if missing:
            listed = ", ".join(f":{name}" for name in missing)
            check.error("params", f"no value for {listed}; add it to 'params'")
    elif isinstance(params, list) or params is None:
        if parsed.names:
            listed = ", ".join(f":{name}" for name in parsed.names)
            where = "params" if params is not None else "query"
            check.error(
                where,
                f"the query uses named placeholders ({listed}); give 'params' as an object "
                "keyed by name",
            )
        elif parsed.positional != len(params or []):
            check.error(
                "params" if params is not None else "query",
                f"the query has {parsed.positional} ? placeholder(s) but 'params' gives "
                f"{len(params or [])} value(s)",
            )
