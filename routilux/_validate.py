"""Argument checks shared by the public constructors.

Each check raises a one-line :class:`ConfigurationError` that names the parameter,
shows the value given (and its type) and says what is accepted, so a wrong
argument fails where it is passed, not later on a supervisor thread.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Any

from routilux.exceptions import ConfigurationError

_REPR_LIMIT = 80
# What every checkpoint store offers (duck-typed: subclasses in tests, custom stores).
_STORE_METHODS = ("save", "load_latest", "add_intent", "intents", "list_jobs")


def a_type(value: Any) -> str:
    """``'an int'``, ``'a str'``, ``'None'``: the type of ``value`` with its article."""
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def shown(value: Any) -> str:
    """A one-line, bounded repr of ``value`` for an error message."""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__} whose repr() failed>"
    text = " ".join(text.split())
    if len(text) > _REPR_LIMIT:
        text = text[: _REPR_LIMIT - 3] + "..."
    return text


def invalid(name: str, value: Any, accepted: str, hint: str = "") -> ConfigurationError:
    """The error for ``name=value`` when ``accepted`` describes what would do."""
    got = shown(value)
    if value is not None:
        got += f" ({a_type(value)})"
    message = f"{name} must be {accepted}, got {got}"
    if hint:
        message += f"; {hint}"
    return ConfigurationError(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(name: str, value: Any, minimum: int, *, optional: bool = False) -> int | None:
    """An int (not a bool) ``>= minimum``; None too when ``optional``."""
    if value is None and optional:
        return None
    if not _is_int(value) or value < minimum:
        accepted = f"an int >= {minimum}" + (" or None" if optional else "")
        raise invalid(name, value, accepted)
    return int(value)


def check_number(
    name: str,
    value: Any,
    *,
    positive: bool = True,
    optional: bool = False,
    allow_inf: bool = False,
    unit: str = "seconds",
) -> float | None:
    """A finite int or float, ``> 0`` (``positive``) or ``>= 0``; None when ``optional``."""
    if value is None and optional:
        return None
    ok = _is_number(value) and not math.isnan(value)
    if ok and math.isinf(value) and not allow_inf:
        ok = False
    if ok:
        ok = value > 0 if positive else value >= 0
    if not ok:
        bound = "> 0" if positive else ">= 0"
        what = f"a number of {unit} {bound}" if unit else f"a number {bound}"
        raise invalid(name, value, what + (" or None" if optional else ""))
    return value


def check_bool(name: str, value: Any) -> bool:
    """True or False."""
    if not isinstance(value, bool):
        raise invalid(name, value, "True or False")
    return value


def check_str(name: str, value: Any, *, optional: bool = False) -> str | None:
    """A non-empty string; None too when ``optional``."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise invalid(name, value, "a non-empty string" + (" or None" if optional else ""))
    return value


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """One of ``choices``."""
    options = tuple(choices)
    if not isinstance(value, str) or value not in options:
        raise invalid(name, value, "one of " + ", ".join(repr(c) for c in options))
    return value


def check_instance(name: str, value: Any, cls: type, *, optional: bool = True) -> Any:
    """An instance of ``cls`` (or None when ``optional``); a dict gets a hint to
    build the object from it."""
    if (value is None and optional) or isinstance(value, cls):
        return value
    accepted = f"a {cls.__name__}" + (" or None" if optional else "")
    hint = ""
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        args = ", ".join(f"{k}={shown(v)}" for k, v in value.items())
        hint = f"write {name}={cls.__name__}({args})"
    raise invalid(name, value, accepted, hint)


RAY_OPTIONS = ("num_cpus", "num_gpus", "memory", "resources", "scheduling_strategy", "runtime_env")


def check_ray_options(name: str, value: Any) -> dict[str, Any] | None:
    """Placement options for a ray routine's actors: a dict with only the keys of
    ``RAY_OPTIONS``, numbers >= 0 where Ray wants numbers (None: the defaults)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid(name, value, "a dict of Ray actor options or None")
    unknown = sorted(str(k) for k in value if k not in RAY_OPTIONS)
    if unknown:
        raise ConfigurationError(
            f"{name} has unknown key {unknown[0]!r}; accepted keys: {', '.join(RAY_OPTIONS)} "
            "(routilux sets name, namespace and restarts itself)"
        )
    for key in ("num_cpus", "num_gpus", "memory"):
        if key in value:
            check_number(f"{name}[{key!r}]", value[key], positive=False, unit="")
    resources = value.get("resources")
    if resources is not None and not (
        isinstance(resources, dict)
        and all(isinstance(k, str) and _is_number(v) and v >= 0 for k, v in resources.items())
    ):
        raise invalid(f"{name}['resources']", resources, "a dict of resource name -> number >= 0")
    runtime_env = value.get("runtime_env")
    if runtime_env is not None and not isinstance(runtime_env, dict):
        raise invalid(f"{name}['runtime_env']", runtime_env, "a dict (a Ray runtime_env)")
    return dict(value)


def check_store(name: str, value: Any, *, optional: bool = True) -> Any:
    """A checkpoint store object (or None); a path gets a hint to open it first."""
    if value is None and optional:
        return None
    if all(callable(getattr(value, m, None)) for m in _STORE_METHODS):
        return value
    hint = ""
    if isinstance(value, (str, os.PathLike)):
        path = os.fspath(value)
        hint = (
            f"wrap the path: {name}=SQLiteStore({path!r}) or open_store({path!r}) "
            "(from routilux.checkpoint.stores)"
        )
    raise invalid(name, value, "a checkpoint store (SQLiteStore, DirectoryStore)", hint)


__all__ = [
    "a_type",
    "check_bool",
    "check_choice",
    "check_instance",
    "check_int",
    "check_number",
    "check_ray_options",
    "check_store",
    "check_str",
    "invalid",
    "shown",
]
