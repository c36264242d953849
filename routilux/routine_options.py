"""How one routine of a flow runs: ``add_routine``'s execution options, checked once
and frozen into the routine's :class:`~routilux.runtime.plan.RoutinePlan`."""

from __future__ import annotations

import importlib.util
from typing import Any

from routilux._validate import (
    check_choice,
    check_instance,
    check_int,
    check_number,
    check_ray_options,
)
from routilux.exceptions import ConfigurationError
from routilux.runtime.backends import RAY_MISSING
from routilux.runtime.plan import RoutinePlan
from routilux.runtime.restart import RestartPolicy
from routilux.runtime.wire import dumps_or_explain

EXECUTIONS = ("thread", "process", "ray")


def routine_plan(
    rid: str,
    routine: Any,
    execution: str,
    workers: int,
    restart: RestartPolicy | None,
    timeout: float | None,
    ray_options: dict[str, Any] | None,
) -> RoutinePlan:
    """The plan of routine ``rid``, or a one-line ConfigurationError naming the
    option that is wrong. A routine that runs outside this process must pickle now,
    not fail later in a child."""
    check_choice("execution", execution, EXECUTIONS)
    check_int("workers", workers, 1)
    check_instance("restart", restart, RestartPolicy)
    check_number("timeout", timeout, optional=True)
    ray_options = check_ray_options("ray_options", ray_options)
    if execution == "ray" and importlib.util.find_spec("ray") is None:
        raise ConfigurationError(RAY_MISSING)
    if ray_options is not None and execution != "ray":
        raise ConfigurationError(
            f"routine {rid!r}: ray_options needs execution='ray' (got {execution!r})"
        )
    if execution != "thread":
        dumps_or_explain(routine, f"routine {rid!r}:")
    elif timeout is not None:
        raise ConfigurationError(
            f"routine {rid!r}: timeout needs execution='process' or 'ray' (a thread "
            "cannot be interrupted; a process or actor is killed and restarted)"
        )
    return RoutinePlan(rid, routine, execution, workers, restart, timeout, ray_options)
