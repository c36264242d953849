"""Flow, part four: the graph as data (serialize/deserialize, flow files)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from routilux._imports import import_qualified
from routilux.error_handler import ErrorHandler
from routilux.exceptions import ConfigurationError, FlowStateError
from routilux.flow_jobs import live_flows
from routilux.routine import Routine, added_to_flow
from routilux.runtime import commands
from routilux.runtime.plan import RoutinePlan
from routilux.serialization import dual_method

if TYPE_CHECKING:
    from routilux.flow import Flow

logger = logging.getLogger("routilux.flow")


class FlowFormatMixin:
    """The format half of :class:`~routilux.flow.Flow`."""

    # ------------------------------------------------------------------ serialization
    def serialize(self) -> dict[str, Any]:
        """The graph as a JSON-compatible dict (routine ids on every connection).

        Routines are recorded by class path, config and error handler; handlers are
        code and come back from the class when :meth:`deserialize` builds new
        instances. Callables in config are written as function or method
        references or lambda expressions (see :mod:`routilux.serialization`);
        values with no JSON form are left out and their keys listed under
        ``unserialized_config``: set them again after deserializing. Links made
        with ``Event.connect`` are not included (as in 0.10).
        """
        return {
            "_type": "Flow",
            "format": "routilux.flow/1",
            "flow_id": self.flow_id,
            "execution_strategy": self.execution_strategy,
            "max_workers": self._max_workers,
            "execution_timeout": self.execution_timeout,
            "routines": {rid: _routine_spec(p) for rid, p in self._plans.items()},
            "connections": [
                {
                    "source_routine_id": src,
                    "source_event": event,
                    "target_routine_id": dst,
                    "target_slot": slot,
                    "param_mapping": connection.param_mapping or None,
                }
                for src, event, dst, slot, connection in self._wiring
                if connection in connection.source_event.connections  # still linked
            ],
            "error_handler": self.error_handler.serialize() if self.error_handler else None,
        }

    @dual_method
    def deserialize(cls, data: dict[str, Any]) -> Flow:
        """Build a flow from :meth:`serialize` output (routine classes are imported).

        ``Flow.deserialize(d)`` returns a new flow; ``flow.deserialize(d)`` (the 0.10
        way) replaces that flow's routines and connections and returns it (it must
        run no job). Only load trusted data: it names classes and functions to import.
        """
        if not isinstance(data, dict) or data.get("format") != "routilux.flow/1":
            raise ConfigurationError(
                "not a serialized flow (expected format 'routilux.flow/1'); 0.10's flow "
                "format does not load: rebuild the flow in code, then serialize() it again"
            )
        flow = cls(
            data.get("flow_id"),
            data.get("execution_strategy", "sequential"),
            data.get("max_workers", 5),
            data.get("execution_timeout"),
        )
        for rid, spec in data["routines"].items():
            routine = _import_class(spec["class"])()
            routine._deserialize_config(spec.get("config", {}))
            if spec.get("error_handler"):
                routine.set_error_handler(ErrorHandler().deserialize(spec["error_handler"]))
            flow.add_routine(
                routine,
                rid,
                execution=spec.get("execution", "thread"),
                workers=spec.get("workers", 1),
                timeout=spec.get("timeout"),
                ray_options=spec.get("ray_options"),
            )
        for c in data["connections"]:
            flow.connect(
                c["source_routine_id"],
                c["source_event"],
                c["target_routine_id"],
                c["target_slot"],
                c.get("param_mapping"),
            )
        handler = data.get("error_handler")
        if handler:
            flow.error_handler = ErrorHandler().deserialize(handler)
        return flow

    @deserialize.instance
    def _deserialize_into(self, data: dict[str, Any]) -> Flow:
        loaded = type(self).deserialize(data)
        with self._lock:
            if self._supervisor is not None and self._supervisor.ask(commands.GetLiveJobs()):
                raise FlowStateError(
                    f"flow {self.flow_id!r} runs jobs; deserialize into an idle flow"
                )
        self.shutdown()
        live_flows.discard(loaded)
        self.__dict__.update(loaded.__dict__)
        for routine in self.routines.values():
            added_to_flow(routine, self)
        return self

    # ------------------------------------------------------------------ flow files
    #: The entry routine and slot a flow file named (set by :meth:`from_file`).
    entry: tuple[str, str] | None = None

    @classmethod
    def from_file(cls, path: str, allowed_modules: Iterable[str] = ()) -> Flow:
        """Build a flow from a YAML or JSON flow file ``path`` (a str or path object;
        see the "Flow files" docs page).

        Routine classes are imported only from modules in ``allowed_modules``
        (``"package.module"``, or ``"package.*"`` for a package and everything below
        it); built-in routines are always allowed. Nothing is imported before the
        file passed its syntax, schema and allow-list checks. Raises
        :class:`~routilux.exceptions.FlowFileError` listing every problem found.
        """
        from routilux.flowfile import load_file  # PyYAML loads on first use only

        return load_file(path, allowed_modules, cls)

    def to_file(self, path: str) -> None:
        """Write this flow as a flow file (YAML, or JSON for a ``.json`` path) that
        :meth:`from_file` loads back to an equal graph."""
        from routilux.flowfile import dump_file  # PyYAML loads on first use only

        dump_file(self, path)


def _routine_spec(plan: RoutinePlan) -> dict[str, Any]:
    routine = plan.routine
    config = routine._serialize_config(strict=False)
    handler = routine.get_error_handler()
    return {
        "class": f"{type(routine).__module__}:{type(routine).__qualname__}",
        "config": config,
        "unserialized_config": sorted(set(routine._config) - set(config)),
        "error_handler": handler.serialize() if handler is not None else None,
        "execution": plan.execution,
        "workers": plan.workers,
        "timeout": plan.timeout,
        "ray_options": dict(plan.ray_options) if plan.ray_options else None,
    }


def _import_class(path: str) -> type:
    module_name, _, qualname = path.partition(":")
    try:
        obj = import_qualified(module_name, qualname)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot import routine class {path!r}: {exc}") from exc
    if not (isinstance(obj, type) and issubclass(obj, Routine)):
        raise ConfigurationError(f"{path!r} is not a Routine class")
    return obj
