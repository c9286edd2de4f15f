"""``GET /api/v1/node-types``: every registered type, with the schema the validator uses."""

from __future__ import annotations

from pathlib import Path

from jsonschema import Draft202012Validator

from processors.registry import DEFAULT_PROCESSORS, default_registry
from server.definitions.schema import build_schema, config_def_name, raw_config_schema
from tests.integration.engine.conftest import engine_client

ROUTE = "/api/v1/node-types"


async def test_every_registered_type_is_listed_with_its_validator_schema(sqlite_url: str) -> None:
    registry = default_registry()
    definition_schema = build_schema()
    async with engine_client(sqlite_url) as client:
        response = await client.get(ROUTE)
    assert response.status_code == 200
    body = response.json()
    listed = {item["type"]: item for item in body["node_types"]}
    assert body["total"] == len(body["node_types"]) == len(registry) == 12
    assert set(listed) == set(registry.types()) == set(DEFAULT_PROCESSORS)
    assert [item["type"] for item in body["node_types"]] == sorted(listed)
    for processor in registry:
        item = listed[processor.type_name]
        assert item["description"] == processor.description
        assert "\n" not in item["description"]
        # the very schema the validator checks a node's config against
        assert item["config_schema"] == raw_config_schema(processor)
        assert (
            item["config_schema"]
            == definition_schema["$defs"][config_def_name(processor.type_name)]
        )
        assert item["config_aliases"] == dict(processor.config_aliases)
        assert item["aliases"] == []
    assert listed["decision"]["config_aliases"] == {"rules": "decision_rules"}
    assert {"command", "timeout", "parse_json"} <= set(
        listed["task"]["config_schema"]["properties"]
    )


async def test_the_listed_schemas_accept_and_reject_what_validation_does(sqlite_url: str) -> None:
    async with engine_client(sqlite_url) as client:
        body = (await client.get(ROUTE)).json()
    task = {item["type"]: item for item in body["node_types"]}["task"]["config_schema"]
    validator = Draft202012Validator(task)
    assert list(validator.iter_errors({"command": ["/bin/echo", "hi"], "timeout": "5s"})) == []
    assert list(validator.iter_errors({"command": 5}))
    assert list(validator.iter_errors({"env": {"A": 1}}))


async def test_the_route_is_in_the_openapi_document(sqlite_url: str) -> None:
    async with engine_client(sqlite_url) as client:
        spec = (await client.get("/schema/openapi.json")).json()
    operation = spec["paths"][ROUTE]["get"]
    assert operation["summary"] == "List the node types this server runs"
    schema_ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    listing = spec["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert set(listing["properties"]) == {"node_types", "total"}


def test_docs_describe_every_node_type() -> None:
    docs = Path(__file__).parents[3] / "docs" / "nodes"
    index = (docs / "README.md").read_text()
    for type_name in DEFAULT_PROCESSORS:
        assert f"({type_name}.md)" in index, f"docs/nodes/README.md does not link {type_name}"
