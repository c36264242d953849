"""Flow files on the command line: `validate`, `schema`, and the `--allow` option
that `run`, `graph` and `resume` share."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from routilux.exceptions import RoutiluxError
from routilux.flow import Flow
from routilux.flowfile import ERROR, WARNING, Problem, build, check_file, format_of, schema_text

ALLOW_HELP = (
    "Module whose classes a flow file may use: 'package.module', or 'package.*' for a "
    "package and everything below it (repeatable; built-in routines are always allowed)."
)


def allow_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """The ``--allow MODULE`` option (repeatable), passed as ``allow``."""
    return click.option("--allow", "allow", multiple=True, metavar="MODULE", help=ALLOW_HELP)(
        command
    )


def option_given(name: str) -> bool:
    """Whether the running command's option ``name`` came from the command line."""
    ctx = click.get_current_context()
    return ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE


def portable_target(target: str) -> str | None:
    """An absolute path for a flow file target (None: not a flow file)."""
    return str(Path(target).resolve()) if format_of(target) else None


def record_allow(store: Any, flow_id: str, allow: tuple[str, ...]) -> None:
    """Remember the allow-list a flow file ran with, for `routilux resume`."""
    store.set_meta(f"flow-allow:{flow_id}", json.dumps(list(allow)))


def recorded_allow(store: Any, flow_id: str) -> tuple[str, ...]:
    """The allow-list `routilux run` recorded for the flow (empty if none)."""
    value = store.get_meta(f"flow-allow:{flow_id}")
    return tuple(json.loads(value)) if value else ()


def _summary(path: str, problems: list[Problem], flow: Any) -> str:
    errors = sum(p.severity == ERROR for p in problems)
    warnings = sum(p.severity == WARNING for p in problems)
    if errors:
        return f"{path}: {errors} error(s), {warnings} warning(s)"
    routines, connections = len(flow.routines), len(flow.connections)
    described = f"flow {flow.flow_id!r}" if flow.has_fixed_id else "a flow without flow_id"
    entry = f", entry {flow.entry[0]}.{flow.entry[1]}" if flow.entry else ""
    return f"{path}: OK, {described}: {routines} routine(s), {connections} connection(s){entry}" + (
        f"; {warnings} warning(s)" if warnings else ""
    )


@click.command()
@click.argument("flow_files", nargs=-1, required=True, metavar="FLOW_FILE...")
@allow_option
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
def validate(flow_files: tuple[str, ...], allow: tuple[str, ...], strict: bool) -> None:
    """Check flow files (.yaml, .yml, .json) and report every problem at once.

    Each problem is printed as FILE:LINE:COLUMN: error|warning: message. Exits 1
    when a file has an error (or, with --strict, a warning), 0 otherwise. Nothing
    is imported from a file that fails its syntax, schema or allow-list checks.
    """
    failed = False
    for path in flow_files:
        checked = check_file(path, allow)
        problems = list(checked.problems)
        flow = None
        if checked.ok:
            try:
                flow = build(checked, Flow, with_store=False)
            except RoutiluxError as exc:
                problems.extend(getattr(exc, "problems", []))
        for problem in problems:
            click.echo(str(problem))
        if flow is None and not any(p.severity == ERROR for p in problems):
            problems.append(Problem(path, 0, 0, "the flow could not be built"))
        click.echo(_summary(path, problems, flow))
        failed |= any(p.severity == ERROR or strict for p in problems)
    sys.exit(1 if failed else 0)


@click.command()
def schema() -> None:
    """Print the JSON Schema of flow files (for editors and other tools)."""
    click.echo(schema_text(), nl=False)
