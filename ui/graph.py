"""Where the boxes and arrows of a workflow graph go: a pure layout for the dashboard's SVG.

Interface (used by the workflow page and the execution page)::

    from ui.graph import layout
    graph_layout = layout(document)          # the stored definition document (SPEC §2)

    {% from "partials/graph.html" import graph %}
    {{ graph(graph_layout, statuses={"fetch": "completed"}, node_href="?node=", selected="fetch") }}

``layout(document)`` reads the document's top-level ``nodes`` (``id``, ``name``, ``type``,
optional ``position {x, y}``) and ``edges`` (``from_node``, ``to_node``, optional
``label``, ``condition``, ``on_error``) and returns a :class:`GraphLayout`: positioned
node boxes, routed edges as SVG path data and edge labels with their background boxes,
plus the drawing's size. It never fails on an odd document: non-object nodes, repeated
ids and edges naming unknown nodes are left out.

* When **every** node has a ``position``, the positions are used (as the top-left corner
  of the box), shifted so the drawing starts at the margin and spread apart (never
  squeezed) so that boxes and edge labels have room.
* Otherwise an automatic **layered layout**, left to right (workflows read like a
  pipeline; wide graphs scroll sideways): cycles are broken by a depth-first search from
  the start nodes (the edges closing a loop become *back-edges*, drawn dashed), layers
  by longest path, edges spanning several layers get a bend point per layer they cross,
  nodes within a layer are ordered by barycentric sweeps to reduce crossings, then
  placed near their neighbours without overlapping. The space between two layers grows
  to fit the longest edge label in it, so labels never cover a box.

The output depends only on the document (no randomness, no dict-order surprises beyond
the document's own order). The work is linear in the size of the graph apart from the
sorting in the ordering sweeps: 1,000 nodes lay out in a few tens of milliseconds.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

#: Size of a node's box and the spacing of the automatic layout (SVG user units = px).
NODE_WIDTH = 200.0
NODE_HEIGHT = 52.0
NODE_GAP = 40.0
LAYER_GAP = 64.0
MARGIN = 24.0
#: Room a long edge takes where it crosses a layer (a bend point, not a box).
DUMMY_GAP = 14.0
#: Node names longer than this are cut with an ellipsis (the full name is in the title).
NAME_CHARS = 20
#: Edge labels longer than this are cut with an ellipsis (full text in the title).
LABEL_CHARS = 40
#: Edge labels are drawn in a 11 px monospace font: about this wide per character.
LABEL_CHAR_WIDTH = 6.8
LABEL_HEIGHT = 18.0
LABEL_PAD = 6.0
#: Barycentric sweeps (down then up) when ordering the layers, and passes pulling nodes
#: towards their neighbours; graphs with more vertices than ``BIG`` (nodes plus the bend
#: points of long edges) get one of each, so a pathological definition stays fast.
SWEEPS = 4
PASSES = 3
BIG = 5_000
#: At most this many bend points in all (edges spanning many layers of a huge graph
#: are drawn as one curve once the budget is spent).
DUMMY_BUDGET = 5_000
#: How tall a self-loop's arc is above its node.
SELF_LOOP_HEIGHT = 30.0

#: A short symbol per node type (drawn in the node's coloured badge).
ICONS = {
    "task": "⚙",
    "api": "⇄",
    "transform": "ƒ",
    "decision": "◆",
    "human_task": "☺",
    "timer": "◷",
    "loop": "↻",
    "parallel": "⇉",
    "database": "⛁",
    "email": "✉",
    "webhook": "↯",
    "sub_workflow": "⧉",
}
DEFAULT_ICON = "●"


@dataclass(frozen=True, slots=True)
class NodeBox:
    """One node's box: top-left corner ``x, y``, size, and what it shows."""

    id: str
    name: str
    type: str
    type_class: str
    icon: str
    text: str
    x: float
    y: float
    width: float
    height: float
    layer: int

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.width / 2, self.y + self.height / 2


@dataclass(frozen=True, slots=True)
class EdgeLabel:
    """An edge's label: shown text (maybe cut), full text, and its background box."""

    text: str
    full: str
    x: float
    y: float
    width: float
    height: float

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.width / 2, self.y + self.height / 2


@dataclass(frozen=True, slots=True)
class EdgeRoute:
    """One edge: SVG path data from source to target, and its label if it has one."""

    id: str
    source: str
    target: str
    path: str
    back: bool
    on_error: bool
    label: EdgeLabel | None


@dataclass(frozen=True, slots=True)
class GraphLayout:
    """A laid-out graph, ready for ``partials/graph.html``."""

    nodes: tuple[NodeBox, ...]
    edges: tuple[EdgeRoute, ...]
    width: float
    height: float
    positioned: bool

    @property
    def view_box(self) -> str:
        return f"0 0 {_num(self.width)} {_num(self.height)}"

    def node(self, node_id: str) -> NodeBox:
        """The box of ``node_id`` (KeyError if there is none)."""
        for box in self.nodes:
            if box.id == node_id:
                return box
        raise KeyError(node_id)


@dataclass(slots=True)
class _Node:
    id: str
    name: str
    type: str
    position: tuple[float, float] | None


@dataclass(slots=True)
class _Edge:
    id: str
    source: str
    target: str
    label: str | None
    title: str | None
    on_error: bool


def layout(document: Mapping[str, Any]) -> GraphLayout:
    """Lay out the top-level graph of a definition document (see the module docstring)."""
    nodes = _read_nodes(document.get("nodes"))
    known = {node.id for node in nodes}
    edges = _read_edges(document.get("edges"), known)
    if nodes and all(node.position is not None for node in nodes):
        return _positioned(nodes, edges)
    return _layered(nodes, edges)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the last one an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# -- reading the document --------------------------------------------------------------


def _read_nodes(raw: object) -> list[_Node]:
    nodes: list[_Node] = []
    seen: set[str] = set()
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, Mapping):
            continue
        node_id = item.get("id")
        if not isinstance(node_id, str) or not node_id or node_id in seen:
            continue
        seen.add(node_id)
        name = item.get("name")
        kind = item.get("type")
        nodes.append(
            _Node(
                id=node_id,
                name=name if isinstance(name, str) and name.strip() else node_id,
                type=kind if isinstance(kind, str) else "",
                position=_position(item.get("position")),
            )
        )
    return nodes


def _position(raw: object) -> tuple[float, float] | None:
    if not isinstance(raw, Mapping):
        return None
    x, y = raw.get("x"), raw.get("y")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (x, y)):
        return None
    return float(x), float(y)  # type: ignore[arg-type]


def _read_edges(raw: object, known: set[str]) -> list[_Edge]:
    edges: list[_Edge] = []
    for index, item in enumerate(raw if isinstance(raw, list) else []):
        if not isinstance(item, Mapping):
            continue
        source, target = item.get("from_node"), item.get("to_node")
        if not isinstance(source, str) or not isinstance(target, str):
            continue
        if source not in known or target not in known:
            continue
        edge_id = item.get("id")
        label, condition = _text(item.get("label")), _text(item.get("condition"))
        on_error = item.get("on_error") is True
        shown = label or condition or ("on error" if on_error else None)
        title = shown
        if label and condition and label != condition:
            title = f"{label} (condition: {condition})"
        edges.append(
            _Edge(
                id=edge_id if isinstance(edge_id, str) and edge_id else f"edge-{index}",
                source=source,
                target=target,
                label=shown,
                title=title,
                on_error=on_error,
            )
        )
    return edges


def _text(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return " ".join(value.split())
    return None


def _box(node: _Node, x: float, y: float, layer: int) -> NodeBox:
    return NodeBox(
        id=node.id,
        name=node.name,
        type=node.type,
        type_class=re.sub(r"[^a-z0-9_-]", "-", node.type.lower()) or "unknown",
        icon=ICONS.get(node.type, DEFAULT_ICON),
        text=shorten(node.name, NAME_CHARS),
        x=round(x, 1),
        y=round(y, 1),
        width=NODE_WIDTH,
        height=NODE_HEIGHT,
        layer=layer,
    )


def _label_size(text: str) -> tuple[float, str]:
    shown = shorten(text, LABEL_CHARS)
    return len(shown) * LABEL_CHAR_WIDTH + 2 * LABEL_PAD, shown


def _label(edge: _Edge, at: tuple[float, float]) -> EdgeLabel | None:
    if edge.label is None:
        return None
    width, shown = _label_size(edge.label)
    return EdgeLabel(
        text=shown,
        full=edge.title or edge.label,
        x=round(at[0] - width / 2, 1),
        y=round(at[1] - LABEL_HEIGHT / 2, 1),
        width=round(width, 1),
        height=LABEL_HEIGHT,
    )


# -- positions from the document --------------------------------------------------------


def _positioned(nodes: list[_Node], edges: list[_Edge]) -> GraphLayout:
    """Boxes at the document's positions, spread so boxes and labels have room."""
    spots = {node.id: node.position for node in nodes if node.position is not None}
    scale_x = scale_y = 1.0
    for edge in edges:
        (x1, y1), (x2, y2) = spots[edge.source], spots[edge.target]
        dx, dy = abs(x2 - x1), abs(y2 - y1)
        label_width = _label_size(edge.label)[0] if edge.label else 0.0
        if dx >= dy and dx > 0:
            # Side by side: the gap between the boxes must hold the label.
            room = max(label_width + 2 * LABEL_PAD, LAYER_GAP / 2)
            scale_x = max(scale_x, (NODE_WIDTH + room) / dx)
        elif dy > 0:
            scale_y = max(scale_y, (NODE_HEIGHT + LABEL_HEIGHT + 2 * LABEL_PAD) / dy)
    scale_x, scale_y = min(scale_x, 4.0), min(scale_y, 4.0)
    left = min(x for x, _ in spots.values())
    top = min(y for _, y in spots.values())
    boxes = [
        _box(
            node,
            MARGIN + (spots[node.id][0] - left) * scale_x,
            MARGIN + SELF_LOOP_HEIGHT + (spots[node.id][1] - top) * scale_y,
            0,
        )
        for node in nodes
    ]
    by_id = {box.id: box for box in boxes}
    routes = [_direct_route(edge, by_id[edge.source], by_id[edge.target]) for edge in edges]
    return _finish(boxes, routes, positioned=True)


def _direct_route(edge: _Edge, source: NodeBox, target: NodeBox) -> EdgeRoute:
    if source.id == target.id:
        return _self_loop(edge, source)
    (sx, sy), (tx, ty) = source.center, target.center
    if target.x >= source.x + source.width:
        start, end, horizontal = (source.x + source.width, sy), (target.x, ty), True
    elif target.x + target.width <= source.x:
        start, end, horizontal = (source.x, sy), (target.x + target.width, ty), True
    elif ty >= sy:
        start, end, horizontal = (sx, source.y + source.height), (tx, target.y), False
    else:
        start, end, horizontal = (sx, source.y), (tx, target.y + target.height), False
    path = _curve(start, end, horizontal=horizontal)
    middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
    back = end[0] < start[0] if horizontal else end[1] < start[1]
    return EdgeRoute(
        edge.id, edge.source, edge.target, path, back, edge.on_error, _label(edge, middle)
    )


# -- the layered layout -----------------------------------------------------------------


def _layered(nodes: list[_Node], edges: list[_Edge]) -> GraphLayout:
    ids = [node.id for node in nodes]
    order_in_doc = {node_id: index for index, node_id in enumerate(ids)}
    back = _back_edges(ids, edges)
    forward = [
        (edge.target, edge.source) if i in back else (edge.source, edge.target)
        for i, edge in enumerate(edges)
    ]
    layer = _layers(
        ids, [pair for i, pair in enumerate(forward) if edges[i].source != edges[i].target]
    )

    # Chains of virtual points for edges that span several layers, shortest edges first
    # while the budget lasts (longer ones are then drawn as one curve).
    # A "vertex" is a node id or a dummy ("\0<edge index>:<layer>").
    spans = {i: layer[lower] - layer[upper] - 1 for i, (upper, lower) in enumerate(forward)}
    bent: set[int] = set()
    budget = DUMMY_BUDGET
    for index in sorted(spans, key=lambda i: (spans[i], i)):
        if spans[index] > budget:
            break
        if spans[index] > 0:
            bent.add(index)
            budget -= spans[index]
    vertex_layer: dict[str, int] = dict(layer)
    chains: list[list[str]] = []
    for index, (upper, lower) in enumerate(forward):
        if upper == lower:
            chains.append([upper])
            continue
        chain = [upper]
        for step in range(layer[upper] + 1, layer[lower]) if index in bent else ():
            dummy = f"\0{index}:{step}"
            vertex_layer[dummy] = step
            chain.append(dummy)
        chain.append(lower)
        chains.append(chain)

    layers = _order(ids, order_in_doc, vertex_layer, chains)
    x_of_layer = _layer_x(layers, chains, edges, vertex_layer)
    y_of = _place_vertically(layers, chains)

    boxes = [
        _box(node, x_of_layer[layer[node.id]], y_of[node.id] - NODE_HEIGHT / 2, layer[node.id])
        for node in nodes
    ]
    by_id = {box.id: box for box in boxes}
    ports = _ports(chains, y_of, by_id)
    routes = [
        _chain_route(edge, chains[i], i in back, by_id, x_of_layer, vertex_layer, y_of, ports, i)
        for i, edge in enumerate(edges)
    ]
    return _finish(boxes, routes, positioned=False)


def _back_edges(ids: Sequence[str], edges: Sequence[_Edge]) -> set[int]:
    """Indices of the edges that close a cycle (found by an iterative DFS).

    The search starts at the nodes without incoming edges (in document order), then at
    any node not reached yet, so the start of a workflow stays on the left.
    """
    outgoing: dict[str, list[tuple[int, str]]] = defaultdict(list)
    has_incoming: set[str] = set()
    for index, edge in enumerate(edges):
        outgoing[edge.source].append((index, edge.target))
        if edge.source != edge.target:
            has_incoming.add(edge.target)
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    back: set[int] = set()
    roots = [n for n in ids if n not in has_incoming] + [n for n in ids if n in has_incoming]
    for root in roots:
        if root in state:
            continue
        state[root] = 1
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            node_id, position = stack[-1]
            children = outgoing.get(node_id, [])
            if position == len(children):
                state[node_id] = 2
                stack.pop()
                continue
            stack[-1] = (node_id, position + 1)
            index, child = children[position]
            seen = state.get(child)
            if seen == 1:
                back.add(index)
            elif seen is None:
                state[child] = 1
                stack.append((child, 0))
    return back


def _layers(ids: Sequence[str], pairs: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Longest-path layering of an acyclic graph (Kahn's order, document order on ties)."""
    successors: dict[str, list[str]] = defaultdict(list)
    indegree = dict.fromkeys(ids, 0)
    for upper, lower in pairs:
        successors[upper].append(lower)
        indegree[lower] += 1
    layer = dict.fromkeys(ids, 0)
    ready = [node_id for node_id in ids if indegree[node_id] == 0]
    head = 0
    while head < len(ready):
        node_id = ready[head]
        head += 1
        for child in successors.get(node_id, []):
            layer[child] = max(layer[child], layer[node_id] + 1)
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    return layer


def _order(
    ids: Sequence[str],
    order_in_doc: Mapping[str, int],
    vertex_layer: Mapping[str, int],
    chains: Sequence[Sequence[str]],
) -> list[list[str]]:
    """Vertices per layer, ordered by barycentric sweeps to reduce crossings."""
    depth = max(vertex_layer.values(), default=-1) + 1
    up: dict[str, list[str]] = defaultdict(list)
    down: dict[str, list[str]] = defaultdict(list)
    for chain in chains:
        for a, b in pairwise(chain):
            down[a].append(b)
            up[b].append(a)
    # First order: depth-first from the start nodes, so a branch stays together.
    first_seen: dict[str, int] = {}
    for start in sorted(ids, key=lambda n: (vertex_layer[n], order_in_doc[n])):
        stack = [start]
        while stack:
            vertex = stack.pop()
            if vertex in first_seen:
                continue
            first_seen[vertex] = len(first_seen)
            stack.extend(reversed(down.get(vertex, [])))
    layers: list[list[str]] = [[] for _ in range(depth)]
    for vertex in sorted(vertex_layer, key=lambda v: first_seen.get(v, len(first_seen))):
        layers[vertex_layer[vertex]].append(vertex)

    position = {vertex: i for row in layers for i, vertex in enumerate(row)}

    def sweep(rows: Sequence[int], neighbours: Mapping[str, list[str]]) -> None:
        for r in rows:
            row = layers[r]
            keys: dict[str, float] = {}
            for vertex in row:
                around = neighbours.get(vertex)
                if around:
                    keys[vertex] = sum(position[n] for n in around) / len(around)
                else:
                    keys[vertex] = float(position[vertex])
            row.sort(key=lambda v: (keys[v], position[v]))
            for i, vertex in enumerate(row):
                position[vertex] = i

    for _ in range(SWEEPS if len(vertex_layer) <= BIG else 1):
        sweep(range(1, depth), up)
        sweep(range(depth - 2, -1, -1), down)
    return layers


def _layer_x(
    layers: Sequence[Sequence[str]],
    chains: Sequence[Sequence[str]],
    edges: Sequence[_Edge],
    vertex_layer: Mapping[str, int],
) -> list[float]:
    """The left x of each layer; a gap widens to hold the widest label placed in it."""
    gap = [LAYER_GAP] * max(len(layers) - 1, 0)
    for index, chain in enumerate(chains):
        edge = edges[index]
        if edge.label is None or len(chain) < 2:
            continue
        segment = (len(chain) - 2) // 2
        where = vertex_layer[chain[segment]]
        gap[where] = max(gap[where], _label_size(edge.label)[0] + 2 * LABEL_PAD)
    xs: list[float] = []
    x = MARGIN
    for i in range(len(layers)):
        xs.append(x)
        x += NODE_WIDTH + (gap[i] if i < len(gap) else 0.0)
    return xs


def _place_vertically(
    layers: Sequence[Sequence[str]], chains: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Centre y of every vertex: stacked in order, then pulled towards neighbours.

    Each pass gives a layer's vertices the mean y of their neighbours in the layer
    before (or after), then makes them keep their order and spacing: the average of a
    top-down and a bottom-up correction, which keeps both constraints and stays close to
    the wished positions.
    """
    neighbours_up: dict[str, list[str]] = defaultdict(list)
    neighbours_down: dict[str, list[str]] = defaultdict(list)
    for chain in chains:
        for a, b in pairwise(chain):
            neighbours_down[a].append(b)
            neighbours_up[b].append(a)

    def height(vertex: str) -> float:
        return DUMMY_GAP if vertex.startswith("\0") else NODE_HEIGHT + NODE_GAP

    y: dict[str, float] = {}
    for row in layers:
        top = 0.0
        for vertex in row:
            y[vertex] = top + height(vertex) / 2
            top += height(vertex)

    def settle(row: Sequence[str], wish: Sequence[float]) -> None:
        count = len(row)
        spacing = [(height(row[i - 1]) + height(row[i])) / 2 for i in range(1, count)]
        low = list(wish)
        for i in range(1, count):
            low[i] = max(wish[i], low[i - 1] + spacing[i - 1])
        high = list(wish)
        for i in range(count - 2, -1, -1):
            high[i] = min(wish[i], high[i + 1] - spacing[i])
        for i, vertex in enumerate(row):
            y[vertex] = (low[i] + high[i]) / 2

    def wished(row: Sequence[str], neighbours: Mapping[str, list[str]]) -> list[float]:
        result = []
        for vertex in row:
            around = neighbours.get(vertex)
            result.append(sum(y[n] for n in around) / len(around) if around else y[vertex])
        return result

    for _ in range(PASSES if len(y) <= BIG else 1):
        for r in range(1, len(layers)):
            settle(layers[r], wished(layers[r], neighbours_up))
        for r in range(len(layers) - 2, -1, -1):
            settle(layers[r], wished(layers[r], neighbours_down))
    if y:
        shift = (
            MARGIN
            + SELF_LOOP_HEIGHT
            - min(y[v] - (DUMMY_GAP if v.startswith("\0") else NODE_HEIGHT) / 2 for v in y)
        )
        for vertex in y:
            y[vertex] += shift
    return y


def _ports(
    chains: Sequence[Sequence[str]], y_of: Mapping[str, float], boxes: Mapping[str, NodeBox]
) -> dict[tuple[int, str], float]:
    """Where each edge leaves or enters a box: spread along the side, by the other end's y.

    Keyed by (edge index, "out" | "in"): the y on the right side of the upper end and on
    the left side of the lower end, so parallel edges do not draw over each other.
    """
    out_side: dict[str, list[tuple[float, int]]] = defaultdict(list)
    in_side: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for index, chain in enumerate(chains):
        if len(chain) < 2:
            continue
        out_side[chain[0]].append((y_of[chain[1]], index))
        in_side[chain[-1]].append((y_of[chain[-2]], index))
    ports: dict[tuple[int, str], float] = {}
    for side, groups in (("out", out_side), ("in", in_side)):
        for vertex, ends in groups.items():
            box = boxes[vertex]
            ends.sort()
            count = len(ends)
            for rank, (_, index) in enumerate(ends):
                offset = (rank + 1) / (count + 1) if count > 1 else 0.5
                ports[(index, side)] = box.y + box.height * (0.25 + offset * 0.5)
    return ports


def _chain_route(
    edge: _Edge,
    chain: Sequence[str],
    back: bool,
    boxes: Mapping[str, NodeBox],
    x_of_layer: Sequence[float],
    vertex_layer: Mapping[str, int],
    y_of: Mapping[str, float],
    ports: Mapping[tuple[int, str], float],
    index: int,
) -> EdgeRoute:
    if len(chain) == 1:
        return _self_loop(edge, boxes[chain[0]])
    # Points from the upper (left) end to the lower (right) end, two per crossed layer.
    points: list[tuple[float, float]] = [(boxes[chain[0]].x + NODE_WIDTH, ports[(index, "out")])]
    for vertex in chain[1:-1]:
        x = x_of_layer[vertex_layer[vertex]]
        points.append((x, y_of[vertex]))
        points.append((x + NODE_WIDTH, y_of[vertex]))
    points.append((boxes[chain[-1]].x, ports[(index, "in")]))
    segments = [(points[i], points[i + 1]) for i in range(0, len(points), 2)]
    middle_segment = segments[(len(segments) - 1) // 2]
    (ax, ay), (bx, by) = middle_segment
    middle = ((ax + bx) / 2, (ay + by) / 2)
    if back:
        segments = [(b, a) for a, b in reversed(segments)]
    # Curves between layers, joined by straight runs through the crossed layers.
    parts = [_curve(*segments[0], horizontal=True)]
    for start, end in segments[1:]:
        parts.append(f"L{_num(start[0])} {_num(start[1])} {_bend(start, end, horizontal=True)}")
    path = " ".join(parts)
    return EdgeRoute(
        edge.id, edge.source, edge.target, path, back, edge.on_error, _label(edge, middle)
    )


# -- shared drawing helpers -------------------------------------------------------------


def _curve(start: tuple[float, float], end: tuple[float, float], *, horizontal: bool) -> str:
    """A cubic Bézier from ``start`` to ``end`` leaving and arriving along one axis."""
    return f"M{_num(start[0])} {_num(start[1])} {_bend(start, end, horizontal=horizontal)}"


def _bend(start: tuple[float, float], end: tuple[float, float], *, horizontal: bool) -> str:
    """The ``C`` command of :func:`_curve` (to continue a path already at ``start``)."""
    (x1, y1), (x2, y2) = start, end
    if horizontal:
        pull = max(abs(x2 - x1) / 2, 24.0)
        sign = 1.0 if x2 >= x1 else -1.0
        c1, c2 = (x1 + sign * pull, y1), (x2 - sign * pull, y2)
    else:
        pull = max(abs(y2 - y1) / 2, 24.0)
        sign = 1.0 if y2 >= y1 else -1.0
        c1, c2 = (x1, y1 + sign * pull), (x2, y2 - sign * pull)
    return f"C{_num(c1[0])} {_num(c1[1])} {_num(c2[0])} {_num(c2[1])} {_num(x2)} {_num(y2)}"


def _self_loop(edge: _Edge, box: NodeBox) -> EdgeRoute:
    right, left = box.x + box.width * 0.65, box.x + box.width * 0.35
    top = box.y - SELF_LOOP_HEIGHT
    path = (
        f"M{_num(right)} {_num(box.y)} C{_num(right)} {_num(top)} "
        f"{_num(left)} {_num(top)} {_num(left)} {_num(box.y)}"
    )
    middle = (box.x + box.width / 2, box.y - SELF_LOOP_HEIGHT * 0.75)
    return EdgeRoute(
        edge.id, edge.source, edge.target, path, True, edge.on_error, _label(edge, middle)
    )


def _finish(boxes: list[NodeBox], routes: list[EdgeRoute], *, positioned: bool) -> GraphLayout:
    right = max((box.x + box.width for box in boxes), default=0.0)
    bottom = max((box.y + box.height for box in boxes), default=0.0)
    for route in routes:
        if route.label is not None:
            right = max(right, route.label.x + route.label.width)
            bottom = max(bottom, route.label.y + route.label.height)
    return GraphLayout(
        nodes=tuple(boxes),
        edges=tuple(routes),
        width=round(max(right + MARGIN, 2 * MARGIN), 1),
        height=round(max(bottom + MARGIN, 2 * MARGIN), 1),
        positioned=positioned,
    )


def _num(value: float) -> str:
    """A coordinate for SVG: at most one decimal, no trailing ``.0``."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text
