"""The ``routilux`` command: run, graph and resume (jobs and inspect live in
:mod:`routilux.cli.store_cmds`, validate and schema in :mod:`routilux.cli.flowfile_cmds`,
serve in :mod:`routilux.cli.serve`)."""

from __future__ import annotations

import hashlib
import json
import signal
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from routilux._validate import check_number
from routilux.cli.common import RoutiluxGroup, fail, load_target, open_store
from routilux.cli.flowfile_cmds import (
    allow_option,
    option_given,
    portable_target,
    record_allow,
    recorded_allow,
    schema,
    validate,
)
from routilux.cli.graph import to_dot, to_mermaid
from routilux.cli.loading import choose_entry
from routilux.cli.progress import watch
from routilux.cli.results import print_result
from routilux.cli.serve import serve
from routilux.cli.store_cmds import DEFAULT_STORE, inspect, jobs
from routilux.exceptions import RoutiluxError

EXIT_INTERRUPTED = 130


def _status_line(job: Any) -> str:
    line = f"job {job.job_id} {job.status}"
    if job.error:
        line += f": {job.error}"
    return line


def _resume_hint(flow: Any, job: Any) -> str:
    if not flow.has_fixed_id:
        return (
            "this flow has no flow_id, so its jobs cannot be resumed: give Flow() a "
            "flow_id to make them resumable"
        )
    store = flow.checkpoint_store.location
    return f"resume it with: routilux resume {job.job_id} --store {store}"


def _finish(flow: Any, job: Any, console: Any, progress: bool) -> None:
    """Wait for the job with progress; Ctrl-C checkpoints and explains how to resume."""
    try:
        if progress:
            watch(flow, job, console)
        else:
            while not job.wait(0.5):
                pass
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not lose it
        try:
            flow.shutdown()
            click.echo(f"interrupted: job {job.job_id} was checkpointed.")
        except RoutiluxError as exc:  # a step did not finish in time
            click.echo(f"interrupted: {exc}; the job continues from its last checkpoint.")
        click.echo(_resume_hint(flow, job))
        sys.exit(EXIT_INTERRUPTED)
    flow.shutdown()
    print_result(flow, job)
    _print_failures(job)
    click.echo(_status_line(job))
    if job.status == "paused":
        click.echo(_resume_hint(flow, job))
    lost = flow.last_checkpoint_error  # the final checkpoint, taken by shutdown()
    if lost is not None:
        reason = str(lost).splitlines()[0] if str(lost) else type(lost).__name__
        click.echo(f"Error: job {job.job_id} was not made durable: {reason}", err=True)
    sys.exit(0 if job.status == "completed" and lost is None else 1)


def _print_failures(job: Any, last: int = 3) -> None:
    """The job's last failures, before its status line (which stays the last line)."""
    failures = job.failures[-last:]
    if not failures:
        return
    if job.status == "completed":
        click.echo(f"recovered from {len(job.failures)} failure(s) (retried or skipped):")
    for failure in failures:
        where = failure["routine_id"] or "job"
        if failure.get("slot"):
            where += f".{failure['slot']}"
        click.echo(f"  {where}: {failure['exception_type']}: {failure['message']}")


def _check_entry(flow: Any, entry: str, slot: str) -> None:
    routine = flow.get_routine(entry)
    if routine is None:
        fail(
            f"--entry {entry!r}: flow {flow.flow_id!r} has no such routine; "
            f"routines: {', '.join(sorted(flow.routines))}"
        )
    if routine.get_slot(slot) is None:
        fail(
            f"--slot {slot!r}: routine {entry!r} has no such slot; "
            f"slots: {', '.join(sorted(routine._slots))}"
        )


def _warn_unknown_params(flow: Any, entry: str, slot: str, params: dict[str, Any]) -> None:
    """One stderr line when --params has keys the entry slot's handler does not take."""
    keys = flow.routines[entry].get_slot(slot).accepted_keys()
    if keys is None:
        return  # the handler takes any keys
    unknown = sorted(k for k in params if k not in keys)
    if not unknown:
        return
    names = ", ".join(map(repr, unknown))
    plural = "s" if len(unknown) > 1 else ""
    if keys and len(unknown) == len(params):  # nothing matches: 0.10's whole-dict rule
        message = (
            f"warning: --params key{plural} {names} {'match' if plural else 'matches'} no "
            f"parameter of {entry}.{slot} "
            f"(it takes {', '.join(keys)}); its first parameter gets the whole dict"
        )
    else:
        takes = f"takes only {', '.join(keys)}" if keys else "takes no parameters"
        message = f"warning: ignoring --params key{plural} {names}: {entry}.{slot} {takes}"
    click.echo(message, err=True)


@click.group(cls=RoutiluxGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="routilux")
def cli() -> None:
    """routilux: run, watch and inspect flows of routines on an actor runtime."""


@cli.command()
@click.argument("target")
@click.option(
    "--entry", help="Entry routine id (default: the only routine with an unconnected entry slot)."
)
@click.option("--slot", default="trigger", show_default=True, help="Entry slot.")
@click.option("--params", default="{}", help="Entry parameters as a JSON object.")
@click.option(
    "--store",
    default=DEFAULT_STORE,
    show_default=True,
    help="Checkpoint store (SQLite file or directory).",
)
@click.option("--timeout", type=float, help="Fail the job after this many seconds.")
@click.option("--no-progress", is_flag=True, help="Do not draw live progress.")
@allow_option
def run(
    target: str,
    entry: str | None,
    slot: str,
    params: str,
    store: str,
    timeout: float | None,
    no_progress: bool,
    allow: tuple[str, ...],
) -> None:
    """Run one job of the flow TARGET (FILE.py:NAME, module:NAME or a flow file).

    TARGET names a Flow or a function returning one, or is a .yaml/.yml/.json flow
    file. Prints what the job produced, then its status. Exits 0 only if the job
    completes. Ctrl-C checkpoints the job; `routilux resume` continues it.
    """
    try:
        entry_params = json.loads(params)
    except ValueError as exc:
        fail(f"--params is not valid JSON: {exc}")
    if not isinstance(entry_params, dict):
        fail("--params must be a JSON object, e.g. '{\"n\": 3}'")
    check_number("--timeout", timeout, optional=True)
    flow = load_target(target, allow)
    entry, slot = choose_entry(flow, entry, slot)
    _check_entry(flow, entry, slot)  # before the store: a refused run leaves nothing
    _warn_unknown_params(flow, entry, slot, entry_params)
    if flow.checkpoint_store is None or option_given("store"):  # a flow file may name one
        flow.checkpoint_store = open_store(store)
    if not flow.has_fixed_id:
        # Stable across runs of the same definition, so an interrupted job resumes.
        flow.fix_id(_derived_id(target))
    flow.checkpoint_store.set_meta(f"flow:{flow.flow_id}", _portable(target))
    record_allow(flow.checkpoint_store, flow.flow_id, allow)
    console = Console(stderr=False)
    job = flow.execute(entry, entry_params, entry_slot=slot, timeout=timeout, wait=False)
    click.echo(f"job {job.job_id} started (flow {flow.flow_id!r}, entry {entry}.{slot})")
    _finish(flow, job, console, progress=not no_progress)


def _derived_id(target: str) -> str:
    """A flow id for a flow built without one: its name and where it is defined."""
    portable = _portable(target)
    source, _, name = portable.rpartition(":")
    digest = hashlib.sha256(portable.encode()).hexdigest()[:8]
    return f"{Path(source).stem or source}:{name}@{digest}"


def _portable(target: str) -> str:
    source, _, name = target.rpartition(":")
    if portable_target(target):
        return portable_target(target)
    if source.endswith(".py") or "/" in source:
        return f"{Path(source).resolve()}:{name}"
    return target


@cli.command()
@click.argument("target")
@click.option(
    "--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True
)
@allow_option
def graph(target: str, fmt: str, allow: tuple[str, ...]) -> None:
    """Print the graph of the flow TARGET (FILE.py:NAME, module:NAME or a flow file)."""
    flow = load_target(target, allow)
    click.echo(to_mermaid(flow) if fmt == "mermaid" else to_dot(flow), nl=False)


@cli.command()
@click.argument("job_id")
@click.option("--store", default=DEFAULT_STORE, show_default=True)
@click.option(
    "--flow",
    "target",
    help="FILE.py:NAME, module:NAME or flow file of the job's flow "
    "(default: the one `routilux run` recorded).",
)
@click.option("--no-progress", is_flag=True, help="Do not draw live progress.")
@allow_option
def resume(
    job_id: str, store: str, target: str | None, no_progress: bool, allow: tuple[str, ...]
) -> None:
    """Continue an interrupted or paused job from its last checkpoint."""
    checkpoint_store = open_store(store, must_exist=True)
    rows = [r for r in checkpoint_store.list_jobs() if r["job_id"] == job_id]
    if not rows:
        fail(f"no job {job_id!r} in {store}")
    flow_id = rows[0]["flow_id"]
    target = target or checkpoint_store.get_meta(f"flow:{flow_id}")
    if target is None:
        fail(f"job {job_id} belongs to flow {flow_id!r}; say where it is defined with --flow")
    flow = load_target(target, allow or recorded_allow(checkpoint_store, flow_id))
    if not flow.has_fixed_id and flow_id == _derived_id(target):
        flow.fix_id(flow_id)  # `routilux run` named it so
    if flow.flow_id != flow_id:
        fail(f"{target} builds flow {flow.flow_id!r}, but job {job_id} belongs to {flow_id!r}")
    jobs_back = {j.job_id: j for j in flow.recover(checkpoint_store)}
    job = jobs_back.get(job_id)
    if job is None:
        fail(f"job {job_id} is not in the latest checkpoint of flow {flow_id!r}")
    console = Console()
    if job.is_terminal:
        flow.shutdown()
        click.echo(_status_line(job))
        sys.exit(0 if job.status == "completed" else 1)
    if job.status == "paused":
        flow.resume(job)
    click.echo(f"job {job_id} resumed")
    _finish(flow, job, console, progress=not no_progress)


cli.add_command(jobs)
cli.add_command(inspect)
cli.add_command(validate)
cli.add_command(schema)
cli.add_command(serve)


def main() -> None:
    """Entry point of the ``routilux`` console script."""
    cli(prog_name="routilux")


if __name__ == "__main__":
    main()
