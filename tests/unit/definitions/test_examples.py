"""Every example in definitions/ validates clean and parses into the model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.definitions import parse_definition
from tests.unit.definitions.conftest import check

DEFINITIONS = Path(__file__).parents[3] / "definitions"
EXAMPLES = [p for p in sorted(DEFINITIONS.glob("*.json")) if p.name != "schema.json"]
ALL_TYPES = {
    "task", "api", "transform", "decision", "human_task", "timer", "loop", "parallel",
    "database", "email", "webhook", "sub_workflow",
}  # fmt: skip


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_validates_without_errors_or_warnings(path: Path) -> None:
    report = check(json.loads(path.read_text()))
    assert report.errors == []
    assert report.warnings == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_parses_into_the_model(path: Path) -> None:
    doc = json.loads(path.read_text())
    definition = parse_definition(doc)
    assert definition.id == doc["id"]
    assert [n.id for n in definition.nodes] == [n["id"] for n in doc["nodes"]]
    assert len({e.id for e in definition.edges}) == len(definition.edges)


def test_examples_cover_every_node_type_and_both_trigger_kinds() -> None:
    types: set[str] = set()
    triggers: set[str] = set()

    def collect(nodes: list[dict[str, object]]) -> None:
        for node in nodes:
            types.add(str(node["type"]))
            config = node.get("config")
            if isinstance(config, dict):
                body = config.get("body")
                if isinstance(body, dict):
                    collect(body["nodes"])
                for branch in config.get("branches") or []:
                    collect(branch.get("nodes") or [])

    for path in EXAMPLES:
        doc = json.loads(path.read_text())
        collect(doc["nodes"])
        triggers.update(t["type"] for t in doc.get("triggers") or [])
    assert types == ALL_TYPES
    assert triggers == {"cron", "webhook"}


def test_seed_demos_exist() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"data-processing-pipeline.json", "document-approval.json", "etl-pipeline.json"} <= names


def test_document_approval_custom_and_alias_merge_is_visible() -> None:
    doc = json.loads((DEFINITIONS / "document-approval.json").read_text())
    graph = parse_definition(doc).graph
    review = graph.node("initial-review")
    assert review.config["assignee"] == "${reviewer}"
    assert review.config["due_date"] == "3 days"
    assert "custom" not in review.config
    assert "decision_rules" in graph.node("check-final").config  # written as "rules"
    assert graph.node("notify-rejected").config["email_to"] == ["${author_email}"]  # "to"
