"""ConditionalRouter: send each message out of the event of the route it matches."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from routilux.builtin_routines._base import AUTO, BuiltinRoutine
from routilux.builtin_routines.control_flow.route_conditions import RouteCondition
from routilux.exceptions import ConfigurationError, UnsafeExpressionError
from routilux.expressions.evaluator import SafeExpression, compile_expression

logger = logging.getLogger(__name__)

ROUTE_PARAMS = ["data", "route"]


class ConditionalRouter(BuiltinRoutine):
    """Routes data to one event per route, as routilux 0.10's ConditionalRouter.

    ``routes`` is a list of ``(name, condition)`` pairs, tested in order (a name may
    appear twice: its conditions act as an OR). Each route emits on the event called
    ``name`` (created by ``set_config``, ``add_route`` or, at the latest, the first
    time data goes there) with ``data=<input>, route=<name>``.

    A condition is:

    * an expression string in the safe expression language (never ``eval``), with
      ``data`` (the input), ``config`` (this routine's config: user keys such as
      ``threshold=10`` included) and ``stats`` bound:
      ``"data.get('value', 0) > config.get('threshold', 0)"``;
    * a callable, called by its signature: ``f(data)``, ``f(data, config)``, or with
      keywords ``data``/``config``/``stats`` when it names them;
    * a dict ``{field: expected}``: the data is a dict holding every field, equal to
      ``expected`` (or, for a callable ``expected``, ``expected(value)`` is true);
    * anything else never matches (a warning is logged once).

    A condition that raises means "no match": routing goes on with the next route,
    the error is counted in ``stats()["condition_errors"]`` and the first one of each
    route is logged at WARNING (``strict_conditions=True``: it fails the step).

    ``route_priority="first_match"`` (default) stops at the first match; any other
    value (``"all_matches"``, ``"all"``) emits on every matching route. Nothing
    matched: the ``default_route`` event if set, else ``output`` with
    ``route="unmatched"``.

    Config: ``routes`` (default ``[]``), ``default_route`` (None), ``route_priority``
    (``"first_match"``), ``input_key`` (``"auto"``: the 0.10 input rule),
    ``strict_conditions`` (False); any other key is stored for conditions to read.

    Slot ``input`` (``input_slot``).
    Events: ``output(data, route)`` (``default_output``), and one ``(data, route)``
    event per route and for ``default_route``.
    """

    CONFIG_DEFAULTS = {
        "routes": [],
        "default_route": None,
        "route_priority": "first_match",
        "input_key": AUTO,
        "strict_conditions": False,
    }

    def __init__(self, **config: Any) -> None:
        self._compiled: dict[Any, RouteCondition] = {}
        self._reported: set[str] = set()
        super().__init__(**config)

    def _setup(self) -> None:
        self.input_slot = self.define_slot("input", handler=self._on_input)
        self.default_output = self.define_event("output", ROUTE_PARAMS)

    def _check_config(self, key: str, value: Any) -> Any:
        if key == "routes":
            pairs = list(value.items()) if isinstance(value, Mapping) else value
            if isinstance(pairs, (str, bytes)) or not isinstance(pairs, (list, tuple)):
                raise self._bad_config(key, "a list of (name, condition) pairs", value)
            routes: list[tuple[str, Any]] = []
            for pair in pairs:
                if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                    raise self._bad_config(key, "a list of (name, condition) pairs", pair)
                name, condition = pair
                self._check_route_name(name)
                self._check_condition(name, condition)
                routes.append((name, condition))
            return routes
        if key == "default_route":
            if value:  # None or "" (as in 0.10): no default route
                self._check_route_name(value)
            return value
        if key == "input_key":
            return self._check_str(key, value, allow_none=True)
        return value

    def _check_route_name(self, name: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(
                f"ConditionalRouter: a route name must be a non-empty str, got {name!r}"
            )

    def _check_condition(self, name: str, condition: Any) -> None:
        if isinstance(condition, (str, SafeExpression)):
            try:
                compile_expression(condition)
            except UnsafeExpressionError as exc:
                raise UnsafeExpressionError(
                    f"ConditionalRouter route {name!r}: {exc} (conditions are run by a safe "
                    "interpreter, not eval)"
                ) from None

    def _config_changed(self, keys: set[str]) -> None:
        if "routes" in keys:
            self._compiled.clear()  # compiled again on use; old conditions are let go
        if keys & {"routes", "default_route"}:
            for name in self._route_names():
                self._event_for(name)

    def _route_names(self) -> list[str]:
        names = [pair[0] for pair in self._config.get("routes") or ()]
        default = self._config.get("default_route")
        return [*names, default] if default else names

    def _event_for(self, name: str) -> None:
        if self.get_event(name) is None:
            self.define_event(name, ROUTE_PARAMS)

    def add_route(self, name: str, condition: Any) -> None:
        """Append a route (and create its event)."""
        self.set_config(routes=[*self._config.get("routes", []), (name, condition)])

    # -- routing ---------------------------------------------------------------------
    def _condition(self, spec: Any) -> RouteCondition:
        try:
            return self._compiled[spec]
        except TypeError:  # unhashable (a dict condition): cheap to wrap each time
            return RouteCondition(spec)
        except KeyError:
            compiled = self._compiled[spec] = RouteCondition(spec)
            return compiled

    def match(self, data: Any) -> list[str]:
        """The routes ``data`` goes to under the current config (duplicates removed)."""
        config = dict(self._config)
        stats = dict(self._stats)
        first_only = config.get("route_priority", "first_match") == "first_match"
        strict = bool(config.get("strict_conditions"))
        matched: list[str] = []
        for name, spec in config.get("routes") or ():
            try:
                condition = self._condition(spec)
                if condition.kind == "never":
                    self._warn_once(name, f"{spec!r} is not a condition")
                    continue
                hit = condition.test(data, config, stats)
            except Exception as exc:
                if strict:
                    raise
                self._count("condition_errors")
                self._warn_once(name, f"its condition raised {type(exc).__name__}: {exc}")
                continue
            if hit:
                if name not in matched:
                    matched.append(name)
                if first_only:
                    break
        return matched

    def _warn_once(self, route: str, message: str) -> None:
        if route not in self._reported:
            self._reported.add(route)
            logger.warning(
                "ConditionalRouter %s route %r: %s (treated as no match)", self._id, route, message
            )

    def _on_input(self, /, **message: Any) -> None:
        data = self._input_value(message)
        routes = self.match(data)
        if routes:
            for route in routes:
                self._event_for(route)
                self._count(f"route:{route}")
                self.emit(route, data=data, route=route)
            return
        default = self._config.get("default_route")
        if default:
            self._event_for(default)
            self._count(f"route:{default}")
            self.emit(default, data=data, route=default)
        else:
            self._count("unmatched")
            self.emit("output", data=data, route="unmatched")
