"""Structured differences between two versions of a definition.

Nodes are matched by id and edges by id (or ``from→to`` when the seed format gives no
id), so a moved or renamed node shows as removed + added, and an edited one lists each
changed field by its dotted path with both values — what a reviewer needs for a
side-by-side view.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

IGNORED_TOP_LEVEL = {"nodes", "edges"}


def diff_definitions(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    fields = _changes(
        {k: v for k, v in old.items() if k not in IGNORED_TOP_LEVEL},
        {k: v for k, v in new.items() if k not in IGNORED_TOP_LEVEL},
    )
    nodes = _diff_items(_items(old.get("nodes")), _items(new.get("nodes")), _node_key)
    edges = _diff_items(_items(old.get("edges")), _items(new.get("edges")), _edge_key)
    return {
        "fields": fields,
        "nodes": nodes,
        "edges": edges,
        "summary": {
            "fields_changed": len(fields),
            "nodes_added": len(nodes["added"]),
            "nodes_removed": len(nodes["removed"]),
            "nodes_changed": len(nodes["changed"]),
            "edges_added": len(edges["added"]),
            "edges_removed": len(edges["removed"]),
            "edges_changed": len(edges["changed"]),
        },
    }


def _items(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _node_key(node: Mapping[str, Any]) -> str:
    return str(node.get("id"))


def _edge_key(edge: Mapping[str, Any]) -> str:
    if edge.get("id"):
        return str(edge["id"])
    return f"{edge.get('from_node')}->{edge.get('to_node')}"


def _diff_items(
    old: list[dict[str, Any]], new: list[dict[str, Any]], key: Any
) -> dict[str, list[Any]]:
    before = {key(item): item for item in old}
    after = {key(item): item for item in new}
    changed = []
    for item_key in after.keys() & before.keys():
        changes = _changes(before[item_key], after[item_key])
        if changes:
            changed.append({"id": item_key, "changes": changes})
    return {
        "added": [after[k] for k in after if k not in before],
        "removed": [before[k] for k in before if k not in after],
        "changed": sorted(changed, key=lambda item: item["id"]),
    }


def _changes(old: Any, new: Any, path: str = "") -> list[dict[str, Any]]:
    """Leaf-level changes as ``{path, from, to}``; absent values are reported as null."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[dict[str, Any]] = []
        for name in sorted(old.keys() | new.keys(), key=str):
            sub = f"{path}.{name}" if path else str(name)
            if name not in new:
                out.append({"path": sub, "from": old[name], "to": None, "kind": "removed"})
            elif name not in old:
                out.append({"path": sub, "from": None, "to": new[name], "kind": "added"})
            else:
                out.extend(_changes(old[name], new[name], sub))
        return out
    if old == new and type(old) is type(new):
        return []
    return [{"path": path, "from": old, "to": new, "kind": "changed"}]
