"""Render a flow's graph as Mermaid or Graphviz DOT text."""

from __future__ import annotations

import re

from routilux.flow import Flow


def _node_id(routine_id: str, used: dict[str, str]) -> str:
    if routine_id in used:
        return used[routine_id]
    base = re.sub(r"\W", "_", routine_id) or "r"
    if base[0].isdigit():
        base = "r_" + base
    candidate, n = base, 1
    while candidate in used.values():
        n += 1
        candidate = f"{base}_{n}"
    used[routine_id] = candidate
    return candidate


# Where a routine runs shows in its shape: a box on a thread, a double-edged box
# ("subroutine") in its own process, a hexagon on Ray.
_MERMAID_SHAPES = {"thread": ('["', '"]'), "process": ('[["', '"]]'), "ray": ('{{"', '"}}')}
_DOT_STYLES = {"thread": "", "process": ", style=bold", "ray": ", shape=hexagon"}


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def _describe(flow: Flow, routine_id: str) -> tuple[str, str, str]:
    plan = flow._plans[routine_id]
    routine = plan.routine
    mode = plan.execution + (f" x{plan.workers}" if plan.workers > 1 else "")
    return (
        f"{type(routine).__name__} · {mode}",
        ", ".join(routine._slots) or "-",
        ", ".join(routine._events) or "-",
    )


def _edge_label(event: str, slot: str, mapping: dict[str, str] | None) -> str:
    label = f"{event} → {slot}"
    if mapping:
        label += " (" + ", ".join(f"{k}→{v}" for k, v in mapping.items()) + ")"
    return label


def to_mermaid(flow: Flow) -> str:
    """Mermaid ``flowchart`` text for ``flow``."""
    used: dict[str, str] = {}
    lines = ["flowchart LR"]
    for rid in flow.routines:
        kind, slots, events = _describe(flow, rid)
        label = (
            _mermaid_text(f"{rid}")
            + "<br/>"
            + _mermaid_text(kind)
            + "<br/>"
            + _mermaid_text(f"in: {slots}")
            + "<br/>"
            + _mermaid_text(f"out: {events}")
        )
        shape = _MERMAID_SHAPES[flow._plans[rid].execution]
        lines.append(f"    {_node_id(rid, used)}{shape[0]}{label}{shape[1]}")
    for src, event, dst, slot, connection in flow._wiring:
        label = _mermaid_text(_edge_label(event, slot, connection.param_mapping))
        lines.append(f'    {_node_id(src, used)} -->|"{label}"| {_node_id(dst, used)}')
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(flow: Flow) -> str:
    """Graphviz DOT text for ``flow``."""
    lines = [
        f'digraph "{_dot_text(flow.flow_id)}" {{',
        "    rankdir=LR;",
        '    node [shape=box, fontname="Helvetica"];',
    ]
    for rid in flow.routines:
        kind, slots, events = _describe(flow, rid)
        label = "\\n".join(_dot_text(x) for x in (rid, kind, f"in: {slots}", f"out: {events}"))
        style = _DOT_STYLES[flow._plans[rid].execution]
        lines.append(f'    "{_dot_text(rid)}" [label="{label}"{style}];')
    for src, event, dst, slot, connection in flow._wiring:
        label = _dot_text(_edge_label(event, slot, connection.param_mapping))
        lines.append(f'    "{_dot_text(src)}" -> "{_dot_text(dst)}" [label="{label}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"
