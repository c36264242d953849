"""Checkpoint stores (SQLiteStore and DirectoryStore, same tests for both).

File modes, keys, pruning, listings, retention, job intents, and what a crash in
the middle of a checkpoint write leaves behind.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time

import pytest
from helpers import Node

from routilux import CheckpointError, ConfigurationError, Flow, Routine
from routilux.checkpoint import DirectoryStore, SQLiteStore, open_store
from routilux.checkpoint import directory_store as directory_store_module
from routilux.checkpoint import sqlite_store as sqlite_store_module
from routilux.checkpoint.format import decode, encode
from routilux.checkpoint.stores import KEY_ENV, verify_blob
from routilux.runtime.wire import dumps

KEY = b"stores-test-key-0123456789abcdef"
KINDS = ["sqlite", "dir"]

@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)


@pytest.fixture
def open_umask():
    """A umask that masks nothing: modes must come from the store, not the umask."""
    old = os.umask(0)
    yield
    os.umask(old)


@pytest.fixture(params=KINDS)
def kind(request):
    return request.param


@pytest.fixture
def make_store(tmp_path, kind):
    made = []

    def factory(**kwargs):
        kwargs.setdefault("key", KEY)
        if kind == "sqlite":
            store = SQLiteStore(tmp_path / "checkpoints.db", **kwargs)
        else:
            store = DirectoryStore(tmp_path / "checkpoints", **kwargs)
        made.append(store)
        return store

    yield factory
    for store in made:
        store.close()


def blob_of(store, flow_id: str, value) -> bytes:
    return encode(flow_id, dumps(value), store.key)


def loaded(store, flow_id: str):
    blob = store.load_latest(flow_id)
    return None if blob is None else decode(blob, store.key, flow_id)[1]


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    """The stores' clock and JobState's timestamps (finished_at ...) follow ``clock.now``."""
    from datetime import datetime

    import routilux.job_state as job_state_module

    fake = FakeClock(time.time())

    class FakeDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.fromtimestamp(fake.now, tz)

    monkeypatch.setattr(sqlite_store_module, "time", fake)
    monkeypatch.setattr(directory_store_module, "time", fake)
    monkeypatch.setattr(job_state_module, "datetime", FakeDatetime)
    return fake


# ------------------------------------------------------------------ files and keys
def test_files_and_key_file_are_created_0600(kind, tmp_path, open_umask):
    if kind == "sqlite":
        store = SQLiteStore(tmp_path / "ck.db")
        key_file = tmp_path / "ck.db.key"
    else:
        store = DirectoryStore(tmp_path / "ck")
        key_file = tmp_path / "ck" / "checkpoint.key"
    try:
        assert key_file.exists(), "no key given: the store must create a key file"
        assert mode_of(key_file) == 0o600
        assert len(store.key) >= 32 and store.key == key_file.read_bytes().strip()
        store.save("f", blob_of(store, "f", 1), [{"job_id": "j1", "status": "running"}])
        store.add_intent("f", "j2", blob_of(store, "f", 2))
        if kind == "sqlite":
            files = [tmp_path / "ck.db"] + [
                tmp_path / f"ck.db{suffix}" for suffix in ("-wal", "-shm")
                if (tmp_path / f"ck.db{suffix}").exists()
            ]
        else:
            root = tmp_path / "ck"
            assert mode_of(root) == 0o700
            assert mode_of(root / "f") == 0o700
            files = [p for p in root.rglob("*") if p.is_file()]
            names = {p.name for p in files}
            assert {"checkpoint.key", "jobs.json", "j2.intent"} <= names
            assert any(name.endswith(".ckpt") for name in names)
        assert files
        for path in files:
            assert mode_of(path) == 0o600, (path, oct(mode_of(path)))
    finally:
        store.close()


def test_key_file_is_reused_by_the_next_store(kind, tmp_path):
    path = tmp_path / ("ck.db" if kind == "sqlite" else "ck")
    cls = SQLiteStore if kind == "sqlite" else DirectoryStore
    first = cls(path)
    first.save("f", blob_of(first, "f", "hello"), [])
    first.close()
    second = cls(path)
    assert second.key == first.key
    assert loaded(second, "f") == "hello"
    second.close()


def test_env_var_key_is_used(kind, make_store, monkeypatch, tmp_path):
    env_key = "environment-key-0123456789abcdef"
    monkeypatch.setenv(KEY_ENV, env_key)
    store = make_store(key=None)
    assert store.key == env_key.encode()
    assert not list(tmp_path.rglob("*.key")), "with the env var set no key file is made"
    store.save("f", blob_of(store, "f", "env"), [])
    # a store with another key refuses what the env key signed
    other = SQLiteStore(tmp_path / "other.db", key=b"x" * 32)
    with pytest.raises(CheckpointError, match="integrity check failed"):
        verify_blob(other, store.load_latest("f"), "other")
    other.close()
    # key= wins over the environment
    explicit = make_store(key=KEY)
    assert explicit.key == KEY


@pytest.mark.parametrize("short", [b"", b"short", "fifteen-chars!!"])
def test_too_short_key_is_refused(make_store, short):
    with pytest.raises(ConfigurationError, match="at least 16 bytes"):
        make_store(key=short)


def test_too_short_env_key_is_refused(make_store, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "tiny")
    with pytest.raises(ConfigurationError, match="at least 16 bytes"):
        make_store(key=None)


def test_damaged_key_file_is_refused(kind, tmp_path):
    if kind == "sqlite":
        (tmp_path / "ck.db.key").write_bytes(b"abc")
        with pytest.raises(CheckpointError, match="damaged"):
            SQLiteStore(tmp_path / "ck.db")
    else:
        (tmp_path / "ck").mkdir()
        (tmp_path / "ck" / "checkpoint.key").write_bytes(b"abc")
        with pytest.raises(CheckpointError, match="damaged"):
            DirectoryStore(tmp_path / "ck")


def test_a_file_that_is_not_sqlite_is_refused(tmp_path):
    path = tmp_path / "not.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CheckpointError, match="not a usable SQLite checkpoint store"):
        SQLiteStore(path, key=KEY)


def test_stores_are_exported_from_routilux():
    import routilux

    assert routilux.SQLiteStore is SQLiteStore and routilux.DirectoryStore is DirectoryStore


def test_open_store_picks_the_store_by_path(tmp_path):
    (tmp_path / "d").mkdir()
    directory = open_store(tmp_path / "d", key=KEY)
    sqlite = open_store(tmp_path / "x.db", key=KEY)
    assert isinstance(directory, DirectoryStore) and isinstance(sqlite, SQLiteStore)
    sqlite.close()


def test_read_only_store_opening_creates_nothing(tmp_path):
    SQLiteStore(tmp_path / "s.db").close()
    (tmp_path / "s.db.key").unlink()
    with pytest.raises(CheckpointError, match="no key file"):
        SQLiteStore(tmp_path / "s.db", create=False)
    assert not (tmp_path / "s.db.key").exists()


def test_store_metadata_is_signed(tmp_path):
    store = SQLiteStore(tmp_path / "s.db")
    store.set_meta("flow:prod", "/srv/app.py:flow")
    assert store.get_meta("flow:prod") == "/srv/app.py:flow"
    db = sqlite3.connect(tmp_path / "s.db")
    db.execute("INSERT OR REPLACE INTO meta VALUES ('flow:prod', 'deadbeef:/tmp/evil.py:flow')")
    db.commit()
    db.close()
    with pytest.raises(CheckpointError, match="integrity"):
        store.get_meta("flow:prod")


# ------------------------------------------------------------------ keep / prune
@pytest.mark.parametrize("keep", [1, 3])
def test_keep_prunes_old_checkpoints(kind, make_store, tmp_path, keep):
    store = make_store(keep=keep)
    for n in range(1, 7):
        store.save("f", blob_of(store, "f", n), [])
        assert loaded(store, "f") == n
    (row,) = store.list_flows()
    assert row["flow_id"] == "f" and row["checkpoints"] == keep
    if kind == "dir":
        files = sorted((tmp_path / "checkpoints" / "f").glob("*.ckpt"))
        assert len(files) == keep
        assert [decode(p.read_bytes(), KEY, "f")[1] for p in files] == list(range(7 - keep, 7))
    else:
        db = sqlite3.connect(tmp_path / "checkpoints.db")
        assert db.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0] == keep
        db.close()


def test_keep_below_one_is_refused(make_store):
    with pytest.raises(ConfigurationError, match="keep"):
        make_store(keep=0)


def test_pruning_is_per_flow(make_store):
    store = make_store(keep=1)
    store.save("a", blob_of(store, "a", "a1"), [])
    for n in range(3):
        store.save("b", blob_of(store, "b", n), [])
    assert loaded(store, "a") == "a1" and loaded(store, "b") == 2
    assert loaded(store, "nobody") is None


# ------------------------------------------------------------------ listings
def test_list_flows_and_jobs_with_status_filter(make_store):
    store = make_store()
    store.save("a", blob_of(store, "a", 1), [
        {"job_id": "a1", "status": "running"},
        {"job_id": "a2", "status": "completed"},
        {"job_id": "a3", "status": "failed", "error": "ValueError: boom"},
    ])
    store.save("b", blob_of(store, "b", 1), [{"job_id": "b1", "status": "paused"}])
    store.save("b", blob_of(store, "b", 2), [{"job_id": "b1", "status": "paused"}])
    flows = store.list_flows()
    assert [(f["flow_id"], f["checkpoints"]) for f in flows] == [("a", 1), ("b", 2)]
    assert all(isinstance(f["latest_at"], float) for f in flows)
    assert store.flows() == ["a", "b"]

    jobs = {j["job_id"]: j for j in store.list_jobs()}
    assert set(jobs) == {"a1", "a2", "a3", "b1"}
    assert jobs["a3"]["error"] == "ValueError: boom" and jobs["a3"]["flow_id"] == "a"
    assert set(jobs["a1"]) == {"job_id", "flow_id", "status", "error", "updated_at"}
    assert {j["job_id"] for j in store.list_jobs(status="completed")} == {"a2"}
    assert {j["job_id"] for j in store.list_jobs(status="paused")} == {"b1"}
    assert {j["job_id"] for j in store.list_jobs(flow_id="a")} == {"a1", "a2", "a3"}
    assert store.list_jobs(flow_id="a", status="paused") == []
    # a later checkpoint updates a job's status
    store.save("a", blob_of(store, "a", 2), [{"job_id": "a1", "status": "completed"}])
    assert {j["job_id"] for j in store.list_jobs(status="completed")} == {"a1", "a2"}


def test_finished_jobs_stay_listed_until_retention_prunes_them(make_store, clock):
    store = make_store(retention=10.0)
    store.save("f", blob_of(store, "f", 1), [
        {"job_id": "done", "status": "completed"},
        {"job_id": "bad", "status": "failed", "error": "x"},
        {"job_id": "gone", "status": "cancelled"},
        {"job_id": "live", "status": "running"},
        {"job_id": "rest", "status": "paused"},
    ])
    clock.now += 9.0
    store.save("f", blob_of(store, "f", 2), [])
    assert len(store.list_jobs()) == 5, "finished jobs stay listed within the retention"
    clock.now += 2.0  # 11 s after they finished
    store.save("f", blob_of(store, "f", 3), [])
    assert {j["job_id"] for j in store.list_jobs()} == {"live", "rest"}, (
        "finished jobs are pruned after the retention; unfinished ones never are"
    )


# ------------------------------------------------------------------ intents
def test_intents_until_a_checkpoint_covers_them(make_store):
    store = make_store()
    i1, i2, other = blob_of(store, "f", "i1"), blob_of(store, "f", "i2"), blob_of(store, "g", "g")
    store.add_intent("f", "j1", i1)
    store.add_intent("f", "j2", i2)
    store.add_intent("g", "g1", other)
    assert store.intents("f") == [i1, i2]
    assert "f" in store.flows() and "g" in store.flows()
    assert {j["job_id"]: j["status"] for j in store.list_jobs(flow_id="f")} == {
        "j1": "running", "j2": "running"}
    store.save("f", blob_of(store, "f", "ck"), [{"job_id": "j1", "status": "running"}])
    assert store.intents("f") == [i2], "the covered intent is removed, the other stays"
    assert store.intents("g") == [other], "intents of other flows are untouched"
    store.save("f", blob_of(store, "f", "ck2"), [{"job_id": "j2", "status": "completed"}])
    assert store.intents("f") == []
    assert store.list_jobs(flow_id="f", status="completed")[0]["job_id"] == "j2"


class Gated(Routine):
    def __init__(self):
        super().__init__()
        self.count = 0
        self.define_slot("trigger", handler=self.go)

    def go(self, n):
        GATE.wait(30)
        self.count += n


GATE = threading.Event()


def test_a_flow_writes_an_intent_and_a_checkpoint_removes_it(make_store):
    """With a real flow: durable at execute(), intent gone once checkpointed."""
    store = make_store()
    GATE.clear()
    flow = Flow("intent-flow", checkpoint_store=store, checkpoint_interval=3600)
    flow.add_routine(Gated(), "g")
    try:
        job = flow.execute("g", {"n": 5}, wait=False)
        assert len(store.intents("intent-flow")) == 1, "durable when execute returns"
        assert store.load_latest("intent-flow") is None
        assert [(j["job_id"], j["status"]) for j in store.list_jobs()] == [(job.job_id, "running")]
        GATE.set()
        assert job.wait(30) and job.status == "completed"
        flow.checkpoint(timeout=30)
        assert store.intents("intent-flow") == []
        (finished,) = store.load_finished("intent-flow")
        assert decode(finished, store.key, "intent-flow")[1].job_id == job.job_id
        assert loaded(store, "intent-flow")["jobs"] == [], "a finished job is not in the cut"
    finally:
        GATE.set()
        flow.shutdown()


def test_a_completed_job_is_listed_as_completed(make_store):
    """The job-end checkpoint records the job's final status (it once said 'running')."""
    store = make_store()
    GATE.set()
    flow = Flow("listing-flow", checkpoint_store=store, checkpoint_interval=3600)
    flow.add_routine(Gated(), "g")
    try:
        job = flow.execute("g", {"n": 1})
        assert job.status == "completed"
        assert [j["job_id"] for j in store.list_jobs(status="completed")] == [job.job_id]
    finally:
        flow.shutdown()


def test_retention_counts_from_when_a_job_finished(make_store, clock):
    """Later checkpoints re-list finished jobs; that must not restart their retention."""
    store = make_store(retention=10.0)
    flow = Flow("retention-flow", checkpoint_store=store, checkpoint_interval=3600)
    flow.add_routine(Node(), "r")
    try:
        old = flow.execute("r", {})
        flow.checkpoint(timeout=30)
        clock.now += 1000.0
        new = flow.execute("r", {})
        flow.checkpoint(timeout=30)
        listed = {j["job_id"] for j in store.list_jobs()}
        assert new.job_id in listed
        assert old.job_id not in listed, "finished 1000 s ago, retention 10 s"
    finally:
        flow.shutdown()


# ------------------------------------------------------------------ crash during a write
def test_sqlite_failure_inside_the_transaction_rolls_back(tmp_path):
    store = SQLiteStore(tmp_path / "ck.db", key=KEY)
    store.save("f", blob_of(store, "f", "first"), [{"job_id": "j1", "status": "running"}])
    store.add_intent("f", "j2", blob_of(store, "f", "intent"))
    bad_jobs = [{"job_id": "j2", "status": "completed"}, {"job_id": "j3", "status": None}]
    with pytest.raises(CheckpointError, match=r"ck\.db: cannot save a checkpoint") as failed:
        store.save("f", blob_of(store, "f", "second"), bad_jobs)
    assert isinstance(failed.value.__cause__, sqlite3.IntegrityError)  # NOT NULL, after INSERT
    assert loaded(store, "f") == "first"
    assert store.list_flows()[0]["checkpoints"] == 1
    assert len(store.intents("f")) == 1, "the intent the failed checkpoint covered stays"
    assert {j["job_id"] for j in store.list_jobs()} == {"j1", "j2"}
    assert all(j["status"] == "running" for j in store.list_jobs())
    # the store is still usable
    store.save("f", blob_of(store, "f", "third"), [{"job_id": "j2", "status": "completed"}])
    assert loaded(store, "f") == "third" and store.intents("f") == []
    store.close()


def test_directory_failure_during_the_write_keeps_the_previous(tmp_path, monkeypatch):
    store = DirectoryStore(tmp_path / "ck", key=KEY)
    store.save("f", blob_of(store, "f", "first"), [])

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(directory_store_module.os, "fsync", no_space)
    with pytest.raises(CheckpointError, match="cannot save a checkpoint: no space left"):
        store.save("f", blob_of(store, "f", "second"), [])
    monkeypatch.undo()
    assert loaded(store, "f") == "first"
    assert store.list_flows()[0]["checkpoints"] == 1
    store.save("f", blob_of(store, "f", "third"), [])
    assert loaded(store, "f") == "third"


def test_directory_partial_temp_file_is_ignored(tmp_path):
    store = DirectoryStore(tmp_path / "ck", key=KEY)
    store.save("f", blob_of(store, "f", "first"), [])
    good = store.load_latest("f")
    directory = tmp_path / "ck" / "f"
    partial = directory / ".000000000002.ckpt.99999.tmp"
    partial.write_bytes(good[: len(good) // 2])
    assert loaded(store, "f") == "first"
    assert store.list_flows()[0]["checkpoints"] == 1
    store.save("f", blob_of(store, "f", "second"), [])
    assert loaded(store, "f") == "second"


@pytest.mark.parametrize("kind", KINDS)
def test_kill_during_a_checkpoint_write_leaves_the_previous_one(kind, tmp_path, spawn):
    path = tmp_path / ("ck.db" if kind == "sqlite" else "ck")
    writer = spawn("store_writer.py", kind, str(path))
    writer.expect("saved", timeout=30)
    writer.expect("mid-write", timeout=30)
    writer.kill()
    if kind == "dir":
        temps = list((path / "writer-flow").glob(".*.tmp"))
        assert temps and temps[0].stat().st_size < 200_000, "the write was cut short"
    key = b"store-writer-test-key-0123456789"
    store = SQLiteStore(path, key=key) if kind == "sqlite" else DirectoryStore(path, key=key)
    try:
        if kind == "dir":  # the dead writer's temp file is cleaned up on open
            assert not list((path / "writer-flow").glob(".*.tmp"))
        assert loaded(store, "writer-flow") == "first"
        assert store.list_flows()[0]["checkpoints"] == 1
        assert [(j["job_id"], j["status"]) for j in store.list_jobs()] == [("j1", "running")]
        # the store takes new checkpoints after the crash
        store.save("writer-flow", blob_of(store, "writer-flow", "after"), [])
        assert loaded(store, "writer-flow") == "after"
    finally:
        store.close()


# ------------------------------------------------------------------ flow ids on disk
def test_directory_store_keeps_flow_ids_apart(tmp_path):
    store = DirectoryStore(tmp_path / "ck", key=KEY, keep=1)
    store.save("etl/daily", blob_of(store, "etl/daily", "slash"), [])
    store.save("etl_daily", blob_of(store, "etl_daily", "underscore"), [])
    assert sorted(f["flow_id"] for f in store.list_flows()) == ["etl/daily", "etl_daily"]
    assert store.flows() == ["etl/daily", "etl_daily"]
    assert loaded(store, "etl/daily") == "slash"
    assert loaded(store, "etl_daily") == "underscore"
    for odd in ("", ".", "..", ".hidden", "with space", "ünï/cödé"):
        store.save(odd, blob_of(store, odd, odd), [])
        assert loaded(store, odd) == odd
    assert all(p.parent == tmp_path / "ck" for p in (tmp_path / "ck").iterdir())
    assert set(store.flows()) >= {"", ".", "..", ".hidden", "with space", "ünï/cödé"}


def test_sqlite_store_keeps_flow_ids_apart(tmp_path):
    store = SQLiteStore(tmp_path / "ck.db", key=KEY, keep=1)
    store.save("etl/daily", blob_of(store, "etl/daily", "slash"), [])
    store.save("etl_daily", blob_of(store, "etl_daily", "underscore"), [])
    assert sorted(f["flow_id"] for f in store.list_flows()) == ["etl/daily", "etl_daily"]
    assert loaded(store, "etl/daily") == "slash"
    assert loaded(store, "etl_daily") == "underscore"
    store.close()


def test_job_ids_never_escape_a_directory_store(tmp_path):
    store = DirectoryStore(tmp_path / "store")
    flow = Flow(flow_id="f", checkpoint_store=store)
    flow.add_routine(Node(), "n")
    try:
        for job_id in ("../../escaped", "tenant/42"):
            assert flow.execute("n", job_id=job_id, timeout=10).status == "completed"
    finally:
        flow.shutdown()
    assert not (tmp_path / "escaped.intent").exists()
    assert all(p.is_relative_to(tmp_path / "store") for p in tmp_path.rglob("*.intent"))
    assert {row["job_id"] for row in store.list_jobs()} >= {"../../escaped", "tenant/42"}


def test_reading_an_unknown_flow_does_not_create_it(make_store):
    store = make_store()
    assert store.load_latest("ghost") is None
    assert store.intents("ghost") == []
    assert "ghost" not in store.flows()
