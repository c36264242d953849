"""What capturing a routine's state costs the routine afterwards (CPython 3.11).

    python tests/benchmarks/captured_state.py [--smoke] [--json] [--flows 60]

A checkpoint captures every thread routine's attributes
(:func:`routilux.runtime.snapshot.capture_state`, which reads ``vars()``, as any
pickling of an object does). On CPython 3.11 that builds the object's ``__dict__``
for good, and from then on the interpreter no longer specialises method calls on
it (``self.emit(...)`` in a handler): the routine runs a little slower for the
rest of its life. Rule *consistent cuts* needs routine state, so a flow with a
store pays this; one without never reads ``vars()`` of a thread routine. Two rows:

* ``method_calls``: a method that reads two attributes and calls another method,
  on objects whose state was captured once against objects never captured (best
  of ``--repeat``; ratio above 1 is slower).
* ``chain_jobs``: the store rows' 10-routine chain without a store, on fresh
  flows: a block of jobs, then every routine's state captured (as the first
  checkpoint does), then a second block. Flows of the same kind with nothing
  between the blocks are the control (the second block differs anyway: caches, the
  allocator). The ratio is the median, over flows, of second block / first block,
  divided by the control's median.
"""

from __future__ import annotations

import statistics
import time

from chain_routines import HOPS, wire_chain
from workload import best_ms, print_rows, script_arguments, settle

from routilux import Flow
from routilux.runtime.snapshot import capture_state


class Probe:
    """A routine-like object: attributes read and a method called per call."""

    def __init__(self) -> None:
        self.count = 0
        self.step = 1
        self.label = "probe"

    def emit(self, value: int) -> int:
        return value + self.step

    def handle(self, value: int) -> int:
        return self.emit(value) + self.count


def method_calls_row(calls: int, repeat: int) -> dict:
    def run(objects: list[Probe]) -> None:
        for _ in range(calls // len(objects)):
            for probe in objects:
                probe.handle(1)

    plain = [Probe() for _ in range(3)]
    captured = [Probe() for _ in range(3)]
    for probe in captured:
        capture_state(probe)
    # Alternated, so that a drift of the machine's speed hits both alike.
    ours, baseline = [], []
    for _ in range(3):
        ours.append(best_ms(lambda: run(captured), repeat))
        baseline.append(best_ms(lambda: run(plain), repeat))
    return _row("method_calls", min(ours), min(baseline), calls=calls)


def chain_jobs_row(flows: int, jobs: int, n: int) -> dict:
    def second_over_first(capture: bool) -> float:
        flow = Flow(execution_strategy="concurrent", max_workers=HOPS)
        try:
            wire_chain(flow, HOPS)
            settle([flow.execute("r0", {"n": n}, wait=False)], "warm-up")

            def block() -> float:
                started = time.perf_counter()
                for _ in range(jobs):
                    settle([flow.execute("r0", {"n": n}, wait=False)], "captured_state")
                return time.perf_counter() - started

            first = block()
            if capture:
                for routine in flow.routines.values():
                    capture_state(routine)
            return block() / first
        finally:
            flow.shutdown()

    captured, control = [], []
    for _ in range(flows):
        captured.append(second_over_first(True))
        control.append(second_over_first(False))
    ours, baseline = statistics.median(captured), statistics.median(control)
    return _row("chain_jobs", ours, baseline, flows=flows, jobs_per_block=jobs, messages=n)


def _row(name: str, ours: float, baseline: float, **sizes: int) -> dict:
    return {"workload": name, **sizes, "ours": ours, "baseline": baseline, "ratio": ours / baseline}


def main() -> None:
    parser = script_arguments(__doc__, 5, "small sizes, 1 repeat")
    parser.add_argument("--flows", type=int, default=60)
    args = parser.parse_args()
    if args.smoke:
        rows = [method_calls_row(3_000, 1), chain_jobs_row(2, 1, 50)]
    else:
        rows = [method_calls_row(300_000, args.repeat), chain_jobs_row(args.flows, 5, 1000)]
    print_rows(
        rows,
        args.json,
        lambda row: (
            f"{row['workload']:13} captured {row['ours']:.4g} against "
            f"{row['baseline']:.4g}: {row['ratio']:.3f}x"
        ),
    )


if __name__ == "__main__":
    main()
