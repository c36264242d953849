"""Checking a flow file, in phases, collecting every problem of a phase at once.

1. parse (malformed YAML/JSON: one problem, nothing else can be checked);
2. the schema (:mod:`~routilux.flowfile.schema`);
3. the allow-list: every class reference is checked *before anything is imported*;
4. import, and build each routine with no arguments: a class that is not a Routine,
   a constructor that raises, a config key the routine does not accept or a value
   it refuses (built-in condition strings are compiled here, by the safe
   expression interpreter, never evaluated as Python);
5. the wiring (:mod:`~routilux.flowfile.wiring`): events, slots, entry, cycles
   without an exit and unreachable routines (warnings).

A phase runs only when the ones before it found no error.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routilux._validate import check_ray_options
from routilux.error_handler import ErrorHandler
from routilux.exceptions import ConfigurationError, RoutiluxError
from routilux.flowfile import classes, wiring
from routilux.flowfile.positions import Document, ParseError, format_of, parse
from routilux.flowfile.problems import Problem, errors
from routilux.flowfile.schema import flow_file_schema
from routilux.flowfile.schema_check import SchemaChecker
from routilux.routine import Routine
from routilux.runtime.restart import RestartPolicy

_CHECKER = SchemaChecker(flow_file_schema())


@dataclass
class RoutineSpec:
    """One routine of a checked file, built and configured."""

    routine_id: str
    routine: Routine
    execution: str = "thread"
    workers: int = 1
    restart: RestartPolicy | None = None
    timeout: float | None = None
    ray_options: dict[str, Any] | None = None


@dataclass
class Checked:
    """The outcome of checking a flow file: its problems, and what it describes."""

    file: str
    problems: list[Problem] = field(default_factory=list)
    doc: Document | None = None
    base: Path | None = None  # the file's directory (modules, relative store paths)
    routines: dict[str, RoutineSpec] = field(default_factory=dict)
    connections: list[wiring.Link] = field(default_factory=list)
    entry: tuple[str, str] | None = None
    restart: RestartPolicy | None = None
    error_handler: ErrorHandler | None = None

    @property
    def ok(self) -> bool:
        """True when no problem is an error (warnings allowed)."""
        return not errors(self.problems)


def check_file(path: str | Path, allowed_modules: Iterable[str] = ()) -> Checked:
    """Check the flow file at ``path``; see the module docstring for the phases."""
    file = str(path)
    allowed = classes.check_allow_list(allowed_modules)
    fmt = format_of(file)
    if fmt is None:
        problem = Problem(file, 0, 0, "a flow file's name ends in .yaml, .yml or .json")
        return Checked(file, [problem])
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        return Checked(file, [Problem(file, 0, 0, f"cannot read the file: {reason}")])
    return check_text(text, file, fmt, allowed, Path(path).resolve().parent)


def check_text(
    text: str,
    file: str,
    fmt: str,
    allowed_modules: Iterable[str] = (),
    base: Path | None = None,
) -> Checked:
    """Check flow file ``text`` (``fmt``: ``"yaml"`` or ``"json"``); ``file`` names it
    in problems. Modules in ``base`` (the file's directory) can be imported, when
    allowed; it is added at the end of ``sys.path``, so installed packages win."""
    allowed = classes.check_allow_list(allowed_modules)
    checked = Checked(file, base=base)
    _check(text, fmt, allowed, checked)
    checked.problems.sort(key=lambda p: (p.line, p.column))
    return checked


def _check(text: str, fmt: str, allowed: tuple[str, ...], checked: Checked) -> None:
    file, base = checked.file, checked.base
    try:
        doc = checked.doc = parse(text, file, fmt)
    except ParseError as exc:
        checked.problems.append(exc.problem)
        return
    checked.problems.extend(_CHECKER.check(doc))
    checked.problems.extend(_check_allowed(doc, allowed))
    if not checked.ok:
        return  # nothing was imported
    if base is not None and str(base) not in sys.path:
        sys.path.append(str(base))  # process routines' children get it too
    _build_routines(doc, checked, allowed)
    checked.restart = _restart(doc, ("restart",), checked.problems)
    checked.error_handler = _error_handler(doc, ("error_handler",), allowed, checked.problems)
    if not checked.ok:
        return
    routines = {rid: spec.routine for rid, spec in checked.routines.items()}
    checked.connections, checked.entry, found = wiring.check(doc, routines)
    checked.problems.extend(found)


def _class_refs(doc: Document) -> list[tuple[tuple[Any, ...], str, str]]:
    """(path, reference, kind) of every class named in the file; tolerant of a file
    that broke the schema, so the allow-list is checked in the same run."""

    def mapping(value: Any) -> dict:
        return value if isinstance(value, dict) else {}

    refs = []
    data = mapping(doc.data)
    handlers = [(("error_handler",), data.get("error_handler"))]
    for rid, spec in mapping(data.get("routines")).items():
        spec = mapping(spec)
        if isinstance(spec.get("class"), str):
            refs.append((("routines", rid, "class"), spec["class"], "routine"))
        handlers.append((("routines", rid, "error_handler"), spec.get("error_handler")))
    for path, handler in handlers:
        names = mapping(handler).get("retryable_exceptions")
        for i, ref in enumerate(names if isinstance(names, list) else ()):
            if isinstance(ref, str):
                refs.append(((*path, "retryable_exceptions", i), ref, "exception"))
    return refs


def _check_allowed(doc: Document, allowed: tuple[str, ...]) -> list[Problem]:
    problems = []
    for path, ref, kind in _class_refs(doc):
        reason = classes.refusal(ref, allowed, kind)
        if reason is not None:
            problems.append(doc.problem(path, f"class {ref!r}: {reason}"))
    return problems


def _build_routines(doc: Document, checked: Checked, allowed: tuple[str, ...]) -> None:
    for rid, spec in doc.data["routines"].items():
        path = ("routines", rid)
        routine = _instantiate(doc, path, spec["class"], allowed, checked.problems)
        if routine is None:
            continue
        _configure(doc, path, routine, spec.get("config", {}), checked.problems)
        handler = _error_handler(doc, (*path, "error_handler"), allowed, checked.problems)
        if handler is not None:
            routine.set_error_handler(handler)
        checked.routines[rid] = RoutineSpec(
            rid,
            routine,
            spec.get("execution", "thread"),
            int(spec.get("workers", 1)),
            _restart(doc, (*path, "restart"), checked.problems),
            spec.get("timeout"),
            spec.get("ray_options"),
        )
        _check_execution(doc, path, checked.routines[rid], checked.problems)


def _instantiate(
    doc: Document, path: tuple, ref: str, allowed: tuple[str, ...], problems: list[Problem]
) -> Routine | None:
    where = (*path, "class")
    try:
        cls = classes.import_ref(ref, allowed)
    except Exception as exc:  # the module's own code raised while being imported
        problems.append(doc.problem(where, f"class {ref!r}: {_reason(exc)}"))
        return None
    if not (isinstance(cls, type) and issubclass(cls, Routine)):
        kind = "a class" if isinstance(cls, type) else f"a {type(cls).__name__}"
        problems.append(doc.problem(where, f"class {ref!r} is {kind}, not a Routine class"))
        return None
    try:
        return cls()
    except Exception as exc:
        problems.append(
            doc.problem(
                where,
                f"class {ref!r}: {cls.__name__}() raised {_reason(exc)}; a flow file builds "
                "each routine with no arguments, then applies its config",
            )
        )
        return None


def _configure(
    doc: Document, path: tuple, routine: Routine, config: dict, problems: list[Problem]
) -> None:
    cls = type(routine)
    known = getattr(cls, "CONFIG_DEFAULTS", None)
    for key, value in config.items():
        where = (*path, "config", key)
        if isinstance(known, Mapping) and key not in known:
            problems.append(
                doc.problem(
                    where,
                    f"{cls.__name__} has no config key {key!r}; its keys: "
                    f"{', '.join(sorted(known)) or 'none'}",
                    key=True,
                )
            )
            continue
        try:
            routine.set_config(**{key: value})
        except Exception as exc:
            problems.append(doc.problem(where, f"routine {path[-1]!r}: {_reason(exc)}"))


def _restart(doc: Document, path: tuple, problems: list[Problem]) -> RestartPolicy | None:
    spec = _at(doc.data, path)
    if spec is None:
        return None
    try:
        return RestartPolicy(**spec)
    except Exception as exc:
        problems.append(doc.problem(path, _reason(exc)))
        return None


def _error_handler(
    doc: Document, path: tuple, allowed: tuple[str, ...], problems: list[Problem]
) -> ErrorHandler | None:
    spec = _at(doc.data, path)
    if spec is None:
        return None
    spec = dict(spec)
    names = spec.pop("retryable_exceptions", None)
    exceptions = []
    for i, ref in enumerate(names or ()):
        try:
            cls = classes.import_ref(ref, allowed)
        except Exception as exc:
            problems.append(doc.problem((*path, "retryable_exceptions", i), _reason(exc)))
            continue
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            message = f"{ref!r} is not an exception class"
            problems.append(doc.problem((*path, "retryable_exceptions", i), message))
            continue
        exceptions.append(cls)
    try:
        return ErrorHandler(retryable_exceptions=exceptions or None, **spec)
    except Exception as exc:
        problems.append(doc.problem(path, _reason(exc)))
        return None


def _check_execution(
    doc: Document, path: tuple, spec: RoutineSpec, problems: list[Problem]
) -> None:
    if spec.timeout is not None and spec.execution == "thread":
        problems.append(
            doc.problem(
                (*path, "timeout"),
                "timeout needs execution: process (a thread cannot be interrupted; a "
                "process is killed and restarted)",
            )
        )
    if spec.ray_options is not None and spec.execution != "ray":
        problems.append(
            doc.problem(
                (*path, "ray_options"),
                f"ray_options needs execution: ray (got {spec.execution!r})",
            )
        )
    elif spec.ray_options is not None:
        try:
            check_ray_options("ray_options", spec.ray_options)
        except ConfigurationError as exc:
            problems.append(doc.problem((*path, "ray_options"), _reason(exc)))


def _at(data: Any, path: tuple) -> Any:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _reason(exc: BaseException) -> str:
    """One line: routilux's own messages as they are, others with their type."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, RoutiluxError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
