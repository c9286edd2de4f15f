"""Version ordering, content hashing and the structured diff of the registry."""

from __future__ import annotations

import pytest

from server.registry.diff import diff_definitions
from server.registry.service import content_hash
from server.registry.versions import SemVer


@pytest.mark.parametrize(
    "ordered",
    [
        ["0.9.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta.2",
         "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "10.0.0"],
    ],
)  # fmt: skip
def test_sort_keys_order_like_semver(ordered: list[str]) -> None:
    keys = [SemVer.parse(v).sort_key() for v in ordered]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize("bad", ["1", "1.0", "v1.0.0", "01.0.0", "1.0.0-", "", "1.0.0.0"])
def test_invalid_versions_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="semantic version"):
        SemVer.parse(bad)


def test_next_patch_drops_prerelease() -> None:
    assert str(SemVer.parse("1.4.2-rc.1").next_patch()) == "1.4.3"


def test_content_hash_ignores_status_and_key_order() -> None:
    a = {"id": "x", "name": "X", "status": "active", "nodes": [{"id": "a"}]}
    b = {"nodes": [{"id": "a"}], "status": "draft", "name": "X", "id": "x"}
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash({**a, "name": "Y"})


def test_diff_reports_nodes_edges_and_fields() -> None:
    old = {
        "name": "Old",
        "nodes": [
            {"id": "a", "type": "task", "config": {"script": "x = 1"}},
            {"id": "b", "type": "task", "config": {}},
        ],
        "edges": [{"from_node": "a", "to_node": "b"}],
    }
    new = {
        "name": "New",
        "nodes": [
            {"id": "a", "type": "task", "config": {"script": "x = 2", "extra": True}},
            {"id": "c", "type": "timer", "config": {"duration": "1s"}},
        ],
        "edges": [{"from_node": "a", "to_node": "c"}],
    }
    diff = diff_definitions(old, new)
    assert diff["fields"] == [{"path": "name", "from": "Old", "to": "New", "kind": "changed"}]
    assert [n["id"] for n in diff["nodes"]["added"]] == ["c"]
    assert [n["id"] for n in diff["nodes"]["removed"]] == ["b"]
    (changed,) = diff["nodes"]["changed"]
    assert changed["id"] == "a"
    assert {c["path"]: (c["from"], c["to"]) for c in changed["changes"]} == {
        "config.extra": (None, True),
        "config.script": ("x = 1", "x = 2"),
    }
    assert [e["to_node"] for e in diff["edges"]["added"]] == ["c"]
    assert [e["to_node"] for e in diff["edges"]["removed"]] == ["b"]
    assert diff["summary"]["nodes_changed"] == 1


def test_diff_of_identical_documents_is_empty() -> None:
    doc = {"name": "Same", "nodes": [{"id": "a", "type": "task"}], "edges": []}
    diff = diff_definitions(doc, doc)
    assert all(v == 0 for v in diff["summary"].values())
