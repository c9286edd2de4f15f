"""The workflow graph's layout (``ui.graph``) and its SVG macro (``partials/graph.html``)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ui.graph import LABEL_CHARS, GraphLayout, NodeBox, layout

ROOT = Path(__file__).resolve().parents[3]


def chain(count: int) -> dict[str, Any]:
    return {
        "nodes": [{"id": f"n{i}", "name": f"Step {i}", "type": "task"} for i in range(count)],
        "edges": [{"from_node": f"n{i}", "to_node": f"n{i + 1}"} for i in range(count - 1)],
    }


def overlaps(a: NodeBox, b: NodeBox) -> bool:
    return (
        a.x < b.x + b.width
        and b.x < a.x + a.width
        and a.y < b.y + b.height
        and b.y < a.y + a.height
    )


def assert_no_overlap(result: GraphLayout) -> None:
    # Sort by x and compare only boxes whose x ranges can meet (fast for big graphs).
    boxes = sorted(result.nodes, key=lambda box: box.x)
    for i, box in enumerate(boxes):
        for other in boxes[i + 1 :]:
            if other.x >= box.x + box.width:
                break
            assert not overlaps(box, other), (box.id, other.id)


def test_positions_are_used_when_every_node_has_one() -> None:
    document = {
        "nodes": [
            {"id": "a", "type": "task", "position": {"x": 100, "y": 100}},
            {"id": "b", "type": "task", "position": {"x": 500, "y": 100}},
            {"id": "c", "type": "task", "position": {"x": 500, "y": 400}},
        ],
        "edges": [{"from_node": "a", "to_node": "b"}, {"from_node": "a", "to_node": "c"}],
    }
    result = layout(document)
    assert result.positioned
    a, b, c = (result.node(n) for n in "abc")
    # Shifted to the margin, the arrangement kept: b right of a, c below b, same column.
    assert b.x - a.x == pytest.approx(400)
    assert c.y - b.y == pytest.approx(300)
    assert b.x == c.x
    assert a.y == b.y


def test_positions_are_spread_so_labels_fit_between_boxes() -> None:
    document = {
        "nodes": [
            {"id": "a", "type": "decision", "position": {"x": 0, "y": 0}},
            {"id": "b", "type": "task", "position": {"x": 200, "y": 0}},
        ],
        "edges": [{"from_node": "a", "to_node": "b", "condition": "${amount > 100 and ok}"}],
    }
    result = layout(document)
    a, b = result.node("a"), result.node("b")
    label = result.edges[0].label
    assert label is not None
    assert a.x + a.width <= label.x
    assert label.x + label.width <= b.x


def test_one_node_without_position_means_automatic_layout() -> None:
    document = chain(3)
    document["nodes"][0]["position"] = {"x": 900, "y": 900}
    document["nodes"][1]["position"] = {"x": 0, "y": 0}
    result = layout(document)
    assert not result.positioned
    assert [box.layer for box in result.nodes] == [0, 1, 2]


def test_every_forward_edge_points_to_a_later_layer_and_loops_are_back_edges() -> None:
    document = {
        "nodes": [{"id": n, "type": "task"} for n in ["start", "check", "work", "end", "retry"]],
        "edges": [
            {"from_node": "start", "to_node": "check"},
            {"from_node": "check", "to_node": "work", "condition": "go"},
            {"from_node": "work", "to_node": "retry"},
            {"from_node": "retry", "to_node": "check", "label": "again"},  # the loop
            {"from_node": "check", "to_node": "end", "condition": "done"},
            {"from_node": "start", "to_node": "end"},  # spans layers
        ],
    }
    result = layout(document)
    layer = {box.id: box.layer for box in result.nodes}
    assert layer["start"] == 0
    back = [edge for edge in result.edges if edge.back]
    assert [(e.source, e.target) for e in back] == [("retry", "check")]
    for edge in result.edges:
        if not edge.back:
            assert layer[edge.target] > layer[edge.source], edge.id
    assert_no_overlap(result)


def test_layered_layout_of_demo_definitions_has_no_overlaps() -> None:
    for path in sorted((ROOT / "definitions").glob("*.json")):
        if path.name == "schema.json":
            continue
        document = json.loads(path.read_text())
        for node in document.get("nodes", []):
            node.pop("position", None)
        result = layout(document)
        assert len(result.nodes) == len(document["nodes"]), path.name
        assert_no_overlap(result)
        for box in result.nodes:
            assert box.x >= 0
            assert box.y >= 0
            assert box.x + box.width <= result.width
            assert box.y + box.height <= result.height


def test_labels_do_not_cover_boxes_in_the_layered_layout() -> None:
    document = {
        "nodes": [{"id": n, "type": "decision"} for n in ["a", "b", "c", "d"]],
        "edges": [
            {"from_node": "a", "to_node": "b", "condition": "${amount > 100}"},
            {"from_node": "a", "to_node": "c", "condition": "x" * 60},
            {"from_node": "b", "to_node": "d", "label": "approved"},
        ],
    }
    result = layout(document)
    for edge in result.edges:
        label = edge.label
        assert label is not None
        for box in result.nodes:
            assert not (
                label.x < box.x + box.width
                and box.x < label.x + label.width
                and label.y < box.y + box.height
                and box.y < label.y + label.height
            ), (edge.id, box.id)


def test_edge_labels_are_truncated_with_the_full_text_kept() -> None:
    long_condition = "${order.total > 100 and customer.tier == 'gold' and region != 'x'}"
    document = {
        "nodes": [{"id": "a", "type": "decision"}, {"id": "b", "type": "task"}],
        "edges": [{"from_node": "a", "to_node": "b", "condition": long_condition}],
    }
    label = layout(document).edges[0].label
    assert label is not None
    assert len(label.text) == LABEL_CHARS
    assert label.text.endswith("…")
    assert label.full == long_condition
    short = layout({**document, "edges": [{"from_node": "a", "to_node": "b", "label": "yes"}]})
    assert short.edges[0].label is not None
    assert short.edges[0].label.text == "yes"


def test_edges_without_label_or_condition_have_none() -> None:
    assert layout(chain(2)).edges[0].label is None


def test_on_error_edges_are_marked_and_labelled() -> None:
    document = chain(2)
    document["edges"][0]["on_error"] = True
    edge = layout(document).edges[0]
    assert edge.on_error
    assert edge.label is not None
    assert edge.label.text == "on error"


def test_layout_is_deterministic() -> None:
    document = json.loads((ROOT / "definitions" / "etl-pipeline.json").read_text())
    for node in document["nodes"]:
        node.pop("position", None)
    assert layout(document) == layout(json.loads(json.dumps(document)))


def test_odd_documents_do_not_break_the_layout() -> None:
    document: dict[str, Any] = {
        "nodes": [
            {"id": "a", "type": "task"},
            {"id": "a", "type": "api"},  # repeated id: left out
            "not a node",
            {"name": "no id"},
            {"id": "b", "type": ["odd"], "position": "nowhere"},
        ],
        "edges": [
            {"from_node": "a", "to_node": "ghost"},
            {"from_node": ["a"], "to_node": "b"},
            {"from_node": "a", "to_node": "b"},
            {"from_node": "b", "to_node": "b", "label": "self"},
            7,
        ],
    }
    result = layout(document)
    assert [box.id for box in result.nodes] == ["a", "b"]
    assert [(e.source, e.target) for e in result.edges] == [("a", "b"), ("b", "b")]
    assert layout({}).nodes == ()


def test_a_thousand_node_chain_lays_out() -> None:
    result = layout(chain(1000))
    assert len(result.nodes) == 1000
    assert len(result.edges) == 999
    assert [box.layer for box in result.nodes] == list(range(1000))
    assert_no_overlap(result)


def test_a_thousand_node_fan_out_lays_out() -> None:
    document = {
        "nodes": [{"id": "start", "type": "parallel"}, {"id": "join", "type": "task"}]
        + [{"id": f"n{i}", "type": "task"} for i in range(1000)],
        "edges": [{"from_node": "start", "to_node": f"n{i}", "label": f"b{i}"} for i in range(1000)]
        + [{"from_node": f"n{i}", "to_node": "join"} for i in range(1000)],
    }
    result = layout(document)
    layer = {box.id: box.layer for box in result.nodes}
    assert layer["start"] == 0
    assert layer["join"] == 2
    assert {layer[f"n{i}"] for i in range(1000)} == {1}
    assert_no_overlap(result)


def test_a_dense_thousand_node_graph_with_cycles_lays_out() -> None:
    count = 1000
    edges = [
        {"from_node": f"n{i}", "to_node": f"n{(i * 7 + k * 13) % count}"}
        for i, k in itertools.product(range(count), range(2))
    ]
    result = layout(
        {"nodes": [{"id": f"n{i}", "type": "task"} for i in range(count)], "edges": edges}
    )
    assert len(result.nodes) == count
    assert len(result.edges) == len(edges)
    layer = {box.id: box.layer for box in result.nodes}
    for edge in result.edges:
        if not edge.back:
            assert layer[edge.target] > layer[edge.source]
    assert_no_overlap(result)


# -- the SVG macro -----------------------------------------------------------------------


def render(document: dict[str, Any], **options: Any) -> str:
    environment = Environment(
        loader=FileSystemLoader(ROOT / "ui" / "templates"),
        autoescape=select_autoescape(["html"]),
    )
    macro = environment.get_template("partials/graph.html").module.graph  # type: ignore[attr-defined]
    return str(macro(layout(document), **options))


def test_svg_escapes_hostile_names_and_labels() -> None:
    document = {
        "nodes": [
            {"id": "x", "name": "<img src=x onerror=alert(1)>", "type": "task"},
            {"id": "y", "name": 'say "hi" & bye', "type": "task"},
        ],
        "edges": [{"from_node": "x", "to_node": "y", "condition": "</text><script>1</script>"}],
    }
    html = render(document)
    assert "<img" not in html
    assert "<script" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;/text&gt;&lt;script&gt;1&lt;/script&gt;" in html


def test_svg_has_statuses_links_selection_and_accessible_names() -> None:
    html = render(
        chain(3),
        statuses={"n0": "completed", "n1": "failed"},
        node_href="/executions/e1?node=",
        selected="n1",
    )
    assert 'class="node type-task status-completed"' in html
    assert 'class="node type-task status-failed selected"' in html
    assert '<a href="/executions/e1?node=n1" aria-current="true">' in html
    assert "status failed" in html
    assert 'aria-label="Workflow graph: 3 nodes, 2 edges"' in html
    plain = render(chain(2))
    assert 'role="img"' in plain
    assert "<a " not in plain
    assert 'viewBox="0 0 ' in plain
