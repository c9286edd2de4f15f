"""``validate_definition``: every problem of a workflow definition, at once.

Structural checks come from the definition's JSON Schema (``schema.py``) so the schema
and the validator agree by construction; the rest (graph, expressions, references,
durations, aliases, limits, configured names) is checked by hand. Nothing here raises on
any input: hostile documents only produce problems.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from jsonschema import ValidationError  # type: ignore[import-untyped]

from server.definitions.checks import ValueChecks
from server.definitions.context import DefinitionLimits, ValidationContext
from server.definitions.graph_validation import GraphValidator, Run
from server.definitions.pointers import describe, listing, pointer
from server.definitions.references import RESERVED_NAMES, ReferenceChecker, Scope
from server.definitions.report import Reporter, ValidationReport, build_report
from server.definitions.schema import schema_validator
from server.definitions.schema_errors import translate
from server.errors import ExpressionError, Problem
from server.expressions.templates import find_references, parse_path

__all__ = ["DefinitionLimits", "ValidationContext", "ValidationReport", "validate_definition"]

logger = logging.getLogger(__name__)

#: Deeper JSON than this is refused before any recursive check looks at it.
MAX_JSON_DEPTH = 100

TOP_LEVEL_FIELDS = (
    "id", "name", "description", "version", "status", "tags", "category", "owner",
    "variables", "nodes", "edges", "config", "triggers", "output", "metadata",
)  # fmt: skip
#: Fields the server adds to stored definitions; accepted silently when posted back.
SERVER_FIELDS = ("created_at", "updated_at", "created_by", "updated_by")
VARIABLE_FIELDS = ("name", "type", "required", "default_value", "description")
CONFIG_FIELDS = (
    "timeout", "max_retries", "priority", "concurrency", "enable_audit", "enable_metrics",
    "notifications", "error_handling",
)  # fmt: skip
ERROR_HANDLING_FIELDS = ("on_failure", "max_errors", "rollback")
TRIGGER_FIELDS = (
    "id", "type", "schedule", "timezone", "input", "path", "secret", "enabled", "description",
    "misfire", "max_catch_up", "input_mapping",
)  # fmt: skip
#: Trigger fields that mean something for one trigger type only.
CRON_ONLY_FIELDS = ("schedule", "timezone", "misfire", "max_catch_up")
WEBHOOK_ONLY_FIELDS = ("path", "secret", "input_mapping")
#: Where a webhook trigger's ``input_mapping`` may read from.
HOOK_SOURCES = ("body", "headers", "query")


def validate_definition(doc: object, context: ValidationContext | None = None) -> ValidationReport:
    """Validate a definition document; never raises, whatever ``doc`` is."""
    context = context or ValidationContext()
    try:
        return DefinitionValidation(doc, context).run()
    except RecursionError:
        problem = Problem("", "the document is nested too deeply to validate; flatten it")
    except Exception:
        logger.exception("definition validation failed", extra={"action": "validation.crash"})
        problem = Problem("", "the definition could not be validated (an internal error, logged)")
    return ValidationReport([problem], [])


class DefinitionValidation:
    """One validation run over one document."""

    def __init__(self, doc: object, context: ValidationContext) -> None:
        self.doc = doc
        self.context = context
        self.reporter = Reporter()
        self.values = ValueChecks(self.reporter, context.limits)

    def run(self) -> ValidationReport:
        problem = _json_problem(self.doc)
        if problem is not None:
            return ValidationReport([problem], [])
        if not isinstance(self.doc, dict):
            message = f"a workflow definition is a JSON object {{…}}, not {describe(self.doc)}"
            return ValidationReport([Problem("", message)], [])
        schema_errors = self._schema_errors(self.doc)
        self._check_document(self.doc)
        return build_report(schema_errors, self.reporter)

    def _schema_errors(self, doc: dict[str, Any]) -> list[Problem]:
        validator = schema_validator(self.context.registry)
        node_types = self.context.registry.names()
        problems: list[Problem] = []
        for error in validator.iter_errors(doc):
            problem = translate(error, node_types) if isinstance(error, ValidationError) else None
            if problem is not None and problem not in problems:
                problems.append(problem)
        return problems

    def _check_document(self, doc: dict[str, Any]) -> None:
        self._warn_unknown(doc, (*TOP_LEVEL_FIELDS, *SERVER_FIELDS), "", "top-level")
        variables = self._check_variables(doc.get("variables"))
        self._check_config(doc.get("config"))
        self._check_triggers(doc.get("triggers"))
        run = Run(self.context, self.reporter, self.values)
        graph = GraphValidator(run, "", Scope(names=variables), depth=0, loop=False)
        graph.validate(doc.get("nodes"), doc.get("edges"))
        output = doc.get("output")
        if isinstance(output, dict):
            self.values.template("/output", output, ReferenceChecker(graph.scope))
        limits = self.context.limits
        if run.node_count > limits.max_nodes:
            self.reporter.error(
                "/nodes",
                f"the definition has {run.node_count:,} nodes (counting nodes inside loop and "
                f"parallel bodies); the limit is {limits.max_nodes:,} (setting "
                f"{limits.setting('max_nodes')}) — split it into workflows that call each other",
            )

    def _check_variables(self, variables: object) -> frozenset[str]:
        if not isinstance(variables, dict):
            return frozenset()
        for name, spec in variables.items():
            at = pointer("variables", name)
            if name in RESERVED_NAMES:
                self.reporter.error(
                    at,
                    f"variable {name!r} clashes with a reserved scope name "
                    f"({', '.join(sorted(RESERVED_NAMES))}); rename it",
                )
            if not isinstance(spec, dict):
                continue
            self._warn_unknown(spec, VARIABLE_FIELDS, at, "variable")
            written = spec.get("name")
            if isinstance(written, str) and written != name:
                self.reporter.warning(
                    at + "/name",
                    f"name {written!r} differs from the key {name!r}; the key is the variable's "
                    "name — make them equal",
                )
            kind = spec.get("type", "any")
            default = spec.get("default_value")
            if default is not None and isinstance(kind, str) and not _has_type(default, kind):
                self.reporter.error(
                    at + "/default_value",
                    f"default_value {describe(default)} is not of type {kind}; give a {kind} "
                    "or null",
                )
        return frozenset(variables)

    def _check_config(self, config: object) -> None:
        if not isinstance(config, dict):
            return
        self._warn_unknown(config, CONFIG_FIELDS, "/config", "workflow config")
        if config.get("timeout") is not None:
            self.values.duration("/config/timeout", config["timeout"])
        handling = config.get("error_handling")
        if isinstance(handling, dict):
            self._warn_unknown(
                handling, ERROR_HANDLING_FIELDS, "/config/error_handling", "error_handling"
            )

    def _check_triggers(self, triggers: object) -> None:
        if not isinstance(triggers, list):
            return
        ids: dict[str, int] = {}
        paths: dict[str, int] = {}
        scope = ReferenceChecker(Scope(open=True))
        for index, trigger in enumerate(triggers):
            if not isinstance(trigger, dict):
                continue
            at = pointer("triggers", index)
            self._warn_unknown(trigger, TRIGGER_FIELDS, at, "trigger")
            self._unique(trigger.get("id"), ids, index, "id", "trigger id")
            kind = trigger.get("type")
            if kind == "cron" and "schedule" in trigger:
                self.values.cron(at + "/schedule", trigger["schedule"])
            if kind == "webhook":
                self._unique(trigger.get("path"), paths, index, "path", "webhook path")
            if trigger.get("timezone") is not None:
                self.values.timezone(at + "/timezone", trigger["timezone"])
            if trigger.get("secret") is not None:
                self.values.template(at + "/secret", trigger["secret"], scope)
                self._check_secret_references(at + "/secret", trigger["secret"])
            if kind in ("cron", "webhook"):
                other = WEBHOOK_ONLY_FIELDS if kind == "cron" else CRON_ONLY_FIELDS
                for name in other:
                    if trigger.get(name) is not None:
                        self.reporter.warning(
                            f"{at}/{name}", f"{name!r} is ignored by {kind} triggers; remove it"
                        )
            mapping = trigger.get("input_mapping")
            if isinstance(mapping, dict):
                for name, source in mapping.items():
                    if isinstance(source, str):
                        self._check_hook_source(at + pointer("input_mapping", name), source)

    def _check_secret_references(self, at: str, secret: object) -> None:
        """A trigger's secret is needed before any execution exists: it may read stored
        secrets (``${secrets.NAME}``) and nothing else."""
        texts = secret if isinstance(secret, list) else [secret]
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                continue
            where = f"{at}/{index}" if isinstance(secret, list) else at
            try:
                references = find_references(text)
            except ExpressionError:
                continue  # the template check reports it
            for reference in references:
                if reference.root != "secrets" or len(reference.path) != 2:
                    self.reporter.error(
                        where,
                        f"'${{{reference.raw}}}': a trigger secret can only use a stored "
                        "secret, written ${secrets.NAME} — there is no execution scope "
                        "yet when a webhook arrives",
                    )

    def _check_hook_source(self, at: str, source: str) -> None:
        """An ``input_mapping`` value: ``body``, ``body.<path>``, ``headers.<name>`` or
        ``query.<name>``."""
        example = "body.order.id, headers.x-source or query.page"
        try:
            path = parse_path(source)
        except ExpressionError as error:
            self.reporter.error(
                at, f"invalid path {source!r}: {error.message}; write e.g. {example}"
            )
            return
        root = path[0]
        if root not in HOOK_SOURCES:
            self.reporter.error(
                at,
                f"{source!r} must start with body, headers or query (where the value comes "
                f"from in the request); write e.g. {example}",
            )
        elif root != "body" and (len(path) != 2 or not isinstance(path[1], str)):
            sample = "headers.x-source" if root == "headers" else "query.page"
            self.reporter.error(at, f"{source!r} must name exactly one {root} entry, e.g. {sample}")

    def _unique(self, value: object, seen: dict[str, int], index: int, key: str, what: str) -> None:
        """Report a trigger ``key`` whose value an earlier trigger already uses."""
        if not isinstance(value, str):
            return
        if value in seen:
            self.reporter.error(
                pointer("triggers", index, key),
                f"{what} {value!r} is already used by {pointer('triggers', seen[value])}; "
                "make it unique",
            )
        else:
            seen[value] = index

    def _warn_unknown(
        self, raw: Mapping[str, Any], known: tuple[str, ...], at: str, what: str
    ) -> None:
        shown = [field for field in known if field not in SERVER_FIELDS]
        for key in raw:
            if key not in known:
                self.reporter.warning(
                    at + pointer(key),
                    f"unknown {what} field {key!r} (kept, but ignored); known fields: "
                    f"{listing(shown, limit=len(shown))}",
                )


def _has_type(value: object, kind: str) -> bool:
    """Whether a JSON value has one of the variable types."""
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
    }
    check = checks.get(kind)
    return check(value) if check else True


def _json_problem(doc: object) -> Problem | None:
    """The first place where ``doc`` is not plain JSON data or is nested too deeply."""
    stack: list[tuple[object, str, int]] = [(doc, "", 0)]
    while stack:
        value, at, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return Problem(at, f"the document is nested more than {MAX_JSON_DEPTH} levels deep")
        if isinstance(value, dict):
            for key, child in value.items():
                if not isinstance(key, str):
                    return Problem(at, f"object keys must be strings, not {describe(key)}")
                stack.append((child, at + pointer(key), depth + 1))
        elif isinstance(value, list):
            stack.extend((child, at + pointer(i), depth + 1) for i, child in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            return Problem(at, f"{value} is not a JSON number; use a finite number")
        elif not (value is None or isinstance(value, str | int | float)):
            return Problem(at, f"a {type(value).__name__} is not JSON data")
    return None
