"""0.10-style entry points kept for compatibility, and small surface behaviours."""

from __future__ import annotations

import threading

import pytest

from routilux import (
    CheckpointError,
    DirectoryStore,
    Flow,
    JobState,
    Routine,
    Runtime,
    SQLiteStore,
)


class Gate(Routine):
    def __init__(self, release: threading.Event):
        super().__init__()
        self.release = release
        self.define_slot("trigger", handler=lambda: self.release.wait(10))


def test_flow_wait_for_completion_waits_for_running_jobs(make_flow):
    release = threading.Event()
    flow = make_flow()
    flow.add_routine(Gate(release), "g")
    job = flow.execute("g", wait=False)
    assert flow.wait_for_completion(timeout=0.05) is False
    release.set()
    assert flow.wait_for_completion(timeout=10) is True
    assert job.status == "completed"


def test_compat_keywords_are_accepted(make_flow):
    release = threading.Event()
    flow = make_flow()
    flow.add_routine(Gate(release), "g")
    job = flow.execute("g", wait=False)
    flow.pause(job, wait=False, checkpoint=True)
    release.set()
    assert JobState.wait_for_completion(flow, job, timeout=10, check_interval=0.5)
    assert job.status == "paused"
    flow.resume(job)
    assert job.wait(10) and job.status == "completed"
    flow.shutdown(wait=True)


def test_serialize_lists_config_it_cannot_hold():
    routine = Routine()
    routine.set_config(limit=3, predicate=lambda x: x > 1, lock=threading.Lock())
    flow = Flow(flow_id="cfg")
    flow.add_routine(routine, "r")
    spec = flow.serialize()["routines"]["r"]
    # Callables are encoded now (0.10's lambda_expression form); objects are not.
    assert spec["config"] == {
        "limit": 3,
        "predicate": {"_type": "lambda_expression", "expression": "x > 1", "params": ["x"]},
    }
    assert spec["unserialized_config"] == ["lock"]


def test_runtime_takes_a_store_path(tmp_path):
    with Runtime(tmp_path / "rt.sqlite3") as runtime:
        assert isinstance(runtime.store, SQLiteStore)
    with Runtime(tmp_path / "dir") as runtime:  # a directory that does not exist yet
        assert isinstance(runtime.store, SQLiteStore)
    (tmp_path / "ckdir").mkdir()
    with Runtime(str(tmp_path / "ckdir")) as runtime:
        assert isinstance(runtime.store, DirectoryStore)


def test_runtime_add_flow_failing_recovery_leaves_the_flow_unhosted(tmp_path):
    store = DirectoryStore(tmp_path / "ck")
    flow = Flow(flow_id="f", checkpoint_store=store)
    flow.add_routine(Gate(threading.Event()), "g")
    flow.checkpoint_store.save("f", b"not a checkpoint", [])
    runtime = Runtime(store)
    try:
        with pytest.raises(CheckpointError):
            runtime.add_flow(flow)
        assert "f" not in runtime.flows
    finally:
        runtime.shutdown()


def test_read_only_store_opening_creates_nothing(tmp_path):
    SQLiteStore(tmp_path / "s.db").close()
    (tmp_path / "s.db.key").unlink()
    with pytest.raises(CheckpointError, match="no key file"):
        SQLiteStore(tmp_path / "s.db", create=False)
    assert not (tmp_path / "s.db.key").exists()
