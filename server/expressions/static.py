"""Check an expression without running it: what it reads, what it calls, what it may not do.

The check is an allow-list over Python's AST. What an expression may contain:

* literals (strings, numbers, ``true``/``false``/``null`` or ``True``/``False``/``None``,
  lists, tuples, objects), f-strings without format specs or conversions;
* names (top-level scope values) and ``${path}`` references;
* arithmetic, comparisons, ``and``/``or``/``not`` (also ``AND``/``OR``/``NOT``),
  ``x if c else y``, subscripts and slices (``data['x']``, ``items[0]``, ``s[1:3]``);
* ``a.b``, which reads key ``b`` of the object ``a`` — attribute access never reaches a
  Python attribute, and names starting with ``_`` are refused;
* calls of library functions by name (``len(items)``); methods (``name.upper()``) are
  refused with a pointer to the library function;
* list/object comprehensions and generator expressions (``any(x > 1 for x in xs)``),
  bounded at evaluation time.

Everything else (lambda, :=, sets, ``*``/``**`` unpacking, await/yield, imports and other
statements) is refused with a reason and a position in the original text.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from functools import lru_cache

from server.errors import ExpressionError
from server.expressions.functions import FUNCTIONS
from server.expressions.source import Source, prepare

_OPERATORS = (
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.LShift,
    ast.RShift, ast.BitOr, ast.BitXor, ast.BitAnd, ast.And, ast.Or, ast.Not, ast.USub,
    ast.UAdd, ast.Invert, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In,
    ast.NotIn, ast.Is, ast.IsNot, ast.Load, ast.Store,
)  # fmt: skip
_PLAIN = (
    ast.Expression, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.IfExp,
    ast.Subscript, ast.Slice, ast.List, ast.Tuple, ast.JoinedStr, ast.keyword,
)  # fmt: skip
_REFUSED = {
    ast.Lambda: "lambda functions are not supported",
    ast.NamedExpr: "assignment with := is not supported",
    ast.Set: "sets are not supported; use a list such as ['a', 'b']",
    ast.SetComp: "set comprehensions are not supported; use a list comprehension",
    ast.Starred: "'*' unpacking is not supported",
    ast.Await: "await is not supported",
    ast.Yield: "yield is not supported",
    ast.YieldFrom: "yield is not supported",
}


JSON_CONSTANTS: dict[str, bool | None] = {"true": True, "false": False, "null": None}
"""JSON spellings, usable as names unless the scope has a variable of that name."""


@dataclass(frozen=True, slots=True)
class ExpressionInfo:
    """What an expression uses, for definition validation."""

    names: frozenset[str]
    """Top-level scope names it reads (including roots of ``${…}`` references)."""
    functions: frozenset[str]
    """Library functions it calls."""


def check_expression(
    text: str, *, max_length: int = 10_000, extra_functions: Collection[str] = ()
) -> ExpressionInfo:
    """Parse and check ``text`` without evaluating it.

    ``extra_functions`` names functions the caller will add at evaluation time (a task
    script's ``log``). Raises ExpressionError with the reason and the 0-based position in
    ``text``.
    """
    return compile_expression(text, max_length, frozenset(extra_functions))[1]


@lru_cache(maxsize=2048)
def compile_expression(
    text: str, max_length: int, extra_functions: frozenset[str]
) -> tuple[Source, ExpressionInfo]:
    """The parsed, checked expression (cached: workflows evaluate the same text often)."""
    source = prepare(text, max_length=max_length)
    checker = _Checker(source, FUNCTIONS.keys() | extra_functions)
    try:
        checker.visit(source.tree.body, frozenset())
    except RecursionError:
        raise ExpressionError("the expression is nested too deeply", expression=text) from None
    names = checker.names | {ref.root for ref in source.references.values()}
    return source, ExpressionInfo(frozenset(names), frozenset(checker.functions))


class _Checker:
    """Walks the tree once, refusing what is not allowed and collecting what is used."""

    def __init__(self, source: Source, functions: Collection[str]) -> None:
        self.source = source
        self.known_functions = functions
        self.names: set[str] = set()
        self.functions: set[str] = set()

    def visit(self, node: ast.AST, bound: frozenset[str]) -> None:
        """Check ``node``; ``bound`` holds comprehension variables visible here."""
        if isinstance(node, _OPERATORS):
            return
        handler = getattr(self, f"_visit_{type(node).__name__}", None)
        if handler is not None:
            handler(node, bound)
        elif isinstance(node, _PLAIN):
            self.visit_all(ast.iter_child_nodes(node), bound)
        else:
            reason = _REFUSED.get(
                type(node), f"{type(node).__name__} is not supported in expressions"
            )
            raise self.error(reason, node)

    def visit_all(self, nodes: Iterable[ast.AST], bound: frozenset[str]) -> None:
        for child in nodes:
            self.visit(child, bound)

    def error(self, reason: str, node: ast.AST) -> ExpressionError:
        return ExpressionError(
            reason, expression=self.source.text, position=self.source.position(node)
        )

    def _visit_Constant(self, node: ast.Constant, bound: frozenset[str]) -> None:
        if isinstance(node.value, bytes):
            raise self.error("bytes literals are not supported; use a string", node)
        if isinstance(node.value, complex):
            raise self.error("complex numbers are not supported", node)
        if node.value is Ellipsis:
            raise self.error("'...' is not supported", node)

    def _visit_Name(self, node: ast.Name, bound: frozenset[str]) -> None:
        if node.id in self.source.references or node.id in bound:
            return
        if node.id.startswith("_"):
            raise self.error(f"names starting with '_' are not allowed ({node.id})", node)
        if node.id not in JSON_CONSTANTS:
            self.names.add(node.id)

    def _visit_Attribute(self, node: ast.Attribute, bound: frozenset[str]) -> None:
        if node.attr.startswith("_"):
            raise self.error(
                f"attributes starting with '_' are not accessible (.{node.attr})", node
            )
        self.visit(node.value, bound)

    def _visit_Call(self, node: ast.Call, bound: frozenset[str]) -> None:
        func = node.func
        if isinstance(func, ast.Attribute):
            hint = f"; use {func.attr}(…) instead" if func.attr in self.known_functions else ""
            raise self.error(
                f"methods cannot be called (.{func.attr}(…)); only library functions can{hint}",
                node,
            )
        if not isinstance(func, ast.Name):
            raise self.error("only library functions can be called, by name, e.g. len(items)", node)
        if func.id not in self.known_functions:
            known = ", ".join(sorted(self.known_functions))
            raise self.error(f"unknown function {func.id!r}; known functions: {known}", func)
        for keyword in node.keywords:
            if keyword.arg is None:
                raise self.error("'**' unpacking is not supported", keyword.value)
        self.functions.add(func.id)
        self.visit_all([*node.args, *node.keywords], bound)

    def _visit_Dict(self, node: ast.Dict, bound: frozenset[str]) -> None:
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:
                raise self.error("'**' unpacking is not supported", value)
            self.visit(key, bound)
            self.visit(value, bound)

    def _visit_FormattedValue(self, node: ast.FormattedValue, bound: frozenset[str]) -> None:
        if node.format_spec is not None or node.conversion != -1:
            raise self.error(
                "format specifications and conversions in f-strings ({x:>10}, {x!r}) are "
                "not supported; use plain {x}, round() or format_date()",
                node,
            )
        self.visit(node.value, bound)

    def _visit_comprehension(
        self, node: ast.ListComp | ast.GeneratorExp | ast.DictComp, bound: frozenset[str]
    ) -> None:
        for generator in node.generators:
            if generator.is_async:
                raise self.error("async comprehensions are not supported", node)
            self.visit(generator.iter, bound)
            bound = bound | self._targets(generator.target)
            self.visit_all(generator.ifs, bound)
        parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        self.visit_all(parts, bound)

    _visit_ListComp = _visit_comprehension
    _visit_GeneratorExp = _visit_comprehension
    _visit_DictComp = _visit_comprehension

    def _targets(self, target: ast.expr) -> frozenset[str]:
        if isinstance(target, ast.Name):
            if target.id.startswith("_"):
                raise self.error(f"names starting with '_' are not allowed ({target.id})", target)
            return frozenset([target.id])
        if isinstance(target, ast.Tuple | ast.List):
            names: frozenset[str] = frozenset()
            for element in target.elts:
                names |= self._targets(element)
            return names
        raise self.error("a comprehension can only assign to names, e.g. for k, v in …", target)
