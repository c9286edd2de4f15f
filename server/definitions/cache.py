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

    def peek(self, version_pk: str) -> Definition | None:
        """The parsed definition if it is here, without reordering (any thread may ask)."""
        return self._parsed.get(version_pk)

    def for_execution(
        self, version_pk: str, document: Mapping[str, Any], metadata: Mapping[str, Any] | None
    ) -> Definition:
        """What an execution runs: its pinned version, or — for the child of a ``loop`` or
        ``parallel`` node with an inline body — that body of the version, as a workflow
        of its own (``metadata``: the child's ``context_metadata``)."""
        body = (metadata or {}).get("body")
        if isinstance(body, Mapping):
            key = f"{version_pk}#{(metadata or {}).get('body_key')}"
            return self.get(key, body_document(body, str((metadata or {}).get("body_key"))))
        return self.get(version_pk, document)

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


def body_document(body: Mapping[str, Any], body_key: str) -> dict[str, Any]:
    """An inline body (``{nodes, edges}``) as a definition document."""
    return {
        "id": f"body:{body_key}",
        "name": f"body {body_key}",
        "nodes": list(body.get("nodes") or []),
        "edges": list(body.get("edges") or []),
    }
