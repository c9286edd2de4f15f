"""``${…}`` templates and sandboxed expressions: the one implementation every validator
and processor uses (SPEC §3, §8).

* :mod:`.templates` — find, parse, resolve and render ``${path}`` references;
* :mod:`.functions` — the function library expressions may call;
* :mod:`.evaluator` — check and evaluate expressions with simpleeval, within
  :class:`ExpressionLimits`.
"""

from server.expressions.evaluator import evaluate, evaluate_async
from server.expressions.functions import FUNCTION_DOCS, FUNCTIONS
from server.expressions.jsondata import to_text
from server.expressions.limits import DEFAULT_LIMITS, ExpressionLimits
from server.expressions.static import ExpressionInfo, check_expression
from server.expressions.templates import (
    Reference,
    find_references,
    format_path,
    parse_path,
    render,
    resolve_path,
)

__all__ = [
    "DEFAULT_LIMITS",
    "FUNCTIONS",
    "FUNCTION_DOCS",
    "ExpressionInfo",
    "ExpressionLimits",
    "Reference",
    "check_expression",
    "evaluate",
    "evaluate_async",
    "find_references",
    "format_path",
    "parse_path",
    "render",
    "resolve_path",
    "to_text",
]
