"""The progress table keeps every figure whole: narrow terminals lose columns."""

from __future__ import annotations

import io

from helpers import Node
from rich.console import Console

from routilux.cli.progress import choose_columns, progress_table
from routilux.flow import Flow
from routilux.job_state import JobState


def rows(n: int = 2) -> list[dict[str, str]]:
    return [
        {"routine": f"routine-{i}", "mode": "process x2", "done": "1234567", "queued": "10",
         "busy": "2", "failed": "0", "restarts": "1", "cpu%": "180", "rss": "35M"}
        for i in range(n)
    ]


def test_a_wide_terminal_shows_every_column():
    assert choose_columns(rows(), 200) == [
        "routine", "mode", "done", "queued", "busy", "failed", "restarts", "cpu%", "rss"
    ]


def test_narrow_terminals_drop_the_least_useful_columns_first():
    assert choose_columns(rows(), 60) == ["routine", "done", "queued", "busy", "failed",
                                          "restarts"]
    assert choose_columns(rows(), 50) == ["routine", "done", "queued", "failed", "restarts"]
    assert choose_columns(rows(), 30) == ["routine", "done", "failed"]


class Figures:
    """Stands in for a flow: only ``metrics()`` is read."""

    def metrics(self):
        return {
            f"routine-with-a-long-name-{i}": {
                "execution": "process", "workers": 2, "processed": 1234567, "queued": 10,
                "in_flight": 2, "failed": 0, "restarts": 1, "cpu_percent": 180.0,
                "rss_bytes": 35 * 1024 * 1024,
            }
            for i in range(2)
        }


def test_at_every_width_figures_stay_whole_and_lines_fit():
    for width in range(30, 121):
        out = io.StringIO()
        console = Console(file=out, width=width, color_system=None)
        console.print(progress_table(Figures(), JobState("w"), width))
        text = out.getvalue()
        assert "…" not in text, (width, text)
        assert all(len(line) <= width for line in text.splitlines()), (width, text)
        assert text.count("1234567") == 2, (width, text)


def test_rendered_at_40_columns_nothing_is_cut():
    flow = Flow(flow_id="narrow")
    flow.add_routine(Node(), "a-rather-long-routine-name")
    out = io.StringIO()
    console = Console(file=out, width=40, color_system=None)
    console.print(progress_table(flow, JobState("narrow"), console.width))
    text = out.getvalue()
    assert "…" not in text and all(len(line) <= 40 for line in text.splitlines())
    assert "done" in text and "failed" in text


def test_live_progress_is_drawn_from_the_event_bus(make_flow):
    """The live table is a subscriber of the flow's bus (metrics snapshots), not a
    poller of the supervisor; the subscription ends with the job."""
    import threading

    from helpers import wait_until

    from routilux.cli.progress import watch

    release = threading.Event()
    flow = make_flow()
    flow.add_routine(Node(lambda node, data: release.wait(30)), "slow")
    job = flow.execute("slow", {}, wait=False)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    watcher = threading.Thread(target=watch, args=(flow, job, console, 0.05), daemon=True)
    watcher.start()
    assert wait_until(lambda: flow.bus.active, 10), "the progress view never subscribed"
    snapshot = flow.subscribe(kinds=["metrics"]).get(10)
    assert snapshot is not None and snapshot.data["routines"]["slow"]["in_flight"] == 1
    release.set()
    watcher.join(30)
    assert not watcher.is_alive()
    assert "completed" in out.getvalue()
