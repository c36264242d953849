"""Finding a flow from a command-line target: ``path/to/file.py:NAME``, ``module:NAME``
or a flow file (``.yaml``, ``.yml``, ``.json``)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cloudpickle

from routilux._validate import a_type
from routilux.exceptions import ConfigurationError
from routilux.flow import Flow
from routilux.flowfile import format_of
from routilux.serialization import is_plain_callable


def load_flow(target: str, allowed_modules: Iterable[str] = ()) -> Flow:
    """Import ``target`` and return its Flow (a Flow object or a function returning one);
    a flow file is read with :meth:`Flow.from_file` and ``allowed_modules``."""
    if format_of(target) is not None:
        return Flow.from_file(target, allowed_modules)
    source, sep, name = target.rpartition(":")
    if not sep or not source or not name:
        raise ConfigurationError(
            f"{target!r} is not a flow target; use FILE.py:NAME, module:NAME or a flow "
            "file (.yaml, .yml, .json)"
        )
    module = _import(source)
    obj: Any = module
    for part in name.split("."):
        if not hasattr(obj, part):
            raise ConfigurationError(f"{source} has no attribute {name!r}")
        obj = getattr(obj, part)
    if is_plain_callable(obj) and not isinstance(obj, Flow):
        try:
            obj = obj()
        except TypeError as exc:
            raise ConfigurationError(f"{target}: calling {name}() failed: {exc}") from None
    if not isinstance(obj, Flow):
        raise ConfigurationError(
            f"{target} is {a_type(obj)}, not a Flow (or a function returning one)"
        )
    return obj


def _import(source: str) -> Any:
    if source.endswith(".py") or "/" in source or source.startswith("."):
        path = Path(source).resolve()
        if not path.is_file():
            raise ConfigurationError(f"no such file: {source}")
        module_name = f"routilux_target_{path.stem}"
        if module_name in sys.modules:
            return sys.modules[module_name]
        directory = str(path.parent)
        if directory not in sys.path:
            sys.path.insert(0, directory)  # so the file's own imports work
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ConfigurationError(f"cannot import {source}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception:
            del sys.modules[module_name]
            raise
        # Routine processes cannot import a file loaded under a made-up name:
        # ship its classes and functions by value instead.
        cloudpickle.register_pickle_by_value(module)
        return module
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        return importlib.import_module(source)
    except ModuleNotFoundError as exc:
        raise ConfigurationError(f"cannot import module {source!r}: {exc}") from None


def choose_entry(flow: Flow, entry: str | None, slot: str) -> tuple[str, str]:
    """``(routine, slot)`` a job starts at: ``entry`` if given, else the flow file's
    ``entry``, else :func:`default_entry`."""
    if entry:
        return entry, slot
    if flow.entry is not None:
        return flow.entry
    return default_entry(flow, slot), slot


def default_entry(flow: Flow, slot: str) -> str:
    """The entry routine when none is named: the only routine with ``slot`` and no
    incoming connection to it."""
    fed = {id(c.target_slot) for c in flow.connections}
    candidates = [
        rid
        for rid, routine in flow.routines.items()
        if routine.get_slot(slot) is not None and id(routine.get_slot(slot)) not in fed
    ]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise ConfigurationError(
            f"no routine has an unconnected {slot!r} slot; name the entry with --entry "
            f"(routines: {sorted(flow.routines)})"
        )
    raise ConfigurationError(
        f"several routines could be the entry ({', '.join(sorted(candidates))}); "
        "choose one with --entry"
    )
