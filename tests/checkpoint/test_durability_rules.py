"""The durability rules of docs/guarantees.rst, each checked in one process.

(The host-kill loops that check them across SIGKILLs live in tests/faults/.)
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from helpers import Node, Source

from routilux import Flow, Routine
from routilux.checkpoint import DirectoryStore, SQLiteStore
from routilux.checkpoint.format import encode
from routilux.checkpoint.store import FinishedJob
from routilux.exceptions import CheckpointError, FlowStateError
from routilux.runtime.checkpointer import SMALL_HISTORY

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
GATE = threading.Event()


class Counter(Routine):
    """Adds ``n`` to its total; blocks first while ``wait`` is set and GATE is not."""

    def __init__(self):
        super().__init__()
        self.total = 0
        self.calls = 0
        self.define_slot("trigger", handler=self.add)
        self.define_event("out", ["total"])

    def add(self, n=1, wait=False):
        if wait:
            GATE.wait(30)
        self.calls += 1
        self.total += n
        self.emit("out", total=self.total)


@pytest.fixture(params=["sqlite", "directory"])
def store_path(request, tmp_path):
    return request.param, tmp_path / ("store.db" if request.param == "sqlite" else "store")


def open_store(kind_path, key=KEY):
    kind, path = kind_path
    return SQLiteStore(path, key=key) if kind == "sqlite" else DirectoryStore(path, key=key)


def make_flow(store, **kwargs):
    flow = Flow("rules", checkpoint_store=store, checkpoint_interval=3600, **kwargs)
    counter = Counter()
    flow.add_routine(counter, "c")
    return flow, counter


@pytest.fixture(autouse=True)
def open_gate():
    GATE.clear()
    yield
    GATE.set()


def test_finished_jobs_are_kept_across_any_number_of_restarts(store_path):
    """Regression: a checkpoint listed only the jobs that finished in its own process,
    so the third host life had lost the results of the first."""
    finished = {}
    for life in range(4):
        flow, _ = make_flow(open_store(store_path), keep_finished_jobs=10)
        try:
            back = {job.job_id: job for job in flow.recover()}
            assert set(back) == set(finished), f"life {life}: jobs lost or invented"
            for job_id, status in finished.items():
                assert back[job_id].status == status
                assert back[job_id].wait(0), "a recovered finished job's wait() must return"
            job = flow.execute("c", {"n": life + 1}, job_id=f"job-{life}")
            assert job.status == "completed"
            finished[job.job_id] = "completed"
        finally:
            flow.shutdown()


def test_keep_finished_jobs_bounds_what_the_store_keeps(store_path):
    flow, _ = make_flow(open_store(store_path), keep_finished_jobs=2)
    try:
        for i in range(4):
            flow.execute("c", {"n": 1}, job_id=f"j{i}")
    finally:
        flow.shutdown()
    again, _ = make_flow(open_store(store_path), keep_finished_jobs=2)
    try:
        assert sorted(job.job_id for job in again.recover()) == ["j2", "j3"]
    finally:
        again.shutdown()


def test_a_recovered_finished_job_pickled_before_its_waiters_woke_returns_from_wait():
    """Regression: the event was restored from the pickled flag, not the status."""
    import pickle

    from routilux import JobState

    state = JobState("f", "j")
    state.set_status("completed", notify=False)  # the supervisor's order at a job end
    assert pickle.loads(pickle.dumps(state)).wait(0)


def test_a_new_process_may_write_when_nothing_is_unfinished(store_path):
    """The ownership check lets a second flow object write once every job finished."""
    flow, _ = make_flow(open_store(store_path))
    job = flow.execute("c", {"n": 5, "wait": True}, wait=False, job_id="interrupted")
    GATE.set()
    job.wait(30)
    flow2, _ = make_flow(open_store(store_path))
    try:
        # flow (still this process's) finished it: nothing unfinished, writing is fine
        assert flow2.execute("c", {"n": 1}).status == "completed"
    finally:
        flow.shutdown()
        flow2.shutdown()


def test_new_jobs_are_refused_until_unfinished_ones_are_recovered(store_path):
    GATE.clear()
    flow, _ = make_flow(open_store(store_path))
    job = flow.execute("c", {"n": 5, "wait": True}, wait=False, job_id="interrupted")
    flow.pause(job, wait=False)
    GATE.set()
    assert job.wait(30) and job.status == "paused"
    flow.shutdown()  # parked in the store: unfinished
    GATE.clear()

    other, _ = make_flow(open_store(store_path))
    try:
        with pytest.raises(FlowStateError, match=r"1 unfinished job.*interrupted.*recover"):
            other.execute("c", {"n": 1})
        with pytest.raises(FlowStateError, match="recover"):
            flow.execute("c", {"n": 1})  # the same object after shutdown: parked, too
        (back,) = other.recover()
        assert back.job_id == "interrupted" and back.status == "paused"
        other.resume(back)
        GATE.set()
        assert back.wait(30) and back.status == "completed"
        assert other.execute("c", {"n": 1}).status == "completed"
    finally:
        GATE.set()
        other.shutdown()


def test_a_process_with_another_key_writes_nothing(store_path):
    flow, _ = make_flow(open_store(store_path))
    try:
        flow.execute("c", {"n": 1}, job_id="first")
    finally:
        flow.shutdown()
    intruder, _ = make_flow(open_store(store_path, key=OTHER_KEY))
    try:
        with pytest.raises(CheckpointError, match="different checkpoint key"):
            intruder.execute("c", {"n": 1}, job_id="second")
    finally:
        intruder.shutdown()
    owner, _ = make_flow(open_store(store_path))
    try:
        assert [job.job_id for job in owner.recover()] == ["first"]
        assert [row["job_id"] for row in owner.checkpoint_store.list_jobs()] == ["first"]
    finally:
        owner.shutdown()


def test_recover_with_a_new_store_then_run_then_recover_again_runs_nothing_twice(store_path):
    """Regression (issue 13): the supervisor kept the store it started with, so a job
    run after ``recover(store)`` was never checkpointed as finished and ran again."""
    flow = Flow("rules", checkpoint_interval=3600)
    counter = Counter()
    flow.add_routine(counter, "c")
    try:
        assert flow.execute("c", {"n": 1}).status == "completed"  # supervisor, no store
        assert flow.recover(open_store(store_path)) == []
        assert flow.execute("c", {"n": 2}, job_id="after").status == "completed"
    finally:
        flow.shutdown()
    again, counter2 = make_flow(open_store(store_path))
    try:
        (job,) = again.recover()
        assert job.job_id == "after" and job.status == "completed"
        assert (counter2.calls, counter2.total) == (2, 3), "state as of the last job"
        again.execute("c", {"n": 0})  # let anything wrongly recovered run
        assert counter2.calls == 3, "the finished job ran again"
    finally:
        again.shutdown()


def test_a_written_checkpoint_is_published_on_the_event_bus(store_path):
    flow, _ = make_flow(open_store(store_path))
    sub = flow.subscribe(kinds=["checkpoint.written"])
    try:
        flow.execute("c", {"n": 1}, job_id="one")
        event = sub.get(10)  # the idle cut at the job's end
        assert event is not None and event.data["finished"] == 1 and event.data["jobs"] == 0
        assert event.flow_id == "rules" and event.data["seconds"] > 0
    finally:
        flow.shutdown()


def test_checkpoint_inside_a_handler_is_refused(tmp_path):
    """Rule *consistent cuts*: a checkpoint is taken between steps, never from one."""
    errors = []

    def ask(node, data):
        flow, _, _ = node.get_execution_context()
        try:
            flow.checkpoint()
        except FlowStateError as exc:
            errors.append(str(exc))

    flow = Flow(flow_id="ck", checkpoint_store=SQLiteStore(tmp_path / "s.db"))
    flow.add_routine(Node(ask), "src")
    try:
        assert flow.execute("src", timeout=10).status == "completed"
    finally:
        flow.shutdown()
    assert errors and "inside a handler" in errors[0]


def test_a_directory_save_that_dies_before_its_checkpoint_leaves_no_finished_job(tmp_path):
    """The checkpoint file is the commit point: finished-job files written before it
    do not count until it is on disk (and are removed by the next save)."""
    store = DirectoryStore(tmp_path / "store", key=KEY)
    store.save("f", _cut(store, []), [])
    real = store._write_atomic

    def dies_at_the_checkpoint(target, data):
        if target.suffix == DirectoryStore.SUFFIX:
            raise OSError("killed")
        real(target, data)

    store._write_atomic = dies_at_the_checkpoint
    finished = FinishedJob("j1", 1.0, b"job record")
    with pytest.raises((OSError, CheckpointError)):
        store.save("f", _cut(store, []), [{"job_id": "j1", "status": "completed"}], [finished])
    store._write_atomic = real
    assert store.load_finished("f") == [], "a finished job of an uncommitted cut"
    store.save("f", _cut(store, []), [])
    assert list((tmp_path / "store" / "f" / "finished").glob("*.job")) == []


def _cut(store, jobs):
    return encode("f", b"payload", store.key, jobs)


def test_an_intent_a_kill_left_behind_after_its_job_ended_is_stale(tmp_path):
    """Regression (kill loop, Runtime + DirectoryStore): a kill between a cut and the
    deletion of the intents it covered left the finished job listed as 'running'."""
    store = DirectoryStore(tmp_path / "store", key=KEY)
    store.add_intent("f", "j1", _cut(store, []))
    intent = next((tmp_path / "store" / "f").glob("*.intent"))
    submitted = intent.read_bytes(), intent.stat().st_mtime
    ended = time.time() + 1
    finished = FinishedJob("j1", ended, b"record")
    summary = [{"job_id": "j1", "status": "completed", "updated_at": ended}]
    store.save("f", _cut(store, summary), summary, [finished])
    intent.write_bytes(submitted[0])  # what the kill left: the intent, as submitted
    os.utime(intent, (submitted[1], submitted[1]))
    assert [(r["job_id"], r["status"]) for r in store.list_jobs("f")] == [("j1", "completed")]
    store.save("f", _cut(store, []), [])
    assert store.intents("f") == [], "the next cut removes the stale intent"


def test_a_job_that_ended_in_a_cut_killed_before_its_listing_is_listed_as_ended(tmp_path):
    """Regression (kill loop, Flow + DirectoryStore): a kill after a cut's checkpoint
    but before ``jobs.json`` was rewritten left the job 'running' in the listing once
    a later cut (which no longer names it) was written, though recover() said
    'completed'."""
    store = DirectoryStore(tmp_path / "store", key=KEY)
    store.add_intent("f", "j1", _cut(store, []))
    ended = time.time() + 1
    summary = [{"job_id": "j1", "status": "completed", "updated_at": ended}]
    record = FinishedJob("j1", ended, _cut(store, summary))
    store._record_jobs = lambda *args: (_ for _ in ()).throw(OSError("killed"))
    with pytest.raises((OSError, CheckpointError)):
        store.save("f", _cut(store, summary), summary, [record])
    after_the_kill = DirectoryStore(tmp_path / "store", key=KEY)
    after_the_kill.save("f", _cut(after_the_kill, []), [])
    assert [(r["job_id"], r["status"]) for r in after_the_kill.list_jobs("f")] == [
        ("j1", "completed")
    ]


@pytest.mark.parametrize("records", [1, SMALL_HISTORY + 1])
def test_a_finished_job_comes_back_whole_whichever_way_it_was_pickled(store_path, records):
    """A short finished job is pickled whole, a longer one as history chunks
    (runtime/checkpointer.py, SMALL_HISTORY): both load back as they ended."""
    flow = Flow("rules", checkpoint_store=open_store(store_path), checkpoint_interval=3600)
    flow.add_routine(Source(), "b")
    try:
        job = flow.execute("b", {"n": records}, job_id="burst")
        assert job.status == "completed"
        expected = [(r.routine_id, r.event_name, r.data) for r in job.execution_history]
        assert (len(expected) > SMALL_HISTORY) == (records > SMALL_HISTORY)
    finally:
        flow.shutdown()
    again = Flow("rules", checkpoint_store=open_store(store_path), checkpoint_interval=3600)
    again.add_routine(Source(), "b")
    try:
        (back,) = again.recover()
        assert (back.job_id, back.status) == ("burst", "completed")
        assert [(r.routine_id, r.event_name, r.data) for r in back.execution_history] == expected
        assert back.entry == {"routine": "b", "slot": "trigger", "params": {"n": records}}
        assert back.wait(0)
    finally:
        again.shutdown()
