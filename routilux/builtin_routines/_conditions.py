"""Conditions shared by ConditionalRouter and Filter, and expression functions for Mapper.

A condition is one of:

* a callable ``f(value) -> bool``;
* a dict ``{field: expected}``: true when ``value`` is a mapping and every field is
  present and equal to its expected value;
* a string: a safe expression (see :mod:`routilux.expressions.evaluator`)
  evaluated with ``data`` naming ``value`` itself, ``config`` and ``stats`` the
  routine's configuration and statistics (copies), and the str fields of a dict
  ``value`` as bare names (a non-dict ``value`` is also available as ``value``).
  A field never shadows a reserved name: ``data``, ``config``, ``stats``, the
  callable functions and the type names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from routilux.builtin_routines._base import is_plain_callable
from routilux.exceptions import ConfigurationError
from routilux.expressions.calls import RESERVED_CALLABLE_NAMES
from routilux.expressions.evaluator import (
    SafeExpression,
    UnsafeExpressionError,
    compile_expression,
)

RESERVED_NAMES = frozenset({"data", "config", "stats"}) | RESERVED_CALLABLE_NAMES


def expression_names(
    value: Any, config: Mapping[str, Any] | None = None, stats: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The names an expression sees for ``value`` (``config``/``stats``: copies)."""
    if isinstance(value, Mapping):
        names = {k: v for k, v in value.items() if isinstance(k, str) and k not in RESERVED_NAMES}
    else:
        names = {"value": value}
    names["data"] = value
    names["config"] = dict(config) if config is not None else {}
    names["stats"] = dict(stats) if stats is not None else {}
    return names


def _compile(spec: str | SafeExpression, what: str) -> SafeExpression:
    try:
        return compile_expression(spec)
    except UnsafeExpressionError as exc:
        raise UnsafeExpressionError(f"{what}: {exc}") from None


class Condition:
    """A compiled condition; picklable (expressions pickle as their source)."""

    __slots__ = ("kind", "spec")

    def __init__(self, spec: Any, what: str = "condition") -> None:
        if isinstance(spec, SafeExpression) or isinstance(spec, str):
            self.kind = "expression"
            self.spec: Any = _compile(spec, what)
        elif isinstance(spec, Mapping):
            if not spec:
                raise ConfigurationError(f"{what}: a field condition dict must not be empty")
            bad = [k for k in spec if not isinstance(k, str)]
            if bad:
                raise ConfigurationError(f"{what}: field names must be str, got {bad!r}")
            self.kind = "fields"
            self.spec = dict(spec)
        elif is_plain_callable(spec):
            self.kind = "callable"
            self.spec = spec
        else:
            raise ConfigurationError(
                f"{what} must be a callable, a dict of field values or an expression "
                f"string, got {type(spec).__name__}"
            )

    def __getstate__(self) -> tuple[str, Any]:
        return (self.kind, self.spec)

    def __setstate__(self, state: tuple[str, Any]) -> None:
        self.kind, self.spec = state

    def test(
        self,
        value: Any,
        config: Mapping[str, Any] | None = None,
        stats: Mapping[str, Any] | None = None,
    ) -> bool:
        """True when ``value`` satisfies the condition."""
        if self.kind == "expression":
            return bool(self.spec.evaluate(expression_names(value, config, stats)))
        if self.kind == "fields":
            if not isinstance(value, Mapping):
                raise TypeError(
                    f"a field condition {self.spec!r} needs dict data, got {type(value).__name__}"
                )
            return all(k in value and value[k] == v for k, v in self.spec.items())
        return bool(self.spec(value))

    def __repr__(self) -> str:
        return f"Condition({self.kind}, {self.spec!r})"


def compile_function(spec: Any, what: str = "function") -> Callable[[Any], Any]:
    """A callable as is, or an expression string made into a picklable function."""
    if isinstance(spec, (str, SafeExpression)):
        return ExpressionFunction(_compile(spec, what))
    if is_plain_callable(spec):
        return spec
    raise ConfigurationError(
        f"{what} must be a callable or an expression string, got {type(spec).__name__}"
    )


class ExpressionFunction:
    """``f(value)`` that evaluates a safe expression against ``value``."""

    __slots__ = ("expression",)

    def __init__(self, expression: SafeExpression) -> None:
        self.expression = expression

    def __getstate__(self) -> SafeExpression:
        return self.expression

    def __setstate__(self, state: SafeExpression) -> None:
        self.expression = state

    def __call__(
        self,
        value: Any,
        config: Mapping[str, Any] | None = None,
        stats: Mapping[str, Any] | None = None,
    ) -> Any:
        return self.expression.evaluate(expression_names(value, config, stats))

    @property
    def __name__(self) -> str:  # used in error messages and transformation names
        return self.expression.source

    def __repr__(self) -> str:
        return f"ExpressionFunction({self.expression.source!r})"
