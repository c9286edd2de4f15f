"""Known sandbox escapes fail with an ExpressionError and run nothing.

Each test records Python audit events (open, import, exec, subprocess, sensitive
``object.__getattr__`` …) while the expression is evaluated: an escape that got as far as
touching the interpreter or the OS would show up there even if it then failed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest

from server.errors import ExpressionError
from server.expressions import check_expression, evaluate

ESCAPES = [
    "().__class__.__bases__[0].__subclasses__()",
    "().__class__",
    "[].__class__.__mro__",
    "name.__len__()",
    "(1).__class__",
    "'a'.__doc__",
    "f'{().__class__}'",
    "__import__('os')",
    "__import__('os').system('touch /tmp/flowyard-pwned')",
    "__builtins__",
    "'{0.__class__}'.format(1)",
    "'{0.__class__.__init__.__globals__}'.format(name)",
    "name.format(1)",
    "getattr(1, '__class__')",
    "type(1)",
    "type(1).__subclasses__()",
    "lambda: 1",
    "(lambda: 1)()",
    "open('/etc/passwd')",
    "open('/etc/passwd').read()",
    "exec('import os')",
    "eval('1 + 1')",
    "compile('1', 'x', 'eval')",
    "globals()",
    "locals()",
    "vars()",
    "dir()",
    "breakpoint()",
    "help()",
    "setattr(items, 'x', 1)",
    "items.append(1)",
    "order.clear()",
    "(x for x in items).gi_frame",
    "[x for x in items].__class__",
    "len.__self__",
    "sorted(items, key=len)",
    "{'a': 1}['__class__']",
    "{}.__class__.__subclasses__",
    "str.mro()",
]


Audit = Callable[[], AbstractContextManager[list[str]]]


def attempt(
    audit: Audit, expression: str, scope: dict[str, Any]
) -> tuple[Exception | None, list[str]]:
    """Evaluate with audit recording around the evaluation only; return the error."""
    error: Exception | None = None
    with audit() as events:
        try:
            evaluate(expression, scope)
        except Exception as exc:
            error = exc
    return error, events


@pytest.mark.parametrize("expression", ESCAPES)
def test_escape_fails_cleanly_and_runs_nothing(audit: Audit, expression: str) -> None:
    scope: dict[str, Any] = {"name": "x", "items": [1, 2], "order": {"a": 1}}
    before = repr(scope)
    error, events = attempt(audit, expression, scope)
    assert isinstance(error, ExpressionError)
    assert error.expression == expression
    assert error.reason
    assert events == []
    assert repr(scope) == before
    assert not os.path.exists("/tmp/flowyard-pwned")


# Calls of anything but library functions by name, '_' names and attributes, lambdas:
# refused before anything runs. (The rest fail at evaluation: a key lookup, a name.)
RUNTIME_ONLY = {
    "{'a': 1}['__class__']",
    "len.__self__",
    "(x for x in items).gi_frame",
    "sorted(items, key=len)",
}
STATIC_REFUSALS = [e for e in ESCAPES if e not in RUNTIME_ONLY]


@pytest.mark.parametrize("expression", STATIC_REFUSALS)
def test_escape_is_already_refused_by_the_static_check(expression: str) -> None:
    with pytest.raises(ExpressionError):
        check_expression(expression)


@pytest.mark.parametrize(
    "expression", ["os", "os.system", "os.path.join", "fn", "data.os", "data['os']"]
)
def test_scope_modules_and_callables_are_never_reachable(audit: Audit, expression: str) -> None:
    scope: dict[str, Any] = {"os": os, "fn": print, "data": {"os": os}}
    error, events = attempt(audit, expression, scope)
    assert isinstance(error, ExpressionError)
    assert "not JSON data" in error.reason
    assert events == []


@pytest.mark.parametrize("expression", ["[x.__class__ for x in items]", "[_ for _ in items]"])
def test_comprehension_variables_cannot_reach_dunders(audit: Audit, expression: str) -> None:
    error, events = attempt(audit, expression, {"items": [1]})
    assert isinstance(error, ExpressionError)
    assert events == []


def test_placeholder_names_cannot_be_written_by_hand() -> None:
    with pytest.raises(ExpressionError, match="names starting with '_'"):
        evaluate("__ref0__", {"x": 1})


# Format-string tricks: str.format / format_map / % reach attributes through a template
# held in data ("{0.__class__}"), and f-strings walk attributes inside their braces.
FORMAT_AND_FSTRING_TRICKS = [
    "template.format(name)",
    "template.format_map(order)",
    "'{x.__class__}'.format(x=1)",
    "'%s' % name",
    "'%(a)s' % order",
    "template % name",
    "f'{name.__class__.__mro__}'",
    "f'{items[0].__class__}'",
    "f'{order.__class__.__init__.__globals__}'",
    "f'{name!r}'",
    "f'{name:{template}}'",
    "f'{(lambda: 1)()}'",
    "f'{__import__(\"os\")}'",
    "f'{getattr(name, \"upper\")}'",
]

# Scope tricks: lambdas, comprehension variables bound to Python objects or functions,
# walrus assignments, and names that should only exist inside a comprehension.
SCOPE_TRICKS = [
    "[x for x in [().__class__]]",
    "[c for c in ().__class__.__bases__]",
    "{x: x.__class__ for x in items}",
    "[__import__ for x in items]",
    "[f for f in [len]]",
    "[x for x in (lambda: items)()]",
    "[(lambda: x)() for x in items]",
    "(lambda f: f)(len)",
    "(x := 1)",
    "[y := 1 for x in items]",
    "[x for x in items if (y := x)]",
    "[x for x in items] + [x]",
    "type('X', (), {})",
    "type.__subclasses__(type)",
    "str(type)",
    "sorted(items, key=abs)",
    "max(items, key=str)",
]


@pytest.mark.parametrize("expression", FORMAT_AND_FSTRING_TRICKS + SCOPE_TRICKS)
def test_format_fstring_and_scope_tricks_fail_cleanly(audit: Audit, expression: str) -> None:
    scope: dict[str, Any] = {
        "name": "x",
        "items": [1, 2],
        "order": {"a": 1},
        "template": "{0.__class__.__init__.__globals__}",
    }
    before = repr(scope)
    error, events = attempt(audit, expression, scope)
    assert isinstance(error, ExpressionError), f"{expression!r} gave no ExpressionError"
    assert error.expression == expression
    assert error.reason
    assert events == []
    assert repr(scope) == before


def test_a_comprehension_variable_named_like_a_function_is_only_data() -> None:
    # ``len`` the loop variable is a string; ``len(…)`` still calls the library function.
    assert evaluate("[len(len) for len in ['ab', 'c']]", {}) == [2, 1]
