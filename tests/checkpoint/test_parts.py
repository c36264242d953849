"""Incremental cuts: history chunks are stored once as parts, later cuts refer to them.

Both stores: a part is written with the first checkpoint that names it, kept while
a kept checkpoint names it, and dropped after; a flow's cuts write only the history
added since the previous cut; recovery puts the history back together and refuses
a part that was altered.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading

import pytest

from routilux import CheckpointError, ConfigurationError, Flow, Routine
from routilux.checkpoint import DirectoryStore, SQLiteStore
from routilux.checkpoint.format import encode

KEY = b"parts-test-key-0123456789abcdef!"


def _store(kind: str, tmp_path, **kwargs):
    if kind == "sqlite":
        return SQLiteStore(tmp_path / "ck.db", key=KEY, **kwargs)
    return DirectoryStore(tmp_path / "ck", key=KEY, **kwargs)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("kind", ["sqlite", "dir"])
def test_a_part_is_kept_while_a_kept_checkpoint_names_it(kind, tmp_path):
    store = _store(kind, tmp_path, keep=2)
    a, b = b"part a" * 100, b"part b" * 100
    da, db = _digest(a), _digest(b)
    store.save("f", encode("f", b"1", KEY, [], [da]), [], parts={da: a})
    store.save("f", encode("f", b"2", KEY, [], [da, db]), [], parts={db: b})
    assert store.load_parts("f", [da, db]) == {da: a, db: b}
    store.save("f", encode("f", b"3", KEY, [], [db]), [])  # the cut naming a is kept still
    assert store.load_parts("f", [da, db]) == {da: a, db: b}
    store.save("f", encode("f", b"4", KEY, [], [db]), [])  # no kept cut names a now
    assert store.load_parts("f", [da, db]) == {db: b}
    assert store.load_parts("other", [db]) == {}
    with pytest.raises(CheckpointError, match="it names are not stored"):
        store.save("f", encode("f", b"5", KEY, [], [db, da]), [])  # a is gone
    assert store.load_parts("f", [db]) == {db: b}, "the refused save changed nothing"
    store.close()


class Ticker(Routine):
    """Emits ``count`` ticks, one per step, pausing at ``gate`` after ``stop_at``."""

    gate = threading.Event()
    reached = threading.Event()

    def __init__(self):
        super().__init__()
        self.seen = 0
        self.define_slot("trigger", handler=self.tick)
        self.define_slot("again", handler=self.tick)
        self.define_event("out", ["n"])

    def tick(self, n=0, count=0, stop_at=-1):
        self.seen += 1
        if n == stop_at:
            Ticker.reached.set()
            Ticker.gate.wait(30)
        if n + 1 < count:
            self.emit("out", n=n + 1, count=count, stop_at=stop_at)


class SavedParts(SQLiteStore):
    """Records the bytes of new parts each save writes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.part_bytes: list[int] = []

    def save(self, *args, parts=None, **kwargs):
        self.part_bytes.append(sum(len(d) for d in (parts or {}).values()))
        return super().save(*args, parts=parts, **kwargs)


def _ticker_flow(store) -> Flow:
    flow = Flow("ticks", checkpoint_store=store, checkpoint_interval=3600)
    flow.add_routine(Ticker(), "t")
    flow.connect("t", "out", "t", "again")
    return flow


def test_each_cut_writes_only_the_history_added_since_the_previous_one(tmp_path):
    Ticker.gate.clear()
    Ticker.reached.clear()
    store = SavedParts(tmp_path / "ck.db", key=KEY)
    flow = _ticker_flow(store)
    try:
        flow.recover()
        job = flow.execute("t", {"count": 400, "stop_at": 300}, wait=False)
        assert Ticker.reached.wait(30)
        threading.Timer(0.05, Ticker.gate.set).start()  # the cut waits for that step
        flow.pause(job, timeout=30)  # saved, with its 300-odd records of history
        flow.checkpoint(timeout=30)  # the paused job's history did not grow
        assert store.part_bytes[-2] > 0 and store.part_bytes[-1] == 0, store.part_bytes
        flow.resume(job)
        assert job.wait(30) and job.status == "completed"
    finally:
        Ticker.gate.set()
        flow.shutdown()
    store.close()


def _park_mid_job(kind: str, tmp_path) -> list:
    """Shut a flow down while its job is at step 40 of 50; the job's history then."""
    Ticker.gate.clear()
    Ticker.reached.clear()
    store = _store(kind, tmp_path)
    flow = _ticker_flow(store)
    flow.recover()
    job = flow.execute("t", {"count": 50, "stop_at": 40}, wait=False)
    assert Ticker.reached.wait(30)
    threading.Timer(0.05, Ticker.gate.set).start()  # shutdown waits for that step
    flow.shutdown()
    store.close()
    return [(r.routine_id, r.event_name, r.data) for r in job.execution_history]


@pytest.mark.parametrize("kind", ["sqlite", "dir"])
def test_recovery_puts_the_history_back_together(kind, tmp_path):
    history = _park_mid_job(kind, tmp_path)
    assert len(history) > 40
    store = _store(kind, tmp_path)
    flow = _ticker_flow(store)
    try:
        (job,) = flow.recover()
        kept = [(r.routine_id, r.event_name, r.data) for r in job.execution_history]
        assert kept[: len(history)] == history
        assert job.wait(30) and job.status == "completed"
        assert flow.routines["t"].seen == 50  # each tick once
    finally:
        flow.shutdown()
        store.close()


@pytest.mark.parametrize("kind", ["sqlite", "dir"])
def test_recovery_refuses_an_altered_part(kind, tmp_path):
    _park_mid_job(kind, tmp_path)
    if kind == "sqlite":
        with sqlite3.connect(tmp_path / "ck.db") as db:
            assert db.execute("UPDATE parts SET data = ?", (b"tampered",)).rowcount > 0
    else:
        parts = sorted((tmp_path / "ck").glob("*/parts/*.part"))
        assert parts
        parts[0].write_bytes(b"tampered")
    store = _store(kind, tmp_path)
    with pytest.raises(CheckpointError, match="failed its integrity check"):
        _ticker_flow(store).recover()
    store.close()


def test_sqlite_synchronous_setting(tmp_path):
    store = SQLiteStore(tmp_path / "n.db", key=KEY, synchronous="normal")
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    store.close()
    store = SQLiteStore(tmp_path / "f.db", key=KEY)
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL, the default
    store.close()
    with pytest.raises(ConfigurationError, match="synchronous must be one of"):
        SQLiteStore(tmp_path / "x.db", key=KEY, synchronous="off")


@pytest.mark.parametrize("kind", ["sqlite", "dir"])
def test_a_cut_does_not_settle_an_intent_written_after_it_was_taken(kind, tmp_path):
    """A cut written after its job id was submitted again (the writer thread
    writes cuts while jobs run) must leave the new submission's intent in place."""
    store = _store(kind, tmp_path)
    first, again = encode("f", b"first", KEY), encode("f", b"again", KEY)
    store.add_intent("f", "j", first)
    mark = store.intent_mark()  # the cut is taken: it names j, which has ended
    store.add_intent("f", "j", again)  # j submitted again
    store.save("f", encode("f", b"cut", KEY), [{"job_id": "j", "status": "completed"}],
               intents_upto=mark)
    assert store.intents("f") == [again], "the new submission must stay durable"
    store.save("f", encode("f", b"cut2", KEY), [{"job_id": "j", "status": "running"}],
               intents_upto=store.intent_mark())
    assert store.intents("f") == []
    store.close()
