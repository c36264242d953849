"""Live per-routine progress of one job, drawn with rich.

The table keeps every figure whole: on a narrow terminal it drops the least useful
columns (rss, cpu%, mode, ...) rather than cutting numbers short, and long routine
ids wrap. The live view is transient; when the job settles the final table and a
one-line summary are printed once, so even a run shorter than one refresh shows them.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.live import Live
from rich.table import Table

from routilux.flow import Flow
from routilux.job_state import JobState
from routilux.runtime.bus import JOB_FINISHED, JOB_PAUSED, METRICS

# Column, and whether it is right-aligned; in the order shown.
COLUMNS = (
    ("routine", False),
    ("mode", False),
    ("done", True),
    ("queued", True),
    ("busy", True),
    ("failed", True),
    ("restarts", True),
    ("cpu%", True),
    ("rss", True),
)
# Which columns go first when the terminal is too narrow for all of them.
DROP_ORDER = ("rss", "cpu%", "mode", "busy", "restarts", "queued")
MIN_ROUTINE_WIDTH = 8  # the routine column wraps long ids down to this


def _rss(value: Any) -> str:
    if not value:
        return "-"
    return f"{value / (1024 * 1024):.0f}M"


def _rows(metrics: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    rows = []
    for rid, figures in metrics.items():
        mode = figures.get("execution", "thread")
        if figures.get("workers", 1) > 1:
            mode += f" x{figures['workers']}"
        rows.append(
            {
                "routine": rid,
                "mode": mode,
                "done": str(figures["processed"]),
                "queued": str(figures["queued"]),
                "busy": str(figures["in_flight"]),
                "failed": str(figures["failed"]),
                "restarts": str(figures["restarts"]),
                "cpu%": f"{figures['cpu_percent']:.0f}" if "cpu_percent" in figures else "-",
                "rss": _rss(figures.get("rss_bytes")),
            }
        )
    return rows


def _width(columns: list[str], rows: list[dict[str, str]]) -> int:
    """Characters a SIMPLE-box table of these columns needs (routine at its minimum)."""
    total = 0
    for name in columns:
        cells = [len(name), *(len(r[name]) for r in rows)]
        need = max(cells) if name != "routine" else min(max(cells), MIN_ROUTINE_WIDTH)
        total += need + 2  # one space of padding either side
    return total


def choose_columns(rows: list[dict[str, str]], width: int) -> list[str]:
    """The columns that fit in ``width``, dropping the least useful first."""
    columns = [name for name, _ in COLUMNS]
    for name in DROP_ORDER:
        if _width(columns, rows) <= width:
            break
        columns.remove(name)
    return columns


def progress_table(
    flow: Flow,
    job: JobState,
    width: int = 200,
    metrics: dict[str, dict[str, Any]] | None = None,
) -> Table:
    """One row per routine: processed, queued, busy, failed, restarts, CPU, RSS
    (as many of these as fit in ``width``), from a metrics snapshot of the event bus
    (or, without one, from ``flow.metrics()``)."""
    rows = _rows(flow.metrics() if metrics is None else metrics)
    columns = choose_columns(rows, width)
    table = Table(
        title=f"job {job.job_id[:8]} · {job.status}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for name, right in COLUMNS:
        if name in columns:
            table.add_column(
                name,
                justify="right" if right else "left",
                no_wrap=name != "routine",
                overflow="fold",
                min_width=len(name) if name != "routine" else None,
            )
    for row in rows:
        table.add_row(*(row[name] for name in columns))
    return table


def summary(flow: Flow, job: JobState) -> str:
    """``job 1a2b3c4d completed in 0.42 s: 30 steps, 0 failed, 0 restarts``."""
    figures = flow.metrics().values()
    done = sum(f["processed"] for f in figures)
    failed = sum(f["failed"] for f in figures)
    restarts = sum(f["restarts"] for f in figures)
    took = ""
    if job.finished_at is not None:
        took = f" in {(job.finished_at - job.created_at).total_seconds():.2f} s"
    return (
        f"job {job.job_id[:8]} {job.status}{took}: {done} steps, {failed} failed, "
        f"{restarts} restarts"
    )


def watch(flow: Flow, job: JobState, console: Console, refresh: float = 0.5) -> None:
    """Redraw the table from the flow's event bus (its metrics snapshots) until the
    job settles, then print it and a summary once (KeyboardInterrupt propagates)."""
    events = flow.subscribe(kinds=[METRICS, JOB_FINISHED, JOB_PAUSED], maxsize=64)
    try:
        if console.is_terminal:
            with Live(
                progress_table(flow, job, console.width),
                console=console,
                refresh_per_second=10,
                transient=True,
            ) as live:
                while not job.wait(0):
                    event = events.get(refresh)
                    if event is not None and event.kind == METRICS:
                        live.update(
                            progress_table(flow, job, console.width, event.data["routines"])
                        )
        else:
            while not job.wait(refresh):
                pass
    finally:
        events.close()
    console.print(progress_table(flow, job, console.width))
    console.print(summary(flow, job), highlight=False)
