"""``${path}`` templates: finding them, parsing their paths, resolving and rendering.

A path is dotted keys (letters, digits, ``_``, ``-``) with optional ``[n]`` indices and
``["any key"]`` quoted keys: ``${nodes.fetch-data.output.items[0].id}``. ``${path|text}``
gives a default used when the path is missing or null. ``$${`` writes a literal ``${``.

A string that is exactly one reference keeps the value's JSON type; anything else is
text (see :func:`server.expressions.jsondata.to_text`). Errors carry the position in the
string so a definition validator can point at the broken template.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from server.errors import ExpressionError
from server.expressions.jsondata import copy_json, to_text, type_name

Path = tuple[str | int, ...]

_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_MAX_KNOWN_SHOWN = 20
_ESCAPE = "$${"


@dataclass(frozen=True, slots=True)
class Reference:
    """One ``${…}`` in a string: what it says and where it is."""

    raw: str
    """The text between ``${`` and ``}``, as written."""
    path: Path
    default: str | None
    """The text after ``|`` (stripped), or None when there is no default."""
    start: int
    end: int
    """The span of the whole ``${…}`` in the string (``end`` exclusive)."""

    @property
    def root(self) -> str:
        """The top-level scope name the reference reads."""
        return str(self.path[0])


def find_references(text: str) -> list[Reference]:
    """Every ``${…}`` in ``text``, in order; raise ExpressionError for a malformed one."""
    return [piece for piece in _pieces(text) if isinstance(piece, Reference)]


def parse_path(text: str) -> Path:
    """Parse a path such as ``nodes.fetch-data.output.items[0].id`` into its parts."""
    return _parse_path(text, text, 0)


def format_path(path: Sequence[str | int]) -> str:
    """Write a parsed path back in template syntax."""
    out = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif part and set(part) <= _KEY_CHARS:
            out.append(f".{part}" if out else part)
        else:
            out.append(f"[{json.dumps(part)}]")
    return "".join(out)


def resolve_path(scope: Mapping[str, Any], path: Path, raw: str) -> Any:
    """The value at ``path`` in ``scope``.

    On a miss the ExpressionError names the whole path (``raw``), the part that failed
    and the names that do exist where it failed.
    """
    found, value = _walk(scope, path)
    if not found:
        raise ExpressionError(f"unknown path {raw!r}: {value}", expression=raw)
    return value


def render(value: Any, scope: Mapping[str, Any]) -> Any:
    """``value`` with every template in its strings resolved, at any depth.

    Returns new lists and objects (object keys are left as they are); the input and the
    scope are never changed, and values taken from the scope are copies.
    """
    if isinstance(value, str):
        return _render_string(value, scope)
    if isinstance(value, Mapping):
        return {key: render(item, scope) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render(item, scope) for item in value]
    return value


def lookup(scope: Mapping[str, Any], ref: Reference, expression: str = "") -> tuple[bool, Any]:
    """Resolve a reference, applying its default: ``(True, value)`` or, when the path is
    missing (or null) and there is a default, ``(False, default text)``.

    ``expression`` is the text the reference was found in, for the error message.
    """
    found, value = _walk(scope, ref.path)
    if found and not (value is None and ref.default is not None):
        return True, value
    if ref.default is not None:
        return False, ref.default
    raise ExpressionError(
        f"unknown path {format_path(ref.path)!r}: {value}",
        expression=expression,
        position=ref.start,
    )


def typed_default(text: str) -> Any:
    """A default's JSON value when it is a JSON literal (``5``, ``true``, ``null``,
    ``[]``), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def scan_reference(text: str, start: int) -> Reference:
    """Read the ``${…}`` that starts at ``text[start]``."""
    i, n = start + 2, len(text)
    depth, quote = 0, ""
    while i < n:
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "\"'" and depth > 0:
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char in "|}" and depth <= 0:
            break
        i += 1
    if i >= n:
        raise _unclosed(text, start)
    path_end = i
    default: str | None = None
    if text[i] == "|":
        i, nested = i + 1, 0
        while i < n and (text[i] != "}" or nested):
            nested += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if i >= n:
            raise _unclosed(text, start)
        default = text[path_end + 1 : i].strip()
    if not text[start + 2 : path_end].strip():
        raise ExpressionError(
            "empty reference: write a path such as ${input.name}", expression=text, position=start
        )
    path = _parse_path(text[start + 2 : path_end], text, start + 2)
    return Reference(text[start + 2 : i], path, default, start, i + 1)


def _pieces(text: str) -> Iterator[str | Reference]:
    """The string as literal text pieces (escapes applied) and references."""
    i = 0
    while True:
        j = text.find("$", i)
        if j < 0:
            break
        if text.startswith(_ESCAPE, j):
            yield text[i:j] + "${"
            i = j + 3
        elif text.startswith("${", j):
            if j > i:
                yield text[i:j]
            ref = scan_reference(text, j)
            yield ref
            i = ref.end
        else:
            yield text[i : j + 1]
            i = j + 1
    if i < len(text):
        yield text[i:]


def _render_string(text: str, scope: Mapping[str, Any]) -> Any:
    if "$" not in text:
        return text
    pieces = list(_pieces(text))
    if len(pieces) == 1 and isinstance(pieces[0], Reference):
        found, value = lookup(scope, pieces[0], text)
        return copy_json(value) if found else typed_default(value)
    out = []
    for piece in pieces:
        if isinstance(piece, str):
            out.append(piece)
        else:
            found, value = lookup(scope, piece, text)
            out.append(to_text(value) if found else value)
    return "".join(out)


def _walk(scope: Mapping[str, Any], path: Path) -> tuple[bool, Any]:
    """``(True, value)``, or ``(False, why)`` naming what exists where the walk failed."""
    current: Any = scope
    for depth, part in enumerate(path):
        where = format_path(path[:depth]) if depth else "the scope"
        if isinstance(current, Mapping):
            if isinstance(part, str) and part in current:
                current = current[part]
                continue
            return False, f"{_show(part)} is not in {where}; known: {known_names(current)}"
        if isinstance(current, list | tuple):
            index = int(part) if isinstance(part, str) and part.isdigit() else part
            if isinstance(index, int) and -len(current) <= index < len(current):
                current = current[index]
                continue
            return False, f"{where} has no item {_show(part)} (it has {len(current)} items)"
        return False, f"{where} is a {type_name(current)}, so it has no {_show(part)}"
    return True, current


def known_names(mapping: Mapping[str, Any]) -> str:
    """The keys of an object for a message: sorted, at most 20, or ``(none)``."""
    names = sorted(str(key) for key in mapping)
    if not names:
        return "(none)"
    shown = ", ".join(names[:_MAX_KNOWN_SHOWN])
    more = len(names) - _MAX_KNOWN_SHOWN
    return f"{shown} (and {more} more)" if more > 0 else shown


def _show(part: str | int) -> str:
    return f"[{part}]" if isinstance(part, int) else repr(part)


def _unclosed(text: str, start: int) -> ExpressionError:
    return ExpressionError("unclosed '${': add the closing '}'", expression=text, position=start)


def _parse_path(text: str, whole: str, offset: int) -> Path:
    """Parse ``text`` (found at ``whole[offset:]``); positions in errors are in ``whole``."""
    parser = _PathParser(text, whole, offset)
    return parser.parse()


class _PathParser:
    """A small recursive-descent parser for the path grammar (see the module docstring)."""

    def __init__(self, text: str, whole: str, offset: int) -> None:
        self.text, self.whole, self.offset = text, whole, offset
        self.i = 0

    def parse(self) -> Path:
        self._skip_space()
        if self.i >= len(self.text):
            raise self._error("empty reference: write a path such as ${input.name}")
        parts: list[str | int] = []
        if self._peek() == "[":
            parts.append(self._bracket())
        else:
            parts.append(self._key())
        while self.i < len(self.text) and not self._peek().isspace():
            if self._peek() == ".":
                self.i += 1
                parts.append(self._key())
            elif self._peek() == "[":
                parts.append(self._bracket())
            else:
                raise self._error(f"unexpected {self._peek()!r} in the path")
        self._skip_space()
        if self.i < len(self.text):
            raise self._error(f"unexpected {self._peek()!r} after the path")
        if isinstance(parts[0], int):
            raise ExpressionError(
                "a path must start with a name, not an index",
                expression=self.whole,
                position=self.offset,
            )
        return tuple(parts)

    def _key(self) -> str:
        start = self.i
        while self.i < len(self.text) and self.text[self.i] in _KEY_CHARS:
            self.i += 1
        if self.i == start:
            found = repr(self._peek()) if self.i < len(self.text) else "the end"
            raise self._error(
                f"expected a key (letters, digits, '_' or '-') but found {found}; "
                'write other keys as ["key"]'
            )
        return self.text[start : self.i]

    def _bracket(self) -> str | int:
        self.i += 1  # the '['
        char = self._peek()
        value: str | int
        if char in "\"'":
            value = self._quoted(char)
        else:
            start = self.i
            if char == "-":
                self.i += 1
            while self.i < len(self.text) and self.text[self.i].isdigit():
                self.i += 1
            digits = self.text[start : self.i]
            if not digits.lstrip("-"):
                self.i = start
                raise self._error('expected an index such as [0] or a quoted key such as ["a b"]')
            value = int(digits)
        if self._peek() != "]":
            raise self._error("expected ']'")
        self.i += 1
        return value

    def _quoted(self, quote: str) -> str:
        self.i += 1
        out = []
        while self.i < len(self.text) and self.text[self.i] != quote:
            if self.text[self.i] == "\\" and self.i + 1 < len(self.text):
                self.i += 1
            out.append(self.text[self.i])
            self.i += 1
        if self.i >= len(self.text):
            raise self._error(f"unclosed quoted key: add the closing {quote}")
        self.i += 1
        return "".join(out)

    def _peek(self) -> str:
        return self.text[self.i] if self.i < len(self.text) else ""

    def _skip_space(self) -> None:
        while self.i < len(self.text) and self.text[self.i].isspace():
            self.i += 1

    def _error(self, reason: str) -> ExpressionError:
        return ExpressionError(reason, expression=self.whole, position=self.offset + self.i)
