"""SQLiteStore: every checkpoint one transaction in one SQLite file (WAL)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from routilux.checkpoint import parts as stored_parts
from routilux.checkpoint import sqlite_schema as schema
from routilux.checkpoint.boundary import check_ours, check_sqlite_path, quick_check, store_errors
from routilux.checkpoint.job_query import COLUMNS, JobQuery, sql_where
from routilux.checkpoint.store import CheckpointStore, FinishedJob, store_key
from routilux.checkpoint.wal import SAFETY_PAGES, WalCheckpointer
from routilux.exceptions import CheckpointError, ConfigurationError

#: ``synchronous=``: "full" syncs every write to the disk before it returns; "normal"
#: (SQLite's NORMAL in WAL mode) leaves it to the OS: safe against a killed process,
#: but a power loss or an OS crash may undo the last writes (never half of one).
SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL"}


class SQLiteStore(CheckpointStore):
    """Checkpoints in one SQLite file (WAL mode; each checkpoint one transaction).

    ``keep`` checkpoints are kept per flow, with the parts they name; finished jobs
    stay listed for ``retention`` seconds. The HMAC key comes from ``key``, the
    ``ROUTILUX_CHECKPOINT_KEY`` environment variable, or ``<path>.key`` (0600).
    ``synchronous="normal"`` trades power-loss safety for speed (see ``SYNCHRONOUS``).
    """

    keeps_parts = True

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        key: bytes | str | None = None,
        keep: int = 2,
        retention: float = 7 * 24 * 3600.0,
        create: bool = True,
        synchronous: str = "full",
    ) -> None:
        self._settings(path, keep, retention)
        if synchronous not in SYNCHRONOUS:
            raise ConfigurationError(
                f"synchronous must be one of {list(SYNCHRONOUS)}, got {synchronous!r}"
            )
        self.synchronous = synchronous
        check_sqlite_path(self.path, create)
        self._lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None  # listing queries (see _read)
        self._read_lock = threading.Lock()
        self._time_columns = False
        self._retention_due = 0.0  # when the next save prunes jobs past the retention
        self._wal: WalCheckpointer | None = None  # WAL checkpoints off the write path
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
            self._db.execute(f"PRAGMA synchronous={SYNCHRONOUS[synchronous]}")
            self._db.execute(f"PRAGMA wal_autocheckpoint={SAFETY_PAGES}")
            schema.prepare(self._db)
            # Intents already there count as written before any checkpoint to come.
            row = self._db.execute("SELECT MAX(id) FROM intents").fetchone()
            self._intent_seq = row[0] or 0
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise CheckpointError(
                f"{self.path}: not a usable SQLite checkpoint store: {exc}"
            ) from None
        self._wal = WalCheckpointer(
            f"routilux-wal-{self.path.name}", lambda: _connect(self.path, str(self.path))
        )
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
        parts: dict[str, bytes],
        intents_upto: int | None,
    ) -> None:
        now = time.time()
        with self._lock:
            cur = self._db.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                stored_parts.sqlite_add(cur, flow_id, parts)
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
                    # Indexed (finished_jobs_age): cheap however many are kept.
                    cur.execute(
                        "DELETE FROM finished_jobs WHERE flow_id = ? AND finished_at < ("
                        "SELECT finished_at FROM finished_jobs WHERE flow_id = ? "
                        "ORDER BY finished_at DESC LIMIT 1 OFFSET ?)",
                        (flow_id, flow_id, keep_finished - 1),
                    )
                cur.executemany(
                    schema.UPSERT_JOB,
                    [
                        (
                            j["job_id"],
                            flow_id,
                            j["status"],
                            j.get("error"),
                            j.get("updated_at", now),
                            j.get("created_at"),
                            now,
                            j.get("finished_at"),
                            j.get("created_at"),
                        )
                        for j in jobs
                    ],
                )
                upto = -1 if intents_upto is None else intents_upto  # -1: any
                covered = [(flow_id, j["job_id"], upto, upto) for j in jobs]
                cur.executemany(
                    "DELETE FROM intents WHERE flow_id = ? AND job_id = ? AND (? < 0 OR id <= ?)",
                    covered,
                )
                cur.execute(
                    "DELETE FROM checkpoints WHERE flow_id = ? AND id < (SELECT id FROM "
                    "checkpoints WHERE flow_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (flow_id, flow_id, self.keep - 1),
                )
                stored_parts.sqlite_prune(cur, self.location, flow_id, blob)
                if now >= self._retention_due:
                    cur.execute(
                        f"DELETE FROM jobs WHERE status IN {schema.TERMINAL} AND updated_at < ?",
                        (now - self.retention,),
                    )
                cur.execute("COMMIT")
                logged = len(blob) + sum(len(f.blob) for f in finished)
                self._committed(logged + sum(len(data) for data in parts.values()))
                if now >= self._retention_due:
                    # Listing filters by retention too, so pruning can wait a little.
                    self._retention_due = now + min(60.0, self.retention / 10)
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def _committed(self, size: int) -> None:
        if self._wal is not None:
            self._wal.committed(size)

    @store_errors("read stored parts")
    def load_parts(self, flow_id: str, digests: list[str]) -> dict[str, bytes]:
        with self._lock:
            return stored_parts.sqlite_load(self._db, flow_id, digests)

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
        # One statement, its own transaction (the trigger lists the job in it):
        # sqlite3 lets go of the GIL for every statement, and in a busy flow one
        # slow enough for another thread to take it (BEGIN and COMMIT: file locks,
        # the sync) waits up to the switch interval (5 ms) to get it back.
        with self._lock:
            row_id = self._db.execute(
                "INSERT INTO intents (flow_id, job_id, data, created_at) VALUES (?, ?, ?, ?)",
                (flow_id, job_id, sqlite3.Binary(blob), time.time()),
            ).lastrowid
            self._committed(len(blob))
            self._intent_seq = max(self._intent_seq, row_id or 0)

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

    # -- the job listing (web monitor): its own read connection, never the writer's lock
    def _read(self, sql: str, args: Any = ()) -> list[tuple]:
        with self._read_lock:
            if self._reader is None:
                self._reader = _connect(self.path, f"file:{self.path}?mode=ro")
            return self._reader.execute(sql, args).fetchall()

    def _has_time_columns(self) -> bool:
        if not self._time_columns:  # a read-only view of an old file may lack them
            columns = {row[1] for row in self._read("PRAGMA table_info(jobs)")}
            self._time_columns = "created_at" in columns
        return self._time_columns

    @store_errors("list jobs")
    def query_jobs(self, query: JobQuery) -> tuple[list[dict[str, Any]], int]:
        if not self._has_time_columns():
            return super().query_jobs(query)
        where, args = sql_where(query)
        total = self._read("SELECT COUNT(*) FROM jobs" + where, args)[0][0]
        rows = self._read(
            f"SELECT {', '.join(COLUMNS)} FROM jobs{where} "
            "ORDER BY created_at DESC, job_id DESC LIMIT ? OFFSET ?",
            [*args, query.limit, query.offset],
        )
        return [dict(zip(COLUMNS, row, strict=True)) for row in rows], total

    @store_errors("list jobs")
    def job_row(self, job_id: str) -> dict[str, Any] | None:
        if not self._has_time_columns():
            return super().job_row(job_id)
        rows = self._read(f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE job_id = ?", (job_id,))
        return dict(zip(COLUMNS, rows[0], strict=True)) if rows else None

    @store_errors("list jobs")
    def count_jobs(self) -> dict[str, int]:
        return dict(self._read("SELECT status, COUNT(*) FROM jobs GROUP BY status"))

    @store_errors("read finished jobs")
    def load_finished_job(self, flow_id: str, job_id: str) -> bytes | None:
        try:
            rows = self._read(
                "SELECT data FROM finished_jobs WHERE flow_id = ? AND job_id = ?",
                (flow_id, job_id),
            )
        except sqlite3.OperationalError:  # read-only view of a store from 0.11.0
            return None
        return bytes(rows[0][0]) if rows else None

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
        if self._wal is not None:
            self._wal.close()
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
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
