"""Drawing graphs: Graphviz dot text, and SVG made by `dot` or by a small layered layout of ours.

Both drawings show the same vertices: an ellipse per graph input, a note per constant, a box per
node (op, value name, type), and edges along the data flow, top to bottom. Values of the
reverse-mode part are tinted orange, forward ones blue; outputs get a double border.
`decorate(value)` adds attributes to a vertex (`id`, `class`, `tooltip`, `href`: the HTML
report's links) and means the same in both renderers.

The builtin layout is Sugiyama's scheme at its simplest: longest-path layers, then every vertex
moved down to just above its first use; virtual points where an edge spans several layers; a few
barycenter sweeps to untangle each layer; then each vertex pulled under its predecessors. It
never needs Graphviz; `svg()` uses `dot` only when it is on PATH (or when asked to).
"""

from __future__ import annotations

import html
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # (compiler.ir imports this module for Graph.to_dot)
    from compiler.ir import Graph, Value

Decorate = Callable[["Value"], dict[str, str]]

CHAR_WIDTH = 7.3  # px per character of 12px monospace
LINE_HEIGHT = 15
PAD_X, PAD_Y = 10, 6
GAP_X, GAP_Y = 22, 46
MARGIN = 12
SWEEPS = 4

COLORS = {  # (fill, stroke) by vertex style
    "forward": ("#e8f0fe", "#4a6fa5"),
    "backward": ("#fdebd3", "#c2703d"),
    "input": ("#ffffff", "#4a6fa5"),
    "input-backward": ("#ffffff", "#c2703d"),
    "const": ("#f3f3f3", "#888888"),
}


@dataclass
class Vertex:
    """One drawn value: a graph input, a constant, or a node's output."""

    value: Value
    kind: str  # "input", "const", "node"
    lines: list[str]
    style: str  # a key of COLORS
    is_output: bool
    tooltip: str


def vertices(graph: Graph) -> list[Vertex]:
    """The vertices of a drawing of `graph`: its used inputs and constants, then its nodes."""
    used = {v for n in graph.nodes for v in n.inputs} | set(graph.outputs)
    backward = graph.backward_values()
    outputs = set(graph.outputs)
    result = []
    for v in graph.inputs:
        if v in used:
            style = "input-backward" if v in backward else "input"
            result.append(Vertex(v, "input", [f"%{v.name}", v.type_text()], style, v in outputs,
                                 f"input %{v.name}: {v.type_text()}"))
    for v, array in graph.constants.items():
        if v in used:
            shown = repr(array.item()) if array.ndim == 0 else v.type_text()
            result.append(Vertex(v, "const", [f"%{v.name}", f"= {shown}"], "const", v in outputs,
                                 f"constant %{v.name}: {v.type_text()}"))
    for node in graph.nodes:
        v = node.output
        style = "backward" if v in backward else "forward"
        result.append(Vertex(v, "node", [node.op_name, f"%{v.name}", v.type_text()], style,
                             v in outputs, node.text()))
    return result


def edges(graph: Graph) -> list[tuple[Value, Value, int]]:
    """(source value, node output, argument position): one per distinct operand of each node."""
    result = []
    for node in graph.nodes:
        seen: set[Value] = set()
        for position, v in enumerate(node.inputs):
            if v not in seen:
                seen.add(v)
                result.append((v, node.output, position))
    return result


# ----- Graphviz -----------------------------------------------------------------------------------

def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: Graph, decorate: Decorate | None = None) -> str:
    """`graph` in Graphviz's dot language.

        >>> open("graph.dot", "w").write(graph.to_dot())   # then: dot -Tsvg graph.dot -o graph.svg
    """
    drawn = vertices(graph)
    ids = {vertex.value: f"v{i}" for i, vertex in enumerate(drawn)}
    lines = [f"digraph {_dot_quote(graph.name)} {{",
             '  graph [rankdir=TB, nodesep=0.25, ranksep=0.4, fontname="monospace"];',
             '  node [fontname="monospace", fontsize=10, penwidth=1.2];',
             "  edge [arrowsize=0.6, color=\"#555555\"];"]
    for vertex in drawn:
        fill, stroke = COLORS[vertex.style]
        attrs = {"label": "\n".join(vertex.lines), "fillcolor": fill, "color": stroke,
                 "tooltip": vertex.tooltip,
                 "shape": {"input": "ellipse", "const": "note", "node": "box"}[vertex.kind],
                 "style": "rounded,filled" if vertex.kind == "node" else "filled"}
        if vertex.is_output:
            attrs["peripheries"] = "2"
        if decorate is not None:
            attrs.update(decorate(vertex.value))
        attr_text = ", ".join(f"{k}={_dot_quote(v)}" for k, v in attrs.items())
        lines.append(f"  {ids[vertex.value]} [{attr_text}];")
    for source, target, _ in edges(graph):
        lines.append(f"  {ids[source]} -> {ids[target]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def dot_svg(graph: Graph, decorate: Decorate | None = None) -> str:
    """The SVG that Graphviz's `dot` draws (its XML prolog removed, for inlining in HTML)."""
    result = subprocess.run(["dot", "-Tsvg"], input=to_dot(graph, decorate), text=True,
                            capture_output=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"dot -Tsvg failed: {result.stderr.strip()}")
    return result.stdout[result.stdout.index("<svg"):]


def svg(graph: Graph, decorate: Decorate | None = None, renderer: str = "auto") -> str:
    """`graph` as an SVG element: `renderer` "dot" (Graphviz), "builtin" (ours), or "auto"
    (dot when it is on PATH)."""
    if renderer not in ("auto", "dot", "builtin"):
        raise ValueError(f"renderer must be 'auto', 'dot' or 'builtin', not {renderer!r}")
    if renderer == "dot" or (renderer == "auto" and shutil.which("dot") is not None):
        return dot_svg(graph, decorate)
    return layered_svg(graph, decorate)


# ----- the builtin layered layout -----------------------------------------------------------------

@dataclass
class _Item:
    """A vertex or a virtual point of a long edge, in the layout."""

    vertex: Vertex | None
    layer: int
    width: float
    height: float
    x: float = 0.0
    predecessors: list[_Item] = field(default_factory=list)
    successors: list[_Item] = field(default_factory=list)

    @property
    def center(self) -> float:
        return self.x + self.width / 2

    @property
    def value(self) -> Value:
        assert self.vertex is not None, "a virtual point of a long edge has no value"
        return self.vertex.value


def _size(vertex: Vertex) -> tuple[float, float]:
    width = max(len(line) for line in vertex.lines) * CHAR_WIDTH + 2 * PAD_X
    if vertex.kind == "input":
        width += 16  # an ellipse needs room at its ends
    return width, len(vertex.lines) * LINE_HEIGHT + 2 * PAD_Y


def _layer_numbers(graph: Graph, drawn: list[Vertex]) -> dict[Value, int]:
    """Longest path from the sources, then every vertex moved down to just above its first
    user (so a weight's transpose sits by its product, not at the top)."""
    layer: dict[Value, int] = {v.value: 0 for v in drawn if v.kind != "node"}
    for node in graph.nodes:
        layer[node.output] = 1 + max((layer[v] for v in node.inputs), default=-1)
    users: dict[Value, list[Value]] = {}
    for source, target, _ in edges(graph):
        users.setdefault(source, []).append(target)
    for vertex in reversed(drawn):  # drawn lists sources first, then nodes in graph order
        if vertex.value in users:
            layer[vertex.value] = min(layer[u] for u in users[vertex.value]) - 1
    compact = {n: k for k, n in enumerate(sorted(set(layer.values())))}  # no empty rows
    return {value: compact[n] for value, n in layer.items()}


@dataclass
class _Route:
    """An edge through the layout: from `start` via virtual points to argument `position` of
    `end`."""

    start: _Item
    points: list[_Item]
    end: _Item
    position: int


def _build_items(graph: Graph, drawn: list[Vertex]) -> tuple[dict[Value, _Item],
                                                              list[list[_Item]], list[_Route]]:
    layer = _layer_numbers(graph, drawn)
    items = {v.value: _Item(v, layer[v.value], *_size(v)) for v in drawn}
    rows: list[list[_Item]] = [[] for _ in range(max(layer.values(), default=0) + 1)]
    for item in items.values():
        rows[item.layer].append(item)
    routes = []
    for source, target, position in edges(graph):
        start, end = items[source], items[target]
        points = [_Item(None, depth, 8.0, 0.0) for depth in range(start.layer + 1, end.layer)]
        for point in points:
            rows[point.layer].append(point)
        chain = [start, *points, end]
        for a, b in zip(chain, chain[1:]):
            a.successors.append(b)
            b.predecessors.append(a)
        routes.append(_Route(start, points, end, position))
    return items, rows, routes


def _order(rows: list[list[_Item]]) -> None:
    """Barycenter sweeps, down then up: each row sorted by the mean position of its neighbours."""
    for _ in range(SWEEPS):
        for indices, neighbours in ((range(1, len(rows)), "predecessors"),
                                    (range(len(rows) - 2, -1, -1), "successors")):
            for i in indices:
                rank = {id(item): k for row in rows for k, item in enumerate(row)}
                rows[i].sort(key=_by_barycenter(rank, neighbours))


def _by_barycenter(rank: dict[int, int], neighbours: str) -> Callable[[_Item], float]:
    return lambda item: _barycenter(item, getattr(item, neighbours), rank)


def _barycenter(item: _Item, neighbours: list[_Item], rank: dict[int, int]) -> float:
    if not neighbours:
        return float(rank[id(item)])
    return sum(rank[id(n)] for n in neighbours) / len(neighbours)


def _place(rows: list[list[_Item]]) -> float:
    """x of every item: rows packed, then each item pulled under its predecessors without
    overlapping its left neighbour; returns the drawing's width."""
    widest = max((sum(i.width for i in row) + GAP_X * (len(row) - 1) for row in rows), default=0)
    for row in rows:
        x = (widest - sum(i.width for i in row) - GAP_X * (len(row) - 1)) / 2
        for item in row:
            item.x, x = x, x + item.width + GAP_X
    for row in rows[1:]:
        right = float("-inf")
        for item in row:
            wanted = item.x
            if item.predecessors:
                wanted = sum(p.center for p in item.predecessors) / len(item.predecessors) \
                    - item.width / 2
            item.x = max(wanted, right + GAP_X)
            right = item.x + item.width
    left = min((i.x for row in rows for i in row), default=0)
    for row in rows:
        for item in row:
            item.x += MARGIN - left
    return max((i.x + i.width for row in rows for i in row), default=0) + MARGIN


def layered_svg(graph: Graph, decorate: Decorate | None = None) -> str:
    """`graph` drawn by the builtin layered layout, as an SVG element."""
    drawn = vertices(graph)
    items, rows, routes = _build_items(graph, drawn)
    _order(rows)
    width = _place(rows)
    row_height = [max((i.height for i in row), default=0) for row in rows]
    top = [MARGIN + sum(row_height[:k]) + GAP_Y * k for k in range(len(rows))]
    height = (top[-1] + row_height[-1] + MARGIN) if rows else 2 * MARGIN

    def y_of(item: _Item) -> float:  # items are centred vertically within their row
        return top[item.layer] + (row_height[item.layer] - item.height) / 2

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
             f'width="{width:.0f}" height="{height:.0f}" class="graph" '
             f'font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="12">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
             'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
             'fill="#555555"/></marker></defs>']
    arity = {n.output: len(n.inputs) for n in graph.nodes}
    parts += [_edge_path(route, arity[route.end.value], y_of) for route in routes]
    for vertex in drawn:
        item = items[vertex.value]
        parts.append(_vertex_svg(vertex, item.x, y_of(item), item.width, item.height,
                                 decorate(vertex.value) if decorate else {}))
    parts.append("</svg>")
    return "\n".join(parts)


def _edge_path(route: _Route, arity: int, y_of: Callable[[_Item], float]) -> str:
    """A smooth path through the route's virtual points; edges enter a box spread along its
    top in argument order."""
    start, end = route.start, route.end
    points = [(start.center, y_of(start) + start.height)]
    points += [(p.center, y_of(p) + p.height / 2) for p in route.points]
    slot = (route.position + 1) / (arity + 1)
    points.append((end.x + end.width * (0.5 + (slot - 0.5) * 0.6), y_of(end)))
    d = f"M{points[0][0]:.1f},{points[0][1]:.1f}"
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        middle = (y0 + y1) / 2
        d += f" C{x0:.1f},{middle:.1f} {x1:.1f},{middle:.1f} {x1:.1f},{y1:.1f}"
    return (f'<path d="{d}" fill="none" stroke="#555555" stroke-width="1.1" '
            'marker-end="url(#arrow)"/>')


def _vertex_svg(vertex: Vertex, x: float, y: float, width: float, height: float,
                attrs: dict[str, str]) -> str:
    fill, stroke = COLORS[vertex.style]
    classes = " ".join(filter(None, ["vertex", vertex.kind, vertex.style, attrs.get("class")]))
    id_attr = f' id="{html.escape(attrs["id"])}"' if "id" in attrs else ""
    tooltip = attrs.get("tooltip", vertex.tooltip)
    shapes = []
    for inset in ((0, 3) if vertex.is_output else (0,)):
        shapes.append(_shape(vertex.kind, x + inset, y + inset, width - 2 * inset,
                             height - 2 * inset, fill if inset == 0 else "none", stroke))
    texts = []
    for k, line in enumerate(vertex.lines):
        weight = ' font-weight="bold"' if k == 0 and vertex.kind == "node" else ""
        baseline = y + PAD_Y + LINE_HEIGHT * (k + 0.75)
        texts.append(f'<text x="{x + width / 2:.1f}" y="{baseline:.1f}" text-anchor="middle"'
                     f'{weight}>{html.escape(line)}</text>')
    body = "".join(shapes) + "".join(texts)
    if "href" in attrs:
        body = f'<a href="{html.escape(attrs["href"])}">{body}</a>'
    return (f'<g class="{html.escape(classes)}"{id_attr}><title>{html.escape(tooltip)}</title>'
            f"{body}</g>")


def _shape(kind: str, x: float, y: float, width: float, height: float, fill: str,
           stroke: str) -> str:
    paint = f'fill="{fill}" stroke="{stroke}" stroke-width="1.3"'
    if kind == "input":
        return (f'<ellipse cx="{x + width / 2:.1f}" cy="{y + height / 2:.1f}" rx="{width / 2:.1f}" '
                f'ry="{height / 2:.1f}" {paint}/>')
    radius = 6 if kind == "node" else 0
    return (f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" '
            f'rx="{radius}" {paint}/>')
