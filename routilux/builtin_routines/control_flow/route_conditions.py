"""The four kinds of ConditionalRouter conditions and how each is tested.

A condition is an expression string (the safe language of
:mod:`routilux.expressions.evaluator`, with ``data``, ``config`` and ``stats``
bound), a callable (called by its signature, as routilux 0.10 did), a dict of field
values (a callable value is a test of the field) or anything else (never matches).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from routilux.builtin_routines._base import is_plain_callable
from routilux.builtin_routines._conditions import expression_names
from routilux.expressions.evaluator import SafeExpression, compile_expression

# how a callable condition is called, decided once from its signature
_DATA_ONLY, _KEYWORDS, _DATA_CONFIG, _UNREADABLE = range(4)


def is_condition_callable(value: Any) -> bool:
    """A callable condition (routine objects are not conditions, even if callable)."""
    return is_plain_callable(value)


def call_plan(condition: Callable[..., Any]) -> tuple[int, tuple[str, ...]]:
    """``(kind, keyword names)`` for calling ``condition`` as routilux 0.10 did."""
    try:
        params = tuple(inspect.signature(condition).parameters)
    except (TypeError, ValueError):
        return _UNREADABLE, ()
    if len(params) == 1:
        return _DATA_ONLY, ()
    if len(params) == 2:
        if "config" in params or "stats" in params:
            return _KEYWORDS, ("data", *(p for p in ("config", "stats") if p in params))
        return _DATA_CONFIG, ()
    names = [p for p in ("data", "config") if p in params]
    if "config" in params and "stats" in params:
        names.append("stats")
    return (_KEYWORDS, tuple(names)) if names else (_DATA_ONLY, ())


def call_condition(
    condition: Callable[..., Any],
    plan: tuple[int, tuple[str, ...]],
    data: Any,
    config: dict[str, Any],
    stats: dict[str, Any],
) -> Any:
    """Call a callable condition; like 0.10, a call that raises is retried as
    ``condition(data)`` (whose exception, if any, propagates)."""
    kind, names = plan
    try:
        if kind == _DATA_CONFIG:
            return condition(data, config)
        if kind == _KEYWORDS:
            given = {"data": data, "config": config, "stats": stats}
            return condition(**{name: given[name] for name in names})
        if kind == _DATA_ONLY:
            return condition(data)
    except Exception:  # 0.10 retries any failure with data alone
        pass
    return condition(data)


def fields_match(condition: Mapping[Any, Any], data: Any) -> bool:
    """Every field present; a callable expected value tests the field's value."""
    if not isinstance(data, Mapping):
        return False
    for field, expected in condition.items():
        if field not in data:
            return False
        value = data[field]
        if is_condition_callable(expected):
            if not expected(value):
                return False
        elif value != expected:
            return False
    return True


class RouteCondition:
    """One route's condition, compiled once; :meth:`test` raises on errors."""

    __slots__ = ("kind", "plan", "spec")

    def __init__(self, spec: Any) -> None:
        self.plan: tuple[int, tuple[str, ...]] = (_DATA_ONLY, ())
        if isinstance(spec, (str, SafeExpression)):
            self.kind = "expression"
            self.spec: Any = compile_expression(spec)
        elif isinstance(spec, Mapping):
            self.kind = "fields"
            self.spec = spec
        elif is_condition_callable(spec):
            self.kind = "callable"
            self.spec = spec
            self.plan = call_plan(spec)
        else:
            self.kind = "never"
            self.spec = spec

    def test(self, data: Any, config: dict[str, Any], stats: dict[str, Any]) -> bool:
        """True when ``data`` matches; raises whatever the condition raised."""
        if self.kind == "expression":
            return bool(self.spec.evaluate(expression_names(data, config, stats)))
        if self.kind == "fields":
            return fields_match(self.spec, data)
        if self.kind == "callable":
            return bool(call_condition(self.spec, self.plan, data, config, stats))
        return False
