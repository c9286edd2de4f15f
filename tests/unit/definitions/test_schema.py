"""The committed JSON Schema is current, and schema and validator agree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from server.definitions.schema import build_schema, render_schema
from tests.unit.definitions.conftest import check

ROOT = Path(__file__).parents[3]
DEFINITIONS = ROOT / "definitions"
BROKEN = ROOT / "tests" / "fixtures" / "broken"
DOCUMENTS = [
    p
    for p in sorted(DEFINITIONS.glob("*.json")) + sorted(BROKEN.glob("*.json"))
    if p.name != "schema.json"
]


def test_committed_schema_equals_the_generated_one() -> None:
    committed = (DEFINITIONS / "schema.json").read_text()
    assert committed == render_schema(), (
        "definitions/schema.json is stale: run "
        "`python -m server.definitions.schema > definitions/schema.json`"
    )


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(build_schema())


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_every_document_the_schema_rejects_the_validator_rejects(path: Path) -> None:
    doc = json.loads(path.read_text())
    schema_errors = list(Draft202012Validator(build_schema()).iter_errors(doc))
    report = check(doc)
    if schema_errors:
        assert not report.valid
    if path.parent == DEFINITIONS:
        assert schema_errors == []


def test_every_node_type_config_is_in_the_schema() -> None:
    schema = build_schema()
    for name in ("task", "api", "decision", "email", "human_task", "loop", "parallel"):
        assert f"config-{name}" in schema["$defs"]
    decision = schema["$defs"]["config-decision"]["properties"]
    assert {"decision_rules", "rules", "custom"} <= set(decision)
