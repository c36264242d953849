"""SQLiteStore: every checkpoint one transaction in one SQLite file (WAL)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from routilux.checkpoint.boundary import check_ours, check_sqlite_path, quick_check, store_errors
from routilux.checkpoint.store import CheckpointStore, FinishedJob, store_key
from routilux.exceptions import CheckpointError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    flow_id TEXT NOT NULL, created_at REAL NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS checkpoints_flow ON checkpoints(flow_id, id);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, flow_id TEXT NOT NULL, status TEXT NOT NULL,
    error TEXT, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS intents (
    id INTEGER PRIMARY KEY AUTOINCREMENT, flow_id TEXT NOT NULL,
    job_id TEXT NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS finished_jobs (
    flow_id TEXT NOT NULL, job_id TEXT NOT NULL, finished_at REAL NOT NULL,
    data BLOB NOT NULL, PRIMARY KEY (flow_id, job_id));
CREATE INDEX IF NOT EXISTS finished_jobs_age ON finished_jobs(flow_id, finished_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_TERMINAL = "('completed', 'failed', 'cancelled')"


class SQLiteStore(CheckpointStore):
    """Checkpoints in one SQLite file (WAL mode; each checkpoint one transaction).

    ``keep`` checkpoints are kept per flow; finished jobs stay listed for
    ``retention`` seconds. The HMAC key comes from ``key``, the
    ``ROUTILUX_CHECKPOINT_KEY`` environment variable, or ``<path>.key`` (0600).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        key: bytes | str | None = None,
        keep: int = 2,
        retention: float = 7 * 24 * 3600.0,
        create: bool = True,
    ) -> None:
        self._settings(path, keep, retention)
        check_sqlite_path(self.path, create)
        self._lock = threading.Lock()
        self._db = _connect(self.path, str(self.path) if create else f"file:{self.path}?mode=ro")
        quick_check(self._db, self.path)  # never use a damaged file as if it were sound
        check_ours(self._db, self.path)  # nor another program's database
        try:  # only now: a refused path gets no key file
            self.key = store_key(key, self.path.with_name(self.path.name + ".key"), create)
        except BaseException:
            self._db.close()
            raise
        if not create:  # reading only (routilux inspect/jobs): never change the file
            return
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise CheckpointError(
                f"{self.path}: not a usable SQLite checkpoint store: {exc}"
            ) from None
        for suffix in ("-wal", "-shm"):
            extra = Path(str(self.path) + suffix)
            if extra.exists():
                os.chmod(extra, 0o600)

    @store_errors("save a checkpoint")
    def _save(
        self,
        flow_id: str,
        blob: bytes,
        jobs: list[dict[str, Any]],
        finished: list[FinishedJob],
        keep_finished: int | None,
    ) -> None:
        now = time.time()
        with self._lock:
            cur = self._db.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                cur.execute(
                    "INSERT INTO checkpoints (flow_id, created_at, data) VALUES (?, ?, ?)",
                    (flow_id, now, sqlite3.Binary(blob)),
                )
                cur.executemany(
                    "INSERT OR REPLACE INTO finished_jobs (flow_id, job_id, finished_at, data) "
                    "VALUES (?, ?, ?, ?)",
                    [(flow_id, f.job_id, f.finished_at, sqlite3.Binary(f.blob)) for f in finished],
                )
                if keep_finished is not None and finished:
                    cur.execute(
                        "DELETE FROM finished_jobs WHERE flow_id = ? AND job_id NOT IN ("
                        "SELECT job_id FROM finished_jobs WHERE flow_id = ? "
                        "ORDER BY finished_at DESC LIMIT ?)",
                        (flow_id, flow_id, keep_finished),
                    )
                cur.executemany(
                    "INSERT OR REPLACE INTO jobs (job_id, flow_id, status, error, updated_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [
                        (
                            j["job_id"],
                            flow_id,
                            j["status"],
                            j.get("error"),
                            j.get("updated_at", now),
                        )
                        for j in jobs
                    ],
                )
                covered = [(flow_id, j["job_id"]) for j in jobs]
                cur.executemany("DELETE FROM intents WHERE flow_id = ? AND job_id = ?", covered)
                cur.execute(
                    "DELETE FROM checkpoints WHERE flow_id = ? AND id NOT IN (SELECT id FROM "
                    "checkpoints WHERE flow_id = ? ORDER BY id DESC LIMIT ?)",
                    (flow_id, flow_id, self.keep),
                )
                cur.execute(
                    f"DELETE FROM jobs WHERE status IN {_TERMINAL} AND updated_at < ?",
                    (now - self.retention,),
                )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    @store_errors("read the latest checkpoint")
    def load_latest(self, flow_id: str) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT data FROM checkpoints WHERE flow_id = ? ORDER BY id DESC LIMIT 1",
                (flow_id,),
            ).fetchone()
        return bytes(row[0]) if row else None

    @store_errors("read finished jobs")
    def load_finished(self, flow_id: str, limit: int | None = None) -> list[bytes]:
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT data FROM finished_jobs WHERE flow_id = ? "
                    "ORDER BY finished_at DESC LIMIT ?",
                    (flow_id, -1 if limit is None else limit),
                ).fetchall()
            except sqlite3.OperationalError:  # read-only view of a store from 0.11.0
                return []
        return [bytes(r[0]) for r in reversed(rows)]

    @store_errors("record a job intent")
    def _add_intent(self, flow_id: str, job_id: str, blob: bytes) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO intents (flow_id, job_id, data) VALUES (?, ?, ?)",
                    (flow_id, job_id, sqlite3.Binary(blob)),
                )
                self._db.execute(
                    "INSERT OR REPLACE INTO jobs (job_id, flow_id, status, error, updated_at) "
                    "VALUES (?, ?, 'running', NULL, ?)",
                    (job_id, flow_id, time.time()),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    @store_errors("read job intents")
    def intents(self, flow_id: str) -> list[bytes]:
        with self._lock:
            rows = self._db.execute(
                "SELECT data FROM intents WHERE flow_id = ? ORDER BY id", (flow_id,)
            ).fetchall()
        return [bytes(r[0]) for r in rows]

    @store_errors("list flows")
    def flows(self) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT flow_id FROM checkpoints "
                "UNION SELECT DISTINCT flow_id FROM intents"
            ).fetchall()
        return sorted(r[0] for r in rows)

    @store_errors("list flows")
    def list_flows(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT flow_id, COUNT(*), MAX(created_at) FROM checkpoints GROUP BY flow_id"
            ).fetchall()
        return [{"flow_id": f, "checkpoints": n, "latest_at": t} for f, n, t in sorted(rows)]

    @store_errors("list jobs")
    def list_jobs(
        self, flow_id: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        query = "SELECT job_id, flow_id, status, error, updated_at FROM jobs"
        clauses, args = [], []
        if flow_id is not None:
            clauses.append("flow_id = ?")
            args.append(flow_id)
        if status is not None:
            clauses.append("status = ?")
            args.append(status)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY updated_at", args).fetchall()
        keys = ("job_id", "flow_id", "status", "error", "updated_at")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    @store_errors("write metadata")
    def _put_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    @store_errors("read metadata")
    def _fetch_meta(self, key: str) -> str | None:
        with self._lock:
            try:
                row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            except sqlite3.OperationalError:  # read-only view of a store from before meta
                return None
        return row[0] if row else None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.location!r})"


def _connect(path: Path, target: str) -> sqlite3.Connection:
    """An autocommit connection shared by the store's threads (under its lock)."""
    try:
        return sqlite3.connect(
            target,
            uri=target.startswith("file:"),
            check_same_thread=False,
            isolation_level=None,
        )
    except sqlite3.Error as exc:
        raise CheckpointError(f"cannot open the SQLite store {path}: {exc}") from None
