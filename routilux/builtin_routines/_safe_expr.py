"""A small, safe expression language for conditions and mappings.

Expressions are parsed with :mod:`ast` and *interpreted* node by node; nothing is
ever passed to ``eval``/``exec`` or compiled to bytecode. Only a whitelist of node
types is accepted:

* literals (numbers, strings, bytes, ``True``/``False``/``None``), tuples, lists,
  sets and dicts;
* names, looked up in the mapping given to :meth:`SafeExpression.evaluate`;
* arithmetic ``+ - * / // % **`` and unary ``- + not``;
* comparisons (``== != < <= > >= in not in is is not``), ``and``/``or`` and
  ``a if cond else b``;
* subscripts and slices (``x[0]``, ``x["key"]``, ``x[1:3]``);
* attribute access ``a.b``: on a mapping it reads the key ``"b"``; on any other
  object it reads a public attribute. Names and attributes starting with ``_`` are
  refused, and so are the introspection attributes of frames, code objects,
  generators, coroutines and tracebacks;
* calls of a few harmless built-ins only: ``len str int float bool abs min max``
  (positional arguments only).

Everything else - imports, lambdas, comprehensions, f-strings, walrus, starred
arguments, calls of anything but the functions above - is refused when the
expression is compiled. Work is bounded: the source length, node count and nesting
depth are limited, integer results may not exceed :data:`MAX_INT_BITS` bits (so
``10**10**10`` is refused before it is computed), sequence repetition may not build
more than :data:`MAX_SEQUENCE_LENGTH` items and ``%``-formatting of strings is refused.
"""

from __future__ import annotations

import ast
import operator
import types
from collections.abc import Callable, Mapping
from typing import Any

from routilux.exceptions import (
    ExpressionEvaluationError,
    UnsafeExpressionError,
)

MAX_SOURCE_LENGTH = 2000
MAX_NODES = 400
MAX_DEPTH = 40
MAX_INT_BITS = 65536
MAX_SEQUENCE_LENGTH = 100_000

SAFE_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": len,
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "abs": abs,
    "min": min,
    "max": max,
}

# Attributes through which Python objects expose their interpreter internals.
_BLOCKED_ATTRIBUTE_PREFIXES = ("f_", "gi_", "cr_", "ag_", "co_", "tb_", "func_", "im_")
_BLOCKED_ATTRIBUTES = frozenset({"mro", "format", "format_map"})
_BLOCKED_VALUE_TYPES = (
    types.ModuleType,
    types.FrameType,
    types.CodeType,
    types.TracebackType,
    types.GeneratorType,
    types.CoroutineType,
    types.AsyncGeneratorType,
)


_BINARY_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY_OPS: dict[type, Callable[[Any], Any]] = {
    ast.Not: operator.not_,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}
_COMPARE_OPS: dict[type, Callable[[Any, Any], Any]] = {
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
    *_BINARY_OPS,
    *_UNARY_OPS,
    *_COMPARE_OPS,
)
_ALLOWED_CONSTANTS = (str, bytes, int, float, bool, type(None))


def _attribute_allowed(name: str) -> bool:
    return not (
        name.startswith("_")
        or name in _BLOCKED_ATTRIBUTES
        or name.startswith(_BLOCKED_ATTRIBUTE_PREFIXES)
    )


def _validate(tree: ast.AST, source: str) -> None:
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
        if not isinstance(node, _ALLOWED_NODES):
            raise UnsafeExpressionError(
                f"expression {source!r} uses {type(node).__name__}, which is not allowed "
                "in a safe expression"
            )
        if isinstance(node, ast.Constant) and not isinstance(node.value, _ALLOWED_CONSTANTS):
            raise UnsafeExpressionError(
                f"expression {source!r}: constant {node.value!r} is not allowed"
            )
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise UnsafeExpressionError(
                f"expression {source!r}: names starting with '_' are not allowed ({node.id!r})"
            )
        if isinstance(node, ast.Attribute) and not _attribute_allowed(node.attr):
            raise UnsafeExpressionError(
                f"expression {source!r}: access to attribute {node.attr!r} is not allowed"
            )
        if isinstance(node, ast.Dict) and any(key is None for key in node.keys):
            raise UnsafeExpressionError(
                f"expression {source!r}: dict unpacking (**) is not allowed"
            )
        if isinstance(node, ast.Call):
            func = node.func
            if not (isinstance(func, ast.Name) and func.id in SAFE_FUNCTIONS):
                shown = ast.unparse(func)
                raise UnsafeExpressionError(
                    f"expression {source!r}: calling {shown!r} is not allowed; only "
                    f"{sorted(SAFE_FUNCTIONS)} may be called"
                )
            if node.keywords:
                raise UnsafeExpressionError(
                    f"expression {source!r}: keyword arguments are not allowed in calls"
                )
            # the function name itself is not walked as a plain name lookup
            stack.extend((arg, depth + 1) for arg in node.args)
            continue
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


class SafeExpression:
    """A parsed, validated expression; evaluate it against a mapping of names.

    Instances pickle as their source text (and are re-validated when unpickled).
    """

    __slots__ = ("_tree", "source")

    def __init__(self, source: str) -> None:
        if not isinstance(source, str):
            raise UnsafeExpressionError(f"an expression must be a str, got {type(source).__name__}")
        if not source.strip():
            raise UnsafeExpressionError("an expression must not be empty")
        if len(source) > MAX_SOURCE_LENGTH:
            raise UnsafeExpressionError(
                f"expression is too long ({len(source)} characters, at most {MAX_SOURCE_LENGTH})"
            )
        try:
            tree = ast.parse(source.strip(), mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            raise UnsafeExpressionError(f"invalid expression {source!r}: {exc}") from None
        _validate(tree, source)
        self.source = source
        self._tree = tree

    def __getstate__(self) -> str:
        return self.source

    def __setstate__(self, state: str) -> None:
        fresh = SafeExpression(state)
        self.source = fresh.source
        self._tree = fresh._tree

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SafeExpression) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)

    def __repr__(self) -> str:
        return f"SafeExpression({self.source!r})"

    def evaluate(self, names: Mapping[str, Any]) -> Any:
        """Evaluate with ``names`` as the only variables.

        Raises :class:`ExpressionEvaluationError` for a missing name, an operation on
        the wrong types, or a result beyond the size limits.
        """
        try:
            return _Interpreter(names, self.source).visit(self._tree.body)
        except ExpressionEvaluationError:
            raise
        except (ArithmeticError, TypeError, ValueError, LookupError, AttributeError) as exc:
            raise ExpressionEvaluationError(
                f"evaluating {self.source!r} failed: {type(exc).__name__}: {exc}"
            ) from exc


class _Interpreter:
    """Walks a validated tree. Only node types accepted by ``_validate`` reach it."""

    __slots__ = ("names", "source")

    def __init__(self, names: Mapping[str, Any], source: str) -> None:
        self.names = names
        self.source = source

    def fail(self, message: str) -> ExpressionEvaluationError:
        return ExpressionEvaluationError(f"evaluating {self.source!r}: {message}")

    def visit(self, node: ast.AST) -> Any:
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:  # pragma: no cover - _validate refuses these first
            raise self.fail(f"{type(node).__name__} is not allowed")
        return method(node)

    def visit_Constant(self, node: ast.Constant) -> Any:
        return node.value

    def visit_Name(self, node: ast.Name) -> Any:
        try:
            return self.names[node.id]
        except KeyError:
            available = sorted(k for k in self.names if isinstance(k, str))
            raise self.fail(
                f"name {node.id!r} is not defined; available names: {available}"
            ) from None

    def visit_Tuple(self, node: ast.Tuple) -> tuple:
        return tuple(self.visit(e) for e in node.elts)

    def visit_List(self, node: ast.List) -> list:
        return [self.visit(e) for e in node.elts]

    def visit_Set(self, node: ast.Set) -> set:
        return {self.visit(e) for e in node.elts}

    def visit_Dict(self, node: ast.Dict) -> dict:
        result = {}
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:  # ``{**other}``
                raise self.fail("dict unpacking is not allowed")
            result[self.visit(key)] = self.visit(value)
        return result

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        value: Any = None
        if isinstance(node.op, ast.And):
            for operand in node.values:
                value = self.visit(operand)
                if not value:
                    return value
            return value
        for operand in node.values:
            value = self.visit(operand)
            if value:
                return value
        return value

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        return _UNARY_OPS[type(node.op)](self.visit(node.operand))

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        left = self.visit(node.left)
        right = self.visit(node.right)
        op = type(node.op)
        if op is ast.Pow:
            self._check_pow(left, right)
        elif op is ast.Mult:
            self._check_mult(left, right)
        elif op is ast.Mod and isinstance(left, (str, bytes)):
            raise self.fail("%-formatting of strings is not allowed")
        result = _BINARY_OPS[op](left, right)
        if isinstance(result, int) and result.bit_length() > MAX_INT_BITS:
            raise self.fail(f"integer result exceeds {MAX_INT_BITS} bits")
        return result

    def _check_pow(self, base: Any, exponent: Any) -> None:
        if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
            bits = max(abs(base).bit_length(), 1)
            if abs(base) > 1 and bits * exponent > MAX_INT_BITS:
                raise self.fail(f"{base} ** {exponent} would exceed {MAX_INT_BITS} bits; refused")

    def _check_mult(self, left: Any, right: Any) -> None:
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, (str, bytes, list, tuple)) and isinstance(times, int):
                if len(seq) * max(times, 0) > MAX_SEQUENCE_LENGTH:
                    raise self.fail(f"repetition would build more than {MAX_SEQUENCE_LENGTH} items")
                return
        if isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise self.fail(f"integer result would exceed {MAX_INT_BITS} bits")

    def visit_Compare(self, node: ast.Compare) -> bool:
        left = self.visit(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.visit(comparator)
            if not _COMPARE_OPS[type(op)](left, right):
                return False
            left = right
        return True

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        value = self.visit(node.value)
        index = self.visit(node.slice)
        return self._safe(value[index], "subscript")

    def visit_Slice(self, node: ast.Slice) -> slice:
        return slice(
            self.visit(node.lower) if node.lower is not None else None,
            self.visit(node.upper) if node.upper is not None else None,
            self.visit(node.step) if node.step is not None else None,
        )

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        value = self.visit(node.value)
        name = node.attr
        if isinstance(value, Mapping):
            if name in value:
                return self._safe(value[name], name)
            raise self.fail(f"key {name!r} not found (keys: {sorted(map(str, value))})")
        if not hasattr(value, name):
            raise self.fail(f"{type(value).__name__} object has no attribute {name!r}")
        return self._safe(getattr(value, name), name)

    def _safe(self, value: Any, where: str) -> Any:
        if isinstance(value, _BLOCKED_VALUE_TYPES):
            raise self.fail(f"{where!r} gives a {type(value).__name__}, which is not allowed")
        return value

    def visit_Call(self, node: ast.Call) -> Any:
        function = SAFE_FUNCTIONS[node.func.id]  # type: ignore[attr-defined]
        args = [self.visit(arg) for arg in node.args]
        return function(*args)


def compile_expression(source: str | SafeExpression) -> SafeExpression:
    """Parse and validate ``source``; raises :class:`UnsafeExpressionError`."""
    if isinstance(source, SafeExpression):
        return source
    return SafeExpression(source)


def safe_eval(source: str | SafeExpression, names: Mapping[str, Any] | None = None) -> Any:
    """Compile (if needed) and evaluate ``source`` against ``names``."""
    return compile_expression(source).evaluate(names or {})


__all__ = [
    "MAX_INT_BITS",
    "MAX_SEQUENCE_LENGTH",
    "SAFE_FUNCTIONS",
    "ExpressionEvaluationError",
    "SafeExpression",
    "UnsafeExpressionError",
    "compile_expression",
    "safe_eval",
]
