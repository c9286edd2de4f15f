"""Evaluate expressions against an execution's scope, within bounds.

simpleeval's ``EvalWithCompoundTypes`` walks the AST that :mod:`.static` has already
allowed; this subclass replaces every place where simpleeval would reach a Python object
or do unbounded work:

* names come from the scope (plain JSON data), comprehension variables and ``${…}``
  references — never from the function table, so a function is never a value;
* ``a.b`` reads key ``b`` of object ``a`` and nothing else (no ``getattr`` at all);
* calls go only to the function library (plus ``extra_functions``), by name;
* ``*``, ``**``, ``<<`` and ``+`` check their operands before computing, ``%`` does not
  format strings, every intermediate value is checked for type and size, and all the
  strings and collections one evaluation builds share a budget;
* every node visit checks the deadline.

Any failure becomes an :class:`ExpressionError` with the expression, the position of the
innermost node that failed and a reason — never a raw exception.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import operator
import threading
import time
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from simpleeval import DEFAULT_OPERATORS, EvalWithCompoundTypes, InvalidExpression

from server.errors import ExpressionError
from server.expressions.functions import FUNCTION_DOCS, FUNCTIONS
from server.expressions.jsondata import (
    SCALARS,
    CopyBudgetExceeded,
    copy_json,
    to_text,
    type_name,
    weight,
)
from server.expressions.limits import (
    ALLOCATION_FACTOR,
    DEFAULT_LIMITS,
    ExpressionLimits,
    deadline_after,
)
from server.expressions.source import Source
from server.expressions.static import (
    JSON_CONSTANTS,
    ExpressionInfo,
    check_expression,
    compile_expression,
)
from server.expressions.templates import known_names, lookup, typed_default

__all__ = ["ExpressionInfo", "check_expression", "evaluate", "evaluate_async"]

_ASYNC_GRACE_SECONDS = 0.5
_ALLOCATING = (
    ast.BinOp, ast.Call, ast.List, ast.Tuple, ast.Dict, ast.ListComp, ast.DictComp,
    ast.GeneratorExp, ast.JoinedStr,
)  # fmt: skip

Function = Callable[..., Any]


def evaluate(
    text: str,
    scope: Mapping[str, Any],
    *,
    limits: ExpressionLimits = DEFAULT_LIMITS,
    extra_functions: Mapping[str, Function] | None = None,
    copy_budget: int | None = None,
) -> Any:
    """The JSON value of expression ``text`` in ``scope``.

    Runs in the calling thread; use :func:`evaluate_async` from the event loop. The
    result is a fresh copy (tuples become lists) that shares nothing with the scope.
    ``copy_budget``: raise :class:`CopyBudgetExceeded` rather than copy a result with
    more values than this.
    """
    extra = dict(extra_functions or {})
    source, _ = compile_expression(text, limits.max_length, frozenset(extra))
    with deadline_after(limits.timeout_seconds) as deadline:
        evaluator = _evaluator(source, scope, extra, limits, deadline)
        try:
            result = evaluator.run()
            return copy_json(result, deadline=deadline, budget=copy_budget)
        except CopyBudgetExceeded:
            raise  # not an error of the expression: the caller copies elsewhere
        except ExpressionError as exc:
            if exc.expression:
                raise
            raise ExpressionError(exc.reason, expression=text, position=exc.position) from exc
        except RecursionError:
            raise ExpressionError("the expression is nested too deeply", expression=text) from None
        except Exception as exc:  # a last net: never let a raw error out
            raise ExpressionError(_describe(exc), expression=text) from exc


async def evaluate_async(
    text: str,
    scope: Mapping[str, Any],
    *,
    limits: ExpressionLimits = DEFAULT_LIMITS,
    extra_functions: Mapping[str, Function] | None = None,
) -> Any:
    """:func:`evaluate` without blocking the event loop.

    An expression whose cost cannot grow with the data (:func:`runs_in_bounded_time`)
    runs inline: a thread hop costs more than it does. Its result is copied inline too
    when it is small (``INLINE_COPY_BUDGET`` values); a bigger one — a name that holds a
    big list — is evaluated again in a thread. Any other expression runs in a worker
    thread; the evaluation stops itself at ``limits.timeout_seconds``, and waiting here
    is capped too, as a second line of defence (a thread cannot be killed, so it then
    finishes on its own, bounded by the same deadline).
    """
    if runs_in_bounded_time(text, limits.max_length):
        with contextlib.suppress(CopyBudgetExceeded):
            return evaluate(
                text,
                scope,
                limits=limits,
                extra_functions=extra_functions,
                copy_budget=INLINE_COPY_BUDGET,
            )
    work = asyncio.to_thread(evaluate, text, scope, limits=limits, extra_functions=extra_functions)
    try:
        # asyncio.timeout (unlike 3.11's wait_for) never turns a cancellation of the
        # caller into a result: a cancelled node stops waiting here at once.
        async with asyncio.timeout(limits.timeout_seconds + _ASYNC_GRACE_SECONDS):
            return await work
    except TimeoutError:
        raise ExpressionError(
            f"evaluation took longer than {limits.timeout_seconds:g}s", expression=text
        ) from None


#: Functions whose cost does not depend on the size of their arguments' contents.
_BOUNDED_FUNCTIONS = frozenset(
    {"len", "bool", "abs", "round", "int", "float", "now", "today", "get"}
)
_BOUNDED_OPERATORS = (ast.Add, ast.Sub, ast.Div, ast.FloorDiv, ast.USub, ast.UAdd, ast.Not)
#: Values an inline evaluation may copy on the event loop (a result with more is
#: evaluated again in a thread).
INLINE_COPY_BUDGET = 2_000


@lru_cache(maxsize=4096)
def runs_in_bounded_time(text: str, max_length: int = DEFAULT_LIMITS.max_length) -> bool:
    """True when evaluating ``text`` costs microseconds whatever the data (copying its
    result aside: see :func:`evaluate_async`).

    That is: only names, constants, attribute and index lookups, comparisons, booleans,
    arithmetic (``+ - / //``), list/tuple/object literals and calls of constant-time
    functions. No repetition, powers, comprehensions, f-strings, regexes or functions
    that walk a collection.
    """
    try:
        source, _ = compile_expression(text, max_length, frozenset())
    except ExpressionError:
        return False
    return all(_bounded(node) for node in ast.walk(source.tree.body))


def _bounded(node: ast.AST) -> bool:
    if isinstance(node, ast.BinOp | ast.UnaryOp):
        return isinstance(node.op, _BOUNDED_OPERATORS)
    if isinstance(node, ast.Call):
        return (
            isinstance(node.func, ast.Name)
            and node.func.id in _BOUNDED_FUNCTIONS
            and not node.keywords
        )
    return isinstance(node, (
        ast.Name, ast.Constant, ast.Attribute, ast.Subscript, ast.Compare, ast.BoolOp, ast.Load,
        ast.cmpop, ast.boolop, ast.operator, ast.unaryop, ast.Expression,
        ast.Dict, ast.List, ast.Tuple,
    ))  # fmt: skip


_reusable = threading.local()


def _evaluator(
    source: Source,
    scope: Mapping[str, Any],
    extra: Mapping[str, Function],
    limits: ExpressionLimits,
    deadline: float,
) -> _Evaluator:
    """An evaluator for one evaluation: this thread's own when only the standard
    functions are used (an evaluation never awaits, so it cannot be re-entered)."""
    if extra:
        return _Evaluator(source, scope, {**FUNCTIONS, **extra}, limits, deadline)
    evaluator: _Evaluator | None = getattr(_reusable, "evaluator", None)
    if evaluator is None or evaluator.busy:
        evaluator = _Evaluator(source, scope, FUNCTIONS, limits, deadline)
        _reusable.evaluator = evaluator
    else:
        evaluator.reset(source, scope, limits, deadline)
    return evaluator


class _Evaluator(EvalWithCompoundTypes):  # type: ignore[misc]  # simpleeval is untyped
    """One evaluation: its scope, its limits, its deadline and its budget."""

    def __init__(
        self,
        source: Source,
        scope: Mapping[str, Any],
        functions: Mapping[str, Function],
        limits: ExpressionLimits,
        deadline: float,
    ) -> None:
        operators = dict(DEFAULT_OPERATORS)
        operators.update({
            ast.Add: self._add, ast.Mult: self._mult, ast.Pow: self._pow,
            ast.LShift: self._lshift, ast.RShift: operator.rshift, ast.Mod: self._mod,
        })  # fmt: skip
        super().__init__(operators=operators, functions={}, names={})
        self.functions = dict(functions)  # drop the list/dict/set/tuple simpleeval adds
        for refused in (ast.Set, ast.SetComp):
            self.nodes.pop(refused, None)
        self.nodes.update({
            ast.ListComp: self._eval_comprehension, ast.GeneratorExp: self._eval_comprehension,
            ast.DictComp: self._eval_comprehension, ast.Slice: self._eval_slice,
        })  # fmt: skip
        self.reset(source, scope, limits, deadline)

    def reset(
        self, source: Source, scope: Mapping[str, Any], limits: ExpressionLimits, deadline: float
    ) -> None:
        """Ready for a new evaluation (building an evaluator costs more than most
        evaluations, so each thread keeps one; see :func:`_evaluator`)."""
        self.source = source
        self.expr = source.text
        self.scope = scope
        self.limits = limits
        self.deadline = deadline
        self.locals: list[dict[str, Any]] = []
        self.chars_left = limits.max_string * ALLOCATION_FACTOR
        self.items_left = limits.max_collection * ALLOCATION_FACTOR

    busy = False

    def run(self) -> Any:
        self.busy = True
        try:
            return self._eval(self.source.tree.body)
        finally:
            self.busy = False
            self.locals = []
            self.scope = {}  # a kept evaluator must not keep an execution's data alive

    # -- every node ----------------------------------------------------------------

    def _eval(self, node: ast.AST) -> Any:
        try:
            if time.monotonic() > self.deadline:
                raise ExpressionError(
                    f"evaluation took longer than {self.limits.timeout_seconds:g}s"
                )
            handler = self.nodes.get(type(node))
            if handler is None:
                raise ExpressionError(f"{type(node).__name__} is not supported in expressions")
            result = handler(node)
            self._check(result, node)
        except ExpressionError as exc:
            if exc.expression:
                raise
            raise self._error(exc.reason, node) from exc.__cause__
        except InvalidExpression as exc:
            raise self._error(str(exc), node) from None
        except RecursionError:
            raise self._error("the expression is nested too deeply", node) from None
        except MemoryError:
            raise self._error("the expression ran out of memory", node) from None
        except Exception as exc:
            raise self._error(_describe(exc), node) from exc
        return result

    def _error(self, reason: str, node: ast.AST) -> ExpressionError:
        return ExpressionError(
            reason, expression=self.source.text, position=self.source.position(node)
        )

    def _check(self, value: Any, node: ast.AST) -> None:
        """Only JSON-like values of bounded size; allocations are charged to the budget."""
        kind = type(value)
        if kind is str:
            if len(value) > self.limits.max_string:
                raise ExpressionError(
                    f"a string of {len(value):,} characters is over the limit of "
                    f"{self.limits.max_string:,}"
                )
            if isinstance(node, _ALLOCATING) or _is_slice(node):
                self.chars_left -= len(value)
                if self.chars_left < 0:
                    raise ExpressionError("the expression builds too much text in total")
        elif kind is int:
            if value.bit_length() > self.limits.max_int_bits:
                raise ExpressionError(
                    f"a number over {self.limits.max_int_bits:,} bits is over the limit"
                )
        elif kind in (list, tuple, dict):
            if len(value) > self.limits.max_collection:
                raise ExpressionError(
                    f"a {type_name(value)} of {len(value):,} items is over the limit of "
                    f"{self.limits.max_collection:,}"
                )
            if isinstance(node, _ALLOCATING) or _is_slice(node):
                self.items_left -= len(value)
                if self.items_left < 0:
                    raise ExpressionError("the expression builds too many items in total")
        elif kind is slice and isinstance(node, ast.Slice):
            return
        elif kind not in (bool, float, type(None)):
            raise ExpressionError(f"a {type_name(value)} is not JSON data and cannot be used here")

    # -- names, keys, calls ---------------------------------------------------------

    def _eval_name(self, node: ast.Name) -> Any:
        for frame in reversed(self.locals):
            if node.id in frame:
                return frame[node.id]
        ref = self.source.references.get(node.id)
        if ref is not None:
            found, value = lookup(self.scope, ref, self.source.text)
            return value if found else typed_default(value)
        if node.id in self.scope:
            return self.scope[node.id]
        if node.id in JSON_CONSTANTS:
            return JSON_CONSTANTS[node.id]
        hint = (
            f"; {node.id} is a function: call it as {node.id}(…)"
            if node.id in self.functions
            else ""
        )
        raise ExpressionError(
            f"unknown name {node.id!r}; known names: {known_names(self.scope)}{hint}"
        )

    def _eval_attribute(self, node: ast.Attribute) -> Any:
        if node.attr.startswith("_"):
            raise ExpressionError(f"attributes starting with '_' are not accessible (.{node.attr})")
        value = self._eval(node.value)
        if isinstance(value, dict):
            return self._key(value, node.attr, node.value)
        hint = f"; use {node.attr}(…) instead" if node.attr in self.functions else ""
        raise ExpressionError(
            f"{self.source.segment(node.value)!r} is {_a(value)}, so it has no key "
            f"{node.attr!r} (a.b only reads keys of objects){hint}"
        )

    def _eval_subscript(self, node: ast.Subscript) -> Any:
        container = self._eval(node.value)
        key = self._eval(node.slice)
        if isinstance(container, dict):
            return self._key(container, key, node.value)
        if isinstance(container, list | tuple | str):
            if isinstance(key, slice):
                return container[key]
            if not isinstance(key, int):
                raise ExpressionError(
                    f"a {type_name(container)} index must be a whole number, not {_a(key)}"
                )
            if not -len(container) <= key < len(container):
                raise ExpressionError(
                    f"index {key} is out of range: {self.source.segment(node.value)!r} has "
                    f"{len(container)} items"
                )
            return container[key]
        raise ExpressionError(
            f"{self.source.segment(node.value)!r} is {_a(container)}; only lists, strings "
            "and objects can be indexed"
        )

    def _key(self, obj: dict[str, Any], key: Any, where: ast.AST) -> Any:
        if isinstance(key, SCALARS) and key in obj:
            return obj[key]
        raise ExpressionError(
            f"{self.source.segment(where)!r} has no key {key!r}; known: {known_names(obj)}"
        )

    def _eval_call(self, node: ast.Call) -> Any:
        name = node.func.id if isinstance(node.func, ast.Name) else ""
        function = self.functions.get(name)
        if function is None:
            raise ExpressionError("only library functions can be called, by name")
        args = [self._eval(arg) for arg in node.args]
        kwargs = dict(self._eval(keyword) for keyword in node.keywords)
        usage = FUNCTION_DOCS.get(name, "")
        try:
            _signature(function).bind(*args, **kwargs)
        except TypeError as exc:
            raise ExpressionError(
                f"{name}(): {exc}" + (f"; usage: {usage}" if usage else "")
            ) from None
        try:
            return function(*args, **kwargs)
        except ExpressionError:
            raise
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise ExpressionError(f"{name}(): {_describe(exc)}") from exc

    # -- text and collections -----------------------------------------------------

    def _eval_formattedvalue(self, node: ast.FormattedValue) -> str:
        return to_text(self._eval(node.value), max_chars=self.limits.max_string)

    def _eval_joinedstr(self, node: ast.JoinedStr) -> str:
        parts: list[str] = []
        size = 0
        for value in node.values:
            part = to_text(self._eval(value), max_chars=self.limits.max_string)
            size += len(part)
            if size > self.limits.max_string:
                raise ExpressionError(
                    f"the f-string would be longer than {self.limits.max_string:,} characters"
                )
            parts.append(part)
        return "".join(parts)

    def _eval_comprehension(self, node: ast.ListComp | ast.GeneratorExp | ast.DictComp) -> Any:
        result: list[Any] | dict[Any, Any] = {} if isinstance(node, ast.DictComp) else []
        frame: dict[str, Any] = {}
        steps = 0

        def run(index: int) -> None:
            nonlocal steps
            generator = node.generators[index]
            iterable = self._eval(generator.iter)
            if not isinstance(iterable, list | tuple | str | dict):
                raise self._error(
                    f"cannot loop over {_a(iterable)}; loop over a list, string or object",
                    generator.iter,
                )
            for item in iterable:
                steps += 1
                if steps > self.limits.max_collection:
                    raise ExpressionError(
                        f"the comprehension ran more than {self.limits.max_collection:,} steps"
                    )
                self._bind(generator.target, item, frame)
                if not all(self._eval(condition) for condition in generator.ifs):
                    continue
                if index + 1 < len(node.generators):
                    run(index + 1)
                elif isinstance(node, ast.DictComp):
                    assert isinstance(result, dict)
                    result[self._eval(node.key)] = self._eval(node.value)
                else:
                    assert isinstance(result, list)
                    result.append(self._eval(node.elt))

        self.locals.append(frame)
        try:
            run(0)
        finally:
            self.locals.pop()
        return result

    def _bind(self, target: ast.AST, value: Any, frame: dict[str, Any]) -> None:
        if isinstance(target, ast.Name):
            frame[target.id] = value
            return
        assert isinstance(target, ast.Tuple | ast.List)
        if not isinstance(value, list | tuple) or len(value) != len(target.elts):
            raise ExpressionError(f"cannot unpack {_a(value)} into {len(target.elts)} names")
        for element, item in zip(target.elts, value, strict=True):
            self._bind(element, item, frame)

    # -- bounded operators ----------------------------------------------------------

    def _refuse(self, what: str) -> ExpressionError:
        return ExpressionError(
            f"{what} would be a number of more than {self.limits.max_int_bits:,} bits, "
            "over the limit"
        )

    def _mult(self, a: Any, b: Any) -> Any:
        if _is_int(a) and _is_int(b):
            if a.bit_length() + b.bit_length() > self.limits.max_int_bits + 1:
                raise self._refuse(f"{a} * {b}")
        elif isinstance(a, str | list | tuple) and _is_int(b):
            self._check_repeat(a, b)
        elif isinstance(b, str | list | tuple) and _is_int(a):
            self._check_repeat(b, a)
        return a * b

    def _check_repeat(self, seq: str | list[Any] | tuple[Any, ...], times: int) -> None:
        if times <= 0:
            return
        if isinstance(seq, str):
            if len(seq) * times > self.limits.max_string:
                raise ExpressionError(
                    f"repeating a string of {len(seq):,} characters {times:,} times is over "
                    f"the limit of {self.limits.max_string:,} characters"
                )
            return
        limit = self.limits.max_collection
        if len(seq) * times > limit or weight(seq, limit) * times > limit:
            raise ExpressionError(
                f"repeating a list of {len(seq):,} items {times:,} times is over the limit "
                f"of {limit:,} items"
            )

    def _pow(self, a: Any, b: Any) -> Any:
        big = _is_int(a) and _is_int(b) and b > 0 and abs(a) > 1
        if big and (abs(a).bit_length() - 1) * b > self.limits.max_int_bits:
            raise self._refuse(f"{a} ** {b}")
        return a**b

    def _lshift(self, a: Any, b: Any) -> Any:
        if _is_int(a) and _is_int(b) and b > 0 and a.bit_length() + b > self.limits.max_int_bits:
            raise self._refuse(f"{a} << {b}")
        return a << b

    def _add(self, a: Any, b: Any) -> Any:
        strings = isinstance(a, str) and isinstance(b, str)
        if strings and len(a) + len(b) > self.limits.max_string:
            raise ExpressionError(
                f"the joined string would be over {self.limits.max_string:,} characters"
            )
        lists = isinstance(a, list | tuple) and isinstance(b, list | tuple)
        if lists and len(a) + len(b) > self.limits.max_collection:
            raise ExpressionError(
                f"the joined list would be over {self.limits.max_collection:,} items"
            )
        return a + b

    def _mod(self, a: Any, b: Any) -> Any:
        if isinstance(a, str):
            raise ExpressionError("'%' does not format strings here; build text with + and str()")
        return a % b


def _is_int(value: Any) -> bool:
    return isinstance(value, int)


def _is_slice(node: ast.AST) -> bool:
    return isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice)


def _a(value: Any) -> str:
    """``a string``, ``an object``, ``null`` — for messages."""
    name = type_name(value)
    if name == "null":
        return "null"
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


@lru_cache(maxsize=256)
def _signature(function: Function) -> inspect.Signature:
    return inspect.signature(function)


def _describe(exc: BaseException) -> str:
    """A reason from an exception raised inside the evaluation."""
    if isinstance(exc, ZeroDivisionError):
        return "division by zero"
    if isinstance(exc, OverflowError):
        return f"number too large ({exc})"
    message = str(exc)
    return message if message else type(exc).__name__
