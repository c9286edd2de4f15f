"""``transform``: reshape data with JSONPath, an expression, a mapping or a template.

At run time (``config`` rendered by the engine, except :attr:`unrendered_keys`):

* ``json_path`` — the JSONPath in ``expression`` (jsonpath-ng ``ext``) applied to
  ``source`` when the key is present (usually a ``${…}`` template the engine has already
  turned into a value), else to the whole scope. A *definite* path (no wildcard, filter,
  slice, ``..``, union of names or indices, sort or ```keys```) gives the value itself,
  and fails when it matches nothing (say ``first: true`` to get ``null`` instead); any
  other path gives the list of matches; ``first: true`` gives the first match or
  ``null``. Output ``{result: …}``.
* ``expression`` — ``expression`` evaluated with ``ctx.evaluate``. Output ``{result: …}``.
* ``mapping`` — each ``name: text`` of ``mapping`` is JSONPath when :func:`is_jsonpath`
  says so (``$``, ``$.…``, ``$[…``, the rule the validator uses; a ``${…}`` reference
  starts an expression), applied like ``json_path`` (to ``source`` or the scope, never
  ``first``), else an expression. Output: the mapped names.
* ``template`` — the ``template`` string, which the engine has rendered already (a
  string that is exactly one ``${path}`` keeps the value's JSON type). Output
  ``{result: …}``.

``expression`` and ``mapping`` are unrendered keys: they hold expressions (and JSONPath,
which never contains ``${``), and pasting values into them would change their meaning.
``template`` and ``source`` are rendered by the engine like any other key, so secrets
and defaults follow the one template implementation. Every failure is ``Failed`` with
``retryable=False`` (the same data would fail again), naming the key and the reason.

**Bounding JSONPath.** A path comes from the definition, the data from the execution.
jsonpath-ng's ``ext`` grammar can run user regular expressions (``=~`` filters and the
```sub(/re/, repl)``` method) and build values with arithmetic, all in-process and
uninterruptible. So every path is *prepared* once (parsed, checked, cached in a bounded
LRU since a parse costs ~1 ms) and:

* every ``=~`` runs through :mod:`server.expressions.regex_guard` — the helper process
  that also serves ``matches()`` — which kills a search that outlives its time (Python's
  ``re`` cannot be stopped otherwise). A pattern longer than 1,000 characters, or not a
  string, is refused when the path is prepared; a string to search longer than 100,000
  characters fails the node. Patterns without regex syntax stay plain substring tests.
  The semantics are jsonpath-ng's own: ``re.search`` on string values only.
* ```sub(/re/, repl)``` is refused (a regex replace cannot go through the guard); the
  validator reports it too (:func:`runtime_problem`).
* ``*`` refuses to repeat a string or list past the expression limits.
* the search runs in a worker thread under :data:`JSONPATH_TIMEOUT_SECONDS`, which also
  bounds the guarded regex searches, and at most ``max_collection`` matches are kept;
  matches are copied (plain JSON, nothing shared with the scope).
"""

from __future__ import annotations

import asyncio
import operator
import re
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

from jsonpath_ng import JSONPath
from jsonpath_ng.ext.arithmetic import Operation
from jsonpath_ng.ext.filter import Expression
from jsonpath_ng.ext.iterable import Len
from jsonpath_ng.ext.iterable import Path as PathOf
from jsonpath_ng.ext.parser import parse as parse_jsonpath
from jsonpath_ng.ext.string import Split, Str, Sub
from jsonpath_ng.jsonpath import Child, DatumInContext, Fields, Index, Parent, Root, This

from processors.base import TEMPLATE_STRING, ConfigCheck, JSONSchema, Processor, rel
from processors.runtime import Completed, Failed, NodeContext, Outcome
from server.errors import ExpressionError
from server.expressions import DEFAULT_LIMITS, regex_guard
from server.expressions.jsondata import copy_json, type_name
from server.expressions.limits import deadline_after, time_left

TRANSFORM_TYPES = ("json_path", "expression", "mapping", "template")

JSONPATH_TIMEOUT_SECONDS = 2.0
"""Wall-clock time for one JSONPath search, its ``=~`` regex searches included."""
_ASYNC_GRACE_SECONDS = 0.5
_CACHE_SIZE = 512
MAX_PATTERN_LENGTH = regex_guard.MAX_PATTERN_LENGTH
MAX_SEARCHED_LENGTH = regex_guard.MAX_INPUT_LENGTH
MAX_MATCHES = DEFAULT_LIMITS.max_collection

#: Node types that yield at most one value from one input (checked by exact type:
#: ``Sub``, ``Split``, ``Str`` and ``SortedThis`` all subclass ``This``).
_SINGLE_VALUED: frozenset[type[JSONPath]] = frozenset({Root, This, Len, Str, Split, Parent, PathOf})


def is_jsonpath(text: str) -> bool:
    """Whether a mapping value is JSONPath (``$``, ``$.…``) rather than an expression."""
    return text == "$" or text.startswith(("$.", "$["))


# -- JSONPath: prepare once, search bounded ----------------------------------------------


@dataclass(frozen=True, slots=True)
class PreparedPath:
    """A parsed, guarded JSONPath and whether it is definite (gives one value)."""

    text: str
    path: JSONPath
    definite: bool


class _Unparsable(ExpressionError):
    """The text is not JSONPath at all."""


@lru_cache(maxsize=_CACHE_SIZE)
def prepare_jsonpath(text: str) -> PreparedPath:
    """Parse ``text`` (jsonpath-ng ``ext``) and bound what it can run; cached.

    Raises ExpressionError for a path that does not parse or that the run time refuses.
    """
    path = _parse(text)
    _guard(path, text)
    return PreparedPath(text, path, _is_definite(path))


def runtime_problem(text: object) -> str | None:
    """Why a JSONPath that parses would still be refused at run time, else ``None``.

    Parse errors are not reported here (the validator's JSONPath check does that).
    """
    if not isinstance(text, str):
        return None
    try:
        prepare_jsonpath(text)
    except _Unparsable:
        return None
    except ExpressionError as exc:
        return exc.reason
    return None


def _parse(text: str) -> JSONPath:
    try:
        with warnings.catch_warnings():  # deprecations are the validator's warnings
            warnings.simplefilter("ignore")
            parsed: JSONPath = parse_jsonpath(text)
    except Exception as exc:  # any parser failure is about the user's path
        raise _Unparsable(
            f"invalid JSONPath: {str(exc) or type(exc).__name__}", expression=text
        ) from None
    return parsed


def _guard(root: JSONPath, text: str) -> None:
    """Refuse what cannot be bounded; route ``=~`` through the regex guard."""
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, Sub):
            raise ExpressionError(
                "`sub(/…/, …)` is not supported: it runs a regular expression that cannot "
                "be stopped; filter with =~ or use an expression transform",
                expression=text,
            )
        if isinstance(node, Expression) and node.op == "=~":
            _check_pattern(node.value, text)
            node.__class__ = _GuardedRegexMatch
        if isinstance(node, Operation) and node.op_symbol == "*":
            node.op = _bounded_multiply
        for child in getattr(node, "__dict__", {}).values():
            if isinstance(child, JSONPath):
                stack.append(child)
            elif isinstance(child, list | tuple):
                stack.extend(item for item in child if isinstance(item, JSONPath))


def _check_pattern(pattern: object, text: str) -> None:
    if not isinstance(pattern, str):
        raise ExpressionError(
            f"the =~ pattern must be a quoted string, not {type_name(pattern)}", expression=text
        )
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ExpressionError(
            f"the =~ pattern is {len(pattern):,} characters; the limit is {MAX_PATTERN_LENGTH:,}",
            expression=text,
        )
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ExpressionError(
            f"invalid regular expression {pattern!r} after =~: {exc}", expression=text
        ) from None


class _GuardedRegexMatch(Expression):
    """``target =~ 'pattern'``: jsonpath-ng's semantics (``re.search`` on strings only),
    run by the regex guard within the search's deadline."""

    def find(self, datum: Any) -> list[DatumInContext]:
        found = self.target.find(DatumInContext.wrap(datum))
        return [match for match in found if _search(self.value, match.value)]


def _search(pattern: str, value: object) -> bool:
    if not isinstance(value, str):
        return False
    if len(value) > MAX_SEARCHED_LENGTH:
        raise ExpressionError(
            f"=~ {pattern!r} would search a string of {len(value):,} characters; the limit "
            f"is {MAX_SEARCHED_LENGTH:,}"
        )
    left = time_left()
    timeout = regex_guard.SEARCH_TIMEOUT_SECONDS if left is None else left
    if timeout <= 0:
        raise ExpressionError(f"the JSONPath took longer than {JSONPATH_TIMEOUT_SECONDS:g}s")
    return regex_guard.search(
        pattern, value, timeout=min(timeout, regex_guard.SEARCH_TIMEOUT_SECONDS)
    )


def _bounded_multiply(a: Any, b: Any) -> Any:
    """``*`` that refuses to repeat a string or list past the expression limits."""
    for seq, times in ((a, b), (b, a)):
        if isinstance(seq, str | list) and isinstance(times, int) and not isinstance(times, bool):
            limit = (
                DEFAULT_LIMITS.max_string if isinstance(seq, str) else DEFAULT_LIMITS.max_collection
            )
            if len(seq) * max(times, 0) > limit:
                raise ExpressionError(
                    f"repeating a {type_name(seq)} of length {len(seq):,} {times:,} times is "
                    f"over the limit of {limit:,}"
                )
    return operator.mul(a, b)


def _is_definite(node: JSONPath) -> bool:
    """No wildcard, filter, slice, ``..``, name/index union, sort or ```keys```."""
    kind = type(node)
    if kind in _SINGLE_VALUED:
        return True
    if isinstance(node, Child) and kind is Child:
        return _is_definite(node.left) and _is_definite(node.right)
    if isinstance(node, Fields) and kind is Fields:
        return len(node.fields) == 1
    if isinstance(node, Index) and kind is Index:
        return len(node.indices) == 1
    if isinstance(node, Operation):
        sides = [side for side in (node.left, node.right) if isinstance(side, JSONPath)]
        return all(_is_definite(side) for side in sides)
    return False


def _find(prepared: PreparedPath, data: Any) -> list[Any]:
    """Every match of ``prepared`` in ``data``, copied; runs in a worker thread."""
    with deadline_after(JSONPATH_TIMEOUT_SECONDS) as deadline:
        try:
            matches = prepared.path.find(data)
            if len(matches) > MAX_MATCHES:
                raise ExpressionError(
                    f"the JSONPath matched {len(matches):,} values; the limit is {MAX_MATCHES:,}"
                )
            values = [copy_json(match.value, deadline=deadline) for match in matches]
        except ExpressionError as exc:
            if exc.expression:
                raise
            raise ExpressionError(exc.reason, expression=prepared.text) from None
        except RecursionError:
            raise ExpressionError(
                "the data is nested too deeply", expression=prepared.text
            ) from None
        except Exception as exc:  # jsonpath-ng's own failures are about the path or data
            reason = str(exc) or type(exc).__name__
            raise ExpressionError(
                f"the JSONPath failed: {reason}", expression=prepared.text
            ) from exc
        if time.monotonic() > deadline:
            raise ExpressionError(
                f"the JSONPath took longer than {JSONPATH_TIMEOUT_SECONDS:g}s",
                expression=prepared.text,
            )
    return values


async def apply_jsonpath(text: str, data: Any, *, first: bool = False) -> Any:
    """The value(s) ``text`` selects in ``data`` (see the module docstring).

    Raises ExpressionError, naming the path, for anything that goes wrong.
    """
    prepared = prepare_jsonpath(text)
    work = asyncio.to_thread(_find, prepared, data)
    try:
        values = await asyncio.wait_for(work, JSONPATH_TIMEOUT_SECONDS + _ASYNC_GRACE_SECONDS)
    except TimeoutError:
        raise ExpressionError(
            f"the JSONPath took longer than {JSONPATH_TIMEOUT_SECONDS:g}s", expression=text
        ) from None
    if first:
        return values[0] if values else None
    if not prepared.definite:
        return values
    if not values:
        raise ExpressionError(
            "the path matched nothing (a definite path must find its value; for a transform "
            "say first: true to get null instead)",
            expression=text,
        )
    return values[0]


# -- the processor ---------------------------------------------------------------------


class TransformProcessor(Processor):
    """Computes a value from the scope; never calls out."""

    type_name: ClassVar[str] = "transform"
    pure: ClassVar[bool] = True
    description: ClassVar[str] = (
        "Reshapes data: JSONPath, an expression, a mapping of names, or a string template."
    )
    unrendered_keys: ClassVar[frozenset[str]] = frozenset({"expression", "mapping"})
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
            self._check_jsonpath("expression", config["expression"], check)
        elif kind == "expression" and "expression" in config:
            check.expression("expression", config["expression"])
        elif kind == "template" and "template" in config:
            check.template("template", config["template"])
        elif kind == "mapping" and isinstance(config.get("mapping"), dict):
            for name, value in config["mapping"].items():
                if isinstance(value, str) and is_jsonpath(value):
                    self._check_jsonpath(rel("mapping", name), value, check)
                elif isinstance(value, str):
                    check.expression(rel("mapping", name), value)
        if "source" in config:
            check.template("source", config["source"])

    @staticmethod
    def _check_jsonpath(pointer: str, text: object, check: ConfigCheck) -> None:
        check.jsonpath(pointer, text)
        problem = runtime_problem(text)
        if problem:
            check.error(pointer, f"JSONPath {text!r}: {problem}")

    def output_names(self, config: Mapping[str, Any]) -> frozenset[str] | None:
        mapping = config.get("mapping")
        if config.get("transform_type") == "mapping" and isinstance(mapping, dict):
            return frozenset(mapping)
        return frozenset({"result"})

    async def run(self, config: Mapping[str, Any], ctx: NodeContext) -> Outcome:
        kind = config.get("transform_type")
        runner = _RUNNERS.get(kind) if isinstance(kind, str) else None
        if runner is None:
            return Failed(
                f"transform_type {kind!r} is not one of {', '.join(TRANSFORM_TYPES)}",
                retryable=False,
            )
        return await runner(config, ctx)


def _source(config: Mapping[str, Any], ctx: NodeContext) -> Any:
    """What JSONPath applies to: ``source`` when given, else the scope (as a dict, since
    jsonpath-ng's filters only look into real dicts)."""
    return config["source"] if "source" in config else dict(ctx.scope)


def _failed(key: str, reason: object) -> Failed:
    return Failed(f"transform {key}: {reason}", retryable=False)


async def _run_json_path(config: Mapping[str, Any], ctx: NodeContext) -> Outcome:
    text = config.get("expression")
    if not isinstance(text, str):
        return _failed(
            "'expression'", f"a json_path transform needs a JSONPath string, not {type_name(text)}"
        )
    try:
        result = await apply_jsonpath(text, _source(config, ctx), first=config.get("first") is True)
    except ExpressionError as exc:
        return _failed("'expression'", exc)
    return Completed({"result": result})


async def _run_expression(config: Mapping[str, Any], ctx: NodeContext) -> Outcome:
    text = config.get("expression")
    if not isinstance(text, str):
        return _failed(
            "'expression'", f"an expression transform needs a string, not {type_name(text)}"
        )
    try:
        result = await ctx.evaluate(text)
    except ExpressionError as exc:
        return _failed("'expression'", exc)
    return Completed({"result": result})


async def _run_mapping(config: Mapping[str, Any], ctx: NodeContext) -> Outcome:
    mapping = config.get("mapping")
    if not isinstance(mapping, Mapping):
        return _failed(
            "'mapping'",
            f"expected an object of name → path or expression, not {type_name(mapping)}",
        )
    output: dict[str, Any] = {}
    for name, text in mapping.items():
        key = f"mapping {name!r}"
        if not isinstance(text, str):
            return _failed(
                key, f"expected a JSONPath or an expression string, not {type_name(text)}"
            )
        try:
            if is_jsonpath(text):
                output[name] = await apply_jsonpath(text, _source(config, ctx))
            else:
                output[name] = await ctx.evaluate(text)
        except ExpressionError as exc:
            return _failed(key, exc)
    return Completed(output)


async def _run_template(config: Mapping[str, Any], ctx: NodeContext) -> Outcome:
    if "template" not in config or config["template"] is None:
        return _failed("'template'", "a template transform needs 'template'")
    return Completed({"result": config["template"]})  # rendered by the engine


_Runner = Callable[[Mapping[str, Any], NodeContext], Awaitable[Outcome]]
_RUNNERS: Mapping[str, _Runner] = {
    "json_path": _run_json_path,
    "expression": _run_expression,
    "mapping": _run_mapping,
    "template": _run_template,
}
