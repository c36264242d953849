"""What a job produced, as `routilux run` prints it when the job ends.

A job's result is what left the flow: the data its routines sent with
``send_output`` (``JobState.output_log``), and the *final events* — emits of an
event that no connection carries on (read from the job's execution history, so
not shown when the flow was built with ``record_history=False``).
"""

from __future__ import annotations

import json
from typing import Any

import click

SHOWN = 20  # at most the last this many lines of each kind, after the count of the rest
WIDTH = 400  # characters of one value


def final_events(flow: Any, job: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """``(routine_id, event, data)`` of every emit of an event with no connection."""
    wired = {(src, event) for src, event, *_ in flow._wiring}
    found = []
    for record in job.execution_history:
        routine = flow.routines.get(record.routine_id)
        if routine is None or record.event_name not in routine._events:
            continue  # not an emit (a start or error record)
        if (record.routine_id, record.event_name) not in wired:
            found.append((record.routine_id, record.event_name, record.data))
    return found


def _text(data: Any) -> str:
    text = json.dumps(data, default=repr, ensure_ascii=False)
    return text if len(text) <= WIDTH else text[: WIDTH - 3] + "..."


def _echo_lines(title: str, lines: list[str]) -> None:
    click.echo(f"{title} ({len(lines)}):")
    if len(lines) > SHOWN:
        click.echo(f"  ... {len(lines) - SHOWN} earlier, not shown")
    for line in lines[-SHOWN:]:
        click.echo(f"  {line}")


def print_result(flow: Any, job: Any) -> None:
    """Print the job's outputs and final events (nothing when it produced none)."""
    outputs = [f"{o['routine_id']} [{o['output_type']}] {_text(o['data'])}" for o in job.output_log]
    events = [f"{rid}.{event} {_text(data)}" for rid, event, data in final_events(flow, job)]
    if outputs:
        _echo_lines("outputs", outputs)
    if events:
        _echo_lines("final events", events)
