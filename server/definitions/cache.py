"""Parsed definitions by stored version: a version's content never changes, so it is
parsed once (a 1,000-node definition costs ~8 ms to parse) and kept, least recently
used first out."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from server.definitions.model import Definition, parse_definition


class ParsedDefinitions:
    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._parsed: OrderedDict[str, Definition] = OrderedDict()

    def __contains__(self, version_pk: object) -> bool:
        return version_pk in self._parsed

    def get(self, version_pk: str, document: Mapping[str, Any]) -> Definition:
        """The parsed definition of version ``version_pk`` (``document`` is read only on a miss)."""
        parsed = self._parsed.get(version_pk)
        if parsed is None:
            parsed = parse_definition(dict(document))
            self._parsed[version_pk] = parsed
            if len(self._parsed) > self._size:
                self._parsed.popitem(last=False)
        else:
            self._parsed.move_to_end(version_pk)
        return parsed
