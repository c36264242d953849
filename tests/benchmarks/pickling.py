"""What a checkpoint's pickling costs per record: the column layouts the runtime uses
against the layouts they replaced, in the same run.

    python tests/benchmarks/pickling.py [--smoke] [--json] [--repeat 5]

Three rows, each ours against its baseline on the same records (best of
``--repeat`` timings, ratio ours / baseline, below 1 is faster):

* ``history_record``: recording 10,000 emits into a job's history
  (:class:`routilux.history.History`, four columns) against appending one
  :class:`~routilux.ExecutionRecord` object per emit to a list.
* ``history_pickle``: pickling those records as a checkpoint does
  (``HistoryChunks.update``: slices of the columns) against building the four
  columns from record objects first and pickling them.
* ``queue_pickle``: pickling 13,000 queued messages as one list per field
  (:mod:`routilux.runtime.queue_pickle`) against a list of one tuple per message.
"""

from __future__ import annotations

from workload import best_ms, print_rows, script_arguments

from routilux.execution_record import ExecutionRecord
from routilux.job_state import JobState
from routilux.runtime.job_pickle import HistoryChunks, dumps
from routilux.runtime.messages import Delivery
from routilux.runtime.queue_pickle import QueueChunks
from routilux.runtime.snapshot import delivery_record

ROUTINES = [f"r{k}" for k in range(10)]  # one string object per routine, as in a flow


def history_rows(n: int, repeat: int) -> list[dict]:
    payloads = [{"i": k} for k in range(n)]

    def ours() -> JobState:
        state = JobState("bench")
        for k, data in enumerate(payloads):
            state.record_execution(ROUTINES[k % 10], "out", data)
        return state

    def baseline() -> list[ExecutionRecord]:
        records = []
        for k, data in enumerate(payloads):
            records.append(ExecutionRecord(ROUTINES[k % 10], "out", data))
        return records

    state, records = ours(), baseline()

    def old_pickle() -> bytes:
        return dumps(
            (
                [r.routine_id for r in records],
                [r.event_name for r in records],
                [r.data for r in records],
                [r.wall_time for r in records],
            )
        )

    return [
        _row("history_record", n, best_ms(ours, repeat), best_ms(baseline, repeat)),
        _row(
            "history_pickle",
            n,
            best_ms(lambda: HistoryChunks().update(state), repeat),
            best_ms(old_pickle, repeat),
        ),
    ]


def queue_row(n: int, repeat: int) -> dict:
    queue = [Delivery(k, None, ROUTINES[1], "inp", {"i": k}) for k in range(n)]
    return _row(
        "queue_pickle",
        n,
        best_ms(lambda: QueueChunks().records([("r1", queue)], "bench"), repeat),
        best_ms(lambda: dumps([delivery_record(d) for d in queue]), repeat),
    )


def _row(name: str, n: int, ours: float, baseline: float) -> dict:
    return {
        "workload": name,
        "records": n,
        "ours_ms": ours,
        "baseline_ms": baseline,
        "ratio": ours / baseline,
    }


def main() -> None:
    args = script_arguments(__doc__, 5, "small sizes, 1 repeat").parse_args()
    scale, repeat = (0.01, 1) if args.smoke else (1, args.repeat)
    rows = [*history_rows(int(10_000 * scale), repeat), queue_row(int(13_000 * scale), repeat)]
    print_rows(
        rows,
        args.json,
        lambda row: (
            f"{row['workload']:15} {row['records']:>6} records: {row['ours_ms']:.2f} ms "
            f"against {row['baseline_ms']:.2f} ms, {row['ratio']:.2f}x"
        ),
    )


if __name__ == "__main__":
    main()
