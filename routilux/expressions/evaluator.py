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
  generators, coroutines and tracebacks, ``mro`` and ``format``/``format_map``;
* calls of the functions ``len str int float bool abs min max any all dict list
  tuple set frozenset`` (keyword arguments only where harmless: ``int(x, base=)``,
  ``min``/``max(default=)``, ``dict(a=1)``), ``isinstance(x, T)`` with ``T`` a type
  name or a tuple of them (``dict list tuple set str int float bool bytes
  frozenset``), ``hasattr(obj, name)`` and ``getattr(obj, name[, default])`` (with
  ``name`` passing the attribute rule above);
* method calls ``receiver.m(...)`` for the methods listed in
  :data:`routilux.expressions.calls.METHODS` (``data.get('k')``,
  ``name.lower().startswith('a')``, ``d.items()``...), run through the builtin
  type's own implementation.

Everything else - imports, lambdas, comprehensions, f-strings, walrus, starred
arguments, ``%``-formatting, mutating methods (``pop``, ``append``...), calls of
anything not listed, attributes of type objects (``str.join``) - is refused when the
expression is compiled. Work is bounded: the source length, node count and nesting
depth are limited, integer results may not exceed :data:`MAX_INT_BITS` bits (so
``10**10**10`` is refused before it is computed), and sequence repetition (``*``,
``join`` separators) may not build more than :data:`MAX_SEQUENCE_LENGTH` items.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

from routilux._validate import a_type
from routilux.exceptions import (
    ExpressionEvaluationError,
    UnsafeExpressionError,
)
from routilux.expressions.calls import SAFE_FUNCTIONS, TYPE_NAMES, call_method
from routilux.expressions.checks import (
    BINARY_OPS,
    BLOCKED_VALUE_TYPES,
    COMPARE_OPS,
    MAX_INT_BITS,
    MAX_SEQUENCE_LENGTH,
    MAX_SOURCE_LENGTH,
    UNARY_OPS,
    attribute_allowed,
    validate,
)


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
        validate(tree, source)
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
        return UNARY_OPS[type(node.op)](self.visit(node.operand))

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
        result = BINARY_OPS[op](left, right)
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
            if not COMPARE_OPS[type(op)](left, right):
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
        name = node.attr
        value = self._value(self.visit(node.value), name)
        if isinstance(value, Mapping):
            if name in value:
                return self._safe(value[name], name)
            raise self.fail(f"key {name!r} not found (keys: {sorted(map(str, value))})")
        if not hasattr(value, name):
            raise self.fail(f"{type(value).__name__} object has no attribute {name!r}")
        return self._safe(getattr(value, name), name)

    def _safe(self, value: Any, where: str) -> Any:
        if isinstance(value, BLOCKED_VALUE_TYPES):
            raise self.fail(f"{where!r} gives {a_type(value)}, which is not allowed")
        return value

    def visit_Call(self, node: ast.Call) -> Any:
        func = node.func
        if isinstance(func, ast.Attribute):
            receiver = self._value(self.visit(func.value), func.attr)
            args, kwargs = self._arguments(node)
            try:
                result = call_method(receiver, func.attr, args, kwargs, MAX_SEQUENCE_LENGTH)
            except TypeError as exc:
                raise self.fail(str(exc)) from None
            return self._safe(result, func.attr)
        name = func.id  # type: ignore[attr-defined]
        if name == "isinstance":
            kind = node.args[1]
            names = kind.elts if isinstance(kind, ast.Tuple) else [kind]
            types_ = tuple(TYPE_NAMES[n.id] for n in names)  # type: ignore[attr-defined]
            return isinstance(self.visit(node.args[0]), types_)
        args, kwargs = self._arguments(node)
        if name in ("hasattr", "getattr"):
            return self._getattr(name, args)
        return self._safe(SAFE_FUNCTIONS[name](*args, **kwargs), name)

    def _arguments(self, node: ast.Call) -> tuple[list[Any], dict[str, Any]]:
        args = [self.visit(arg) for arg in node.args]
        kwargs = {k.arg: self.visit(k.value) for k in node.keywords}
        return args, kwargs  # type: ignore[return-value]

    def _getattr(self, name: str, args: list[Any]) -> Any:
        target, attribute = args[0], args[1]
        if not isinstance(attribute, str) or not attribute_allowed(attribute):
            raise self.fail(f"{name}() of attribute {attribute!r} is not allowed")
        self._value(target, attribute)
        if name == "hasattr":
            return hasattr(target, attribute)
        if len(args) == 3:
            return self._safe(getattr(target, attribute, args[2]), attribute)
        return self._safe(getattr(target, attribute), attribute)

    def _value(self, value: Any, where: str) -> Any:
        """Refuse reading attributes of type objects (``str.join``, ``dict.fromkeys``)."""
        if isinstance(value, type):
            raise self.fail(f"attributes of type objects are not allowed ({where!r})")
        return value


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
