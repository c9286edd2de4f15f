"""The expression sandbox end to end (SPEC §3, §8): escape payloads sent through the REST
API in a transform node are refused — at publication when they can be seen there, as a
node failure with the reason when they only show at run time, and as plain text when
they arrive as data — and none of them executes anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.engine.conftest import BASE, Client, expr, latest, run, workflow


def touch(marker: Path) -> str:
    return f"__import__('os').system('touch {marker}')"


@pytest.mark.parametrize(
    "expression",
    [
        "().__class__.__bases__[0].__subclasses__()",
        "getattr(input, '__class__')",
        "'{0.__class__}'.format(input)",
        "f'{input.__class__}'",
        "(lambda: 1)()",
        "type(input)",
    ],
)
async def test_a_visible_escape_is_refused_at_publication(client: Client, expression: str) -> None:
    response = await client.post(BASE, json=workflow([expr("evil", expression)], id="evil"))
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    assert [d["path"] for d in details] == ["/nodes/0/config/expression"]
    assert details[0]["message"]
    assert (await client.get(BASE)).json()["total"] == 0


async def test_an_escape_in_the_edge_of_a_definition_is_refused_too(client: Client) -> None:
    document = workflow(
        [expr("a", "1"), expr("b", "2")],
        [{"from_node": "a", "to_node": "b", "condition": "__import__('os') is None"}],
        id="edgy",
    )
    response = await client.post(BASE, json=document)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["path"] == "/edges/0/condition"


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("{'a': 1}['__class__']", "has no key '__class__'"),
        ("sorted(xs, key=len)", "len is a function"),
    ],
)
async def test_an_escape_seen_only_at_run_time_fails_the_node_with_its_reason(
    client: Client, expression: str, words: str
) -> None:
    execution = await run(client, workflow([expr("evil", expression)], id="late"), input={"xs": []})
    assert execution["status"] == "failed"
    message = latest(execution)["evil"]["error"]["message"]
    assert words in message
    assert expression in message


async def test_payloads_that_arrive_as_data_stay_data(client: Client, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = touch(marker)
    document = workflow(
        [
            expr("as_reference", "${payload}"),
            expr("as_value", "upper(payload)", output_key="shout"),
            {
                "id": "as_template",
                "name": "as_template",
                "type": "transform",
                "config": {"transform_type": "template", "template": "got ${payload}"},
                "output_key": "text",
            },
        ],
        id="data",
    )
    execution = await run(client, document, input={"payload": payload})
    assert execution["status"] == "completed", execution["error"]
    assert execution["output"]["result"] == payload
    assert execution["output"]["shout"] == {"result": payload.upper()}
    assert execution["output"]["text"] == {"result": f"got {payload}"}
    assert not marker.exists()
