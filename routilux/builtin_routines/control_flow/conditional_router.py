"""ConditionalRouter: send each message out of the event of the route it matches."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from routilux.builtin_routines._base import BuiltinRoutine
from routilux.builtin_routines._conditions import Condition
from routilux.exceptions import ConfigurationError


class ConditionalRouter(BuiltinRoutine):
    """Routes data to one event per route.

    ``routes`` is a list of ``(name, condition)`` pairs (or a dict name ->
    condition); each route gets an event called ``name``. A condition is a callable
    ``f(data) -> bool``, a dict of field values that must all be equal
    (``{"kind": "error"}``), or a string expression evaluated by the safe expression
    evaluator with the fields of the data as names (``"priority > 5 and
    'urgent' in tags"``; ``data`` names the data itself). Expressions never use
    ``eval``: they cannot import, call anything but ``len str int float bool abs min
    max``, or reach attributes starting with ``_``.

    ``route_priority="first_match"`` (default) sends the data out of the first route
    that matches; ``"all"`` out of every route that matches. When none matches the
    data goes to ``default_route`` (its event is created too); without a default it
    is dropped and counted in ``stats()["unrouted"]``. A condition that raises fails
    the step (the flow's error strategy applies).

    Config: ``routes`` (default ``[]``), ``default_route`` (None), ``route_priority``
    (``"first_match"`` or ``"all"``), ``input_key`` (default ``"data"``; None: the
    whole message). ``add_route(name, condition)`` appends a route.

    Slot ``input``: a message with a ``data`` value.
    Events: one per route and one for ``default_route``, each ``(data, route)`` with
    ``route`` the name of the route taken.
    """

    CONFIG_DEFAULTS = {
        "routes": [],
        "default_route": None,
        "route_priority": "first_match",
        "input_key": "data",
    }

    def __init__(self, **config: Any) -> None:
        self._compiled: list[tuple[str, Condition]] = []
        super().__init__(**config)

    def _setup(self) -> None:
        self.define_slot("input", handler=self._on_input)

    def _check_config(self, key: str, value: Any) -> Any:
        if key == "routes":
            pairs = list(value.items()) if isinstance(value, Mapping) else value
            if isinstance(pairs, (str, bytes)) or not isinstance(pairs, (list, tuple)):
                raise self._bad_config(key, "a list of (name, condition) pairs", value)
            routes: list[tuple[str, Any]] = []
            seen: set[str] = set()
            for pair in pairs:
                if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                    raise self._bad_config(key, "a list of (name, condition) pairs", pair)
                name, condition = pair
                self._check_route_name(name)
                if name in seen:
                    raise ConfigurationError(f"ConditionalRouter: duplicate route {name!r}")
                seen.add(name)
                Condition(condition, f"ConditionalRouter route {name!r}")  # validates
                routes.append((name, condition))
            return routes
        if key == "default_route":
            if value is not None:
                self._check_route_name(value)
            return value
        if key == "route_priority":
            return self._check_choice(key, value, ("first_match", "all"))
        if key == "input_key":
            return self._check_str(key, value, allow_none=True)
        return value

    def _check_route_name(self, name: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(
                f"ConditionalRouter: a route name must be a non-empty str, got {name!r}"
            )

    def _config_changed(self, keys: set[str]) -> None:
        if "routes" in keys:
            self._compiled = [
                (name, Condition(condition, f"route {name!r}"))
                for name, condition in self._config["routes"]
            ]
        names = [name for name, _ in self._config["routes"]]
        if self._config["default_route"] is not None:
            names.append(self._config["default_route"])
        for name in names:
            if self.get_event(name) is None:
                self.define_event(name, ["data", "route"])

    def add_route(self, name: str, condition: Any) -> None:
        """Append a route (and create its event)."""
        self.set_config(routes=[*self._config["routes"], (name, condition)])

    def match(self, data: Any) -> list[str]:
        """The routes ``data`` goes to under the current config."""
        matched: list[str] = []
        all_routes = self._config["route_priority"] == "all"
        for name, condition in self._compiled:
            if condition.test(data):
                matched.append(name)
                if not all_routes:
                    break
        if not matched and self._config["default_route"] is not None:
            matched.append(self._config["default_route"])
        return matched

    def _on_input(self, /, **message: Any) -> None:
        data = self._input_value(message)
        routes = self.match(data)
        if not routes:
            self._count("unrouted")
            return
        for route in routes:
            self._count(f"route:{route}")
            self.emit(route, data=data, route=route)
