"""Turn expression text into a Python AST, keeping positions in the original text.

Before parsing, outside string literals and comments:

* ``AND``, ``OR`` and ``NOT`` written as whole words become ``and``, ``or``, ``not``
  (people coming from SQL or spreadsheets write them; a name after a ``.`` is left
  alone);
* every ``${path}`` / ``${path|default}`` becomes a placeholder name (``__ref0__``…) that
  the evaluator binds to the resolved value, so values are never spliced into code.

``${…}`` inside a string literal stays literal text. The text is parsed as one
expression wrapped in parentheses, so it may span lines. Every offset of the rewritten
text maps back to the original, and :meth:`Source.position` turns an AST node into the
0-based character offset a person sees.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from server.errors import ExpressionError
from server.expressions.templates import Reference, scan_reference

_KEYWORD_ALIASES = {"AND": "and", "OR": "or", "NOT": "not"}
PLACEHOLDER_PREFIX = "__ref"


@dataclass(frozen=True, slots=True)
class Source:
    """An expression ready for checking and evaluation."""

    text: str
    """The original expression text."""
    tree: ast.Expression
    references: dict[str, Reference]
    """Placeholder name → the ``${…}`` it stands for."""
    origin: tuple[int, ...]
    """For each offset of the parsed text (and one past its end): the original offset."""
    line_starts: tuple[int, ...]
    parsed: str

    def position(self, node: ast.AST) -> int | None:
        """The 0-based offset in the original text where ``node`` starts."""
        lineno = getattr(node, "lineno", None)
        col = getattr(node, "col_offset", None)
        if lineno is None or col is None:
            return None
        return self._original(lineno, col, in_bytes=True)

    def end_position(self, node: ast.AST) -> int | None:
        """The original offset just past ``node``."""
        lineno = getattr(node, "end_lineno", None)
        col = getattr(node, "end_col_offset", None)
        if lineno is None or col is None:
            return None
        return self._original(lineno, col, in_bytes=True)

    def segment(self, node: ast.AST) -> str:
        """The original text of ``node`` (for messages)."""
        start, end = self.position(node), self.end_position(node)
        if start is None or end is None:
            return ""
        return self.text[start:end]

    def _original(self, lineno: int, col: int, *, in_bytes: bool) -> int:
        line_start = self.line_starts[min(lineno, len(self.line_starts)) - 1]
        if in_bytes:
            line = self.parsed[line_start:].split("\n", 1)[0]
            col = len(line.encode("utf-8")[:col].decode("utf-8", "ignore"))
        wrapped = line_start + col
        offset = min(max(wrapped - 1, 0), len(self.origin) - 1)  # minus the added "("
        return self.origin[offset]


def prepare(text: str, *, max_length: int) -> Source:
    """Check the length, rewrite, and parse ``text``; ExpressionError on failure."""
    if len(text) > max_length:
        raise ExpressionError(
            f"the expression is {len(text):,} characters; the limit is {max_length:,}",
            expression=text[:200] + "…",
            position=max_length,
        )
    if not text.strip():
        raise ExpressionError("the expression is empty", expression=text)
    rewritten, origin, references = _rewrite(text)
    parsed = "(" + rewritten + "\n)"
    line_starts = [0]
    line_starts.extend(i + 1 for i, char in enumerate(parsed) if char == "\n")
    try:
        tree = ast.parse(parsed, mode="eval")
    except SyntaxError as exc:
        source = Source(text, ast.Expression(ast.Constant(None)), references, tuple(origin),
                        tuple(line_starts), parsed)  # fmt: skip
        position = source._original(exc.lineno or 1, (exc.offset or 1) - 1, in_bytes=False)
        raise ExpressionError(
            _syntax_reason(exc, rewritten), expression=text, position=position
        ) from None
    except (RecursionError, MemoryError, ValueError) as exc:
        reason = (
            "the expression is nested too deeply" if not isinstance(exc, ValueError) else str(exc)
        )
        raise ExpressionError(reason, expression=text) from None
    return Source(text, tree, references, tuple(origin), tuple(line_starts), parsed)


def _syntax_reason(exc: SyntaxError, rewritten: str) -> str:
    """A reason that says what to do; statements get their own explanation."""
    try:
        module = ast.parse(rewritten)
    except (SyntaxError, RecursionError, MemoryError, ValueError):
        module = None
    if module is not None and module.body and not all(isinstance(s, ast.Expr) for s in module.body):
        return (
            "only a single expression is allowed: statements such as import, assignment "
            "(=), def or if-blocks are not supported"
        )
    if module is not None and len(module.body) > 1:
        return "only a single expression is allowed; combine conditions with and / or"
    return f"syntax error: {exc.msg}"


def _rewrite(text: str) -> tuple[str, list[int], dict[str, Reference]]:
    """The parseable text, the original offset of each of its characters, the refs."""
    out: list[str] = []
    origin: list[int] = []
    references: dict[str, Reference] = {}

    def emit(piece: str, at: int, *, same_length: bool = True) -> None:
        out.append(piece)
        origin.extend(range(at, at + len(piece)) if same_length else [at] * len(piece))

    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char in "\"'":
            end = _string_end(text, i)
            emit(text[i:end], i)
            i = end
        elif char == "#":
            end = text.find("\n", i)
            end = n if end < 0 else end
            emit(text[i:end], i)
            i = end
        elif text.startswith("${", i):
            ref = scan_reference(text, i)
            name = f"{PLACEHOLDER_PREFIX}{len(references)}__"
            references[name] = ref
            emit(name, i, same_length=False)
            i = ref.end
        elif char.isalpha() or char == "_":
            end = i
            while end < n and (text[end].isalnum() or text[end] == "_"):
                end += 1
            word = text[i:end]
            after_dot = "".join(out).rstrip().endswith(".") if word in _KEYWORD_ALIASES else False
            emit(word if after_dot else _KEYWORD_ALIASES.get(word, word), i)
            i = end
        else:
            emit(char, i)
            i += 1
    origin.append(n)
    return "".join(out), origin, references


def _string_end(text: str, start: int) -> int:
    """The offset just past the string literal starting at ``start`` (or the end)."""
    quote = text[start] * 3 if text.startswith(text[start] * 3, start) else text[start]
    i = start + len(quote)
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text.startswith(quote, i):
            return i + len(quote)
        elif text[i] == "\n" and len(quote) == 1:
            return i
        else:
            i += 1
    return len(text)
