"""A flow's graph laid out for the page: nodes with positions, edges with paths, SVG.

Layout: left to right in layers. A routine's layer is the length of the longest
path reaching it from an entry (edges that close a cycle are left out of that count
and drawn as arcs below); within a layer, routines are ordered by the mean row of
their predecessors, which keeps crossings few for the flows people draw.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from routilux.flow import Flow

NODE_W, NODE_H = 170, 54
GAP_X, GAP_Y, MARGIN = 70, 26, 20


def layout(flow: Flow) -> dict[str, Any]:
    """``{"flow_id", "nodes", "edges", "width", "height"}`` for ``flow``."""
    spec = flow.serialize()
    routines: dict[str, Any] = spec["routines"]
    order = list(routines)
    edges = spec["connections"]
    successors: dict[str, list[str]] = {rid: [] for rid in order}
    for c in edges:
        successors[c["source_routine_id"]].append(c["target_routine_id"])
    back = _back_edges(order, successors)
    layer = {rid: 0 for rid in order}
    for rid in _topological(order, successors, back):
        for nxt in successors[rid]:
            if (rid, nxt) not in back:
                layer[nxt] = max(layer[nxt], layer[rid] + 1)
    columns: dict[int, list[str]] = {}
    for rid in order:
        columns.setdefault(layer[rid], []).append(rid)
    row: dict[str, float] = {}
    for depth in sorted(columns):
        members = columns[depth]
        if depth > 0:
            members.sort(key=lambda r: _mean_row(r, edges, row))
        for i, rid in enumerate(members):
            row[rid] = i
    nodes = []
    for rid in order:
        info = routines[rid]
        nodes.append(
            {
                "id": rid,
                "class": info["class"].rpartition(":")[2],
                "execution": info["execution"],
                "workers": info["workers"],
                "x": MARGIN + layer[rid] * (NODE_W + GAP_X),
                "y": MARGIN + row[rid] * (NODE_H + GAP_Y),
                "w": NODE_W,
                "h": NODE_H,
            }
        )
    where = {n["id"]: n for n in nodes}
    tallest = max((len(c) for c in columns.values()), default=0)
    height = 2 * MARGIN + max(tallest * (NODE_H + GAP_Y) - GAP_Y, 0)
    out_edges = []
    for c in edges:
        src, dst = c["source_routine_id"], c["target_routine_id"]
        is_back = (src, dst) in back or layer[dst] <= layer[src]
        out_edges.append(
            {
                "source": src,
                "event": c["source_event"],
                "target": dst,
                "slot": c["target_slot"],
                "param_mapping": c["param_mapping"],
                "back": is_back,
                "path": _path(where[src], where[dst], is_back, height),
            }
        )
    width = 2 * MARGIN + (max(layer.values(), default=0) + 1) * (NODE_W + GAP_X) - GAP_X
    if any(e["back"] for e in out_edges):
        height += GAP_Y * 2
    return {
        "flow_id": flow.flow_id,
        "nodes": nodes,
        "edges": out_edges,
        "width": width,
        "height": height,
    }


def _back_edges(order: list[str], successors: dict[str, list[str]]) -> set[tuple[str, str]]:
    """Edges that close a cycle in a depth-first walk (iterative: no recursion limit)."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    back: set[tuple[str, str]] = set()
    for root in order:
        if root in state:
            continue
        stack = [(root, iter(successors[root]))]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            nxt = next(children, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(successors[nxt])))
    return back


def _topological(
    order: list[str], successors: dict[str, list[str]], back: set[tuple[str, str]]
) -> list[str]:
    incoming = {rid: 0 for rid in order}
    for rid in order:
        for nxt in successors[rid]:
            if (rid, nxt) not in back:
                incoming[nxt] += 1
    ready = [rid for rid in order if incoming[rid] == 0]
    result = []
    while ready:
        rid = ready.pop(0)
        result.append(rid)
        for nxt in successors[rid]:
            if (rid, nxt) not in back:
                incoming[nxt] -= 1
                if incoming[nxt] == 0:
                    ready.append(nxt)
    return result


def _mean_row(rid: str, edges: list[dict[str, Any]], row: dict[str, float]) -> float:
    rows = [row.get(c["source_routine_id"]) for c in edges if c["target_routine_id"] == rid]
    rows = [r for r in rows if r is not None]
    return sum(rows) / len(rows) if rows else 0.0


def _path(src: dict[str, Any], dst: dict[str, Any], back: bool, height: float) -> str:
    x1, y1 = src["x"] + src["w"], src["y"] + src["h"] / 2
    x2, y2 = dst["x"], dst["y"] + dst["h"] / 2
    if back:  # around, below the nodes
        x1, y1 = src["x"] + src["w"] / 2, src["y"] + src["h"]
        x2, y2 = dst["x"] + dst["w"] / 2, dst["y"] + dst["h"]
        low = height + GAP_Y
        return f"M{x1:g},{y1:g} C{x1:g},{low:g} {x2:g},{low:g} {x2:g},{y2:g}"
    bend = max((x2 - x1) / 2, 20)
    return f"M{x1:g},{y1:g} C{x1 + bend:g},{y1:g} {x2 - bend:g},{y2:g} {x2:g},{y2:g}"


def to_svg(graph: dict[str, Any], states: dict[str, str] | None = None) -> str:
    """A standalone SVG of a :func:`layout` (``states``: routine id -> state class)."""
    states = states or {}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{graph["width"]}" '
        f'height="{graph["height"]}" viewBox="0 0 {graph["width"]} {graph["height"]}" '
        'font-family="sans-serif" font-size="12">',
        "<defs><marker id='arrow' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='7' "
        "markerHeight='7' orient='auto'><path d='M0,0 L10,5 L0,10 z' fill='#667'/></marker></defs>",
    ]
    for edge in graph["edges"]:
        label = escape(f"{edge['event']} → {edge['slot']}")
        parts.append(
            f'<path d="{edge["path"]}" fill="none" stroke="#667" stroke-width="1.4" '
            f'marker-end="url(#arrow)"><title>{label}</title></path>'
        )
    colours = {"busy": "#ffe08a", "done": "#b7e4c7", "failed": "#f4a6a6", "queued": "#cfe2ff"}
    for node in graph["nodes"]:
        fill = colours.get(states.get(node["id"], ""), "#f2f2f5")
        mode = node["execution"] + (f" x{node['workers']}" if node["workers"] > 1 else "")
        parts.append(
            f'<g><rect x="{node["x"]}" y="{node["y"]}" width="{node["w"]}" '
            f'height="{node["h"]}" rx="6" fill="{fill}" stroke="#445"/>'
            f'<text x="{node["x"] + 8}" y="{node["y"] + 21}" font-weight="bold">'
            f"{escape(_clip(node['id']))}</text>"
            f'<text x="{node["x"] + 8}" y="{node["y"] + 40}" fill="#556">'
            f"{escape(_clip(node['class'] + ' · ' + mode))}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _clip(text: str, size: int = 24) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"
