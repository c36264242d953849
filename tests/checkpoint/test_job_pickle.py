"""A job's history is pickled chunk by chunk across cuts, and loads back whole."""

from __future__ import annotations

import pickle
import threading
from array import array
from datetime import datetime
from pathlib import Path

import pytest

from routilux import CheckpointError, QueueOutputHandler
from routilux.execution_record import ExecutionRecord
from routilux.execution_tracker import ExecutionTracker
from routilux.job_state import JobState
from routilux.runtime.cut import pickle_finished
from routilux.runtime.job_pickle import MAX_CHUNKS, HistoryChunks, snapshot
from routilux.runtime.wire import dumps

DATA = Path(__file__).parent / "data"


def _history(state: JobState) -> list[tuple]:
    return [(r.routine_id, r.event_name, r.data, r.wall_time) for r in state.execution_history]


def _roundtrip(state: JobState, chunks: HistoryChunks) -> JobState:
    return pickle.loads(dumps({"state": snapshot(state, chunks)}))["state"]


def _job(limit: int = 10_000) -> JobState:
    state = JobState("flow", "job-1")
    state.history_limit = limit
    state.entry = {"routine": "a", "slot": "trigger", "params": {"n": 3}}
    state.shared_data["k"] = [1, 2]
    return state


def test_each_cut_pickles_only_the_records_added_since_the_previous_one():
    state, chunks = _job(), HistoryChunks()
    for n in range(5):
        state.record_execution("a", "out", {"n": n})
    first = snapshot(state, chunks)
    for n in range(5, 8):
        state.record_execution("b", "out", {"n": n})
    second = snapshot(state, chunks)
    assert [c[:2] for c in second.chunks] == [(0, 5), (5, 3)]
    assert second.chunks[0] is first.chunks[0]  # the same bytes, not pickled again
    loaded = pickle.loads(dumps(second))
    assert _history(loaded) == _history(state)
    assert loaded.entry == state.entry and loaded.shared_data == {"k": [1, 2]}
    assert (loaded.job_id, loaded.status, loaded.created_at) == (
        state.job_id,
        state.status,
        state.created_at,
    )


def test_a_history_trimmed_at_the_front_loads_without_the_dropped_records():
    state, chunks = _job(limit=4), HistoryChunks()
    for n in range(6):
        state.record_execution("a", "out", {"n": n})
    snapshot(state, chunks)
    for n in range(6, 11):  # past 2 * limit: the front is trimmed
        state.record_execution("a", "out", {"n": n})
    assert state.history_dropped > 0
    loaded = _roundtrip(state, chunks)
    assert _history(loaded) == _history(state)
    assert loaded.history_dropped == state.history_dropped


def test_many_cuts_are_merged_into_one_chunk():
    state, chunks = _job(), HistoryChunks()
    for n in range(MAX_CHUNKS + 3):
        state.record_execution("a", "out", {"n": n})
        taken = snapshot(state, chunks)
        assert len(taken.chunks) <= MAX_CHUNKS
    assert _history(pickle.loads(dumps(taken))) == _history(state)


def test_a_replaced_history_is_pickled_again_from_scratch():
    state, chunks = _job(), HistoryChunks()
    for n in range(3):
        state.record_execution("a", "out", {"n": n})
    snapshot(state, chunks)
    shorter = _job()
    shorter.record_execution("z", "out", {"n": 9})
    state.deserialize(shorter.serialize())  # 0.10's way: fills this instance
    assert _history(_roundtrip(state, chunks)) == _history(state)
    assert [r.data for r in state.execution_history] == [{"n": 9}]
    # Same length, other records: only the generation tells them apart.
    state._history_columns.load([("q", "out", {"n": 1}, 1_700_000_000.0)])
    assert _history(_roundtrip(state, chunks)) == [("q", "out", {"n": 1}, 1_700_000_000.0)]
    state.history_dropped = 5  # renumbered by hand: positions change
    state.record_execution("q", "out", {"n": 2})
    loaded = _roundtrip(state, chunks)
    assert _history(loaded) == _history(state) and loaded.history_dropped == 5
    assert [c[:2] for c in chunks.chunks] == [(5, 2)]


def test_trimming_past_a_chunk_between_cuts_restores_exactly_the_kept_records():
    state, chunks = _job(limit=4), HistoryChunks()
    for n in range(3):
        state.record_execution("a", "out", {"n": n})
    snapshot(state, chunks)  # chunk of positions 0-2
    for n in range(3, 6):
        state.record_execution("b", "out", {"n": n})
    snapshot(state, chunks)  # chunk of positions 3-5
    for n in range(6, 9):  # the 9th record passes 2 * limit: trimmed to 4
        state.record_execution("c", "out", {"n": n})
    assert state.history_dropped == 5  # the whole first chunk and one of the second
    taken = snapshot(state, chunks)
    assert [c[:2] for c in taken.chunks] == [(3, 3), (6, 3)]  # first chunk let go
    loaded = pickle.loads(dumps(taken))
    assert [r.data["n"] for r in loaded.execution_history] == [5, 6, 7, 8]
    assert _history(loaded) == _history(state)
    assert (loaded.history_dropped, loaded.history_limit) == (5, 4)
    # The restored job goes on from where it was: appends, trims, cuts.
    for n in range(9, 14):
        loaded.record_execution("d", "out", {"n": n})
    again = _roundtrip(loaded, HistoryChunks())
    assert [r.data["n"] for r in again.execution_history] == [10, 11, 12, 13]
    assert again.history_dropped == 10


def test_chunk_times_are_pickled_as_an_array_not_per_record():
    state, chunks = _job(), HistoryChunks()
    for n in range(50):
        state.record_execution("a", "out", {"n": n})
    ((start, count, data, _),) = snapshot(state, chunks).chunks
    ids, names, payload, times = pickle.loads(data)
    assert (start, count) == (0, 50)
    assert isinstance(times, array) and times.typecode == "d" and len(times) == 50
    assert list(times) == [r.wall_time for r in state.execution_history]
    assert ids == ["a"] * 50 and names == ["out"] * 50 and payload[7] == {"n": 7}


def test_a_cut_written_before_columns_still_loads():
    """tests/checkpoint/data/old_history_snapshot.pickle: a finished job's snapshot
    as written by the chunk format with times as a float list (two chunks, the
    front trimmed into the first, the last time set by hand to None)."""
    loaded = pickle.loads((DATA / "old_history_snapshot.pickle").read_bytes())["state"]
    assert isinstance(loaded, JobState)
    assert (loaded.job_id, loaded.status) == ("old-job", "completed")
    assert (loaded.history_limit, loaded.history_dropped) == (4, 5)
    kept = loaded._history_columns.last(10)  # 5 kept: trimmed only past 2 * limit
    assert [(rid, data["n"]) for rid, _, data, _ in kept] == [("a", 5)] + [
        ("b", n) for n in (6, 7, 8, 9)
    ]
    assert [t for *_, t in kept[:4]] == [1_700_000_005.0 + i for i in range(4)]
    assert isinstance(kept[4][3], float)  # None became a time
    records = loaded.execution_history  # reading trims to the limit, as it always did
    assert [r.data["n"] for r in records] == [6, 7, 8, 9] and loaded.history_dropped == 6
    assert loaded.entry == {"routine": "a", "slot": "trigger", "params": {"n": 3}}
    loaded.record_execution("c", "out", {"n": 10})  # and the job goes on
    again = _roundtrip(loaded, HistoryChunks())
    assert [r.data["n"] for r in again.execution_history] == [7, 8, 9, 10]


def test_the_tracker_comes_back_pointing_at_its_job():
    state = _job()
    state.execution_tracker = ExecutionTracker(state)
    state.record_execution("a", "out", {"n": 1})
    loaded = _roundtrip(state, HistoryChunks())
    assert loaded.execution_tracker.job_state is loaded
    assert _history(loaded) == _history(state)


def test_what_lives_in_main_is_pickled_by_value(monkeypatch):
    """The C pickler would refer to ``__main__.Thing``; a checkpoint must carry the
    class itself, since the recovering process's ``__main__`` is another one."""
    import sys

    from routilux.runtime.job_pickle import dumps as checkpoint_dumps

    thing = type("Thing", (), {"__module__": "__main__", "value": 7})
    monkeypatch.setattr(sys.modules["__main__"], "Thing", thing, raising=False)
    data = checkpoint_dumps({"obj": thing()})
    monkeypatch.delattr(sys.modules["__main__"], "Thing")
    assert pickle.loads(data)["obj"].value == 7
    assert pickle.loads(checkpoint_dumps({"plain": [1, "a"]})) == {"plain": [1, "a"]}


def test_a_chunk_with_cyclic_or_shared_data_loads_back_equal():
    """A chunk is one pickle of many records: a cycle in a record's data and data
    shared by records come back as they were."""
    state, chunks = _job(), HistoryChunks()
    looped: dict = {"n": 1}
    looped["self"] = looped
    shared = {"big": list(range(5))}
    state.record_execution("a", "out", looped)
    state.record_execution("a", "out", shared)
    state.record_execution("b", "out", shared)
    loaded = _roundtrip(state, chunks)
    records = loaded.execution_history
    assert records[0].data["self"] is records[0].data  # the cycle survived
    assert records[1].data == records[2].data == shared
    assert [r.wall_time for r in records] == [r.wall_time for r in state.execution_history]
    assert all(type(r.wall_time) is float for r in records)


def test_a_job_state_pickled_before_columns_still_loads():
    """tests/checkpoint/data/old_job_state.pickle: a whole JobState whose history
    was a list of (routine_id, event_name, data, time) tuples."""
    loaded = pickle.loads((DATA / "old_job_state.pickle").read_bytes())
    assert (loaded.history_limit, loaded.history_dropped) == (7, 3)
    assert _history(loaded) == [("a", "out", {"n": n}, 1_700_000_100.0 + n) for n in range(3)]
    assert "_history" not in vars(loaded) and "history_limit" not in vars(loaded)
    loaded.record_execution("b", "out", {"n": 3})
    again = pickle.loads(pickle.dumps(loaded))
    assert [r.data["n"] for r in again.execution_history] == [0, 1, 2, 3]


def test_the_oldest_pickled_histories_of_records_still_load():
    """Before the history was pickled as tuples it was a list of ExecutionRecord
    objects; older tuples hold a datetime where later ones hold seconds."""
    when = datetime(2026, 1, 2, 3, 4, 5)
    fields = _job().__getstate__()
    del fields["_history_columns"]
    fields.update(
        _history=[ExecutionRecord("a", "out", {"n": 1}, 1_700_000_000.0), ("b", "e", {}, when)],
        history_limit=9,
        history_dropped=2,
    )
    state = JobState.__new__(JobState)
    state.__setstate__(fields)
    assert _history(state) == [
        ("a", "out", {"n": 1}, 1_700_000_000.0),
        ("b", "e", {}, when.timestamp()),
    ]
    assert (state.history_limit, state.history_dropped) == (9, 2)


def test_a_job_state_pickled_now_loads_equal():
    state = _job(limit=3)
    for n in range(8):
        state.record_execution("a", "out", {"n": n})
    state.execution_history  # noqa: B018 -- reading trims: 3 kept, 5 dropped
    state.record_execution("b", "out", {"n": 8})
    loaded = pickle.loads(pickle.dumps(state))
    assert _history(loaded) == _history(state)
    assert (loaded.history_limit, loaded.history_dropped) == (3, 6)
    assert vars(loaded).keys() == vars(state).keys()
    assert loaded._history_columns.generation != state._history_columns.generation
    empty = pickle.loads(dumps(state.__getstate__(with_history=False)["_history_columns"]))
    assert (len(empty), empty.limit, empty.dropped) == (0, 3, 6)


def test_an_unpicklable_finished_job_names_what_is_pickled_not_what_is_left_out():
    """The JobState's output handler is never pickled (__getstate__ leaves it out):
    the error names the history record that holds the lock, not the handler."""
    state = _job()
    state.output_handler = QueueOutputHandler()
    state.record_execution("a", "out", {"lock": threading.Lock()})
    with pytest.raises(CheckpointError, match="cannot checkpoint finished job") as caught:
        pickle_finished(state)
    assert "output_handler" not in str(caught.value)
    assert "lock" in str(caught.value).lower()
