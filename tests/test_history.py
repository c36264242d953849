"""A job's history kept as columns (routilux/history.py) and the record views
JobState gives of it."""

from __future__ import annotations

import sys
import threading

from helpers import Source

from routilux import ExecutionRecord, Flow, JobState
from routilux.checkpoint import SQLiteStore
from routilux.history import History
from routilux.runtime.job_pickle import HistoryChunks


def _job(records: int = 0, limit: int = 10_000) -> JobState:
    state = JobState("flow", "job-1")
    state.history_limit = limit
    for n in range(records):
        state.record_execution("a", "out", {"n": n})
    return state


def test_the_records_view_is_built_once_and_extended_by_new_records():
    state = _job(3)
    first = state.execution_history
    assert [r.data["n"] for r in first] == [0, 1, 2]
    assert all(type(r) is ExecutionRecord for r in first)
    state.record_execution("b", "done", {"n": 3})
    second = state.execution_history
    assert [(r.routine_id, r.event_name, r.data["n"]) for r in second] == [
        ("a", "out", 0),
        ("a", "out", 1),
        ("a", "out", 2),
        ("b", "done", 3),
    ]
    assert all(a is b for a, b in zip(first, second[:3], strict=True))  # cached, not rebuilt
    assert second is not first  # a new list each time
    assert second[0].timestamp <= second[-1].timestamp


def test_changing_the_returned_list_does_not_change_the_job():
    state = _job(3)
    shown = state.execution_history
    shown.append(ExecutionRecord("x", "forged", {}))
    del shown[0]
    shown.reverse()
    assert [r.data["n"] for r in state.execution_history] == [0, 1, 2]
    state.get_execution_history().clear()
    state.get_execution_history("a").pop()
    assert [r.data["n"] for r in state.get_execution_history("a")] == [0, 1, 2]
    assert len(state._history_columns) == 3 and state.history_dropped == 0


def test_lowering_the_limit_trims_on_the_next_read_and_the_view_follows():
    state = _job(10)
    cached = state.execution_history
    state.history_limit = 3
    assert state.history_dropped == 0  # reading the counters trims nothing
    kept = state.execution_history
    assert [r.data["n"] for r in kept] == [7, 8, 9]
    assert state.history_dropped == 7
    assert all(a is b for a, b in zip(kept, cached[7:], strict=True))  # the cache was trimmed, too
    for n in range(10, 17):  # the 4th append passes 2 * limit and trims to 3
        state.record_execution("a", "out", {"n": n})
    assert state.history_dropped == 11 and len(state._history_columns) == 6
    assert [r.data["n"] for r in state.execution_history] == [14, 15, 16]


def test_a_replaced_history_is_not_shown_from_the_old_cache():
    state = _job(2)
    state.execution_history  # noqa: B018 -- builds the cache
    state._history_columns.load([("z", "out", {"n": 9}, 1_700_000_000.0)])
    assert [(r.routine_id, r.wall_time) for r in state.execution_history] == [
        ("z", 1_700_000_000.0)
    ]
    state.history_dropped = 40  # renumbered by hand: same records
    assert [r.routine_id for r in state.execution_history] == ["z"]
    assert state.history_dropped == 40


def test_records_read_while_another_thread_appends_are_whole():
    """One thread appends (as the supervisor does) past the limit, trimming; the
    reader's records always match their own fields and come in order."""
    state = _job(limit=50)
    stop = threading.Event()
    seen: list[int] = []

    def write() -> None:
        n = 0
        while not stop.is_set() or n < 2000:
            state.record_execution(f"r{n}", f"e{n}", {"n": n})
            n += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch often: interleavings a test can see
    writer = threading.Thread(target=write)
    writer.start()
    try:
        for _ in range(300):
            records = state.execution_history
            numbers = [r.data["n"] for r in records]
            assert [(r.routine_id, r.event_name) for r in records] == [
                (f"r{n}", f"e{n}") for n in numbers
            ]
            if numbers:  # consecutive: no record lost or shifted in the middle
                assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
            assert len(records) <= 50
            seen.extend(numbers[-1:])
    finally:
        stop.set()
        writer.join(30)
        sys.setswitchinterval(interval)
    assert not writer.is_alive()
    history = state.execution_history
    assert len(history) == 50 and state.history_dropped + 50 == history[-1].data["n"] + 1
    assert seen == sorted(seen)


def test_record_history_false_records_nothing_and_checkpoints_no_history(tmp_path):
    key = b"k" * 32

    def flow(store: SQLiteStore) -> Flow:
        made = Flow(
            "nohist", record_history=False, checkpoint_store=store, checkpoint_interval=3600
        )
        made.add_routine(Source(), "b")
        return made

    first = flow(SQLiteStore(tmp_path / "store.db", key=key))
    try:
        job = first.execute("b", {"n": 200}, job_id="quiet")
        assert job.status == "completed"
        assert job.execution_history == [] and job.history_dropped == 0
        assert len(job._history_columns) == 0
        first_position, chunks = HistoryChunks().update(job)
        assert (first_position, chunks) == (0, [])
    finally:
        first.shutdown()
    again = flow(SQLiteStore(tmp_path / "store.db", key=key))
    try:
        (back,) = again.recover()
        assert (back.job_id, back.status) == ("quiet", "completed")
        assert back.execution_history == [] and back.history_dropped == 0
        assert back.routine_states["b"]["processed"] == 1
    finally:
        again.shutdown()


def test_assigning_execution_history_replaces_the_records_as_in_0_10():
    job = JobState("flow")
    job.record_execution("a", "out", {"n": 1})
    kept = ExecutionRecord("b", "done", {"n": 2})
    job.execution_history = [kept]
    assert [(r.routine_id, r.event_name, r.data) for r in job.execution_history] == [
        ("b", "done", {"n": 2})
    ]
    job.record_execution("c", "out", {})
    assert [r.routine_id for r in job.execution_history] == ["b", "c"]


def test_last_gives_the_newest_records_without_trimming():
    history = History(limit=3)
    for k in range(5):
        history.append("r", "out", {"k": k} if k != 4 else None)
    assert len(history) == 5, "appends trim only past twice the limit"
    newest = history.last(2)
    assert [(rid, name, data) for rid, name, data, _ in newest] == [
        ("r", "out", {"k": 3}),
        ("r", "out", {}),  # no data: an empty dict, as ExecutionRecord gives it
    ]
    assert all(isinstance(when, float) for *_, when in newest)
    assert len(history.last(10)) == 5 and len(history) == 5 and history.dropped == 0
