"""Start nodes, chains and the scope (SPEC §3, §5): what each node sees and leaves behind."""

from __future__ import annotations

from tests.integration.engine.conftest import (
    Client,
    chain,
    completed,
    decision,
    event_types,
    expr,
    node,
    node_runs,
    run,
    script,
    workflow,
)


async def test_every_node_without_incoming_edges_is_a_start_node_and_runs(client: Client) -> None:
    document = workflow(
        [expr("a", "1"), expr("b", "2"), script("c", "c = 3"), expr("d", "result + 1")],
        chain("c", "d"),
    )
    execution = await run(client, document)
    assert execution["status"] == "completed"
    assert completed(execution) == {"a", "b", "c", "d"}
    for node_id in "abcd":
        assert len(node_runs(execution, node_id)) == 1


async def test_a_chain_runs_each_node_once_in_order(client: Client) -> None:
    document = workflow(
        [script("a", "n = 1"), script("b", "n = n * 10"), script("c", "n = n + 5")],
        chain("a", "b", "c"),
    )
    execution = await run(client, document)
    assert execution["status"] == "completed"
    assert execution["output"] == {"n": 15}
    order = [
        (kind, node_id)
        for kind, node_id in await event_types(client, execution["id"])
        if kind in ("node.started", "node.completed")
    ]
    assert order == [
        ("node.started", "a"),
        ("node.completed", "a"),
        ("node.started", "b"),
        ("node.completed", "b"),
        ("node.started", "c"),
        ("node.completed", "c"),
    ]


async def test_scope_is_defaults_overlaid_with_input_then_outputs_merged(client: Client) -> None:
    document = workflow(
        [
            script("first", "total = x + y + extra", "x = 100"),
            script("second", "seen_x = x", "seen_total = total"),
        ],
        chain("first", "second"),
        variables={
            "x": {"name": "x", "type": "integer", "default_value": 1},
            "y": {"name": "y", "type": "integer", "default_value": 2},
        },
    )
    execution = await run(client, document, input={"y": 20, "extra": 5})
    assert execution["status"] == "completed", execution["error"]
    # defaults (x) overlaid by the input (y) plus undeclared input (extra); outputs merged
    # shallowly in completion order, so first's x replaces the default for second.
    assert execution["output"] == {
        "x": 100,
        "y": 20,
        "extra": 5,
        "total": 26,
        "seen_x": 100,
        "seen_total": 26,
    }


async def test_output_key_stores_the_output_under_that_name_only(client: Client) -> None:
    document = workflow(
        [
            expr("compute", "6 * 7", output_key="answer"),
            script("use", "doubled = answer.result * 2"),
        ],
        chain("compute", "use"),
    )
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    assert execution["output"] == {"answer": {"result": 42}, "doubled": 84}
    assert "result" not in execution["output"]


async def test_each_node_output_is_kept_under_nodes_for_later_nodes(client: Client) -> None:
    document = workflow(
        [
            expr("a", "'first'", output_key="kept"),
            expr("b", "'second'"),  # replaces any top-level `result`
            script(
                "c",
                "from_a = nodes['a']['output']['result']",
                "from_b = ${nodes.b.output.result}",
                "a_status = ${nodes.a.status}",
                "a_attempts = ${nodes.a.attempts}",
            ),
        ],
        chain("a", "b", "c"),
    )
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    output = execution["output"]
    assert (output["from_a"], output["from_b"]) == ("first", "second")
    assert (output["a_status"], output["a_attempts"]) == ("completed", 1)
    assert "nodes" not in output


async def test_templates_in_config_keep_json_types_or_become_text(client: Client) -> None:
    def template(node_id: str, text: str) -> dict:
        return node(
            node_id,
            "transform",
            {"transform_type": "template", "template": text},
            output_key=node_id,
        )

    document = workflow(
        [
            script("data", "items = [1, 2, 3]", "who = 'Ada'", "deep = {'k': [{'id': 7}]}"),
            template("whole", "${items}"),
            template("text", "Hello ${who}: ${items[1]} / ${nodes.data.output.deep.k[0].id}"),
            template("fallback", "${missing|none given}"),
        ],
        [edge for target in ("whole", "text", "fallback") for edge in chain("data", target)],
    )
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    output = execution["output"]
    assert output["whole"] == {"result": [1, 2, 3]}
    assert output["text"] == {"result": "Hello Ada: 2 / 7"}
    assert output["fallback"] == {"result": "none given"}


async def test_an_unknown_template_path_fails_the_node_naming_the_path(client: Client) -> None:
    document = workflow(
        [
            script("data", "known = 1"),
            node("bad", "transform", {"transform_type": "template", "template": "${nowhere.x}"}),
        ],
        chain("data", "bad"),
    )
    execution = await run(client, document)
    assert execution["status"] == "failed"
    assert execution["error"]["node_id"] == "bad"
    assert "nowhere" in execution["error"]["message"]
    (bad,) = node_runs(execution, "bad")
    assert bad["status"] == "failed"
    assert "nowhere" in bad["error"]["message"]


async def test_output_mapping_gives_the_execution_output(client: Client) -> None:
    document = workflow(
        [script("a", "total = 5", "label = 'ok'"), expr("b", "total * 2")],
        chain("a", "b"),
        output={"sum": "${total}", "doubled": "${nodes.b.output.result}", "note": "is ${label}"},
    )
    execution = await run(client, document)
    assert execution["status"] == "completed", execution["error"]
    assert execution["output"] == {"sum": 5, "doubled": 10, "note": "is ok"}


async def test_default_output_is_the_final_scope_without_reserved_names(client: Client) -> None:
    document = workflow([script("a", "made = n + 1")])
    execution = await run(client, document, input={"n": 1, "execution": "shadow", "nodes": 3})
    assert execution["status"] == "completed", execution["error"]
    assert execution["output"] == {"n": 1, "made": 2}


async def test_parallel_nodes_each_start_exactly_once(client: Client) -> None:
    # Many nodes finishing together: a node whose result waits to be recorded while
    # another is recorded must not be handed out again.
    names = [f"n{i}" for i in range(12)]
    document = workflow(
        [script(name, f"{name.replace('n', 'v')} = 1") for name in names]
        + [decision("sink", rules=[{"condition": "false", "output": "never"}])],
        config={"error_handling": {"on_failure": "continue"}},
    )
    execution = await run(client, document)
    kinds = await event_types(client, execution["id"])
    for name in [*names, "sink"]:
        assert kinds.count(("node.started", name)) == 1, name
        assert len(node_runs(execution, name)) == 1, name
    assert len(execution["errors"]) == 1  # the sink's failure, counted once
