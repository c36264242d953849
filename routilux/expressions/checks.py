"""Compile-time checks of the safe expression language: limits and the node whitelist.

See :mod:`routilux.expressions.evaluator` for the language itself.
"""

from __future__ import annotations

import ast
import operator
import types
from collections.abc import Callable
from typing import Any

from routilux.exceptions import UnsafeExpressionError
from routilux.expressions.calls import (
    ALL_METHOD_NAMES,
    FUNCTION_KEYWORDS,
    MUTATORS,
    RESERVED_CALLABLE_NAMES,
    SAFE_FUNCTIONS,
    SPECIAL_FUNCTIONS,
    TYPE_NAMES,
    UNBOUNDED_METHODS,
)

MAX_SOURCE_LENGTH = 2000
MAX_NODES = 400
MAX_DEPTH = 40
MAX_INT_BITS = 65536
MAX_SEQUENCE_LENGTH = 100_000

# Attributes through which Python objects expose their interpreter internals.
_BLOCKED_ATTRIBUTE_PREFIXES = ("f_", "gi_", "cr_", "ag_", "co_", "tb_", "func_", "im_")
_BLOCKED_ATTRIBUTES = frozenset({"mro", "format", "format_map"})
BLOCKED_VALUE_TYPES = (
    types.ModuleType,
    types.FrameType,
    types.CodeType,
    types.TracebackType,
    types.GeneratorType,
    types.CoroutineType,
    types.AsyncGeneratorType,
)


BINARY_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
UNARY_OPS: dict[type, Callable[[Any], Any]] = {
    ast.Not: operator.not_,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
COMPARE_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}
_ALLOWED_NODES: tuple[type, ...] = (
    ast.Expression,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.Tuple,
    ast.List,
    ast.Set,
    ast.Dict,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.BinOp,
    ast.UnaryOp,
    ast.Compare,
    ast.IfExp,
    ast.Subscript,
    ast.Slice,
    ast.Attribute,
    ast.Call,
    *BINARY_OPS,
    *UNARY_OPS,
    *COMPARE_OPS,
)
_ALLOWED_NODES += (ast.keyword,)
_ALLOWED_CONSTANTS = (str, bytes, int, float, bool, type(None))


def attribute_allowed(name: str) -> bool:
    """Whether an expression may read attribute ``name`` (no private or introspection names)."""
    return not (
        name.startswith("_")
        or name in _BLOCKED_ATTRIBUTES
        or name.startswith(_BLOCKED_ATTRIBUTE_PREFIXES)
    )


def _refuse(source: str, message: str) -> UnsafeExpressionError:
    return UnsafeExpressionError(f"expression {source!r}: {message}")


def _check_node(node: ast.AST, source: str) -> None:
    """Refuse one node that is outside the whitelist (calls are checked apart)."""
    if not isinstance(node, _ALLOWED_NODES):
        raise UnsafeExpressionError(
            f"expression {source!r} uses {type(node).__name__}, which is not allowed "
            "in a safe expression"
        )
    if isinstance(node, ast.Constant) and not isinstance(node.value, _ALLOWED_CONSTANTS):
        raise _refuse(source, f"constant {node.value!r} is not allowed")
    if isinstance(node, ast.Name):
        if node.id.startswith("_"):
            raise _refuse(source, f"names starting with '_' are not allowed ({node.id!r})")
        if node.id in RESERVED_CALLABLE_NAMES:
            raise _refuse(
                source,
                f"{node.id!r} is a function or type name: it may only be called"
                + (" or used as an isinstance() type" if node.id in TYPE_NAMES else "")
                + ", not used as a value",
            )
    if isinstance(node, ast.Attribute) and not attribute_allowed(node.attr):
        raise _refuse(source, f"access to attribute {node.attr!r} is not allowed")
    if isinstance(node, ast.Dict) and any(key is None for key in node.keys):
        raise _refuse(source, "dict unpacking (**) is not allowed")
    if (
        isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Mod)
        and isinstance(node.left, ast.Constant)
        and isinstance(node.left.value, (str, bytes))
    ):
        raise _refuse(source, "%-formatting of strings is not allowed")


def _call_children(node: ast.Call, source: str) -> list[ast.AST]:
    """Check a call's form; return the sub-expressions to validate further."""
    for keyword in node.keywords:
        if keyword.arg is None:
            raise _refuse(source, "**keyword unpacking is not allowed in calls")
        if keyword.arg.startswith("_"):
            raise _refuse(source, f"keyword {keyword.arg!r} is not allowed")
    values = [k.value for k in node.keywords]
    func = node.func
    if isinstance(func, ast.Attribute):  # a method call
        name = func.attr
        if name not in ALL_METHOD_NAMES:
            if name in MUTATORS:
                why = "it changes its receiver"
            elif name in UNBOUNDED_METHODS:
                why = "its result size is not bounded"
            else:
                why = f"callable methods are {sorted(ALL_METHOD_NAMES)}"
            raise _refuse(source, f"calling method {name!r} is not allowed ({why})")
        if not attribute_allowed(name):  # pragma: no cover - no listed method is blocked
            raise _refuse(source, f"access to attribute {name!r} is not allowed")
        return [func.value, *node.args, *values]
    if not isinstance(func, ast.Name) or func.id not in (*SAFE_FUNCTIONS, *SPECIAL_FUNCTIONS):
        raise _refuse(
            source,
            f"calling {ast.unparse(func)!r} is not allowed; only "
            f"{sorted((*SAFE_FUNCTIONS, *SPECIAL_FUNCTIONS))} and the methods of builtin "
            "values may be called",
        )
    name = func.id
    if name in SAFE_FUNCTIONS:
        allowed = FUNCTION_KEYWORDS.get(name, frozenset())
        bad = [k.arg for k in node.keywords if allowed is not None and k.arg not in allowed]
        if bad:
            raise _refuse(
                source,
                f"{name}() does not take the keyword argument(s) {bad} here"
                + (f"; allowed: {sorted(allowed)}" if allowed else ""),
            )
        return [*node.args, *values]
    if node.keywords:
        raise _refuse(source, f"{name}() takes no keyword arguments")
    if name == "isinstance":
        if len(node.args) != 2:
            raise _refuse(source, "isinstance() takes exactly two arguments")
        kind = node.args[1]
        names = kind.elts if isinstance(kind, ast.Tuple) else [kind]
        if not names or not all(isinstance(n, ast.Name) and n.id in TYPE_NAMES for n in names):
            raise _refuse(
                source,
                f"the type argument of isinstance() must be one of {sorted(TYPE_NAMES)} "
                "or a tuple of them",
            )
        return [node.args[0]]
    # hasattr / getattr
    low, high = (2, 2) if name == "hasattr" else (2, 3)
    if not low <= len(node.args) <= high:
        raise _refuse(source, f"{name}() takes {low} to {high} arguments, got {len(node.args)}")
    attribute = node.args[1]
    if isinstance(attribute, ast.Constant):
        if not isinstance(attribute.value, str) or not attribute_allowed(attribute.value):
            raise _refuse(source, f"{name}() of attribute {attribute.value!r} is not allowed")
    return list(node.args)


def validate(tree: ast.AST, source: str) -> None:
    """Refuse any node outside the whitelist; also bound size and depth."""
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise UnsafeExpressionError(
                f"expression {source!r} is too large (more than {MAX_NODES} syntax nodes)"
            )
        if depth > MAX_DEPTH:
            raise UnsafeExpressionError(
                f"expression {source!r} is nested too deeply (more than {MAX_DEPTH} levels)"
            )
        _check_node(node, source)
        if isinstance(node, ast.Call):
            # the callee is not walked as a plain name or attribute lookup
            stack.extend((child, depth + 1) for child in _call_children(node, source))
            continue
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
