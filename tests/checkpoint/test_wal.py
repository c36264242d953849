"""SQLiteStore moves its write-ahead log into the database file on a thread of its
own (routilux/checkpoint/wal.py), not inside a commit; what it wrote stays readable."""

from __future__ import annotations

import os
import sqlite3
import threading

from helpers import wait_until

from routilux.checkpoint import SQLiteStore, sqlite_store
from routilux.checkpoint import wal as wal_module
from routilux.checkpoint.format import encode

KEY = b"wal-test-key-0123456789abcdef012"


def _intent(store: SQLiteStore, n: int, size: int = 600) -> None:
    job_id = f"job-{n}"
    blob = encode("flow", b"x" * size, store.key, [{"job_id": job_id, "status": "running"}])
    store.add_intent("flow", job_id, blob)


def _wal_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("routilux-wal-")]


def test_commits_no_longer_checkpoint_the_log_themselves(tmp_path):
    store = SQLiteStore(tmp_path / "c.db", key=KEY)
    try:
        (pages,) = store._db.execute("PRAGMA wal_autocheckpoint").fetchone()
        assert pages == wal_module.SAFETY_PAGES  # a bound only, reached if the thread lags
    finally:
        store.close()


def test_every_few_commits_the_log_is_copied_into_the_database_file(tmp_path, monkeypatch):
    monkeypatch.setattr(wal_module, "COMMIT_PAGES", 1)
    monkeypatch.setattr(wal_module, "EVERY_PAGES", 5)
    path = tmp_path / "c.db"
    store = SQLiteStore(path, key=KEY)
    try:
        for n in range(4):
            _intent(store, n)
        assert store._wal.thread is None  # not yet: every 5 pages, one per commit here
        size_before = os.path.getsize(path)
        _intent(store, 4)
        assert wait_until(lambda: store._wal.runs == 1)
        (page_count,) = store._db.execute("PRAGMA page_count").fetchone()
        (page_size,) = store._db.execute("PRAGMA page_size").fetchone()
        # The intents' pages are now in the main file, not only in the log.
        assert os.path.getsize(path) == page_count * page_size > size_before
    finally:
        store.close()
    reopened = SQLiteStore(path, key=KEY)
    try:
        assert len(reopened.intents("flow")) == 5
    finally:
        reopened.close()


def test_the_thread_ends_when_the_store_is_idle_and_comes_back(tmp_path, monkeypatch):
    monkeypatch.setattr(wal_module, "EVERY_PAGES", 1)
    monkeypatch.setattr(wal_module, "IDLE_SECONDS", 0.01)
    store = SQLiteStore(tmp_path / "c.db", key=KEY)
    try:
        _intent(store, 0)
        first = store._wal.thread
        assert wait_until(lambda: store._wal.thread is None)  # idle: it ended
        assert first is None or wait_until(lambda: not first.is_alive())
        _intent(store, 1)
        assert wait_until(lambda: store._wal.runs == 2)
    finally:
        store.close()


def test_close_waits_for_a_running_checkpoint_and_leaves_no_thread(tmp_path, monkeypatch):
    monkeypatch.setattr(wal_module, "EVERY_PAGES", 1)
    before = set(_wal_threads())
    store = SQLiteStore(tmp_path / "c.db", key=KEY)
    for n in range(3):
        _intent(store, n)
    assert store._wal.thread is not None  # waits for the next request (IDLE_SECONDS)
    store.close()
    assert [t for t in _wal_threads() if t not in before and t.is_alive()] == []
    assert store._wal.db is None


def test_a_failing_background_checkpoint_harms_no_write(tmp_path, monkeypatch):
    monkeypatch.setattr(wal_module, "EVERY_PAGES", 1)
    store = SQLiteStore(tmp_path / "c.db", key=KEY)

    def refuse(*args, **kwargs) -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    # Fails where a real one would (the store's own connect turns it into a
    # CheckpointError), not in a stand-in for it.
    monkeypatch.setattr(sqlite_store.sqlite3, "connect", refuse)
    try:
        for n in range(3):
            _intent(store, n)
            assert wait_until(lambda n=n: store._wal.runs == n + 1)
        assert len(store.intents("flow")) == 3
    finally:
        store.close()


def test_a_large_commit_counts_for_its_pages(tmp_path, monkeypatch):
    """The log grows by the data written, not by the number of commits: a history
    of 200 KiB brings the next checkpoint as near as some fifty small commits."""
    monkeypatch.setattr(wal_module, "EVERY_PAGES", 60)
    store = SQLiteStore(tmp_path / "c.db", key=KEY)
    try:
        _intent(store, 0)
        assert store._wal.thread is None
        _intent(store, 1, size=200_000)
        assert wait_until(lambda: store._wal.runs == 1)
    finally:
        store.close()


def test_after_a_failed_checkpoint_the_next_request_checkpoints(tmp_path, monkeypatch):
    monkeypatch.setattr(wal_module, "EVERY_PAGES", 1)
    store = SQLiteStore(tmp_path / "c.db", key=KEY)
    real_connect = sqlite3.connect
    monkeypatch.setattr(sqlite_store.sqlite3, "connect", lambda *a, **k: 1 / 0)
    try:
        _intent(store, 0)
        assert wait_until(lambda: store._wal.runs == 1)
        assert store._wal.db is None  # it failed, and the thread is not lost for it
        monkeypatch.setattr(sqlite_store.sqlite3, "connect", real_connect)
        _intent(store, 1)
        assert wait_until(lambda: store._wal.runs == 2 and store._wal.db is not None)
    finally:
        store.close()
