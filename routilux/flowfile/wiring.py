"""Checking a flow file's wiring against its built routines.

Errors: a connection or the entry names a routine, event or slot that does not
exist (the message lists what does). Warnings: a connection given twice (each
delivers), a cycle that no connection leaves (a job in it ends only when a
handler stops emitting), a routine that no connection reaches from the entry.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, NamedTuple

from routilux.flowfile.positions import Document
from routilux.flowfile.problems import WARNING, Problem
from routilux.routine import Routine


class Link(NamedTuple):
    """One connection: ``source.event -> target.slot`` with its parameter mapping."""

    source: str
    event: str
    target: str
    slot: str
    param_mapping: dict[str, str] | None


def endpoint(value: Any, name: str) -> tuple[str, str]:
    """``"routine.name"`` (split at the last dot) or ``{"routine": r, name: n}``."""
    if isinstance(value, dict):
        return value["routine"], value[name]
    routine, _, member = value.rpartition(".")
    return routine, member


def _names(found: Iterable[str]) -> str:
    found = sorted(found)
    return ", ".join(found) if found else "none"


def _hint(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Checker:
    def __init__(self, doc: Document, routines: dict[str, Routine]) -> None:
        self.doc = doc
        self.routines = routines
        self.problems: list[Problem] = []

    def resolve(self, path: tuple, value: Any, kind: str) -> tuple[str, str] | None:
        """Check one endpoint (kind ``"event"`` or ``"slot"``); None when wrong."""
        rid, member = endpoint(value, kind)
        routine = self.routines.get(rid)
        if routine is None:
            self.problems.append(
                self.doc.problem(
                    path,
                    f"no routine {rid!r}{_hint(rid, self.routines)}; routines: "
                    f"{_names(self.routines)}",
                )
            )
            return None
        members = routine._events if kind == "event" else routine._slots
        if member not in members:
            self.problems.append(
                self.doc.problem(
                    path,
                    f"routine {rid!r} ({type(routine).__name__}) has no {kind} {member!r}"
                    f"{_hint(member, members)}; its {kind}s: {_names(members)}",
                )
            )
            return None
        return rid, member


def check(
    doc: Document, routines: dict[str, Routine]
) -> tuple[list[Link], tuple[str, str] | None, list[Problem]]:
    """The file's connections and entry, checked; and the problems found."""
    checker = _Checker(doc, routines)
    links: list[Link] = []
    seen: set[tuple[str, str, str, str]] = set()
    for i, spec in enumerate(doc.data.get("connections", ())):
        path = ("connections", i)
        source = checker.resolve((*path, "from"), spec["from"], "event")
        target = checker.resolve((*path, "to"), spec["to"], "slot")
        if source is None or target is None:
            continue
        key = (*source, *target)
        if key in seen:
            checker.problems.append(
                doc.problem(
                    path,
                    f"{source[0]}.{source[1]} -> {target[0]}.{target[1]} is connected twice: "
                    "each connection delivers, so the slot gets every message twice",
                    WARNING,
                )
            )
        seen.add(key)
        links.append(Link(*source, *target, spec.get("param_mapping")))
    entry = None
    if "entry" in doc.data:
        entry = checker.resolve(("entry",), doc.data["entry"], "slot")
    if not checker.problems or all(p.severity == WARNING for p in checker.problems):
        checker.problems.extend(_graph_warnings(doc, list(routines), links, entry))
    return links, entry, checker.problems


def _graph_warnings(
    doc: Document, ids: list[str], links: list[Link], entry: tuple[str, str] | None
) -> list[Problem]:
    edges: dict[str, list[str]] = {rid: [] for rid in ids}
    first_link: dict[tuple[str, str], int] = {}
    for i, link in enumerate(links):
        edges[link.source].append(link.target)
        first_link.setdefault((link.source, link.target), i)
    problems = []
    for component in _strong_components(ids, edges):
        members = set(component)
        cyclic = len(component) > 1 or component[0] in edges[component[0]]
        leaves = any(t not in members for rid in component for t in edges[rid])
        if cyclic and not leaves:
            loop = (
                f"routine {component[0]!r} feeds itself and no connection leaves it"
                if len(component) == 1
                else f"routines {', '.join(map(repr, component))} form a cycle that no "
                "connection leaves"
            )
            where = min(i for (s, t), i in first_link.items() if s in members and t in members)
            problems.append(
                doc.problem(
                    ("connections", where),
                    f"{loop}: a job that enters it ends only when a handler in it stops emitting",
                    WARNING,
                )
            )
    fed = {link.target for link in links}
    roots = [entry[0]] if entry else [rid for rid in ids if rid not in fed]
    reached = set(roots)
    stack = list(roots)
    while stack:
        for target in edges[stack.pop()]:
            if target not in reached:
                reached.add(target)
                stack.append(target)
    start = f"the entry {entry[0]!r}" if entry else "any routine without incoming connections"
    for rid in ids:
        if rid not in reached and roots:
            problems.append(
                doc.problem(
                    ("routines", rid),
                    f"routine {rid!r} cannot be reached from {start}: no job reaches it",
                    WARNING,
                    key=True,
                )
            )
    return problems


def _strong_components(ids: list[str], edges: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components in discovery order of their roots."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for start in ids:
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            for j in range(i, len(edges[node])):
                target = edges[node][j]
                if target not in index:
                    work.append((node, j + 1))
                    work.append((target, 0))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(component[::-1])
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
    return components
