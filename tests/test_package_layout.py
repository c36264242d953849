"""The package's import rules, checked on its source: dependencies point one way (no
import cycles between modules), and no import is hidden inside a function to dodge
one. An import inside a function is allowed only for another package that is an
optional extra, inside a ``try`` that turns its ``ImportError`` into a clear error
or a fallback, or when it is listed in :data:`LAZY` with the reason."""

from __future__ import annotations

import ast
from pathlib import Path

import routilux

ROOT = Path(routilux.__file__).parent


def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = ast.parse(path.read_text(), str(path))
    return found


MODULES = _modules()

#: Imports inside functions that are there on purpose, with why (not a cycle).
LAZY = {
    # Flow files: routilux.flowfile and PyYAML cost 55-85 ms (``python -X importtime``
    # here) that `import routilux`, and every routine process, would pay for a
    # feature most programs never use.
    ("routilux.flow_format", "routilux.flowfile"),
    # The web monitor needs the web extra (Starlette, uvicorn); without it the
    # Runtime runs and serve_http() says what to install.
    ("routilux.service", "routilux.web.server"),
}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module.split(".")
    is_package = (ROOT.parent / Path(*package) / "__init__.py").exists()
    base = package if is_package else package[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _targets(module: str, node: ast.AST) -> list[str]:
    """The routilux modules an import statement loads: ``from p import m`` loads
    the module ``p.m`` if there is one, else (a name defined in it) ``p`` itself."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = _resolve(module, node)
        names = [
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
            for alias in node.names
        ]
    return [n for n in names if n in MODULES and n != module]


def _top_level_imports(module: str, tree: ast.Module) -> set[str]:
    """Imports run when the module loads (not those under ``if TYPE_CHECKING``)."""
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.update(_targets(module, node))
            elif isinstance(node, ast.If):
                if not _is_type_checking(node):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(tree.body)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in ``graph`` (module -> modules it loads), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_no_import_cycles_between_modules():
    graph = {name: _top_level_imports(name, tree) for name, tree in MODULES.items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def _guarded_imports(tree: ast.Module) -> set[int]:
    """Line numbers of imports of other packages inside a ``try`` that handles
    ImportError (an optional extra); never one of routilux's own modules."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        names = set()
        for handler in node.handlers:
            kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
            names.update(k.id for k in kinds if isinstance(k, ast.Name))
        if names & {"ImportError", "ModuleNotFoundError"}:
            lines.update(
                n.lineno
                for n in ast.walk(node)
                if isinstance(n, (ast.Import, ast.ImportFrom)) and not _is_ours(n)
            )
    return lines


def _is_ours(node: ast.Import | ast.ImportFrom) -> bool:
    if isinstance(node, ast.ImportFrom):
        return bool(node.level) or (node.module or "").split(".")[0] == "routilux"
    return any(alias.name.split(".")[0] == "routilux" for alias in node.names)


def test_no_import_hidden_inside_a_function():
    hidden = []
    for name, tree in MODULES.items():
        guarded = _guarded_imports(tree)
        for func in ast.walk(tree):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if not isinstance(node, (ast.Import, ast.ImportFrom)) or node.lineno in guarded:
                    continue
                loaded = _resolve(name, node) if isinstance(node, ast.ImportFrom) else None
                if (name, loaded or node.names[0].name) not in LAZY:
                    hidden.append(f"{name}:{node.lineno}")
    assert not hidden, f"imports inside functions (move them to the top): {hidden}"


def test_the_checks_see_a_cycle_and_a_hidden_import():
    """The rules above can fail: a made-up cycle and a made-up hidden import, and
    the graph holds the package's real imports."""
    graph = {name: _top_level_imports(name, tree) for name, tree in MODULES.items()}
    assert "routilux.flow_durability" in graph["routilux.flow"]
    assert "routilux.checkpoint.sqlite_schema" in graph["routilux.checkpoint.sqlite_store"]
    assert "routilux.flowfile" in graph["routilux.cli.loading"]  # a name from __init__
    relative = ast.parse("from . import parts\nfrom .. import exceptions\n").body
    assert _targets("routilux.checkpoint.format", relative[0]) == ["routilux.checkpoint.parts"]
    assert _targets("routilux.checkpoint.format", relative[1]) == ["routilux.exceptions"]
    assert _targets("routilux.checkpoint", relative[0]) == ["routilux.checkpoint.parts"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    tree = ast.parse("def f():\n    import json\n")
    assert not _guarded_imports(tree)
    guarded = "def f():\n    try:\n        import yaml\n    except ImportError:\n        pass\n"
    assert _guarded_imports(ast.parse(guarded))
    assert not _guarded_imports(ast.parse(guarded.replace("yaml", "routilux.flow")))
