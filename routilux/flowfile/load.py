"""Building a Flow from a checked flow file (``Flow.from_file`` delegates here).

The flow class is passed in (``Flow.from_file`` passes its own class), so this
package never imports :mod:`routilux.flow`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from routilux.checkpoint.stores import open_store
from routilux.exceptions import RoutiluxError
from routilux.flowfile.problems import Problem, flow_file_error
from routilux.flowfile.validate import Checked, check_file

logger = logging.getLogger("routilux.flowfile")

# Flow constructor options a file sets directly (same names, same meaning).
FLOW_OPTIONS = (
    "flow_id",
    "execution_strategy",
    "max_workers",
    "execution_timeout",
    "max_queued_per_routine",
    "record_history",
    "keep_finished_jobs",
)
_INTEGERS = ("max_workers", "max_queued_per_routine", "keep_finished_jobs")


def load_file(path: str | Path, allowed_modules: Iterable[str], flow_class: type) -> Any:
    """Check the flow file at ``path`` and build it as a ``flow_class``.

    Raises :class:`~routilux.exceptions.FlowFileError` (with every problem) when the
    file has errors; warnings are logged.
    """
    checked = check_file(path, allowed_modules)
    if not checked.ok:
        raise flow_file_error(checked.problems)
    for problem in checked.problems:
        logger.warning("%s", problem)
    return build(checked, flow_class)


def store_path(checked: Checked) -> str | None:
    """The checkpoint store path the file names, relative paths taken from the
    file's directory; a trailing ``/`` (a directory store) is kept. None: no store."""
    store = checked.doc.data.get("checkpoint", {}).get("store")
    if store is None:
        return None
    path = Path(store).expanduser()
    if not path.is_absolute() and checked.base is not None:
        path = checked.base / path
    return str(path) + ("/" if store.endswith("/") else "")


def build(checked: Checked, flow_class: type, *, with_store: bool = True) -> Any:
    """A new ``flow_class`` from a :class:`Checked` file without errors.

    ``with_store=False`` leaves the checkpoint store unopened (nothing is created
    on disk; ``routilux validate`` builds this way). Raises FlowFileError when the
    flow refuses a setting (e.g. ``execution: ray`` without the Ray backend).
    """
    doc = checked.doc
    data = doc.data
    problems: list[Problem] = []
    options = {key: data[key] for key in FLOW_OPTIONS if key in data}
    for key in _INTEGERS:
        if key in options:
            options[key] = int(options[key])
    checkpoint = data.get("checkpoint", {})
    if "interval" in checkpoint:
        options["checkpoint_interval"] = checkpoint["interval"]
    path = store_path(checked)
    if path is not None and with_store:
        try:
            options["checkpoint_store"] = open_store(path)
        except (RoutiluxError, OSError) as exc:
            problems.append(doc.problem(("checkpoint", "store"), f"checkpoint store: {exc}"))
            raise flow_file_error(problems) from None
    flow = flow_class(restart=checked.restart, **options)
    for rid, spec in checked.routines.items():
        try:
            flow.add_routine(
                spec.routine,
                rid,
                execution=spec.execution,
                workers=spec.workers,
                restart=spec.restart,
                timeout=spec.timeout,
                ray_options=spec.ray_options,
            )
        except RoutiluxError as exc:
            problems.append(_refused(doc, rid, spec.execution, exc))
    if problems:
        raise flow_file_error(problems)
    for link in checked.connections:
        flow.connect(link.source, link.event, link.target, link.slot, link.param_mapping)
    flow.error_handler = checked.error_handler
    flow.entry = checked.entry
    return flow


def _refused(doc: Any, rid: str, execution: str, exc: Exception) -> Problem:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if execution == "ray" and "routilux[ray]" in reason:
        return doc.problem(
            ("routines", rid, "execution"),
            f"routine {rid!r}: execution 'ray' needs the Ray backend, which this "
            f"routilux installation does not provide ({reason})",
        )
    return doc.problem(("routines", rid), f"routine {rid!r}: {reason}")
