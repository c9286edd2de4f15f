"""Replacing secret values by ``***`` (SPEC §3): in data, in messages and in log lines.

A :class:`Redactor` is built from the plain values to hide. It hides each one wherever it
occurs — a whole string or part of one, at any depth of a JSON document, in object keys
too — and also the spellings a value takes when a peer echoes it back inside JSON text
(escaped quotes and backslashes), in a URL (percent-encoded) or in HTML (entities).
Values transformed further (hashed, base64-encoded as in HTTP basic auth) are beyond
recognition and are not hidden; see ``docs/security.md``.

:data:`LOG_MASK` is the process-wide set of every secret value decrypted in this
process, which the JSON log formatter applies to every finished line (message, extra fields,
exception text), whoever logged it — httpx logging a URL with a key in its query string
included.
"""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
#: Characters a URL keeps as they are (RFC 3986 reserved and unreserved marks).
URL_KEPT = "!$&'()*+,;=:@/?~"


def spellings(value: str) -> set[str]:
    """The forms in which ``value`` may appear in text: as itself, JSON-escaped (with and
    without ``\\u`` escapes), percent-encoded (fully, as a query parameter, as written
    into a URL) and HTML-escaped."""
    forms = {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""),
        quote_plus(value, safe=""),  # a query parameter, as httpx encodes it
        quote(value, safe=URL_KEPT),  # written into a URL: only what a URL cannot hold
        html.escape(value),
    }
    forms.discard("")
    return forms


class Redactor:
    """Hides a fixed set of values; falsy when it has nothing to hide (callers skip it)."""

    __slots__ = ("_pattern",)

    def __init__(self, values: Iterable[str]) -> None:
        forms = {form for value in values if value for form in spellings(value)}
        # Longest first: a value that contains another is replaced whole.
        ordered = sorted(forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, text: str) -> str:
        """``text`` with every occurrence of a value replaced by ``***``."""
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)

    def value(self, data: Any) -> Any:
        """A copy of ``data`` (JSON-like) with every string redacted, keys included."""
        if self._pattern is None:
            return data
        return self._walk(data)

    def _walk(self, data: Any) -> Any:
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, Mapping):
            return {
                (self.text(key) if isinstance(key, str) else key): self._walk(item)
                for key, item in data.items()
            }
        if isinstance(data, list | tuple):
            return [self._walk(item) for item in data]
        return data


class LogMask:
    """Every secret value this process has decrypted, hidden from its log lines."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._redactor = Redactor(())
        self._lock = threading.Lock()

    def add(self, values: Iterable[str]) -> None:
        """Hide ``values`` from every later log line."""
        new = {value for value in values if value and value not in self._values}
        if not new:
            return
        with self._lock:
            self._values |= new
            self._redactor = Redactor(self._values)

    def text(self, line: str) -> str:
        """A finished log line with the values hidden (their JSON-escaped spellings too,
        so a value holding quotes or backslashes is found inside the JSON line)."""
        return self._redactor.text(line)


#: The one mask of this process (used by :class:`server.logging.JsonFormatter`).
LOG_MASK = LogMask()
