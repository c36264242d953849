"""``routilux graph`` shows where each routine runs by its shape."""

from __future__ import annotations

import pytest
from helpers import Node

from routilux import Flow
from routilux.cli.graph import to_dot, to_mermaid

pytest.importorskip("ray")  # a ray routine can only be added with the extra installed


def three_ways() -> Flow:
    flow = Flow("shapes")
    for rid, execution in (("t", "thread"), ("p", "process"), ("r", "ray")):
        flow.add_routine(Node(), rid, execution=execution)
    flow.connect("t", "out", "p", "in")
    flow.connect("p", "out", "r", "in")
    return flow


def test_mermaid_shapes_say_thread_process_or_ray():
    nodes = {
        line.split("[", 1)[0].split("{", 1)[0].strip(): line
        for line in to_mermaid(three_ways()).splitlines()[1:]
        if "-->" not in line
    }
    assert nodes["t"].startswith('    t["') and nodes["t"].endswith('"]')
    assert nodes["p"].startswith('    p[["') and nodes["p"].endswith('"]]')
    assert nodes["r"].startswith('    r{{"') and nodes["r"].endswith('"}}')
    assert "Node · ray" in nodes["r"]


def test_dot_styles_say_thread_process_or_ray():
    lines = {
        line.strip().split(" ", 1)[0]: line
        for line in to_dot(three_ways()).splitlines()
        if "[label=" in line and "->" not in line
    }
    assert "style" not in lines['"t"'] and "shape" not in lines['"t"']
    assert ", style=bold]" in lines['"p"']
    assert ", shape=hexagon]" in lines['"r"']
