"""routilux benchmark suite: every workload against its baseline, in the same run.

    python tests/benchmarks/suite.py [--smoke] [--only NAME ...] [--repeat 3] [--json]

Each repeat runs every selected workload once (ours and its baseline back to back);
the table shows medians over the repeats, and the ratio is the median of the
per-repeat ratios (ours / baseline). Then one JSON line per row. The load average
before and after the run is printed so that a noisy run can be recognised.
``--smoke`` uses tiny sizes, one repeat, no routilux 0.10 environment, and judges
no target. ``--json`` prints only the JSON lines on stdout. Exit status 1 if any
workload failed to run (a target not met is not a failure).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import traceback
from datetime import datetime, timezone

import workloads_chain
import workloads_process
import workloads_recovery
import workloads_store
from workload import Measure, Workload

_ALL = {
    w.name: w
    for module in (workloads_chain, workloads_process, workloads_recovery, workloads_store)
    for w in module.WORKLOADS
}
# The order of issue 15's table, then the CPU fan-out of DESIGN 3.4.
ORDER = [
    "chain_concurrent",
    "chain_sequential",
    "process_messages",
    "process_ping_pong",
    "kill_redelivered",
    "process_cold_start",
    "store_serial_jobs",
    "store_tiny_jobs",
    "store_concurrent_jobs",
    "cpu_fanout",
]
assert sorted(ORDER) == sorted(_ALL), "every workload has its place in ORDER"
WORKLOADS: list[Workload] = [_ALL[name] for name in ORDER]
BY_NAME = {w.name: w for w in WORKLOADS}


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(
    workload: Workload, measures: list[Measure], errors: list[str], smoke: bool, context: dict
) -> dict:
    """One row: medians over the repeats, the ratio, and whether the target is met."""
    ours = [m.ours for m in measures]
    paired = [m for m in measures if m.baseline]
    ratio = _median([m.ours / m.baseline for m in paired])
    extra_keys = sorted({k for m in measures for k in m.extra})
    extra = {
        k: _median([m.extra[k] for m in measures if m.extra.get(k) is not None]) for k in extra_keys
    }
    notes = sorted({m.note for m in measures if m.note})
    met = None if smoke or ratio is None or errors else workload.met(ratio)
    return {
        "workload": workload.name,
        "title": workload.title,
        "baseline_is": workload.baseline,
        "unit": workload.unit,
        "ours": _median(ours),
        "baseline": _median([m.baseline for m in paired]),
        "ratio": ratio,
        "target": f"{workload.target_op} {workload.target}",
        "met": met,
        "ours_runs": ours,
        "baseline_runs": [m.baseline for m in paired],
        "extra": extra,
        "note": "; ".join(notes) or None,
        "error": (
            f"{len(errors)} of {len(errors) + len(measures)} runs failed; first: {errors[0]}"
            if errors
            else None
        ),
        **context,
    }


def _value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("us", "ms"):
        return f"{value:,.1f} {unit}"
    return f"{value:,.0f} {unit}" if value >= 100 else f"{value:,.2f} {unit}"


def table(rows: list[dict]) -> str:
    """The human table: workload, ours, baseline, ratio, target, met?"""
    lines = [("workload", "ours", "baseline", "ratio", "target", "met?")]
    for row in rows:
        if row["error"]:
            met = "ERROR"
        elif row["ratio"] is None:
            met = "skipped (smoke)" if row["smoke"] else "baseline unavailable"
        else:
            met = {True: "yes", False: "NO", None: "-"}[row["met"]]
        lines.append(
            (
                f"{row['title']}  vs {row['baseline_is']}",
                _value(row["ours"], row["unit"]),
                _value(row["baseline"], row["unit"]),
                "-" if row["ratio"] is None else f"{row['ratio']:.2f}x",
                row["target"],
                met,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(6)]
    out = []
    for k, line in enumerate(lines):
        cells = [line[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(line[1:5], widths[1:5], strict=True)
        ]
        out.append("  ".join([*cells, line[5]]))
        if k == 0:
            out.append("-" * len(out[0]))
    return "\n".join(out)


def run(selected: list[Workload], repeat: int, smoke: bool) -> tuple[list[dict], dict]:
    """Run ``selected`` ``repeat`` times, interleaved so drift hits every workload."""
    load_before = os.getloadavg()
    started = time.perf_counter()
    measures: dict[str, list[Measure]] = {w.name: [] for w in selected}
    errors: dict[str, list[str]] = {w.name: [] for w in selected}
    for r in range(repeat):
        for workload in selected:
            print(f"[{r + 1}/{repeat}] {workload.name} ...", file=sys.stderr, flush=True)
            try:
                measures[workload.name].append(workload.run(smoke))
            except Exception as error:  # reported in the row; the suite goes on
                traceback.print_exc()
                errors[workload.name].append(f"{type(error).__name__}: {error}")
    context = {
        "repeat": repeat,
        "smoke": smoke,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "suite_seconds": round(time.perf_counter() - started, 1),
    }
    rows = [summarize(w, measures[w.name], errors[w.name], smoke, context) for w in selected]
    return rows, context


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, 1 repeat, no targets")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        choices=list(BY_NAME),
        help=f"run only these workloads: {', '.join(BY_NAME)}",
    )
    parser.add_argument("--repeat", type=int, default=3, help="repeats (default 3)")
    parser.add_argument("--json", action="store_true", help="print only the JSON lines")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be >= 1, got {args.repeat}")
    selected = [BY_NAME[name] for name in args.only] if args.only else WORKLOADS
    repeat = 1 if args.smoke else args.repeat
    rows, context = run(selected, repeat, args.smoke)
    if not args.json:
        mode = "smoke mode, targets not judged" if args.smoke else f"median of {repeat}"
        print(
            f"routilux benchmark suite ({mode}), {context['date']}, {context['cpus']} CPUs, "
            f"{context['suite_seconds']} s"
        )
        print(
            f"load average before {context['loadavg_before']}, "
            f"after {context['loadavg_after']} (1, 5, 15 min)"
        )
        print(table(rows))
        for row in rows:
            if row["note"] or row["error"]:
                print(f"  {row['workload']}: {row['error'] or row['note']}")
    for row in rows:
        print(json.dumps(row))
    return 1 if any(row["error"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
