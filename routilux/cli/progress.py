"""Live per-routine progress of one job, drawn with rich."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from routilux.flow import Flow
from routilux.job_state import JobState


def _rss(value: Any) -> str:
    if not value:
        return "-"
    return f"{value / (1024 * 1024):.0f}M"


def progress_table(flow: Flow, job: JobState) -> Table:
    """One row per routine: processed, queued, busy, failed, restarts, CPU, RSS."""
    table = Table(title=f"job {job.job_id[:8]} · {job.status}", title_justify="left")
    for column in (
        "routine",
        "mode",
        "done",
        "queued",
        "busy",
        "failed",
        "restarts",
        "cpu%",
        "rss",
    ):
        table.add_column(
            column, justify="left" if column in ("routine", "mode") else "right", no_wrap=True
        )
    for rid, figures in flow.metrics().items():
        mode = figures.get("execution", "thread")
        if figures.get("workers", 1) > 1:
            mode += f" x{figures['workers']}"
        table.add_row(
            rid,
            mode,
            str(figures["processed"]),
            str(figures["queued"]),
            str(figures["in_flight"]),
            str(figures["failed"]),
            str(figures["restarts"]),
            f"{figures['cpu_percent']:.0f}" if "cpu_percent" in figures else "-",
            _rss(figures.get("rss_bytes")),
        )
    return table


def watch(flow: Flow, job: JobState, console: Console, refresh: float = 0.2) -> None:
    """Redraw the table until the job settles (KeyboardInterrupt propagates)."""
    with Live(
        progress_table(flow, job), console=console, refresh_per_second=10, transient=False
    ) as live:
        while not job.wait(refresh):
            live.update(progress_table(flow, job))
        live.update(progress_table(flow, job))
    console.print()
