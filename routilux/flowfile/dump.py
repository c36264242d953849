"""Writing a Flow as a flow file (``flow.to_file`` delegates here).

What is written loads back (``Flow.from_file``) to an equal graph: the same routine
ids, classes and config, the same execution settings, restart policies and error
handlers, the same connections in the same order, and the same flow options.
Config is written as the keys whose values differ from a freshly built routine's;
values must be data (JSON types; tuples are written as lists). A flow holding code
in its config (a function, a lambda) cannot be written: flow files hold no code.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
from pathlib import Path
from typing import Any

import yaml

from routilux.checkpoint.stores import DirectoryStore
from routilux.error_handler import ErrorHandler
from routilux.exceptions import ConfigurationError
from routilux.flowfile import classes
from routilux.flowfile.load import FLOW_OPTIONS
from routilux.flowfile.positions import format_of
from routilux.flowfile.schema import FORMAT_VERSION, SCHEMA_ID
from routilux.runtime.restart import RestartPolicy

_HEADER = (
    f"# yaml-language-server: $schema={SCHEMA_ID}\n"
    "# A routilux flow file: `routilux validate FILE` checks it, `routilux run FILE` runs it.\n"
)


class _Dumper(yaml.SafeDumper):
    """Safe YAML, with nested lists indented and short lists of scalars on one line."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    scalars = all(isinstance(item, (str, int, float, type(None))) for item in data)
    inline = scalars and len(data) <= 8 and len(repr(data)) <= 60
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=inline)


_Dumper.add_representer(list, _represent_list)


def dump_file(flow: Any, path: str | Path) -> None:
    """Write ``flow`` to ``path`` (YAML for .yaml/.yml, JSON for .json)."""
    fmt = format_of(str(path))
    if fmt is None:
        raise ConfigurationError(f"{path}: a flow file's name ends in .yaml, .yml or .json")
    data = flow_to_data(flow, Path(path).resolve().parent)
    Path(path).write_text(to_text(data, fmt), encoding="utf-8")


def to_text(data: dict[str, Any], fmt: str) -> str:
    """Flow file text of ``data`` in ``fmt`` (``"yaml"`` or ``"json"``)."""
    if fmt == "json":
        return json.dumps({"$schema": SCHEMA_ID, **data}, indent=2) + "\n"
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return _HEADER + body


def flow_to_data(flow: Any, base: Path | None = None) -> dict[str, Any]:
    """The flow file content of ``flow`` as plain data; a checkpoint store inside
    ``base`` is written relative to it."""
    data: dict[str, Any] = {"version": FORMAT_VERSION}
    if flow.has_fixed_id:
        data["flow_id"] = flow.flow_id
    defaults = _defaults(type(flow).__init__)
    for key in FLOW_OPTIONS[1:]:
        value = getattr(flow, "_" + key, getattr(flow, key))  # _max_workers: as configured
        if key in ("execution_strategy", "max_workers") or value != defaults.get(key):
            data[key] = value
    if flow.restart is not None:
        data["restart"] = _restart(flow.restart, "the flow")
    if flow.error_handler is not None:
        data["error_handler"] = _error_handler(flow.error_handler)
    checkpoint = _checkpoint(flow, defaults, base)
    if checkpoint:
        data["checkpoint"] = checkpoint
    entry = getattr(flow, "entry", None)
    if entry is not None:
        data["entry"] = _endpoint(*entry, "slot")
    data["routines"] = {rid: _routine(rid, plan) for rid, plan in flow._plans.items()}
    connections = [
        _connection(src, event, dst, slot, connection)
        for src, event, dst, slot, connection in flow._wiring
        if connection in connection.source_event.connections  # not disconnected since
    ]
    if connections:
        data["connections"] = connections
    return data


def _defaults(function: Any) -> dict[str, Any]:
    return {
        name: p.default
        for name, p in inspect.signature(function).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def _checkpoint(flow: Any, defaults: dict[str, Any], base: Path | None) -> dict[str, Any]:
    checkpoint: dict[str, Any] = {}
    store = flow.checkpoint_store
    if store is not None:
        location = Path(os.path.abspath(store.location))
        if base is not None and location.is_relative_to(base):
            location = location.relative_to(base)
        checkpoint["store"] = str(location) + ("/" if isinstance(store, DirectoryStore) else "")
    if flow.checkpoint_interval != defaults.get("checkpoint_interval"):
        checkpoint["interval"] = flow.checkpoint_interval
    return checkpoint


def _routine(rid: str, plan: Any) -> dict[str, Any]:
    routine = plan.routine
    spec: dict[str, Any] = {"class": classes.class_ref(type(routine))}
    config = _config_changes(routine)
    if config:
        spec["config"] = {
            key: _plain(value, f"routine {rid!r}: config {key!r}") for key, value in config.items()
        }
    if plan.execution != "thread":
        spec["execution"] = plan.execution
    if plan.workers != 1:
        spec["workers"] = plan.workers
    if plan.restart is not None:
        spec["restart"] = _restart(plan.restart, f"routine {rid!r}")
    if plan.timeout is not None:
        spec["timeout"] = plan.timeout
    if plan.ray_options:
        spec["ray_options"] = _plain(dict(plan.ray_options), f"routine {rid!r}: ray_options")
    handler = routine.get_error_handler()
    if handler is not None:
        spec["error_handler"] = _error_handler(handler)
    return spec


def _config_changes(routine: Any) -> dict[str, Any]:
    """The config keys whose values a fresh instance does not already have."""
    try:
        fresh = type(routine)()._config
    except Exception:  # cannot be built without arguments: from_file will say so
        fresh = {}
    return {k: v for k, v in routine._config.items() if k not in fresh or fresh[k] != v}


def _plain(value: Any, what: str) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigurationError(f"{what}: {value} has no JSON form")
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(item, f"{what}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise ConfigurationError(f"{what}: key {key!r} is not a string")
        return {key: _plain(item, f"{what}[{key!r}]") for key, item in value.items()}
    kind = "a function" if callable(value) else f"a {type(value).__name__}"
    raise ConfigurationError(
        f"{what} holds {kind}; a flow file holds data, not code: use data (for "
        "ConditionalRouter, a condition string or a field dict) or keep this flow in Python"
    )


def _restart(policy: Any, what: str) -> dict[str, Any]:
    if not isinstance(policy, RestartPolicy):
        raise ConfigurationError(f"{what}: restart {policy!r} is not a RestartPolicy")
    return dataclasses.asdict(policy)


def _error_handler(handler: ErrorHandler) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "strategy": handler.strategy.value,
        "max_retries": handler.max_retries,
        "retry_delay": handler.retry_delay,
        "retry_backoff": handler.retry_backoff,
        "is_critical": handler.is_critical,
    }
    if tuple(handler.retryable_exceptions) != (Exception,):
        spec["retryable_exceptions"] = [classes.class_ref(c) for c in handler.retryable_exceptions]
    return spec


def _endpoint(rid: str, name: str, kind: str) -> Any:
    if "." in name or not rid:
        return {"routine": rid, kind: name}
    return f"{rid}.{name}"


def _connection(src: str, event: str, dst: str, slot: str, connection: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "from": _endpoint(src, event, "event"),
        "to": _endpoint(dst, slot, "slot"),
    }
    if connection.param_mapping:
        spec["param_mapping"] = dict(connection.param_mapping)
    return spec
