"""What a workload is and what one run of it returns."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Measure:
    """One run: our figure and the baseline's, measured back to back.

    ``baseline`` is None when the baseline could not run; ``note`` says why.
    ``extra`` holds secondary figures (numbers) worth keeping next to the row.
    """

    ours: float
    baseline: float | None
    extra: dict[str, float | None] = field(default_factory=dict)
    note: str | None = None


@dataclass(frozen=True)
class Workload:
    """One row of the table.

    ``ratio`` is always ours / baseline in ``unit``; ``target_op`` says whether the
    ratio must be at least (">=", throughputs) or at most ("<=", times) ``target``.
    ``run(smoke)`` measures once; smoke mode uses tiny sizes. What each workload
    measures is described in docs/performance.rst.
    """

    name: str
    title: str
    baseline: str
    unit: str
    target_op: str
    target: float
    run: Callable[[bool], Measure]

    @property
    def higher_is_better(self) -> bool:
        return self.target_op == ">="

    def met(self, ratio: float) -> bool:
        return ratio >= self.target if self.target_op == ">=" else ratio <= self.target


SETTLE_SECONDS = 90.0  # far above any run's normal length: beyond it, a job is hung


def settle(jobs: list, what: str, timeout: float = SETTLE_SECONDS) -> None:
    """Wait for every job in ``jobs`` to end; raise if one hangs or did not complete."""
    deadline = time.monotonic() + timeout
    for job in jobs:
        if not job.wait(max(0.0, deadline - time.monotonic())):
            raise RuntimeError(
                f"{what}: job still {job.status} after {timeout:g} s: hung "
                f"({sum(j.status == 'running' for j in jobs)} of {len(jobs)} jobs running)"
            )
        if job.status != "completed":
            raise RuntimeError(f"{what}: job {job.status}: {job.error}")


def best_ms(work: Callable[[], object], repeat: int) -> float:
    """The fastest of ``repeat`` runs of ``work()``, in ms (the least disturbed)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return 1e3 * best


def script_arguments(doc: str, repeat: int, smoke: str) -> argparse.ArgumentParser:
    """The options every stand-alone benchmark script takes: ``--smoke`` (``smoke``
    says what it shrinks), ``--json`` and ``--repeat`` (``repeat`` by default)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help=smoke)
    parser.add_argument("--json", action="store_true", help="print only the JSON lines")
    parser.add_argument("--repeat", type=int, default=repeat)
    return parser


def print_rows(rows: list[dict], only_json: bool, line: Callable[[dict], str]) -> None:
    """Each row as ``line(row)`` (unless ``only_json``), then as a JSON line."""
    for row in rows:
        if not only_json:
            print(line(row))
        print(json.dumps(row))
